"""Fault injection: what a training run survives, and how it says so.

Each fault is made real where the platform allows: a full disk is a 120 KB tmpfs (in a
user and mount namespace of its own, where Linux lets one be made; else the test is
skipped and the injected faults below stand for it), a file size limit is
``RLIMIT_FSIZE``, kills and signals are sent to real processes, two runs really race
for one folder. Where a real fault cannot hit a chosen file, ``ENOSPC`` is injected
into the first write of that file.

What must hold after each: no traceback, one line saying what happened (exit 1; 130
for Ctrl-C, 143 for SIGTERM, with the command that resumes the run), no temporary file
left, the last good checkpoint intact and named, and ``--resume`` finishing the run.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnistkit import Trainer, load_dataset
from mnistkit.checkpoints import read_state
from mnistkit.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.faults]

CLI = [sys.executable, "-m", "mnistkit"]
# A run short enough to repeat, long enough to interrupt: 400 steps of 10, logged every 50.
TRAIN = ["train", "softmax", "--steps", "400", "--batch-size", "10", "--log-every", "50"]


def cli(*args: str | os.PathLike[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, **options
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mnistkit: error: ")
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary files (dot files) anywhere under ``folder``."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob(".*"))


def assert_finished(folder: Path, steps: int = 400) -> None:
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["steps"] == steps
    for name in ("model.keras", "history.csv", "confusion_matrix.png", "misclassified.png"):
        assert (folder / name).is_file(), name
    assert not (folder / "checkpoints").exists()
    assert not (folder / "run.lock").exists()
    assert leftovers(folder) == []


# ---------------------------------------------------------------- a full disk


def test_a_full_disk_keeps_the_last_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    """A 120 KB filesystem: the checkpoint at step 1000 fits, the one at 2000 does not."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a small filesystem without privileges")
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    train = [*CLI, "train", "softmax", "--steps", "2100", "--batch-size", "10", "--seed", "0"]
    script = f"""
set -u
mount -t tmpfs -o size=120k tmpfs {disk} || exit 77
cd {disk}
{shlex.join(train)} --output run > {out}/first.out 2> {out}/first.err
echo $? > {out}/first.rc
cp -a run {out}/after-failure
mount -o remount,size=8m {disk}
{shlex.join(CLI)} train softmax --output run --resume > {out}/resume.out 2> {out}/resume.err
echo $? > {out}/resume.rc
cp -a run {out}/after-resume
"""
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, timeout=600)
    if done.returncode == 77 or not (out / "first.rc").exists():
        pytest.skip(f"no small filesystem here: {done.stderr.decode(errors='replace')[-300:]}")

    first = subprocess.CompletedProcess(
        [], int((out / "first.rc").read_text()), "", (out / "first.err").read_text()
    )
    line = one_line_error(first)
    assert "No space left on device while writing run/checkpoints/state.json." in line
    assert "The last good checkpoint (step 1000) is in run/checkpoints." in line
    assert line.endswith(f"resume it with: {shlex.join(train)} --output run --resume")
    failed = out / "after-failure"
    assert read_state(failed / "checkpoints")["step"] == 1000
    assert sorted(p.name for p in (failed / "checkpoints").iterdir()) == [
        "ckpt-000001000.weights.h5",
        "state.json",
    ]
    assert leftovers(failed) == []
    assert (out / "resume.rc").read_text().strip() == "0", (out / "resume.err").read_text()
    assert "(resuming)" in (out / "resume.out").read_text()
    assert_finished(out / "after-resume", steps=2100)


def test_a_file_size_limit_is_reported_and_the_run_resumes(tmp_path: Path) -> None:
    """``ulimit -f 30``: the first checkpoint (46 KB) is past the limit (EFBIG, SIGXFSZ)."""
    resource = pytest.importorskip("resource")
    folder = tmp_path / "run"

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (30 * 1024, 30 * 1024))

    result = cli(*TRAIN, "--seed", "0", "--output", folder, preexec_fn=limit_file_size)

    line = one_line_error(result)
    assert f"File size limit exceeded while writing {folder}/checkpoints/ckpt-000000400" in line
    assert "No checkpoint was saved" in line
    assert leftovers(folder) == []
    resumed = cli("train", "softmax", "--output", folder, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_finished(folder)


class FullDisk:
    """Makes the first write into one file fail with ENOSPC, as a disk that just filled."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.hit: str | None = None
        self.real = builtins.open

    def open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = self.real(file, mode, *args, **kwargs)
        name = os.path.basename(os.fsdecode(file)) if isinstance(file, (str, os.PathLike)) else ""
        writing = any(flag in mode for flag in "wax+")
        if writing and self.hit is None and name.startswith(self.site):
            self.hit = name
            return _Failing(handle)
        return handle


class _Failing:
    """A file whose writes fail: no space left on device."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self) -> _Failing:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@contextlib.contextmanager
def full_disk(site: str) -> Iterator[FullDisk]:
    disk = FullDisk(site)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", disk.open)
        patch.setattr(io, "open", disk.open)
        yield disk


# The files a run writes, in the order it writes them; each name as its temporary
# file starts (atomic writes) and the file it lands in.
WRITE_SITES = {
    "run.json": (".run.", "run.json"),
    "history.csv": (".history.", "history.csv"),
    "checkpoint weights": (".ckpt-", "checkpoints/ckpt-000000400.weights.h5"),
    "checkpoint state": (".state.", "checkpoints/state.json"),
    "model.keras": (".model.", "model.keras"),
    "a plot": (".confusion_matrix.", "confusion_matrix.png"),
    "metrics.json": (".metrics.", "metrics.json"),
}


@pytest.mark.parametrize("site", list(WRITE_SITES))
def test_no_space_at_each_write_site_is_one_line_and_the_run_resumes(
    site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix, target = WRITE_SITES[site]
    folder = tmp_path / "run"
    with full_disk(prefix) as disk:
        status = main([*TRAIN, "--seed", "0", "--output", str(folder)])
    stderr = capsys.readouterr().err

    assert disk.hit is not None, f"nothing was written to {site}"
    assert status == 1
    assert "Traceback" not in stderr
    # In this process pytest shows Python's warnings too; the command's own lines are these.
    lines = [line for line in stderr.splitlines() if line.startswith("mnistkit: ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"mnistkit: error: No space left on device while writing {folder}/")
    assert f"while writing {folder / target}." in lines[0]
    assert leftovers(tmp_path) == []
    if not (folder / "run.json").exists():  # failed before it trained: nothing of it is left
        assert not folder.exists()
        assert "--resume" not in lines[0]  # nothing to resume: the same command starts it
        assert main([*TRAIN, "--seed", "0", "--output", str(folder)]) == 0
    else:
        if (folder / "checkpoints" / "state.json").exists():
            assert read_state(folder / "checkpoints")["step"] == 400
            assert "The last good checkpoint (step 400)" in lines[0]
        assert "--resume" in lines[0]
        assert main(["train", "softmax", "--output", str(folder), "--resume"]) == 0
    assert_finished(folder)


# ---------------------------------------------------------------- kills mid-write

KILLED_RUN = """
import sys
from mnistkit import Trainer, load_dataset
train = load_dataset("mnist", validation_size=0).train
Trainer("softmax", seed=3, deterministic=True).fit(
    (train.images[:2000], train.labels[:2000]), steps=int(sys.argv[2]), batch_size=20,
    checkpoint_dir=sys.argv[1], checkpoint_every=1, resume=sys.argv[3] == "resume", verbose=0,
)
"""


def test_sigkill_at_random_moments_of_checkpoint_writes_leaves_a_restorable_state(
    tmp_path: Path,
) -> None:
    """A checkpoint every step, and SIGKILL at a random moment, three times over."""
    folder, steps = tmp_path / "checkpoints", 300
    chance = random.Random(20261130)
    steps_at_kill = []
    for _ in range(3):
        mode = "resume" if (folder / "state.json").exists() else "new"
        before = (folder / "state.json").stat().st_mtime_ns if mode == "resume" else 0
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, str(folder), str(steps), mode],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while not (folder / "state.json").exists() or (
            (folder / "state.json").stat().st_mtime_ns == before
        ):  # wait until it saves
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(chance.uniform(0.0, 0.5))
        process.kill()
        process.wait()
        state = read_state(folder)  # always whole: the last save, or the one before it
        steps_at_kill.append(state["step"])
    assert steps_at_kill == sorted(steps_at_kill)
    assert steps_at_kill[-1] < steps

    finish = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(folder), str(steps), "resume"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finish.returncode == 0, finish.stderr[-2000:]
    assert sorted(path.name for path in folder.iterdir()) == [
        f"ckpt-{steps:09d}.weights.h5",
        "state.json",
    ]  # no temporary file, no orphan weights
    # Resumed three times, it ends where one uninterrupted run ends.
    train = load_dataset("mnist", validation_size=0).train
    data = (train.images[:2000], train.labels[:2000])
    whole = Trainer("softmax", seed=3, deterministic=True)
    whole.fit(data, steps=steps, batch_size=20, verbose=0)
    resumed = Trainer("softmax", seed=3, deterministic=True)
    resumed.fit(data, steps=steps, batch_size=20, checkpoint_dir=folder, resume=True, verbose=0)
    for expected, actual in zip(
        whole.model.get_weights(), resumed.model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(expected, actual)


# ---------------------------------------------------------------- Ctrl-C and SIGTERM


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 180
    while not condition():
        assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.01)


PHASES = {
    # The run folder is claimed; the data, the model and TensorFlow are being set up.
    "start-up": lambda folder, lines: (folder / "run.json").exists(),
    # Training: the log says "step N, training accuracy A".
    "training": lambda folder, lines: any(line.startswith("step 50,") for line in list(lines)),
    # The model is saved; the plots are being drawn.
    "final": lambda folder, lines: (folder / "model.keras").exists(),
}


INTERRUPTED, TERMINATED = (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")


# Each phase once, each signal at least once: after the handler, both take one path.
@pytest.mark.usefixtures("default_sigint")
@pytest.mark.parametrize(
    ("phase", "sent", "status", "word"),
    [("start-up", *TERMINATED), ("training", *INTERRUPTED), ("final", *TERMINATED)],
    ids=["start-up-SIGTERM", "training-SIGINT", "final-SIGTERM"],
)
def test_an_interrupt_at_each_phase_prints_a_resume_command_that_finishes_the_run(
    tmp_path: Path, phase: str, sent: signal.Signals, status: int, word: str
) -> None:
    folder = tmp_path / "run"
    command = [*CLI, *TRAIN, "--seed", "0", "--output", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()

    _wait_for(lambda: PHASES[phase](folder, lines), process)
    process.send_signal(sent)
    stderr = process.stderr.read()  # type: ignore[union-attr]
    process.wait(timeout=120)
    reader.join(timeout=10)

    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    assert f"mnistkit: {word}; resume the run in {folder} with:" in stderr
    resume = shlex.split(stderr.strip().splitlines()[-1])
    assert resume == [*command, "--resume"]
    assert not (folder / "metrics.json").exists()
    assert not (folder / "run.lock").exists()

    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=300)

    assert resumed.returncode == 0, resumed.stderr
    assert_finished(folder)
    steps = [int(row.split(",")[0]) for row in (folder / "history.csv").read_text().split()[1:]]
    assert steps == list(range(0, 401, 50))


# ---------------------------------------------------------------- two runs, one folder


def test_two_runs_into_one_folder_one_trains_the_other_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    runs = [
        subprocess.Popen(
            [*CLI, *TRAIN, "--seed", str(seed), "--output", str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [(run, *run.communicate(timeout=300)) for run in runs]

    assert sorted(run.returncode for run, _, _ in results) == [0, 1], results
    (winner, _, _), (_, _, refusal) = sorted(results, key=lambda r: r[0].returncode)
    holder = f"another mnistkit run (process {winner.pid} on {socket.gethostname()})"
    assert holder in refusal or "already holds a run" in refusal, refusal
    assert "Traceback" not in refusal
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["seed"] == runs.index(winner) + 1  # the folder holds the winner's run
