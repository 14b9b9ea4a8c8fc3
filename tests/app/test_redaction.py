"""Identity numbers, phone numbers and e-mail addresses never reach storage."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.privacy.redaction import (
    EMAIL_MARKER,
    IDENTITY_MARKER,
    PHONE_MARKER,
    plausible_birth_date,
    redact,
    valid_check_digits,
)
from app.report.models import Report
from tests.helpers import report


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
    stored = client.post("/api/v1/reports", json=body).json()
    assert stored["title"] == f"Barn {IDENTITY_MARKER}"
    assert stored["description"] == f"Ring far {PHONE_MARKER} eller {EMAIL_MARKER}. Fnr {IDENTITY_MARKER}."
    assert stored["redactions"] == {"identity_numbers": 2, "phone_numbers": 1, "emails": 1}
    row = session.scalars(select(Report).where(Report.id == stored["id"])).one()
    assert VALID not in row.title + row.description
    dump = " ".join(str(v) for v in session.execute(text("SELECT * FROM report")).all())
    assert VALID not in dump and "912 34 567" not in dump
    # Redaction is idempotent, so the same delivery again is unchanged, not a conflict.
    assert client.post("/api/v1/reports", json=body).json()["outcome"] == "unchanged"
