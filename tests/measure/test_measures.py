"""Measures on a small real project (real files, real DuckDB, real runs), checked against
values computed by hand from the fixture rows (tests/measure/conftest.py)."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta

import pytest

from retainer.errors import DataError, RetainerError, ValidationError
from retainer.measure import MeasureResult, measure, open_workspace
from retainer.measure.metrics import default_as_of
from retainer.project import Project
from tests.conftest import ProjectWriter
from tests.measure.conftest import AS_OF, LATEST, write_tiny

Z = 1.959963984540054


def by_group(result: MeasureResult) -> dict[str, tuple[int, float | None]]:
    return {f.group: (f.n, f.value) for f in (*result.figures, result.total)}


@pytest.fixture
def results(tiny: Project) -> dict[str, MeasureResult]:
    return {r.name: r for r in measure(tiny, as_of=AS_OF)}


def test_nps_takes_each_respondents_latest_answer_in_the_window(
        results: dict[str, MeasureResult]) -> None:
    nps = results["nps_by_plan"]
    assert [f.group for f in nps.figures] == ["big", "small"]   # rule order
    assert by_group(nps) == {"big": (3, pytest.approx(100 / 3)), "small": (2, -50.0),
                             "all": (5, 0.0)}
    big = nps.figures[0]
    plus, minus = 2 / 3, 1 / 3
    half = Z * math.sqrt((plus + minus - (plus - minus) ** 2) / 3)
    assert big.low == pytest.approx(100 * (plus - minus - half))
    assert big.high == 100  # the interval is clipped to the scale
    assert big.counts == {"promoters": 2, "passives": 0, "detractors": 1}
    assert all(f.small for f in nps.figures)
    assert "fewer than 30" in nps.notes[0]


def test_csat_counts_every_answer_in_its_window(results: dict[str, MeasureResult]) -> None:
    csat = results["csat_all"]
    assert [f.group for f in csat.figures] == ["all"]
    assert (csat.total.n, csat.total.value) == (3, pytest.approx(2 / 3))
    assert csat.total.counts["mean score"] == pytest.approx(11 / 3)


def test_logo_retention_over_the_horizon(results: dict[str, MeasureResult]) -> None:
    retention = results["retention_by_plan"]
    assert by_group(retention) == {"big": (2, 0.5), "small": (2, 1.0), "all": (4, 0.75)}
    assert retention.unit == "share" and retention.method == "Wilson score interval"
    assert not retention.notes[1:]   # complete: history runs to 2026-08-01


def test_revenue_retention_and_expansion(results: dict[str, MeasureResult]) -> None:
    grr, nrr = results["grr"].total, results["nrr"].total
    # Revenue on 06-01: 100 + 50 + 80 + 30 = 260; on 07-01: 100 + 0 + 100 + 30 = 230, of
    # which 210 without a3's expansion.
    assert (grr.n, grr.value) == (4, pytest.approx(210 / 260))
    assert (nrr.n, nrr.value) == (4, pytest.approx(230 / 260))
    before, after = [100, 50, 80, 30], [100, 0, 100, 30]
    r = 230 / 260
    residual = sum((y - r * x) ** 2 for x, y in zip(before, after, strict=True))
    assert nrr.high == pytest.approx(r + Z * math.sqrt(residual / 3 / 4) / 65)
    assert grr.high == 1.0   # gross retention never exceeds 100%
    expansion = results["expansion"].total
    assert (expansion.n, expansion.value, expansion.counts) == (4, 0.25, {"expanded": 1})


def test_mean_and_rate_of_traits(results: dict[str, MeasureResult]) -> None:
    logins = results["logins_by_plan"]
    assert by_group(logins) == {"big": (2, 2.0), "small": (3, pytest.approx(2 / 3)),
                                "all": (5, 1.2)}
    small = logins.figures[1]
    half = Z * math.sqrt(statistics.variance([0, 2, 0]) / 3)
    assert (small.low, small.high) == (pytest.approx(2 / 3 - half), pytest.approx(2 / 3 + half))
    active = results["active_by_seats"]
    assert active.by == "seats buckets"
    assert by_group(active) == {"< 10": (3, pytest.approx(1 / 3)), "≥ 10": (2, 1.0),
                                "all": (5, 0.6)}


def test_grouping_by_a_tag_with_its_own_window(results: dict[str, MeasureResult]) -> None:
    nps = results["nps_by_activity"]
    assert by_group(nps) == {"yes": (2, 0.0), "no": (1, 0.0), "all": (3, 0.0)}
    one = nps.figures[1]
    assert (one.low, one.high) == (None, None)   # one answer has no interval


def test_a_past_date_is_evaluated_again_and_agrees_with_its_published_run(
        write_project: ProjectWriter, tiny: Project) -> None:
    # tiny's published results are as of 2026-08-01, so 06-01 is evaluated again; a copy
    # whose latest run is 06-01 reads its published results. Both must agree.
    other = Project(write_tiny(write_project, (tiny.root / "rulebook" / "measures.yml")
                               .read_text(), root=tiny.root.parent / "other"))
    other.run(AS_OF)
    again = measure(tiny, ["nps_by_plan", "logins_by_plan"], AS_OF)
    published = measure(other, ["nps_by_plan", "logins_by_plan"])
    assert published[0].as_of == AS_OF
    assert [r.figures for r in again] == [r.figures for r in published]


def test_default_dates_and_incomplete_horizons(tiny: Project) -> None:
    with open_workspace(tiny) as ws:
        assert ws.latest == ws.observed_until == LATEST
        rulebook = tiny.rulebook
        assert default_as_of(ws, rulebook.measures["nps_by_plan"]) == LATEST
        # an outcome over 30 days defaults to the latest date whose 30 days are observed
        assert default_as_of(ws, rulebook.measures["grr"]) == LATEST - timedelta(days=30)
    late = measure(tiny, ["retention_by_plan"], datetime(2026, 7, 15))[0]
    assert any("incomplete" in note and "2026-08-14" in note for note in late.notes)
    latest = measure(tiny, ["nps_by_plan"])[0]
    assert latest.as_of == LATEST


def test_unknown_measure_suggests_a_name(tiny: Project) -> None:
    with pytest.raises(RetainerError, match="no measure 'nps_by_plam'") as caught:
        measure(tiny, ["nps_by_plam"])
    assert "nps_by_plan" in str(caught.value.problem.hint)


@pytest.mark.parametrize(("body", "message", "hint"), [
    ("{metric: nps, by: plam}", "unknown name 'plam' in by", "did you mean 'plan'"),
    ("{metric: mean, trait: plan}", "'plan' is a dimension", "trait"),
    ("{metric: nps, by: {trait: tier, buckets: [1]}, source: survey}",
     "unknown source 'survey'", "did you mean 'surveys'"),
    ("{metric: rate, trait: logins_3d}", "unknown name 'logins_3d'", "logins_30d"),
])
def test_measures_are_checked_against_the_rulebook(write_project: ProjectWriter, body: str,
                                                   message: str, hint: str) -> None:
    project = Project(write_tiny(write_project, f"measures:\n  broken: {body}\n"))
    with pytest.raises(ValidationError) as caught:
        measure(project)
    problem = caught.value.problems[0]
    assert message in problem.message and hint in str(problem.hint)
    assert problem.location is not None
    assert problem.location.file.name == "measures.yml" and problem.location.line == 2


@pytest.mark.parametrize(("body", "message"), [
    ("{metric: logo_retention}", "needs 'horizon'"),
    ("{metric: nps, horizon: 30d}", "'horizon' does not apply to metric 'nps'"),
    ("{metric: mean}", "needs 'trait'"),
    ("{metric: nps, by: {trait: mrr, buckets: [500, 100]}}", "increasing"),
    ("{metric: churn}", "'churn' is not allowed here"),
    ("{metric: nps, colour: red}", "unknown key 'colour'"),
])
def test_measure_definitions_are_validated_when_loaded(write_project: ProjectWriter,
                                                       body: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Project(write_tiny(write_project, f"measures:\n  broken: {body}\n"))
    problem = caught.value.problems[0]
    assert message in problem.message
    assert problem.location is not None and problem.location.line == 2


def test_data_errors_name_the_measure_and_the_fix(write_project: ProjectWriter) -> None:
    project = Project(write_tiny(write_project, """
        measures:
          wrong_column: {metric: nps, score: rating}
          wrong_type:   {metric: rate, trait: logins_30d}
          bad_where:    {metric: csat, where: "secret = 1"}
          good_where:   {metric: csat, where: "kind = 'csat' and score >= 4"}
        """))
    project.run(AS_OF)
    with pytest.raises(DataError, match="no column 'rating'") as caught:
        measure(project, ["wrong_column"])
    assert "columns: response_id" in str(caught.value.problem.hint)
    with pytest.raises(RetainerError, match="'logins_30d' is BIGINT, and a rate needs yes/no"):
        measure(project, ["wrong_type"])
    with pytest.raises(RetainerError, match="secret") as bad:
        measure(project, ["bad_where"])
    assert bad.value.problem.location is not None
    good = measure(project, ["good_where"])[0].total
    assert (good.n, good.value) == (2, 1.0)   # the answers 5 and 4
