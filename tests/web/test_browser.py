"""The pages in a real browser (Debian's Chromium through Playwright), on SQLite and PostgreSQL: keyboard
review, Entra ID sign-in through a fake provider, department scoping, downloads, CSRF, sign-out, and axe-core
on every page and state."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from sqlalchemy import select

from app.db import make_sessionmaker
from app.review.models import Review
from tests.conftest import DatabaseFactory
from tests.web.live import CHROMIUM_ARGS, Live, chromium_path, start

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


# pytest-playwright's own playwright/browser fixtures live for the whole session, and a running sync Playwright
# keeps an asyncio loop marked as running in the main thread: every later test that calls asyncio.run (the
# concurrency tests) would fail. These have the module's lifetime instead, and stop Playwright at its end.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright, for this module only."""
    chromium_path()
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (Playwright cannot download its own browser on these machines)."""
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookies from another test)."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def live(databases: DatabaseFactory) -> Iterator[Live]:
    """A server on a new database of the backend under test, with keys, a fake OpenID provider and reports."""
    chromium_path()  # skip (or fail) before starting anything when there is no browser
    server_live, server, thread = start(databases.new())
    server_live.backend = databases.backend
    yield server_live
    server.should_exit = True
    thread.join(timeout=10)
    server_live.provider.close()
    server_live.engine.dispose()


@pytest.fixture
def watched(page: Page) -> Iterator[Page]:
    """A page whose Content-Security-Policy violations fail the test."""
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    yield page
    assert violations == [], violations


def sign_in_with_key(page: Page, live: Live, name: str) -> None:
    """The sign-in form with one of the server's API keys."""
    page.goto(f"{live.url}/logg-inn")
    page.get_by_label("API-nøkkel").fill(live.keys[name])
    page.get_by_role("button", name="Logg inn").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Oversikt")


def open_queue(page: Page, live: Live) -> None:
    """The queue page, once htmx has taken over its links and forms (a loaded machine can be slow)."""
    page.goto(f"{live.url}/vurdering")
    page.wait_for_function("document.readyState === 'complete' && window.htmx !== undefined")


def sign_in_with_entra(page: Page, live: Live, roles: list[str], oid: str) -> None:
    """The Entra ID button, through the fake provider, as a person holding these app roles."""
    live.provider.user = {"oid": oid, "roles": roles, "name": "Testperson"}
    page.goto(f"{live.url}/logg-inn")
    page.get_by_role("link", name="Logg inn med kommunens konto (Entra ID)").click()


def unreviewed(live: Live, count: int) -> list[int]:
    """Flagged reports nobody has decided on yet, newest first (tests share the server)."""
    with make_sessionmaker(live.engine)() as session:
        done = set(session.scalars(select(Review.report_id)))
    return [i for i in live.flagged if i not in done][:count]


def test_sign_in_with_a_key_then_review_five_flags_with_the_keyboard_only(watched: Page, live: Live) -> None:
    page = watched
    sign_in_with_key(page, live, "adviser")
    open_queue(page, live)
    counter = page.locator("#teller")
    waiting = int(re.search(r"\d+", counter.inner_text()).group())  # type: ignore[union-attr]
    assert waiting >= 5
    page.evaluate("window.sameDocument = true")  # gone if any step loaded a whole page
    for _ in range(80):  # Tab until focus is in the review panel, as a keyboard user would
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#panel') !== null"):
            break
    else:
        pytest.fail("the review panel cannot be reached with Tab")
    for done, key in enumerate(["1", "2", "1", "2", "1"], start=1):
        shown = page.locator("#panel-tittel").inner_text()
        page.keyboard.press(key)
        expect(page.locator("#melding")).to_contain_text(f"lagret. {waiting - done} igjen")
        expect(counter).to_contain_text(str(waiting - done))
        expect(page.locator("#panel-tittel")).not_to_have_text(shown)
        expect(page.locator("#panel-tittel")).to_be_focused()  # focus follows the new report
    assert page.evaluate("window.sameDocument") is True
    with make_sessionmaker(live.engine)() as session:
        decisions = list(session.scalars(select(Review.decision).where(Review.reviewer == "key:adviser")
                                         .order_by(Review.id)))
    assert decisions[-5:] == ["is_case", "not_case", "is_case", "not_case", "is_case"]


def test_next_and_previous_do_not_load_a_page(watched: Page, live: Live) -> None:
    page = watched
    sign_in_with_key(page, live, "admin")
    open_queue(page, live)
    page.evaluate("window.sameDocument = true")
    first = page.locator("#panel-tittel").inner_text()
    page.get_by_role("link", name=re.compile("Neste")).click()
    expect(page.locator("#panel-tittel")).to_contain_text("Sak 2 av")
    expect(page.locator("#panel-tittel")).to_be_focused()  # focus moved to the new report
    page.keyboard.press("p")
    expect(page.locator("#panel-tittel")).to_have_text(first)
    assert page.evaluate("window.sameDocument") is True


def test_entra_sign_in_with_pkce_and_department_scoping(watched: Page, live: Live) -> None:
    page = watched
    sign_in_with_entra(page, live, ["adviser.BBSM"], "oid-bbsm")
    expect(page.get_by_role("heading", level=1)).to_have_text("Oversikt")
    verifier = live.provider.token_requests[-1]["code_verifier"]
    assert len(verifier) >= 43  # the PKCE verifier reached the token endpoint and matched the challenge
    for report_id in (live.beho, live.flagged[0]):  # health (BEHO) and school (BBS): neither is BBSM's
        answer = page.goto(f"{live.url}/avvik/{report_id}")
        assert answer is not None and answer.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Fant ikke siden")
        assert live.titles[report_id] not in page.content()
    missing = page.goto(f"{live.url}/avvik/99999999")
    assert missing is not None and missing.status == 404


def test_a_dashboard_user_gets_no_page_with_free_text(watched: Page, live: Live) -> None:
    page = watched
    sign_in_with_entra(page, live, ["dashboard"], "oid-dash")
    expect(page.get_by_role("alert")).to_contain_text("ingen sider")
    for path in ("/", "/vurdering", "/avvik", f"/avvik/{live.flagged[0]}", "/statistikk"):
        page.goto(f"{live.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Logg inn")
        html = page.content()
        assert not any(title in html for title in live.titles.values()), path


def test_statistics_change_after_a_confirmation(watched: Page, live: Live) -> None:
    page = watched
    sign_in_with_entra(page, live, ["adviser"], "oid-stats")
    page.goto(f"{live.url}/statistikk")
    before = int(re.match(r"\d+", page.locator("#bekreftet").inner_text()).group())  # type: ignore[union-attr]
    target = unreviewed(live, 1)[0]
    page.goto(f"{live.url}/avvik/{target}")
    page.get_by_role("button", name=re.compile("^Er en sak")).click()
    expect(page.get_by_role("status")).to_contain_text("Vurderingen er lagret")
    page.goto(f"{live.url}/statistikk")
    expect(page.locator("#bekreftet")).to_contain_text(f"{before + 1} saker er bekreftet")


def test_download_csv_and_xlsx_and_open_them(watched: Page, live: Live, tmp_path: Path) -> None:
    page = watched
    sign_in_with_key(page, live, "adviser")
    page.goto(f"{live.url}/avvik?department=BBS")
    shown = page.locator("table tbody tr").count()
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Last ned CSV").click()
    text = Path(csv_download.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    # Downloads from the pages are for people: Norwegian column headings.
    assert len(rows) == shown == 16 and {r["Byrådsavdeling"] for r in rows} == {"BBS"}
    with page.expect_download() as xlsx_download:
        page.get_by_role("button", name="Last ned Excel (XLSX)").click()
    xlsx_download.value.save_as(tmp_path / xlsx_download.value.suggested_filename)
    assert xlsx_download.value.suggested_filename == "avvik.xlsx"
    sheet = openpyxl.load_workbook(tmp_path / "avvik.xlsx", read_only=True).active
    lines = list(sheet.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert lines[0][:3] == ("ID", "Kildesystem", "Saksnummer") and len(lines) - 1 == shown


def test_free_text_search_stays_out_of_the_address(watched: Page, live: Live) -> None:
    page = watched
    sign_in_with_key(page, live, "adviser")
    page.goto(f"{live.url}/avvik")
    page.get_by_label("Fritekst").fill("epikrise")
    page.get_by_role("button", name="Søk", exact=True).click()
    expect(page.get_by_role("heading", name="Saker")).to_be_visible()
    assert "epikrise" not in page.url
    titles = page.locator("table tbody tr td:nth-child(2)").all_inner_texts()
    assert titles and all("epikrise" in t for t in titles)


def test_forged_or_missing_csrf_token_is_refused_and_sign_out_ends_the_session(watched: Page, live: Live) -> None:
    page = watched
    sign_in_with_key(page, live, "adviser")
    target = unreviewed(live, 1)[0]
    url = f"{live.url}/avvik/{target}/vurdering"
    for form, headers in (({"decision": "confirm", "seen_review": "0"}, {}),
                          ({"decision": "confirm", "seen_review": "0", "csrf_token": "forged"}, {}),
                          ({"decision": "confirm", "seen_review": "0"}, {"X-CSRF-Token": "forged"})):
        answer = page.request.post(url, form=form, headers=headers, max_redirects=0)
        assert answer.status == 403 and "CSRF" in answer.text()
    with make_sessionmaker(live.engine)() as session:
        assert session.scalar(select(Review.id).where(Review.report_id == target)) is None
    kept = page.context.cookies()
    page.goto(f"{live.url}/avvik")
    page.get_by_role("button", name="Logg ut").click()
    expect(page.get_by_role("status")).to_contain_text("Du er logget ut")
    page.context.add_cookies(kept)  # a copy of the cookie no longer opens anything
    page.goto(f"{live.url}/avvik/{target}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Logg inn")


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    result: dict[str, Any] = page.evaluate("""async (tags) => {
        const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return {passes: result.passes.length,
                violations: result.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,
                                                         where: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))};
    }""", WCAG_TAGS)
    assert result["passes"] > 10, "axe-core did not run its rules"
    return result["violations"]  # type: ignore[no-any-return]


def test_axe_finds_nothing_serious_on_any_page_or_state(browser: Browser, live: Live,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    context = browser.new_context()
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    counts: Counter[str] = Counter()
    serious: list[tuple[str, dict[str, Any]]] = []

    def check(state: str) -> None:
        for violation in run_axe(page):
            counts[violation["impact"]] += violation["nodes"]
            if violation["impact"] in ("serious", "critical"):
                serious.append((state, violation))

    page.goto(f"{live.url}/logg-inn")
    check("sign-in")
    page.get_by_label("API-nøkkel").fill("wrong")
    page.get_by_role("button", name="Logg inn").click()
    check("sign-in with an error")
    page.get_by_label("API-nøkkel").fill(live.keys["admin"])
    page.get_by_role("button", name="Logg inn").click()
    for state, path in (("overview", "/"), ("queue", "/vurdering"), ("report", f"/avvik/{live.flagged[0]}"),
                        ("list", "/avvik"), ("statistics", "/statistikk"), ("model", "/modell"),
                        ("error page", "/avvik/99999999"), ("unknown path", "/avvik/foo/bar"),
                        ("form with errors", "/avvik?reported_from=i+går"),
                        ("statistics with errors", "/statistikk?department=NOPE"),
                        ("statistics in one page (no JavaScript)", "/statistikk?alle=1"),
                        ("one part of the statistics alone", "/statistikk/del/samhandling")):
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("networkidle")  # the parts a page loads after itself are in it
        check(state)
    open_queue(page, live)
    page.get_by_role("link", name=re.compile("Neste")).click()
    expect(page.locator("#panel-tittel")).to_contain_text("Sak 2 av")
    check("queue after an htmx swap")
    page.get_by_text("Rett opp kategori").first.click()
    check("queue with the correction open")
    context.close()
    with capsys.disabled():
        print(f"\naxe-core on {live.backend}, 16 pages and states: nodes per impact: "
              + ", ".join(f"{impact}={counts.get(impact, 0)}" for impact in ("critical", "serious", "moderate",
                                                                             "minor")))
    assert serious == [], serious


def test_every_page_reflows_at_320_css_pixels(browser: Browser, live: Live) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    page.goto(f"{live.url}/logg-inn")
    page.get_by_label("API-nøkkel").fill(live.keys["admin"])
    page.get_by_role("button", name="Logg inn").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Oversikt")
    for path in ("/", "/vurdering", f"/avvik/{live.flagged[0]}", "/avvik", "/statistikk", "/modell"):
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("networkidle")
        # Wide tables scroll inside their own labelled region (WCAG 1.4.10 exempts data tables); the page not.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, (path, width)
    context.close()
