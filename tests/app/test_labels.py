"""Effective labels: adviser > reporter > classifier (pure rules, no database)."""

from __future__ import annotations

from app.report.provenance import Provenance
from app.review.labels import Suggestion, Verdict, effective_labels
from app.review.models import Decision

ADV, REP, CLS = Provenance.ADVISER, Provenance.REPORTER, Provenance.CLASSIFIER


def codes(groups: set[str] | None = None, services: set[str] | None = None) -> dict[str, frozenset[str]]:
    return {"target_group": frozenset(groups or ()), "service": frozenset(services or ())}


FLAG = Suggestion(flagged=True, target_groups=("barn_6_12",), services=("skole", "barnevern"))


def test_reporter_only() -> None:
    result = effective_labels("informasjonsplikt", codes({"barn_1_5"}, {"barnehage"}), None, None)
    assert (result.confirmed_category, result.confirmed_provenance) == ("informasjonsplikt", REP)
    assert (result.suggested_category, result.suggested_provenance) == ("informasjonsplikt", REP)
    assert result.labels == {("target_group", "barn_1_5"): REP, ("service", "barnehage"): REP}


def test_a_flag_is_a_suggestion_that_never_hides_the_reporter() -> None:
    result = effective_labels("pasient_brukerskade", codes(set(), {"barnehage"}), FLAG, None)
    assert (result.confirmed_category, result.confirmed_provenance) == ("pasient_brukerskade", REP)
    assert (result.suggested_category, result.suggested_provenance) == ("samhandling_barn_unge", CLS)
    # The classifier fills in what the reporter left empty, and only that.
    assert result.labels == {("target_group", "barn_6_12"): CLS, ("service", "barnehage"): REP}


def test_reporter_who_chose_the_category_is_not_overridden() -> None:
    result = effective_labels("samhandling_barn_unge", codes(), FLAG, None)
    assert (result.suggested_category, result.suggested_provenance) == ("samhandling_barn_unge", REP)


def test_adviser_confirmation_accepts_the_suggestion_where_nobody_said_otherwise() -> None:
    result = effective_labels("annet", codes(set(), {"barnehage"}), FLAG, Verdict(Decision.CONFIRM))
    assert (result.confirmed_category, result.confirmed_provenance) == ("samhandling_barn_unge", ADV)
    assert result.labels == {("target_group", "barn_6_12"): ADV, ("service", "barnehage"): ADV}


def test_adviser_rejection_keeps_only_the_reporters_word() -> None:
    result = effective_labels("annet", codes(set(), {"barnehage"}), FLAG, Verdict(Decision.REJECT))
    assert (result.confirmed_category, result.suggested_category) == ("annet", "annet")
    assert result.labels == {("service", "barnehage"): ADV}
    rejected_own = effective_labels("samhandling_barn_unge", codes(), None, Verdict(Decision.REJECT))
    assert rejected_own.confirmed_category == "kommunikasjon_og_samhandling"


def test_adviser_correction_wins_over_everyone() -> None:
    verdict = Verdict(Decision.CORRECT, "informasjonsplikt", ("ungdom_13_17",), None)
    result = effective_labels("annet", codes({"voksne"}, {"nav"}), FLAG, verdict)
    assert (result.confirmed_category, result.suggested_category) == ("informasjonsplikt", "informasjonsplikt")
    assert result.labels == {("target_group", "ungdom_13_17"): ADV, ("service", "nav"): ADV}


def test_a_correction_without_a_category_is_a_case_and_with_another_category_is_not() -> None:
    case = effective_labels("annet", codes(), FLAG, Verdict(Decision.CORRECT, None, ("ungdom_13_17",)))
    assert case.confirmed_category == "samhandling_barn_unge"
    assert case.labels == {("target_group", "ungdom_13_17"): ADV, ("service", "skole"): ADV,
                           ("service", "barnevern"): ADV}
    other = effective_labels("annet", codes(), FLAG, Verdict(Decision.CORRECT, "informasjonsplikt"))
    assert other.confirmed_category == "informasjonsplikt"
    assert other.labels == {}  # not a case: the suggestion is not adopted


def test_a_case_made_of_a_report_neither_flagged_nor_drawn_keeps_only_what_people_said() -> None:
    unasked = Verdict(Decision.IS_CASE, answers_suggestion=False)
    result = effective_labels("pasient_brukerskade", codes(set(), {"barnehage"}), FLAG, unasked)
    assert result.confirmed_category == "samhandling_barn_unge"
    assert result.labels == {("service", "barnehage"): ADV}
