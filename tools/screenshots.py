"""The README's pictures of the serve page: `seqtext serve` on a trained classifier and a language model,
driven in headless Chromium (Debian's package) as tests/test_browser.py drives it.

    python tools/screenshots.py --classifier runs/sst2 --language-model runs/reviews-lm/forward [--out docs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server import start  # noqa: E402
from tests.test_browser import CHROMIUM, FLAGS  # noqa: E402

SENTENCE = "A gorgeous, witty, seductive movie, though the last act drags."


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--language-model", required=True)
    parser.add_argument("--prompt", default="This movie was")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        server, base = start(args.classifier)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 560})
            page.goto(f"{base}/")
            page.wait_for_selector("#classify-panel", state="visible")
            page.fill("#text", SENTENCE)
            page.click("#classify")
            page.wait_for_function("document.querySelector('#label').textContent.trim().length > 0")
            page.screenshot(path=str(out / "serve-classifier.png"), full_page=True)
            print(f"{out / 'serve-classifier.png'}: {page.text_content('#label').strip()}")
        finally:
            server.terminate()
            server.wait(30)
        server, base = start(args.language_model)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 560})
            page.goto(f"{base}/")
            page.wait_for_selector("#generate-panel", state="visible")
            page.fill("#prompt", args.prompt)
            page.fill("#length", "60")
            page.fill("#seed", "0")
            page.click("#generate")
            finished = "document.querySelector('#status') && /done/.test(document.querySelector('#status').textContent)"
            page.wait_for_function(finished)
            page.screenshot(path=str(out / "serve-language-model.png"), full_page=True)
            print(f"{out / 'serve-language-model.png'}")
        finally:
            server.terminate()
            server.wait(30)
        browser.close()


if __name__ == "__main__":
    main()
