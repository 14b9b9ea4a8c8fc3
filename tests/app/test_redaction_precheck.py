"""Redaction skips its patterns only where they cannot match: the result is that of applying all three."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from app.privacy import redaction
from app.privacy.redaction import EMAIL_MARKER, IDENTITY_MARKER, PHONE_MARKER, Redacted, plausible_birth_date, redact

# Digits (ASCII and others that \d matches), the separators the patterns know, e-mail characters.
ALPHABET = st.sampled_from([*"0123456789", *" -+@._", *"abcæø\n", "١", "٢", "٣", "𝟘", "+47 ", "@x.no"])


def every_pattern(text: str) -> Redacted:
    """redact() without the shortcut: identity numbers, then e-mail addresses, then phone numbers."""
    identity = 0

    def identity_number(match: re.Match[str]) -> str:
        nonlocal identity
        if not plausible_birth_date(match.group(1)):
            return match.group(0)
        identity += 1
        return IDENTITY_MARKER

    text = redaction._IDENTITY.sub(identity_number, text)
    text, emails = redaction._EMAIL.subn(EMAIL_MARKER, text)
    text, phones = redaction._PHONE.subn(PHONE_MARKER, text)
    return Redacted(text=text, identity_numbers=identity, phone_numbers=phones, emails=emails)


@settings(max_examples=5000, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_the_shortcut_never_changes_the_result(text: str) -> None:
    assert redact(text) == every_pattern(text)
