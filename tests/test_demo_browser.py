"""The draw-a-digit page, driven in a real headless Chromium with Playwright.

The browser is Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs
it), found at ``$MNISTKIT_CHROMIUM``, on PATH, or at ``/usr/bin/chromium``. The waits use
selectors, not ``wait_for_function``: the page's Content-Security-Policy forbids the
``eval`` that Playwright's polling of a string expression needs. Where none
can run, the test is skipped with the reason, except under CI (``CI`` set), where it
fails. ``MNISTKIT_DOCS_SCREENSHOT=1`` also writes the docs' screenshot,
``docs/_static/demo.png``.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mnistkit.demo import DemoServer

pytestmark = pytest.mark.extras  # the converters' extras, or a browser

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "_static" / "demo.png"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

Stroke = list[tuple[float, float]]


def _ellipse(cx: float, cy: float, rx: float, ry: float, points: int = 48) -> Stroke:
    return [
        (cx + rx * math.sin(2 * math.pi * i / points), cy - ry * math.cos(2 * math.pi * i / points))
        for i in range(points + 1)
    ]


# Strokes in fractions of the canvas, drawn as a person would: (x, y) from the top left.
DIGITS: dict[str, list[Stroke]] = {
    "1": [[(0.46, 0.18), (0.52, 0.16), (0.52, 0.84)]],
    "0": [_ellipse(0.5, 0.5, 0.2, 0.32)],
    "7": [[(0.26, 0.2), (0.74, 0.2), (0.56, 0.5), (0.42, 0.84)]],
    "4": [[(0.42, 0.16), (0.28, 0.58), (0.74, 0.58)], [(0.62, 0.3), (0.62, 0.86)]],
}


def _chromium() -> str:
    candidates = [
        os.environ.get("MNISTKIT_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return _unavailable("no Chromium found: install Debian's chromium (apt-get install chromium)")


def _unavailable(reason: str) -> Any:
    if os.environ.get("CI"):
        pytest.fail(f"The browser test must run under CI, but {reason}.")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def demo(trained_deep_cnn: Any) -> Iterator[DemoServer]:
    server = DemoServer(trained_deep_cnn, port=0, samples=20)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def page(demo: DemoServer, tmp_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install 'mnistkit[test]')")
    executable = _chromium()
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),  # a fresh user-data-dir
                executable_path=executable,
                headless=True,
                args=FLAGS,
                viewport={"width": 1000, "height": 640},
                device_scale_factor=1,
            )
        except Error as error:
            _unavailable(f"Chromium could not start: {str(error).splitlines()[0]}")
        try:
            yield context.new_page()
        finally:
            context.close()


def _draw(page: Any, strokes: list[Stroke]) -> dict[str, Any]:
    """Draw ``strokes`` with the mouse and return the answer to the last one.

    Each stroke's answer is awaited before the next stroke, so that a slow answer to an
    earlier stroke is never taken for the last one's.
    """
    box = page.locator("#pad").bounding_box()
    answers = []
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=4)
        with page.expect_response("**/predict") as answer:
            page.mouse.up()
        answers.append(answer.value.json())
        page.wait_for_selector("body[data-state='done']")
    return answers[-1]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_drawn_digits_are_read_in_the_browser(demo: DemoServer, page: Any, tmp_path: Path) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(demo.url)
    page.wait_for_selector("body[data-state='ready']")
    page.wait_for_selector("#model:has-text('deep_cnn')")

    for digit, strokes in DIGITS.items():
        page.click("#clear")
        answer = _draw(page, strokes)
        shown = page.locator("#digit").text_content()
        assert shown == digit, f"drew {digit}, the page shows {shown}: {answer['probabilities']}"
        bars = page.locator("#bars li")
        assert bars.count() == 10
        assert "Monte-Carlo dropout, 20 passes" in page.locator("#uncertainty").text_content()
        # The 28x28 view holds the prepared image: white ink centred on black.
        seen = page.evaluate(
            "Array.from(document.getElementById('seen').getContext('2d')"
            ".getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))"
        )
        assert seen == answer["image"]
        assert max(seen) == 255
        assert seen[0] == 0

    screenshot = tmp_path / "demo.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot of the page after drawing a 4: {screenshot}")
    if os.environ.get("MNISTKIT_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.write_bytes(screenshot.read_bytes())
        print(f"docs screenshot written: {DOCS_SCREENSHOT}")
    assert screenshot.stat().st_size > 10_000
    assert requested
    assert all(url.startswith(demo.url) or url.startswith("data:") for url in requested), requested


@pytest.mark.slow
def test_blank_canvas_is_answered_with_a_message(demo: DemoServer, page: Any) -> None:
    page.goto(demo.url)
    page.wait_for_selector("body[data-state='ready']")
    page.evaluate(
        "fetch('/predict', {method: 'POST', headers: {'Content-Type': 'application/json'}, "
        "body: JSON.stringify({width: 2, height: 2, "
        "pixels: btoa('\\xff\\xff\\xff\\xff')})}).then(r => r.json())"
        ".then(a => { document.body.dataset.answer = a.error; })"
    )
    page.wait_for_selector("body[data-answer]")
    assert "holds no digit" in page.evaluate("document.body.dataset.answer")
