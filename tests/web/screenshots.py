"""Screenshots of every page at 1280 and 320 CSS pixels into docs/screenshots/ (`make screenshots`).

Starts the same server the browser tests use, on a new SQLite database in a temporary folder, with the
same made-up reports, and drives Debian's Chromium through Playwright.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.web.live import CHROMIUM_ARGS, chromium_path, start

OUT = Path(__file__).parents[2] / "docs" / "screenshots"
WIDTHS = {1280: 900, 320: 640}


def main() -> None:
    """Write docs/screenshots/<page>-<width>.jpg."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        live, server, thread = start(f"sqlite:///{folder}/screenshots.db")
        pages = {"oversikt": "/", "til-vurdering": "/vurdering", "sak": f"/avvik/{live.flagged[0]}",
                 "avvik": "/avvik", "statistikk": "/statistikk", "modell": "/modell"}
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                for width, height in WIDTHS.items():
                    context = browser.new_context(viewport={"width": width, "height": height})
                    page = context.new_page()
                    page.goto(f"{live.url}/logg-inn")
                    page.screenshot(path=OUT / f"logg-inn-{width}.jpg", full_page=True, quality=70, type="jpeg")
                    page.get_by_label("API-nøkkel").fill(live.keys["admin"])
                    page.get_by_role("button", name="Logg inn").click()
                    page.wait_for_url(re.compile(r".*/$"))
                    for name, path in pages.items():
                        page.goto(f"{live.url}{path}")
                        page.wait_for_load_state("networkidle")  # the parts a page loads after itself
                        page.screenshot(path=OUT / f"{name}-{width}.jpg", full_page=True, quality=70, type="jpeg")
                    context.close()
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            live.provider.close()
            live.engine.dispose()
    print(f"wrote {len(list(OUT.glob('*.jpg')))} screenshots to {OUT}")


if __name__ == "__main__":
    main()
