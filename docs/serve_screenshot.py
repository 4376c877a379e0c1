"""The web demo in a real browser: start `vl-suite serve` on a model, load the page in headless Chromium
(Debian's `chromium`; Playwright drives it, its own browser download is not needed), click a Shapes
example, caption it, ask a question, write a question and tag it, and save a screenshot.

    apt-get install -y chromium && pip install playwright
    python docs/serve_screenshot.py --model runs/shapes-reasoning/model --out docs/serve.png
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tasks.serve import serve

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo/run/model")
    parser.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = serve(args.model, port=port, block=False)
    start = time.perf_counter()
    try:
        with sync_playwright() as pw:
            profile = tempfile.mkdtemp(prefix="vl-chromium-")
            browser = pw.chromium.launch_persistent_context(
                profile, executable_path=args.chromium, headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900}
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            page.locator(".gallery-item, button.gallery-item, [data-testid='examples'] button").first.click()
            page.wait_for_timeout(1500)
            for button in ("Caption", "Ask", "Write a question", "Tag"):
                page.get_by_role("button", name=button, exact=True).click()
                page.wait_for_timeout(2500)
            caption = page.get_by_label("Caption", exact=True).input_value()
            question = page.get_by_label("Generated question", exact=True).input_value()
            assert caption.strip(), "the caption box stayed empty"
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        app.close()
    print(f"caption: {caption!r}; generated question: {question!r}; screenshot {args.out} ({time.perf_counter() - start:.1f}s)")


if __name__ == "__main__":
    main()
