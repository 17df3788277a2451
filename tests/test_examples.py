"""The scripts in ``examples/``: their command lines explain themselves."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reproduce_tutorial_gives_every_option_a_help_text() -> None:
    parser = load_script("reproduce_tutorial").build_parser()

    assert parser.description
    for action in parser._actions:
        assert action.help, action.option_strings or action.dest
    options = parser.parse_args(["softmax", "--seeds", "1", "2", "--log-every", "100"])
    assert (options.models, options.seeds, options.log_every) == (["softmax"], [1, 2], 100)
