"""Remove Norwegian identity numbers, phone numbers and e-mail addresses from free text (pure, idempotent).

Identity numbers (fødselsnummer, D-number, H-number, synthetic test numbers): eleven digits whose first six
are a plausible date DDMMYY, with 40 added to the day (D-number), 40 to the month (H-number) or 80 to the
month (synthetic numbers of the national test population). After the sixth digit may come up to three
separators (space, hyphen, dot or slash), and the date may be grouped with one repeated separator
(`25 08 09 55874`, `08.08.23 13495`). The two mod-11 check digits are **not** required: a mistyped identity
number still identifies a child, so every plausible one is removed; eleven digits that cannot be a date (a
case number, an account number) are left alone. The count of removed numbers tells valid from mistyped ones.

Text is matched after normalisation: every Unicode space (NBSP, narrow NBSP, …) reads as a space, every
dash (en dash, minus sign, …) as a hyphen, and zero-width characters as nothing, so that a number typed
with them is still found. Only what is removed changes: the rest of the text is kept as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

IDENTITY_MARKER = "[fødselsnummer]"
PHONE_MARKER = "[telefonnummer]"
EMAIL_MARKER = "[e-post]"

_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
# Zero-width characters and the soft hyphen: invisible, so a number typed with them looks whole.
_INVISIBLE = "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff"
_TO_PLAIN = str.maketrans({**dict.fromkeys(_SPACES, " "), **dict.fromkeys(_DASHES, "-")})
_UNUSUAL = re.compile(f"[{_SPACES}{_DASHES}{_INVISIBLE}]")
_INVISIBLE_CHAR = re.compile(f"[{_INVISIBLE}]")

_SEPARATOR = r"[ ./-]"
# DD MM YY, the date optionally grouped with one separator repeated, then up to three separators, then five.
_IDENTITY = re.compile(rf"(?<!\d)(\d\d)({_SEPARATOR}?)(\d\d)\2(\d\d){_SEPARATOR}{{0,3}}(\d{{5}})(?!\d)")
# Norwegian numbers: eight digits starting 2-9, grouped 3-2-3, 2-2-2-2 or not at all, optionally after
# +47 or 0047. Groups are separated by spaces, or by one dot or hyphen repeated throughout the number
# (`412-34-578`, `41.23.45.79`): a date such as 2026-03-01 never has that shape.
_PHONE = re.compile(
    r"(?<![\d+-])(?:(?:\+|00)47[ -]?)?"
    r"(?:[2-9]\d{2} ?\d{2} ?\d{3}|[2-9]\d ?\d{2} ?\d{2} ?\d{2}"
    r"|[2-9]\d{2}([.-])\d{2}\1\d{3}|[2-9]\d([.-])\d{2}\2\d{2}\2\d{2})"
    r"(?![\d-])"
)
# "@", also written "(at)", "[at]", "{at}" or with spaces around it. The domain's last label is letters;
# whatever follows it that is not a letter (a hyphen, a digit, a dot) ends the address.
_AT = r"(?:\s?@\s?|\s?[(\[{]\s?(?:at|AT|At)\s?[)\]}]\s?)"
_EMAIL = re.compile(rf"(?<![\w.+-])[\w.+-]+{_AT}[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{{2,}}(?![^\W\d_])")
_AT_WORD = re.compile(r"[(\[{]\s?at\s?[)\]}]", re.IGNORECASE)
# What every identity or phone number contains: six digits, at most three separators between two of them.
# The patterns above begin with a look-behind, so the regex engine tries them at every position of the
# text; this one begins with a digit and is found (or not) by a fast scan. Most texts have no such run,
# and then neither pattern can match: skipping them changes nothing but the time taken.
_DIGIT_RUN = re.compile(rf"\d(?:{_SEPARATOR}{{0,3}}\d){{5}}")

_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class Redacted:
    """Text with personal identifiers replaced by markers, and how many of each were removed."""

    text: str
    identity_numbers: int = 0
    phone_numbers: int = 0
    emails: int = 0

    def __add__(self, other: Redacted) -> Redacted:
        """The counts of two redactions together (the text of the first)."""
        return Redacted(self.text, self.identity_numbers + other.identity_numbers,
                        self.phone_numbers + other.phone_numbers, self.emails + other.emails)


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


def _identity_number(match: re.Match[str]) -> bool:
    return plausible_birth_date(match.group(1) + match.group(3) + match.group(4))


def _replace(text: str, pattern: re.Pattern[str], marker: str,
             wanted: Callable[[re.Match[str]], bool] | None = None, unusual: bool = True) -> tuple[str, int]:
    """Replace what `pattern` finds in the normalised text, keeping every other character as written.

    `unusual=False` says the text holds no character that normalisation changes (a shortcut)."""
    plain = text.translate(_TO_PLAIN) if unusual else text
    positions: list[int] | None = None
    if unusual and _INVISIBLE_CHAR.search(plain):
        positions = [i for i, c in enumerate(plain) if c not in _INVISIBLE]
        plain = "".join(plain[i] for i in positions)
    pieces: list[str] = []
    done = count = 0
    for match in pattern.finditer(plain):
        if wanted is not None and not wanted(match):
            continue
        start, end = match.span()
        if positions is not None:
            start, end = positions[start], positions[end - 1] + 1
        pieces += [text[done:start], marker]
        done = end
        count += 1
    if not count:
        return text, 0
    pieces.append(text[done:])
    return "".join(pieces), count


def redact(text: str) -> Redacted:
    """Replace identity numbers, then e-mail addresses, then phone numbers; running it again changes nothing."""
    unusual = _UNUSUAL.search(text) is not None
    scan = text.translate(_TO_PLAIN) if unusual else text
    if unusual and _INVISIBLE_CHAR.search(scan):
        scan = _INVISIBLE_CHAR.sub("", scan)
    digits = _DIGIT_RUN.search(scan) is not None
    identity = emails = phones = 0
    if digits:
        text, identity = _replace(text, _IDENTITY, IDENTITY_MARKER, _identity_number, unusual)
    if "@" in scan or _AT_WORD.search(scan):
        text, emails = _replace(text, _EMAIL, EMAIL_MARKER, unusual=unusual)
    # Markers hold no digits, so replacing text with them never makes a run that was not there before.
    if digits:
        text, phones = _replace(text, _PHONE, PHONE_MARKER, unusual=unusual)
    return Redacted(text=text, identity_numbers=identity, phone_numbers=phones, emails=emails)


def redact_every_pattern(text: str) -> Redacted:
    """redact() without its shortcuts (for tests that show the shortcuts change nothing)."""
    text, identity = _replace(text, _IDENTITY, IDENTITY_MARKER, _identity_number)
    text, emails = _replace(text, _EMAIL, EMAIL_MARKER)
    text, phones = _replace(text, _PHONE, PHONE_MARKER)
    return Redacted(text=text, identity_numbers=identity, phone_numbers=phones, emails=emails)


def redact_optional(text: str | None) -> Redacted:
    """redact() of a field that may be absent (an absent field is empty text)."""
    return redact(text) if text else Redacted(text or "")
