"""Which service a reporting unit is, and which agency runs a service: the sides of a collaboration (pure)."""

from __future__ import annotations

from itertools import combinations

# Agencies that are one service; the rest are several (barn_og_familie) or none (external actors).
AGENCY_SERVICE = {
    "skole": "skole", "barnehage": "barnehage", "sosiale_tjenester": "nav",
    "psykisk_helse_rus": "psykisk_helse_rus", "spesialpedagogiske_tjenester": "ppt",
    "utviklingshemmede": "utviklingshemmede", "hjemmebaserte_tjenester": "hjemmetjenester",
    "alders_og_sykehjem": "sykehjem", "inkludering": "introduksjonsprogram", "idrett": "fritid_kultur_idrett",
    "bibliotek_og_kultur": "fritid_kultur_idrett",
}
# Words in a unit's name that tell its service inside a mixed agency.
UNIT_WORDS = {
    "helsestasjon": "helsestasjon", "skolehelse": "skolehelsetjeneste", "barnevern": "barnevern",
    "familievern": "familievern", "legevakt": "legevakt", "sfo": "sfo", "aks": "sfo", "nav": "nav",
    "krisesenter": "krisesenter", "ppt": "ppt",
}
SERVICE_AGENCY = {
    "skole": "skole", "sfo": "skole", "barnehage": "barnehage", "helsestasjon": "barn_og_familie",
    "skolehelsetjeneste": "barn_og_familie", "barnevern": "barn_og_familie", "ppt": "spesialpedagogiske_tjenester",
    "nav": "sosiale_tjenester", "psykisk_helse_rus": "psykisk_helse_rus", "koordinerende_enhet": "helsetjenester",
    "legevakt": "helsetjenester", "utviklingshemmede": "utviklingshemmede", "hjemmetjenester":
    "hjemmebaserte_tjenester", "sykehjem": "alders_og_sykehjem", "introduksjonsprogram": "inkludering",
    "fritid_kultur_idrett": "bibliotek_og_kultur",
}


def reporting_service(agency: str | None, unit: str | None, services: set[str]) -> str | None:
    """The reporter's own service, when the unit tells it and the report names it."""
    own = AGENCY_SERVICE.get(agency or "")
    if own is None and unit:
        name = unit.casefold()
        own = next((service for word, service in UNIT_WORDS.items() if word in name), None)
    return own if own in services else None


def pairs(services: set[str], own: str | None) -> set[tuple[str, str, bool]]:
    """The collaboration pairs of one report as (a, b, directed): the reporter's own service → each other
    one (directed), or every unordered pair, sorted. An IT system is the channel that failed, not a
    party, so it makes no pair."""
    services = services - {"it_system"}
    if own is not None:
        return {(own, other, True) for other in services if other != own}
    return {(a, b, False) for a, b in combinations(sorted(services), 2)}


def agency_pair(pair: tuple[str, str, bool]) -> tuple[str, str, bool]:
    """The same pair one level up: the agencies that run the two services."""
    a, b, directed = pair
    first, second = agency_of(a), agency_of(b)
    if directed:
        return first, second, True
    low, high = sorted((first, second))
    return low, high, False


def agency_of(service: str) -> str:
    """The municipal agency that runs a service, or 'external' (hospital, GP, police, BUP, …)."""
    return SERVICE_AGENCY.get(service, "external")
