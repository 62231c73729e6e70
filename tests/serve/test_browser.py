"""The page in a real browser: Debian's Chromium driven by Playwright (no browser download),
its fake microphone playing a whistle-like tone. Record two examples of one class, upload
three of another, fit, classify a recording and an uploaded clip, see a bad file's error,
and inspect a screenshot of the result panel. Runs against a live server on 127.0.0.1 with
the real aisfx backbone.

Without Chromium the test is skipped locally (with the reason) and FAILS in CI, which
installs it (`.ci/run`). ``MGCL_SERVE_SCREENSHOT=docs/serve.png`` also writes the README's
picture of the page.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.serve.conftest import in_ci, need, noise

CHROMIUM = os.environ.get("MGCL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def chromium_or_skip() -> str:
    if not Path(CHROMIUM).is_file():
        msg = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set MGCL_CHROMIUM)"
        if in_ci():
            pytest.fail(msg + " - CI must run the browser test")
        pytest.skip(msg)
    return CHROMIUM


def whistle(seconds: float, sr: int = 48000) -> np.ndarray:
    """A 1.2 kHz tone with two harmonics and a slow vibrato: what the fake microphone plays."""
    t = np.arange(int(seconds * sr)) / sr
    f = 1200 + 30 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = 0.5 * np.sin(phase) + 0.15 * np.sin(2 * phase) + 0.08 * np.sin(3 * phase)
    return x.astype(np.float32)


def region_std(png: Path, box: dict) -> float:
    from PIL import Image

    img = Image.open(png).convert("L")
    crop = img.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
    return float(np.asarray(crop, dtype=float).std())


def save_readme_picture(page, out: Path) -> None:
    """A full-page screenshot as a small palette PNG (the README's docs/serve.png)."""
    from PIL import Image

    raw = out.with_suffix(".raw.png")
    page.screenshot(path=str(raw), full_page=True)
    Image.open(raw).convert("RGB").quantize(colors=64).save(out, optimize=True)
    raw.unlink()


def test_build_and_use_a_classifier_in_the_browser(live_aisfx, tmp_path):
    need("playwright", 'pip install -e ".[serve-test]" (the Python package only: Chromium comes from apt)')
    exe = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    mic = tmp_path / "mic.wav"
    sf.write(mic, whistle(4.0), 48000, subtype="PCM_16")
    noises = []
    for i in range(3):
        p = tmp_path / f"fan-{i}.wav"
        sf.write(p, noise(2.0, 44100, seed=10 + i), 44100, subtype="PCM_16")
        noises.append(str(p))
    query = tmp_path / "fan-query.wav"
    sf.write(query, noise(2.0, 44100, seed=99), 44100, subtype="PCM_16")
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"these are notes, not audio")
    shot = tmp_path / "page.png"

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=exe,
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(live_aisfx.url + "/")
            expect(page.locator("#server-info")).to_contain_text("backbone aisfx")

            # class 1: two recordings from the (fake) microphone; added with the keyboard
            page.fill("#class-name", "whistle")
            page.press("#class-name", "Enter")
            rec = page.locator('fieldset[data-label="whistle"] button.record')
            for k in (1, 2):
                rec.click()
                expect(rec).to_have_attribute("aria-pressed", "true")
                page.wait_for_timeout(1500)
                rec.click()
                expect(page.locator('fieldset[data-label="whistle"] legend')).to_contain_text(f"({k} example")
            # class 2: three uploaded files
            page.fill("#class-name", "fan")
            page.click("#add-class")
            page.set_input_files('fieldset[data-label="fan"] input[type=file]', noises)
            expect(page.locator('fieldset[data-label="fan"] legend')).to_contain_text("(3 examples)")

            page.fill("#model-name", "browser_model")
            page.click("#fit")
            expect(page.locator("#message")).to_have_class("ok", timeout=180_000)
            expect(page.locator("#fit-stage")).to_contain_text("done")
            expect(page.locator("#models")).to_contain_text("browser_model")
            expect(page.locator("#use-model")).to_have_value("browser_model")

            # a recorded clip
            q = page.locator("#query-record")
            q.click()
            page.wait_for_timeout(1500)
            q.click()
            expect(page.locator("#query-name")).to_contain_text("recording")
            page.click("#classify")
            expect(page.locator("#result-label")).to_have_text("whistle")
            expect(page.locator("#explain-figure")).to_be_visible()

            # an unusable file: a clear message, no crash
            page.set_input_files("#query-file", str(junk))
            page.click("#classify")
            expect(page.locator("#message")).to_have_class("error")
            expect(page.locator("#message")).to_contain_text("Unusable audio")

            # an uploaded clip of the other class, with its explanation picture
            page.set_input_files("#query-file", str(query))
            before = page.locator("#explain-img").get_attribute("src")
            page.click("#classify")
            expect(page.locator("#result-label")).to_have_text("fan")
            page.wait_for_function(
                "b => { const i = document.querySelector('#explain-img');"
                " return i.src !== b && i.complete && i.naturalWidth > 0; }",
                arg=before,
            )
            expect(page.locator("#message")).to_be_hidden()
            assert page.locator("#bars li").count() == 2
            assert page.locator("#bars li").first.locator(".lab").inner_text() == "fan"

            page.locator("#result").scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
            box = page.locator("#result").bounding_box()
            img_box = page.locator("#explain-img").bounding_box()
            if os.environ.get("MGCL_SERVE_SCREENSHOT"):
                page.evaluate("window.scrollTo(0, 0)")
                save_readme_picture(page, Path(os.environ["MGCL_SERVE_SCREENSHOT"]))
        finally:
            browser.close()

    assert not errors, errors
    assert box and box["width"] > 200 and box["height"] > 150, box
    assert region_std(shot, box) > 20  # the panel shows something: text, bars, the picture
    assert img_box and img_box["width"] > 200 and region_std(shot, img_box) > 20
