"""Redaction skips its patterns only where they cannot match: the result is that of applying all three."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.privacy.redaction import redact, redact_every_pattern

# Digits (ASCII and others that \d matches), the separators the patterns know, e-mail characters, and the
# Unicode spaces, dashes and invisible characters that are normalised before matching.
ALPHABET = st.sampled_from([*"0123456789", *" -+@._/", *"abcæø\n", "١", "٢", "٣", "𝟘", "+47 ", "@x.no", "(at)",
                            "\u00a0", "\u202f", "\u2013", "\u200b"])


@settings(max_examples=5000, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_the_shortcut_never_changes_the_result(text: str) -> None:
    assert redact(text) == redact_every_pattern(text)
