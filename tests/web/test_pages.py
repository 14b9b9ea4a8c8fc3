"""The web pages through HTTP (no browser): sessions, CSRF, headers, scoping, audit, the version check."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.auth.dependencies import route_rule
from app.auth.keys import create_key, revoke_key
from app.auth.principal import Role
from app.cli import cli
from app.db import utcnow
from app.main import create_app
from app.review.models import Review
from app.web.models import WebSession
from app.web.router import PUBLIC_PATHS, STATS_PARTS, PageAuthorize
from app.web.router import router as web_router
from app.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import DatabaseFactory, settings_for
from tests.web.conftest import csrf_of, deliver, sign_in
from tests.web.live import prepare

PAGES = ["/", "/vurdering", "/avvik", "/statistikk"]


def test_every_page_declares_who_may_see_it() -> None:
    for route in web_router.routes:
        if isinstance(route, APIRoute):
            rule = route_rule(route.dependant)
            assert isinstance(rule, PageAuthorize) or route.path in PUBLIC_PATHS, route.path


def test_pages_need_a_session_and_keep_nothing_in_caches(web: Callable[..., TestClient]) -> None:
    anonymous = web()
    for path in [*PAGES, "/avvik/1", "/modell"]:
        answer = anonymous.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/logg-inn?neste="), path
    page = anonymous.get("/logg-inn")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in page.headers  # plain HTTP
    over_tls = web(base_url="https://testserver").get("/logg-inn")
    assert over_tls.headers["strict-transport-security"].startswith("max-age=")


def test_pages_carry_no_inline_script_or_style(adviser: TestClient, integration: dict[str, str]) -> None:
    deliver(adviser, integration, 3)
    for path in [*PAGES, "/avvik/1", "/logg-inn"]:
        html = adviser.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"\son[a-z]+=", html), path  # no inline event handlers either


def test_static_files_have_hashed_names_and_long_lives(adviser: TestClient) -> None:
    html = adviser.get("/").text
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert len(urls) == 5
    for url in urls:
        assert re.fullmatch(r"/static/[\w.-]+\.[0-9a-f]{12}\.(css|js)", url)
        answer = adviser.get(url)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert adviser.get("/static/htmx.min.000000000000.js").status_code == 404
    weight = len(html.encode()) + sum(len(adviser.get(u).content) for u in urls)
    assert weight < 200_000, weight


def test_session_cookie_is_httponly_lax_and_secure_unless_turned_off(web: Callable[..., TestClient],
                                                                     make_app: Callable[..., object],
                                                                     api_keys: dict[Role, str]) -> None:
    plain = sign_in(web(), api_keys[Role.ADVISER])
    assert plain.cookies.get("avvik")
    app = make_app()  # the default: Secure, under the __Host- prefix
    with TestClient(app, base_url="https://testserver") as secure:  # type: ignore[arg-type]
        form = secure.get("/logg-inn")
        token = re.search(r'name="signin_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        answer = secure.post("/logg-inn", data={"api_key": api_keys[Role.ADVISER], "signin_token": token},
                             follow_redirects=False)
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("__host-avvik=") and "httponly" in cookie and "secure" in cookie
    assert "samesite=lax" in cookie


def test_sign_in_form_needs_its_own_token(web: Callable[..., TestClient], api_keys: dict[Role, str]) -> None:
    client = web()
    forged = client.post("/logg-inn", data={"api_key": api_keys[Role.ADVISER], "signin_token": "x"},
                         follow_redirects=False)
    assert forged.status_code == 403 and "avvik" not in client.cookies


def test_dashboard_and_integration_keys_get_no_pages(web: Callable[..., TestClient],
                                                     api_keys: dict[Role, str]) -> None:
    for role in (Role.DASHBOARD, Role.INTEGRATION):
        client = web()
        form = client.get("/logg-inn")
        token = re.search(r'name="signin_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        answer = client.post("/logg-inn", data={"api_key": api_keys[role], "signin_token": token},
                             follow_redirects=False)
        assert answer.status_code == 403 and "ingen sider" in answer.text
        assert client.get("/avvik/1", follow_redirects=False).status_code == 303


def test_missing_or_forged_csrf_token_is_refused(adviser: TestClient, integration: dict[str, str],
                                                 session: Session) -> None:
    report_id = deliver(adviser, integration, 1)[0]["id"]
    page = adviser.get(f"/avvik/{report_id}")
    for data, headers in (({"decision": "confirm", "seen_review": "0"}, {}),
                          ({"decision": "confirm", "seen_review": "0", "csrf_token": "forged"}, {}),
                          ({"decision": "confirm", "seen_review": "0"}, {"X-CSRF-Token": "forged"})):
        answer = adviser.post(f"/avvik/{report_id}/vurdering", data=data, headers=headers, follow_redirects=False)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert session.scalar(select(func.count()).select_from(Review)) == 0
    done = adviser.post(f"/avvik/{report_id}/vurdering", follow_redirects=False,
                        data={"decision": "confirm", "seen_review": "0", "csrf_token": csrf_of(page.text)})
    assert done.status_code == 303
    htmx = adviser.post("/logg-ut", headers={"X-CSRF-Token": csrf_of(page.text)}, follow_redirects=False)
    assert htmx.status_code == 303


def test_sign_out_ends_the_session_at_once(adviser: TestClient, session: Session) -> None:
    cookie = adviser.cookies.get("avvik")
    page = adviser.get("/")
    assert page.status_code == 200
    answer = adviser.post("/logg-ut", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303
    assert session.scalar(select(WebSession.ended_at)) is not None
    adviser.cookies.set("avvik", cookie or "")  # a copy of the cookie kept elsewhere no longer works
    assert adviser.get("/", follow_redirects=False).status_code == 303


def test_session_warns_before_it_ends_and_can_be_extended(adviser: TestClient, session: Session) -> None:
    page = adviser.get("/")
    assert 'hx-get="/okt/status"' in page.text and 'aria-live="polite"' in page.text
    assert adviser.get("/okt/status").text.strip() == ""  # far from the end: nothing to say
    row = session.scalars(select(WebSession)).one()
    row.expires_at = utcnow() + timedelta(minutes=3)
    session.flush()
    warning = adviser.get("/okt/status")
    assert "avsluttes om 2 minutter" in warning.text or "avsluttes om 3 minutter" in warning.text
    assert "Forleng økten" in warning.text
    session.refresh(row)
    assert row.expires_at < utcnow() + timedelta(minutes=4)  # polling the status does not extend it
    extended = adviser.post("/okt/forleng", headers={"X-CSRF-Token": csrf_of(page.text)})
    assert "forlenget" in extended.text
    session.refresh(row)
    assert row.expires_at > utcnow() + timedelta(minutes=25)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    assert "Økten er avsluttet" in adviser.get("/okt/status").text
    assert adviser.get("/", follow_redirects=False).status_code == 303


def test_another_departments_report_is_the_same_404_as_a_missing_one(
        web: Callable[..., TestClient], session: Session, integration: dict[str, str],
        api_keys: dict[Role, str]) -> None:
    bbsm_key = create_key(session, "bbsm-adviser", Role.ADVISER, ["BBSM"])[1]
    bbsm = sign_in(web(), bbsm_key)
    beho = deliver(bbsm, integration, 1, unit="Etat for helsetjenester – Legevakten", prefix="BEHO")[0]
    own = deliver(bbsm, integration, 1, unit="Etat for barn og familie – Barnevernet", prefix="BBSM")[0]
    assert bbsm.get(f"/avvik/{own['id']}").status_code == 200
    other, missing = bbsm.get(f"/avvik/{beho['id']}"), bbsm.get("/avvik/987654")
    assert other.status_code == missing.status_code == 404
    assert other.text == missing.text
    assert beho["title"] not in other.text


def test_reading_a_report_page_is_audited_without_free_text(adviser: TestClient, integration: dict[str, str],
                                                            session: Session) -> None:
    stored = deliver(adviser, integration, 2)
    adviser.get(f"/avvik/{stored[0]['id']}")
    # The newest read: on PostgreSQL the audit log keeps rows that other tests' real servers committed.
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "report.read")
                            .order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.actor == "key:test-adviser" and event.endpoint == "/avvik/{report_id}"
    assert stored[0]["id"] in event.report_ids
    adviser.post("/avvik", data={"q": "helsesykepleier", "csrf_token": csrf_of(adviser.get("/avvik").text)})
    searched = session.scalars(select(AuditEvent).where(AuditEvent.action == "report.list")
                               .order_by(AuditEvent.id.desc())).first()
    assert searched is not None and searched.query == {**searched.query, "q": "[masked]"}


def test_nynorsk_report_text_is_marked_lang_nn(adviser: TestClient, integration: dict[str, str]) -> None:
    stored = deliver(adviser, integration, 5)
    nynorsk = adviser.get(f"/avvik/{stored[4]['id']}").text
    bokmal = adviser.get(f"/avvik/{stored[0]['id']}").text
    assert '<div class="sak-tekst" lang="nn">' in nynorsk
    assert '<div class="sak-tekst" lang="nb">' in bokmal


def test_explanation_words_are_marked_with_a_sign(adviser: TestClient, integration: dict[str, str]) -> None:
    stored = deliver(adviser, integration, 1)[0]
    html = adviser.get(f"/avvik/{stored['id']}").text
    assert re.search(r'<mark class="(opp|ned)">[^<]+<span class="tegn">&#8239;[↑↓]</span></mark>', html)
    assert "Trakk opp:" in html or "Trakk ned:" in html


def test_a_decision_made_meanwhile_is_reported_not_overwritten(web: Callable[..., TestClient],
                                                              api_keys: dict[Role, str], session: Session,
                                                              integration: dict[str, str]) -> None:
    first = sign_in(web(), api_keys[Role.ADVISER])
    second = sign_in(web(), api_keys[Role.ADMIN])
    report_id = deliver(first, integration, 1)[0]["id"]
    seen_by_first, seen_by_second = first.get(f"/avvik/{report_id}").text, second.get(f"/avvik/{report_id}").text
    confirmed = second.post(f"/avvik/{report_id}/vurdering", follow_redirects=False, data={
        "decision": "is_case", "seen_review": "0", "csrf_token": csrf_of(seen_by_second)})
    assert confirmed.status_code == 303
    late = first.post(f"/avvik/{report_id}/vurdering", follow_redirects=False, data={
        "decision": "not_case", "seen_review": "0", "csrf_token": csrf_of(seen_by_first)})
    assert late.status_code == 409
    assert "mens du så på den" in late.text and "ikke lagret" in late.text
    assert [r.decision for r in session.scalars(select(Review))] == ["is_case"]


def test_a_correction_without_labels_is_shown_next_to_the_field(adviser: TestClient,
                                                                integration: dict[str, str]) -> None:
    report_id = deliver(adviser, integration, 1)[0]["id"]
    page = adviser.get(f"/avvik/{report_id}")
    answer = adviser.post(f"/avvik/{report_id}/vurdering", data={
        "decision": "correct", "seen_review": "0", "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 422
    assert 'id="correction-feil"' in answer.text and 'aria-describedby="correction-feil"' in answer.text


def test_list_filters_live_in_the_url_and_a_bad_one_is_shown_inline(adviser: TestClient,
                                                                    integration: dict[str, str]) -> None:
    deliver(adviser, integration, 3)
    shown = adviser.get("/avvik?department=BBS&reported_from=2026-01-01&category=")
    assert shown.status_code == 200 and 'value="2026-01-01"' in shown.text
    wrong = adviser.get("/avvik?reported_from=13.01.2026")
    assert wrong.status_code == 422
    assert 'id="reported_from-feil"' in wrong.text and 'aria-invalid="true"' in wrong.text
    unknown = adviser.get("/avvik?department=NOPE")
    assert unknown.status_code == 422 and 'id="department-feil"' in unknown.text


def test_statistics_csv_has_the_numbers_of_the_table(adviser: TestClient, integration: dict[str, str]) -> None:
    deliver(adviser, integration, 4)
    page = adviser.get("/statistikk?include_suggested=true&reported_from=2026-01-01&reported_to=2026-12-31")
    assert page.status_code == 200 and 'hx-get="/statistikk/del/antall?' in page.text
    part = adviser.get("/statistikk/del/antall?include_suggested=true&reported_from=2026-01-01"
                       "&reported_to=2026-12-31", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<caption" in part.text and 'scope="row"' in part.text
    csv = adviser.get("/statistikk/antall.csv?include_suggested=true&reported_from=2026-01-01"
                      "&reported_to=2026-12-31")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("row;") or "period" in lines[0]
    assert len(lines) > 1


def test_key_and_link_sign_in_are_off_when_entra_is_configured(make_app: Callable[..., object]) -> None:
    app = make_app(web_cookie_secure=False, oidc_client_id="client", oidc_issuer="https://issuer.example/v2.0",
                   oidc_tenant_id="t", oidc_jwks_url="https://issuer.example/keys", oidc_audience="api://avvik")
    with TestClient(app) as client:  # type: ignore[arg-type]
        page = client.get("/logg-inn")
        assert "/logg-inn/entra" in page.text and 'name="api_key"' not in page.text
        assert client.post("/logg-inn", data={"api_key": "x"}).status_code == 403
    enabled = make_app(web_cookie_secure=False, oidc_client_id="client", oidc_issuer="https://issuer.example/v2.0",
                       oidc_tenant_id="t", oidc_jwks_url="https://issuer.example/keys", web_key_signin=True)
    with TestClient(enabled) as client:  # type: ignore[arg-type]
        assert 'name="api_key"' in client.get("/logg-inn").text


def test_sign_in_link_works_once(web: Callable[..., TestClient], session: Session, monkeypatch: object,
                                 database_url: str) -> None:
    from app.web import session as web_session

    create_key(session, "link-adviser", Role.ADVISER, ["BBS"])
    token = web_session.create_link(session, "link-adviser")
    client = web()
    assert "Logg inn" in client.get(f"/logg-inn/lenke/{token}").text  # a GET uses nothing up
    used = client.post(f"/logg-inn/lenke/{token}", follow_redirects=False)
    assert used.status_code == 303 and client.cookies.get("avvik")
    again = web().post(f"/logg-inn/lenke/{token}", follow_redirects=False)
    assert again.status_code == 401
    revoked_token = web_session.create_link(session, "link-adviser")
    revoke_key(session, "link-adviser")
    assert web().post(f"/logg-inn/lenke/{revoked_token}", follow_redirects=False).status_code == 401


def test_signin_link_command_prints_a_link(database_url: str, engine: object) -> None:
    from app.db import make_sessionmaker

    name = "cli-link-adviser"
    with make_sessionmaker(engine).begin() as db:  # type: ignore[arg-type]
        create_key(db, name, Role.ADVISER, None)
    try:
        result = CliRunner().invoke(cli, ["web", "signin-link", "--key-name", name, "--base-url", "http://x:1"],
                                    env={"AVVIK_DATABASE_URL": database_url})
        assert result.exit_code == 0, result.output
        assert re.fullmatch(r"http://x:1/logg-inn/lenke/[\w-]{43}\n", result.output)
        unknown = CliRunner().invoke(cli, ["web", "signin-link", "--key-name", "nobody"],
                                     env={"AVVIK_DATABASE_URL": database_url})
        assert unknown.exit_code == 1
    finally:
        with make_sessionmaker(engine).begin() as db:  # type: ignore[arg-type]
            from sqlalchemy import delete

            from app.auth.models import ApiKey
            from app.web.models import WebSignin

            db.execute(delete(WebSignin).where(WebSignin.key_name == name))
            db.execute(delete(ApiKey).where(ApiKey.name == name))


def test_model_page_is_for_admins(web: Callable[..., TestClient], api_keys: dict[Role, str]) -> None:
    adviser = sign_in(web(), api_keys[Role.ADVISER])
    assert adviser.get("/modell").status_code == 403
    admin = sign_in(web(), api_keys[Role.ADMIN])
    page = admin.get("/modell")
    assert page.status_code == 200 and "(aktiv)" in page.text and "Treffsikkerhet" in page.text


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden fields of the decision form on a page."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html.replace("&amp;", "&")))


def decided_report(html: str) -> int:
    """The report whose decision form a page shows."""
    found = re.search(r'action="/avvik/(\d+)/vurdering"', html)
    assert found is not None
    return int(found.group(1))


def test_a_decision_in_the_queue_answers_with_the_next_report_still_waiting_in_the_window(
        web: Callable[..., TestClient], session: Session, integration: dict[str, str],
        api_keys: dict[Role, str]) -> None:
    bbsm = sign_in(web(), create_key(session, "bbsm-queue", Role.ADVISER, ["BBSM"])[1])
    colleague = sign_in(web(), api_keys[Role.ADMIN])
    deliver(bbsm, integration, 5, unit="Etat for barn og familie – Barnevernet", prefix="QUEUE")
    beho = deliver(bbsm, integration, 1, unit="Etat for helsetjenester – Legevakten", prefix="BEHO")[0]
    page = bbsm.get("/vurdering").text
    fields = hidden_fields(page)
    window = [int(i) for i in fields["window"].split(",")]
    assert len(window) >= 4 and beho["id"] not in window and decided_report(page) == window[0]
    # A colleague decides the second report meanwhile; a forged window slips in another department's report, and
    # swaps the third and the fourth (so the answer shows that the window, not the queue, was read).
    seen = colleague.get(f"/avvik/{window[1]}").text
    assert colleague.post(f"/avvik/{window[1]}/vurdering", follow_redirects=False, data={
        "decision": "is_case", "seen_review": "0", "csrf_token": csrf_of(seen)}).status_code == 303
    forged = [window[0], beho["id"], window[1], window[3], window[2], *window[4:]]
    answer = bbsm.post(f"/avvik/{window[0]}/vurdering", data={
        **fields, "window": ",".join(map(str, forged)), "decision": "not_case"},
        headers={"HX-Request": "true", "X-CSRF-Token": fields["csrf_token"]})
    assert answer.status_code == 200
    assert decided_report(answer.text) == window[3]
    assert hidden_fields(answer.text)["window"] == ",".join(map(str, forged[3:]))
    assert f"/avvik/{beho['id']}" not in answer.text
    assert f"lagret. {len(window) - 2} igjen" in answer.text
    assert [r.decision for r in session.scalars(select(Review).where(Review.report_id == window[0]))] == ["not_case"]
    # At the end of the window the queue is read again.
    last = hidden_fields(answer.text)
    answer = bbsm.post(f"/avvik/{window[3]}/vurdering", data={**last, "window": str(window[3]), "decision": "is_case"},
                       headers={"HX-Request": "true", "X-CSRF-Token": fields["csrf_token"]})
    assert answer.status_code == 200
    assert decided_report(answer.text) == window[2]
    assert hidden_fields(answer.text)["window"] == ",".join(map(str, [window[2], *window[4:]]))


def test_statistics_read_side_by_side_show_the_numbers_read_in_the_request(databases: DatabaseFactory) -> None:
    url = databases.new()
    engine, keys = prepare(url)
    engine.dispose()
    # This app owns its engine, as a server does: the statistics calls run side by side on their own connections.
    with TestClient(create_app(settings_for(url, web_cookie_secure=False))) as client:
        assert isinstance(client.app, FastAPI) and client.app.state.read_sessionmaker is not None
        deliver(client, {"Authorization": f"Bearer {keys['integration']}"}, 12, recent=True)
        sign_in(client, keys["adviser"])

        def shown() -> list[str]:
            # The page without JavaScript has every part in it: its tables, read side by side or not.
            page = client.get("/statistikk?alle=1")
            assert page.status_code == 200
            return re.findall(r"<table.*?</table>", page.text, flags=re.S)

        def parts() -> dict[str, bytes]:
            answers = {part: client.get(f"/statistikk/{part}.csv") for part in STATS_PARTS}
            assert all(a.status_code == 200 for a in answers.values())
            return {part: a.content for part, a in answers.items()}

        side_by_side, csvs = shown(), parts()
        client.app.state.read_sessionmaker = None
        assert shown() == side_by_side and parts() == csvs
        assert len(side_by_side) >= 3 and len(csvs["antall"].splitlines()) > 1


def test_the_statistics_page_loads_its_parts_after_itself_each_as_its_own_fragment(
        adviser: TestClient, integration: dict[str, str]) -> None:
    deliver(adviser, integration, 6, recent=True)
    shell = adviser.get("/statistikk")
    assert shell.status_code == 200 and "<table" not in shell.text
    urls = re.findall(r'hx-get="(/statistikk/del/[a-z]+\?[^"]*)"', shell.text)
    assert [u.split("?")[0].rsplit("/", 1)[1] for u in urls] == ["estimat", "antall", "trend", "samhandling",
                                                                  "gjentakende"]
    inline = adviser.get("/statistikk?alle=1").text
    for url in urls:
        fragment = adviser.get(url.replace("&amp;", "&"), headers={"HX-Request": "true"})
        # The fragment is the section the page without JavaScript shows, not a page of its own.
        assert fragment.status_code == 200 and "<html" not in fragment.text
        section = fragment.text.strip()
        assert section.startswith("<section") and section in inline
        alone = adviser.get(url.replace("&amp;", "&"))
        assert alone.status_code == 200 and "<html" in alone.text and section in alone.text
    assert adviser.get("/statistikk/del/nothing").status_code == 404
    wrong = adviser.get("/statistikk?department=NOPE")
    assert wrong.status_code == 422 and 'id="department-feil"' in wrong.text and "/statistikk/del/" not in wrong.text


def test_an_unknown_path_is_the_404_page_for_a_browser_and_json_for_an_api_client(
        web: Callable[..., TestClient]) -> None:
    client = web()
    for path in ("/avvik/foo/bar", "/nothing"):
        page = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Fant ikke siden" in page.text and '<html lang="nb"' in page.text
        assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        for headers in ({"Accept": "application/json"}, {}):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    api = client.get("/api/v1/nothing", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"] == "not_found"
