"""The web page in a real browser: headless Chromium (Debian's package; .ci/run installs it) driven by
playwright against `seqtext serve` over loopback. The page loads, a sentence gets the label the API gives
it, and generated text appears as it streams. Screenshots go to $SEQTEXT_SCREENSHOTS when it is set (the
README's picture comes from there), else to the test's own folder."""

import os
import shutil
from pathlib import Path

import httpx
import pytest

from .server import start

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip  # the machine's network is closed: ask it nothing


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium package (.ci/run does)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def _screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("SEQTEXT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser, base: str):
    """The page at ``base``, and a list that collects its script errors and any request to another host."""
    page = browser.new_page(viewport={"width": 900, "height": 640})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("request", lambda request: None if request.url.startswith(base) else errors.append(request.url))
    page.goto(f"{base}/")
    return page, errors


@pytest.mark.slow
def test_the_page_labels_a_sentence_as_the_api_does(browser, trained_run, tmp_path):
    server, base = start(trained_run, threads=1)
    try:
        sentence = "a gorgeous , witty , seductive movie ."
        expected = httpx.post(f"{base}/v1/classify", json={"texts": [sentence]}).json()["predictions"][0]["label"]
        page, errors = _open(browser, base)
        page.wait_for_selector("#classify-panel", state="visible")
        page.fill("#text", sentence)
        page.click("#classify")
        page.wait_for_function("document.querySelector('#label').textContent.trim().length > 0")
        assert page.text_content("#label").strip() == expected
        shaded = page.locator("#attention span")
        assert shaded.count() == len(sentence.split())  # one shaded span a token
        assert page.text_content("#attention") == sentence
        page.screenshot(path=str(_screenshots(tmp_path) / "serve-classifier.png"), full_page=True)
        assert errors == []  # no script error, and nothing asked of any other host
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.slow
def test_the_page_streams_generated_text(browser, lm_run, tmp_path):
    server, base = start(lm_run, threads=1)
    try:
        page, errors = _open(browser, base)
        page.wait_for_selector("#generate-panel", state="visible")
        page.fill("#prompt", "ROMEO:")
        page.fill("#length", "200")
        page.click("#generate")
        page.wait_for_function("document.querySelector('#output').textContent.length >= 'ROMEO:'.length + 200")
        assert page.text_content("#output").startswith("ROMEO:")
        page.screenshot(path=str(_screenshots(tmp_path) / "serve-language-model.png"), full_page=True)
        assert errors == []
    finally:
        server.terminate()
        server.wait(30)
