"""Identity numbers, phone numbers and e-mail addresses never reach storage."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.ingest.mapping import redacted_item
from app.ingest.schemas import ReportIn
from app.privacy.redaction import (
    EMAIL_MARKER,
    IDENTITY_MARKER,
    PHONE_MARKER,
    Redacted,
    plausible_birth_date,
    redact,
    valid_check_digits,
)
from app.report.models import Report
from tests.helpers import delivered, report


def with_check_digits(date: str) -> str:
    """The first valid identity number for a DDMMYY (not every individual number has valid check digits)."""
    for individual in range(100, 1000):
        for k1 in range(10):
            for k2 in range(10):
                if valid_check_digits(candidate := f"{date}{individual}{k1}{k2}"):
                    return candidate
    raise ValueError(date)


VALID = with_check_digits("150312")  # 15 March 2012
D_NUMBER = with_check_digits("550312")  # day + 40
H_NUMBER = with_check_digits("154312")  # month + 40
SYNTHETIC = with_check_digits("158312")  # month + 80 (national test population)


def test_the_fixtures_are_real_identity_numbers() -> None:
    assert all(valid_check_digits(n) for n in (VALID, D_NUMBER, H_NUMBER, SYNTHETIC))
    assert not valid_check_digits(VALID[:10] + str((int(VALID[10]) + 1) % 10))


@pytest.mark.parametrize("number", [VALID, D_NUMBER, H_NUMBER, SYNTHETIC])
@pytest.mark.parametrize("written", ["{}", "{0:.6} {1}", "{0:.6}-{1}"])
def test_identity_numbers_in_running_text(number: str, written: str) -> None:
    shown = written.format(number, number[6:]) if "{1}" in written else number
    result = redact(f"Gutten (f.nr. {shown}) kom ikke til time.")
    assert result.text == f"Gutten (f.nr. {IDENTITY_MARKER}) kom ikke til time."
    assert result.identity_numbers == 1


@pytest.mark.parametrize("around", ["{}", "{}.", "({})", "«{}»", "fnr:{}", "{},{}", "\n{}\n"])
def test_identity_numbers_at_edges_and_next_to_punctuation(around: str) -> None:
    result = redact(around.format(VALID, VALID))
    assert VALID not in result.text
    assert result.identity_numbers == around.count("{}")


def test_a_mistyped_identity_number_is_still_removed() -> None:
    typo = VALID[:10] + str((int(VALID[10]) + 1) % 10)
    assert not valid_check_digits(typo)
    assert redact(f"fnr {typo}").text == f"fnr {IDENTITY_MARKER}"


@pytest.mark.parametrize("case_number", ["99999912345", "32012612345", "00002612345", "30022612345", "12345678901"])
def test_eleven_digits_that_cannot_be_a_date_are_left_alone(case_number: str) -> None:
    assert not plausible_birth_date(case_number[:6])
    assert redact(f"saksnr {case_number}").text == f"saksnr {case_number}"


def test_longer_digit_runs_are_not_identity_numbers() -> None:
    assert redact(f"konto 1{VALID}").text == f"konto 1{VALID}"


def test_leap_days() -> None:
    assert plausible_birth_date("290204") and not plausible_birth_date("290205")
    assert plausible_birth_date("290200")


@pytest.mark.parametrize("phone", ["912 34 567", "91 23 45 67", "91234567", "+47 91234567", "0047 55 55 55 55",
                                   "+4791234567"])
def test_phone_numbers(phone: str) -> None:
    result = redact(f"Mor ringte fra {phone}, ba om svar.")
    assert result.text == f"Mor ringte fra {PHONE_MARKER}, ba om svar."
    assert result.phone_numbers == 1


@pytest.mark.parametrize("kept", ["2026-03-01", "01.03.2026", "kl 12:30", "org.nr 987 654 321", "sak 2026-123456",
                                  "1234 5678", "uke 12"])
def test_dates_and_other_numbers_are_kept(kept: str) -> None:
    assert redact(kept).text == kept


@pytest.mark.parametrize("email", ["mor.hansen@gmail.com", "ola+bv@bergen.kommune.no", "x_y@sub.domene.org"])
def test_email_addresses(email: str) -> None:
    result = redact(f"Sendt til {email}.")
    assert result.text == f"Sendt til {EMAIL_MARKER}."
    assert result.emails == 1


@given(st.text(alphabet=st.sampled_from("0123456789 -+.@abcøæå\n()47"), max_size=80))
def test_redaction_is_idempotent(text_in: str) -> None:
    once = redact(text_in).text
    assert redact(once).text == once
    assert redact(once).identity_numbers == redact(once).phone_numbers == redact(once).emails == 0


def test_ingest_stores_only_redacted_text_and_counts(client: TestClient, session: Session) -> None:
    body = report(title=f"Barn {VALID}", description=f"Ring far 912 34 567 eller far@example.no. Fnr {VALID}.")
    stored = delivered(client, body)
    assert stored["title"] == f"Barn {IDENTITY_MARKER}"
    assert stored["description"] == f"Ring far {PHONE_MARKER} eller {EMAIL_MARKER}. Fnr {IDENTITY_MARKER}."
    assert stored["redactions"] == {"identity_numbers": 2, "phone_numbers": 1, "emails": 1}
    row = session.scalars(select(Report).where(Report.id == stored["id"])).one()
    assert VALID not in row.title + row.description
    dump = " ".join(str(v) for v in session.execute(text("SELECT * FROM report")).all())
    assert VALID not in dump and "912 34 567" not in dump
    # Redaction is idempotent, so the same delivery again is unchanged, not a conflict.
    assert client.post("/api/v1/reports", json=body).json()["outcome"] == "unchanged"


# Separators seen between the sixth and seventh digit, normalised before matching: spaces of every kind,
# dashes of every kind, dots, slashes, two spaces and invisible characters.
AFTER_SIXTH = ["", " ", "-", ".", "/", "  ", "\u00a0", "\u202f", "\u2009", "\u2013", "\u2011", "\u2212", "\u200b",
               "\ufeff", " - ", "\u00a0\u00a0"]
DATE_GROUPING = ["", " ", ".", "-", "/", "\u00a0"]
BEFORE = ["", "fnr ", "f.nr.: ", "(", "«", "Gutten ", "\n", "nr:", "fnr\u00a0"]
AFTER = ["", ")", ".", ",", " kom ikke", "»", "\n", ";", "-"]


@st.composite
def identity_numbers(draw: st.DrawFn) -> str:
    """An identity number as people write it: a real date, plain or as a D-, H- or synthetic number."""
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)))
    day, month = born.day, born.month
    kind = draw(st.sampled_from(["fødselsnummer", "d", "h", "synthetic"]))
    if kind == "d":
        day += 40
    elif kind == "h":
        month += 40
    elif kind == "synthetic":
        month += 80
    individual = draw(st.integers(0, 99_999))
    grouping = draw(st.sampled_from(DATE_GROUPING))
    return f"{day:02d}{grouping}{month:02d}{grouping}{born.year % 100:02d}" \
           f"{draw(st.sampled_from(AFTER_SIXTH))}{individual:05d}"


@settings(max_examples=1500, deadline=None)
@given(identity_numbers(), st.sampled_from(BEFORE), st.sampled_from(AFTER))
def test_every_identity_number_with_every_separator_and_context_is_removed(number: str, before: str,
                                                                           after: str) -> None:
    result = redact(f"{before}{number}{after}")
    assert result.text == f"{before}{IDENTITY_MARKER}{after}"
    assert result.identity_numbers == 1


@pytest.mark.parametrize(("written", "expected"), [
    ("per@helse.no- hun ringte", f"{EMAIL_MARKER}- hun ringte"), ("per@helse.no2 ganger", f"{EMAIL_MARKER}2 ganger"),
    ("ola(at)bergen.kommune.no", EMAIL_MARKER), ("ola [at] bergen.kommune.no.", f"{EMAIL_MARKER}."),
    ("+47-41234577", PHONE_MARKER), ("412-34-578", PHONE_MARKER), ("41.23.45.79", PHONE_MARKER),
    ("25 08 09 55874", IDENTITY_MARKER), ("08.08.23 13495", IDENTITY_MARKER),
    *((f"{VALID[:6]}{separator}{VALID[6:]}", IDENTITY_MARKER)
      for separator in ("\u00a0", "\u202f", "\u2013", ".", "/", "  ", "\u200b")),
])
def test_the_forms_an_outside_probe_found_unredacted(written: str, expected: str) -> None:
    assert redact(f"Melding: {written}").text == f"Melding: {expected}"


@pytest.mark.parametrize("kept", [
    # What the README promises to keep: dates, case numbers, times, and eleven digits that cannot be a date.
    "2026-03-01", "03.12.2025", "01.03.2026", "1.3.2026", "BK-2026-01234", "sak 2026-123456", "BK-2026-0123456",
    "kl 12:30", "kl. 10.30", "uke 12", "org.nr 987 654 321", "1234 5678", "99999912345", "32012612345",
    "Etat for skole – Garnes skole", "møte 03.12.2025 kl 09:15", "fra 2026-03-01 til 2026-03-15",
    "referanse 2026/01234", "tlf\u00a0ukjent – ring\u2009senere", "saksnr BK-2026-01234, 2026-03-01",
])
def test_what_the_readme_promises_to_keep_is_kept_as_written(kept: str) -> None:
    assert redact(kept) == Redacted(kept)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from([*"0123456789 -+.@/abcøæå\n()47", "(at)", "\u00a0", "\u2013", "\u200b"]),
                max_size=60).map("".join))
def test_redaction_with_unicode_separators_is_idempotent(text_in: str) -> None:
    once = redact(text_in).text
    assert redact(once) == Redacted(once)


def test_every_text_field_of_a_delivery_and_a_review_is_redacted(client: TestClient, session: Session) -> None:
    number = f"{VALID[:6]}\u00a0{VALID[6:]}"
    body = report(title=f"Barn {number}", description=f"fnr {VALID[:6]}.{VALID[6:]}",
                  reported_category=f"Annet {VALID}", severity=f"alvorlig {VALID}",
                  reporting_unit={"agency": f"Etat {VALID}", "department": f"Avd {VALID}",
                                  "unit": f"Garnes skole {VALID}", "unit_code": VALID})
    stored = delivered(client, body)
    assert stored["redactions"]["identity_numbers"] == 8
    text_unit = delivered(client, report(reporting_unit=f"Etat for skole – Garnes skole {number}"))
    assert text_unit["reporting_unit"]["as_sent"] == f"Etat for skole – Garnes skole {IDENTITY_MARKER}"
    assert text_unit["reporting_unit"]["unit"] == f"Garnes skole {IDENTITY_MARKER}"
    review = client.post(f"/api/v1/reports/{stored['id']}/review",
                         json={"decision": "confirm", "comment": f"ring 412-34-578, fnr {number}"})
    assert review.status_code == 201 and review.json()["comment"] == f"ring {PHONE_MARKER}, fnr {IDENTITY_MARKER}"
    client.get("/api/v1/reports", params={"unit": f"Garnes skole {VALID}"})
    for table in ("report", "review", "audit_event"):
        dump = " ".join(str(v) for v in session.execute(text(f"SELECT * FROM {table}")).all())
        assert VALID not in dump and VALID[6:] not in dump, table
    # The same delivery again is unchanged: redaction is deterministic, so idempotency holds.
    assert client.post("/api/v1/reports", json=body).json()["outcome"] == "unchanged"


TEXT_FIELDS = ["title", "description", "reported_category", "severity", "reporting_unit", "reporting_unit.unit",
               "reporting_unit.agency", "reporting_unit.department", "reporting_unit.unit_code"]


@settings(max_examples=400, deadline=None)
@given(identity_numbers(), st.sampled_from(BEFORE), st.sampled_from(AFTER), st.sampled_from(TEXT_FIELDS))
def test_an_identity_number_in_any_text_field_is_removed_before_storage(number: str, before: str, after: str,
                                                                        field: str) -> None:
    sent = f"{before}{number}{after}"
    if field.startswith("reporting_unit."):
        body = report(reporting_unit={"unit": "Garnes skole", field.split(".")[1]: sent})
    else:
        body = report(**{field: sent})
    clean, found = redacted_item(ReportIn.model_validate(body))
    assert found.identity_numbers == 1
    stored = clean.model_dump_json()
    assert number not in stored and IDENTITY_MARKER in stored
