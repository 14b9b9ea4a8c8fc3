"""Similarity without scikit-learn gives scikit-learn's answers, and the server does not import it."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.report import service as report_service
from app.report.models import Report
from app.report.queries import filter_clauses, label_provenances
from app.report.schemas import ReportFilter
from app.stats import service, similarity
from app.stats.queries import Days
from app.stats.similarity import Doc
from app.taxonomy.service import load_taxonomy
from tests.helpers import report

OSLO = ZoneInfo("Europe/Oslo")
CATEGORIES = ["Samhandling barn og unge", "IKT", "Kommunikasjon og samhandling"]

SENTENCES = ("helsestasjonen skolen barnevernet fikk ikke beskjed om ny elev melding kom for seint "
         "samtykke manglet tolk ble ikke bestilt familien møtte opp avtalen ble brutt journalen "
         "var utilgjengelig systemet nede PPT-rapporten sendt feil adresse Oppfølging uteble "
         "ansvarsgruppemøte avlyst uten varsel Føresette fekk ikkje informasjon frå skulen")
WORDS = SENTENCES.split()
SERVICES = ("school", "health_station", "child_welfare", "ppt", "it_system", "nav")


def seeded_docs(seed: int, n: int) -> list[Doc]:
    """Reports from a few templates with noise, so that there are clusters to find, and some odd texts."""
    rng = random.Random(seed)
    templates = [rng.sample(WORDS, 8) for _ in range(6)]
    docs = []
    for i in range(n):
        base = list(rng.choice(templates))
        for _ in range(rng.randint(0, 4)):
            base[rng.randrange(len(base))] = rng.choice(WORDS)
        text = " ".join(base) if i % 17 else rng.choice(["", "ok", "  Å  ", "a\tb\n  cd"])
        services = frozenset(rng.sample(SERVICES[:3], 2) + (["it_system"] if i % 5 == 0 else []))
        docs.append(Doc(id=1000 + i, text=text.capitalize(), services=services, unit=f"unit-{i % 4}"))
    return docs


def sklearn_tfidf(texts: Sequence[str]) -> np.ndarray:
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=1, sublinear_tf=True, lowercase=True)
    matrix = vectorizer.fit_transform(texts)
    return (matrix @ matrix.T).toarray()


def sklearn_most_similar(target: Doc, candidates: Sequence[Doc], limit: int) -> list[tuple[int, float]]:
    """The implementation this module replaced."""
    others = [c for c in candidates if c.id != target.id]
    if not others:
        return []
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=1, sublinear_tf=True, lowercase=True)
    matrix = vectorizer.fit_transform([target.text] + [c.text for c in others])
    text = (matrix[1:] @ matrix[0].T).toarray().ravel()
    scores = [(1 - similarity.SERVICE_WEIGHT) * t + similarity.SERVICE_WEIGHT
              * similarity._service_overlap(target.services, c.services) for t, c in zip(text, others, strict=True)]
    ranked = sorted(zip((c.id for c in others), scores, strict=True), key=lambda x: (-x[1], x[0]))
    return [(i, round(float(s), 4)) for i, s in ranked[:limit]]


def sklearn_labels(texts: Sequence[str], max_distance: float) -> np.ndarray:
    if len(texts) < 2:
        return np.zeros(len(texts), dtype=int)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=1, sublinear_tf=True, lowercase=True)
    matrix = vectorizer.fit_transform(texts)
    distances = 1.0 - (matrix @ matrix.T).toarray()
    np.clip(distances, 0.0, 2.0, out=distances)
    np.fill_diagonal(distances, 0.0)
    return AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                   distance_threshold=max_distance).fit_predict(distances)


def partition(ids: Sequence[int], labels: np.ndarray) -> set[frozenset[int]]:
    found: dict[int, set[int]] = {}
    for i, label in zip(ids, labels.tolist(), strict=True):
        found.setdefault(label, set()).add(i)
    return {frozenset(members) for members in found.values()}


def sklearn_recurring(docs: Sequence[Doc], min_size: int, max_distance: float = 0.75) -> list[similarity.Group]:
    by_services: dict[frozenset[str], list[Doc]] = {}
    for doc in docs:
        by_services.setdefault(doc.services - {"it_system"}, []).append(doc)
    words = {d.id: similarity._words(d) for d in docs}
    outside = Counter(w for d in docs for w in words[d.id])
    groups = []
    for services, members in by_services.items():
        if len(members) < min_size:
            continue
        labels = sklearn_labels([m.text for m in members], max_distance)
        for label in set(labels.tolist()):
            chosen = [m for m, lab in zip(members, labels, strict=True) if lab == label]
            if len(chosen) < min_size:
                continue
            units = [u for u, _ in Counter(m.unit for m in chosen if m.unit).most_common(5)]
            groups.append(similarity.Group(ids=sorted(m.id for m in chosen), services=sorted(services), units=units,
                                           terms=similarity._characteristic_words([words[m.id] for m in chosen],
                                                                                  outside, len(docs))))
    return sorted(groups, key=lambda g: (-len(g.ids), g.ids[0]))


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    similarity.clear_caches()


def test_ngrams_are_scikit_learns_char_wb() -> None:
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).build_analyzer()
    for text in ["", "ok", "a b", "  Å  x\tyz\n", "Helsestasjonen fikk ikke beskjed.", "Føresette fekk ikkje"]:
        assert similarity.grams(text) == analyzer(text)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tfidf_equals_scikit_learns(seed: int) -> None:
    docs = seeded_docs(seed, 120)
    ours = similarity.Counts.of([similarity.grams(d.text) for d in docs]).weighted()
    assert np.allclose((ours @ ours.T).toarray(), sklearn_tfidf([d.text for d in docs]), atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_most_similar_equals_scikit_learn_refitted_for_each_target(seed: int) -> None:
    docs = seeded_docs(seed, 150)
    rng = random.Random(seed)
    outsider = Doc(id=1, text="Tolk ble ikke bestilt til foreldresamtalen, ukjentord", services=frozenset({"school"}))
    targets = [*rng.sample(docs, 5), outsider, docs[0]]  # candidates (their own row left out) and one outside
    for target in targets:  # the second target onwards reuses the kept candidate matrix
        assert similarity.most_similar(target, docs, 20) == sklearn_most_similar(target, docs, 20)
    assert similarity.most_similar(docs[0], docs[:1], 5) == []


@pytest.mark.parametrize(("seed", "max_distance"), [(1, 0.75), (2, 0.75), (3, 0.5), (4, 0.9)])
def test_clusters_equal_agglomerative_clustering(seed: int, max_distance: float) -> None:
    docs = seeded_docs(seed, 200)
    matrix = similarity.Counts.of([similarity.grams(d.text) for d in docs]).weighted()
    ids = [d.id for d in docs]
    ours = partition(ids, similarity.clusters(matrix, max_distance))
    assert ours == partition(ids, sklearn_labels([d.text for d in docs], max_distance))
    assert 1 < len(ours) < len(docs)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recurring_groups_equal_the_scikit_learn_version(seed: int) -> None:
    docs = seeded_docs(seed, 300)
    expected = sklearn_recurring(docs, 3)
    assert expected
    assert similarity.recurring_groups(docs, 3) == expected
    assert similarity.recurring_groups(docs, 3) == expected  # from the cache


def test_a_changed_or_new_report_is_never_answered_from_the_cache() -> None:
    docs = seeded_docs(5, 200)
    similarity.recurring_groups(docs, 3)
    target = docs[3]
    similarity.most_similar(target, docs, 10)
    changed = [*docs[:10], Doc(id=docs[10].id, text=target.text, services=target.services, unit="x"), *docs[11:]]
    assert similarity.recurring_groups(changed, 3) == sklearn_recurring(changed, 3)
    assert similarity.most_similar(target, changed, 10) == sklearn_most_similar(target, changed, 10)
    assert similarity.most_similar(target, changed, 10)[0] == (docs[10].id, 1.0)
    added = [*docs, Doc(id=99999, text=target.text, services=target.services)]
    assert similarity.recurring_groups(added, 3) == sklearn_recurring(added, 3)
    assert similarity.most_similar(target, added, 10) == sklearn_most_similar(target, added, 10)


def test_caches_are_bounded() -> None:
    cache: similarity.Bounded[int, int] = similarity.Bounded(3)
    for key in range(10):
        assert cache.get(key, lambda k=key: k * 2) == key * 2
    assert len(cache) == 3
    calls = []
    assert cache.get(9, lambda: calls.append(1) or 5) == 18 and calls == []
    assert cache.get(0, lambda: 7) == 7  # forgotten, computed again


def test_fingerprints_change_with_any_content() -> None:
    docs = seeded_docs(9, 50)
    seen = {similarity.fingerprint(docs)}
    variants = [docs[:-1], [*docs, docs[0]], docs[::-1],
                [Doc(id=docs[0].id, text=docs[0].text + " ", services=docs[0].services, unit=docs[0].unit), *docs[1:]],
                [Doc(id=docs[0].id, text=docs[0].text, services=docs[0].services | {"nav"}, unit=docs[0].unit),
                 *docs[1:]],
                [Doc(id=docs[0].id, text=docs[0].text, services=docs[0].services, unit=None), *docs[1:]],
                [Doc(id=1, text="ab", services=frozenset(), unit="c")], [Doc(id=1, text="a", services=frozenset(),
                                                                              unit="bc")]]
    for variant in variants:
        seen.add(similarity.fingerprint(variant))
    assert len(seen) == len(variants) + 1
    assert similarity.fingerprint(list(docs)) == similarity.fingerprint(tuple(docs))


def test_the_server_does_not_import_scikit_learn() -> None:
    code = "import sys, app.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------
# On the database: the candidates the endpoints read, and answers that follow changed reports

def test_candidates_are_the_most_recent_reports_under_the_filter(client: TestClient, session: Session,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    start = datetime(2026, 2, 27, 21, 0, tzinfo=OSLO)
    items = [report(f"CAND-{i}", source_system="candidates", reported_category=rng.choice(CATEGORIES),
                    # several a day, some within an hour of midnight, where the UTC and Oslo dates differ
                    reported_at=(start + timedelta(minutes=rng.randint(0, 60 * 24 * 4))).isoformat(),
                    services_involved=rng.sample(["skole", "barnevern", "nav", "helsestasjon"], rng.randint(0, 2)))
             for i in range(60)]
    assert client.post("/api/v1/reports/batch", json={"reports": items}).status_code == 200
    local = ZoneInfo("Europe/Oslo")
    for limit in (1, 7, 20, 100):
        monkeypatch.setattr(service, "MAX_CANDIDATES", limit)
        for chosen in (ReportFilter(), ReportFilter(category="samhandling_barn_unge"),
                       ReportFilter(reported_from=date(2026, 2, 28), reported_to=date(2026, 3, 1))):
            resolved = report_service.resolve_filter(load_taxonomy(session), chosen, local, None)
            docs = service._docs(session, resolved, Days(chosen.reported_from, chosen.reported_to))
            expected = session.scalars(select(Report).where(*filter_clauses(resolved))
                                       .order_by(Report.reported_at.desc(), Report.id.desc()).limit(limit)).all()
            assert [d.id for d in docs] == [r.id for r in expected]
            assert [d.services for d in docs] == [
                frozenset(lab.code for lab in r.labels if lab.dimension == "service"
                          and lab.provenance in label_provenances(resolved)) for r in expected]
            assert [d.text for d in docs] == [f"{r.title}. {r.description}" for r in expected]


def test_answers_follow_a_changed_report(client: TestClient) -> None:
    texts = ["Barnevernet svarte ikke på bekymringsmeldingen fra barnehagen",
             "Ingen tilbakemelding fra barnevernet på bekymringsmelding fra barnehagen",
             "Barnehagen fikk ikke svar fra barnevernet om bekymringsmeldingen",
             "Bekymringsmelding fra barnehagen ble ikke besvart av barnevernet"]
    items = [report(f"CHG-{i}", source_system="changes", title=f"Melding {i}", description=text,
                    reported_category="Samhandling barn og unge", services_involved=["barnehage", "barnevern"])
             for i, text in enumerate(texts)]
    ids = [r["id"] for r in client.post("/api/v1/reports/batch", json={"reports": items}).json()["results"]]

    def grouped() -> set[int]:
        groups = client.get("/api/v1/stats/recurring", params={"min_size": 2}).json()["groups"]
        return {i for g in groups for i in g["report_ids"] if i in ids}

    assert grouped() == set(ids)
    before = client.get(f"/api/v1/reports/{ids[0]}/similar").json()["items"]
    assert before[0]["similarity"] < 1.0
    changed = {**items[3], "description": "Skrivaren på kontoret er øydelagd, ingen kan skrive ut", "source_version": 2}
    assert client.post("/api/v1/reports", json=changed).status_code == 200
    assert grouped() == set(ids[:3])
    same = {**items[2], "title": "Melding 0", "description": texts[0], "source_version": 2}
    assert client.post("/api/v1/reports", json=same).status_code == 200
    after = client.get(f"/api/v1/reports/{ids[0]}/similar").json()["items"]
    assert (after[0]["report"]["id"], after[0]["similarity"]) == (ids[2], 1.0)
