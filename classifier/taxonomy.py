"""The codes the classifier predicts (see domain.md); a copy kept here so the package stands alone."""

from __future__ import annotations

CHILD_AND_YOUTH_GROUPS: frozenset[str] = frozenset({
    "gravide_og_spedbarn", "barn_1_5", "barn_6_12", "ungdom_13_17",
    "unge_voksne_18_25", "foreldre_og_familie", "barn_som_parorende",
})
TARGET_GROUPS: tuple[str, ...] = (
    "gravide_og_spedbarn", "barn_1_5", "barn_6_12", "ungdom_13_17", "unge_voksne_18_25",
    "foreldre_og_familie", "barn_som_parorende", "voksne", "eldre",
)
SERVICES: tuple[str, ...] = (
    "barnehage", "skole", "sfo", "helsestasjon", "skolehelsetjeneste", "barnevern", "ppt", "bup",
    "fastlege", "sykehus", "nav", "psykisk_helse_rus", "tannhelse", "koordinerende_enhet",
    "familievern", "krisesenter", "politi", "fritid_kultur_idrett", "utviklingshemmede",
    "hjemmetjenester", "sykehjem", "legevakt", "introduksjonsprogram", "tolketjeneste",
    "it_system", "annet",
)

# The subcategories of "Kommunikasjon og samhandling" in BkKvalitet, plus the broad category and ours.
COMMUNICATION_CATEGORIES: frozenset[str] = frozenset({
    "kommunikasjon og samhandling", "samhandling barn og unge", "brudd på tjenesteavtale",
    "informasjonsplikt", "interne avtaler og kontrakter", "eksterne avtaler og kontrakter",
    "elektronisk samhandling (internt)", "elektronisk samhandling (med eksterne)",
    "leverandøroppfølging", "mangler ved kommunikasjon/informasjon", "språkutfordring",
    "relasjon/samarbeid", "feil/mangelfull leveranse",
})
# "Annet" exists under many broad categories, so alone it says nothing about communication.


def is_communication_category(category: str | None) -> bool:
    """True when the reporter filed the report under "Kommunikasjon og samhandling" or one of its parts."""
    return category is not None and " ".join(category.lower().split()) in COMMUNICATION_CATEGORIES
