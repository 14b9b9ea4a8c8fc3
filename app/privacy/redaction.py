"""Remove Norwegian identity numbers, phone numbers and e-mail addresses from free text (pure, idempotent).

Identity numbers (fødselsnummer, D-number, H-number, synthetic test numbers): eleven digits, optionally
with a space or hyphen after the sixth, whose first six digits are a plausible date DDMMYY, with 40 added
to the day (D-number), 40 to the month (H-number) or 80 to the month (synthetic numbers of the national
test population). The two mod-11 check digits are **not** required: a mistyped identity number still
identifies a child, so every plausible one is removed; eleven digits that cannot be a date (a case
number, an account number) are left alone. The count of removed numbers tells valid from mistyped ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IDENTITY_MARKER = "[fødselsnummer]"
PHONE_MARKER = "[telefonnummer]"
EMAIL_MARKER = "[e-post]"

_IDENTITY = re.compile(r"(?<![\d])(\d{6})[ -]?(\d{5})(?![\d])")
# Norwegian numbers: eight digits starting 2-9, grouped 3-2-3, 2-2-2-2 or not at all, optionally after
# +47 or 0047. Groups are separated by spaces only: hyphens would take dates such as 2026-03-01.
_PHONE = re.compile(
    r"(?<![\d+-])(?:(?:\+|00)47 ?)?"
    r"(?:[2-9]\d{2} ?\d{2} ?\d{3}|[2-9]\d ?\d{2} ?\d{2} ?\d{2})"
    r"(?![\d-])"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")
# What every identity or phone number contains: six digits, at most one space between two of them. The
# patterns above begin with a look-behind, so the regex engine tries them at every position of the text;
# this one begins with a digit and is found (or not) by a fast scan. Most texts have no such run, and
# then neither pattern can match: skipping them changes nothing but the time taken.
_DIGIT_RUN = re.compile(r"\d(?: ?\d){5}")

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class Redacted:
    """Text with personal identifiers replaced by markers, and how many of each were removed."""

    text: str
    identity_numbers: int = 0
    phone_numbers: int = 0
    emails: int = 0


def plausible_birth_date(six: str) -> bool:
    """Whether DDMMYY (with D-, H- or synthetic-number offsets) can be a date."""
    day, month, year = int(six[:2]), int(six[2:4]), int(six[4:])
    if day > 40:
        day -= 40  # D-number
    if month > 80:
        month -= 80  # synthetic test population
    elif month > 40:
        month -= 40  # H-number
    if not (1 <= month <= 12 and day >= 1):
        return False
    if month == 2 and day == 29:
        return year % 4 == 0  # 00 may be 2000, a leap year
    return day <= _DAYS_IN_MONTH[month - 1]


def valid_check_digits(eleven: str) -> bool:
    """Whether both mod-11 control digits of an identity number are right."""
    digits = [int(c) for c in eleven]
    first = (3, 7, 6, 1, 8, 9, 4, 5, 2)
    second = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
    k1 = 11 - sum(w * d for w, d in zip(first, digits[:9], strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    k2 = 11 - sum(w * d for w, d in zip(second, digits[:10], strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    return k1 != 10 and k2 != 10 and (k1, k2) == (digits[9], digits[10])


def redact(text: str) -> Redacted:
    """Replace identity numbers, then e-mail addresses, then phone numbers; running it again changes nothing."""
    identity = 0

    def identity_number(match: re.Match[str]) -> str:
        nonlocal identity
        if not plausible_birth_date(match.group(1)):
            return match.group(0)
        identity += 1
        return IDENTITY_MARKER

    emails = phones = 0
    digits = _DIGIT_RUN.search(text) is not None
    if digits:
        text = _IDENTITY.sub(identity_number, text)
    if "@" in text:
        text, emails = _EMAIL.subn(EMAIL_MARKER, text)
    # Markers hold no digits, so replacing text with them never makes a run that was not there before.
    if digits and _DIGIT_RUN.search(text):
        text, phones = _PHONE.subn(PHONE_MARKER, text)
    return Redacted(text=text, identity_numbers=identity, phone_numbers=phones, emails=emails)
