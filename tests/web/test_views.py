"""Pure shaping of the pages: explanation marks, the written standard, the estimate in words, chart axes."""

from __future__ import annotations

from types import SimpleNamespace

from app.web import views


def term(text: str, weight: float) -> SimpleNamespace:
    return SimpleNamespace(term=text, weight=weight)


def test_explanation_terms_are_marked_whole_and_case_insensitively() -> None:
    segments = views.mark_terms("Barnevernet ga ingen tilbakemelding til barnevernets leder.",
                                [term("barnevernet", 2.0), term("ga ingen", 0.5), term("leder", -0.4),
                                 term("[alder: barn_1_5]", 0.7)])
    marked = [(s.text, s.sign) for s in segments if s.sign]
    assert marked == [("Barnevernet", "up"), ("ga ingen", "up"), ("leder", "down")]  # not inside "barnevernets"
    assert "".join(s.text for s in segments) == "Barnevernet ga ingen tilbakemelding til barnevernets leder."


def test_text_without_terms_is_one_segment() -> None:
    assert views.mark_terms("Ingen forklaring", []) == [views.Segment("Ingen forklaring")]


def test_nynorsk_and_bokmal_are_told_apart() -> None:
    assert views.language("Skulen sa ikkje frå til helsestasjonen, og ho fekk ikkje vite noko.") == "nn"
    assert views.language("Skolen sa ikke fra til helsestasjonen, og hun fikk ikke vite noe.") == "nb"
    assert views.language("") == "nb"


def test_the_estimate_in_plain_words() -> None:
    shown = SimpleNamespace(interval_95=(48, 71), estimated_total=58.4)
    assert views.estimate_words(shown) == "mellom 48 og 71 saker, trolig 58"
    assert views.estimate_words(SimpleNamespace(interval_95=None, estimated_total=None)) is None


def test_axes_have_whole_number_steps() -> None:
    assert views.axis(0) == (4, 1) and views.axis(3) == (4, 1)
    assert views.axis(17) == (20, 5)
    assert views.axis(230) == (250, 50) or views.axis(230) == (300, 100)


def test_stacked_bars_stack_and_keep_a_label_per_segment() -> None:
    chart = views.stacked_bars(["2026-01", "2026-02"], [("Barn 6–12 år", [2, 0]), ("Ungdom", [1, 3])])
    assert [b.label for b in chart.bars] == ["2026-01, Barn 6–12 år: 2", "2026-01, Ungdom: 1", "2026-02, Ungdom: 3"]
    first, second = chart.bars[0], chart.bars[1]
    assert abs((second.y + second.height) - first.y) < 1e-6  # the second segment sits on the first
    assert chart.legend == [(views.PALETTE[0], "Barn 6–12 år"), (views.PALETTE[1], "Ungdom")]


def test_heatmap_adds_both_directions_and_picks_readable_ink() -> None:
    cells, side = views.heatmap(["nav", "skole"], {("nav", "skole"): 3, ("skole", "nav"): 2})
    assert side == 68
    by_label = {c.label.split(":")[0]: c for c in cells}
    assert by_label["nav og skole"].count == by_label["skole og nav"].count == 5
    assert by_label["nav og nav"].count == 0 and by_label["nav og nav"].fill == views.HEAT[0]
    assert by_label["nav og skole"].ink == "#ffffff"  # the darkest fill carries white numbers
