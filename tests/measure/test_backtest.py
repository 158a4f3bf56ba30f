"""The health backtest on real history (runs recorded in the state store) of six accounts
whose health, churn and every figure are worked out by hand below."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from retainer.errors import RetainerError
from retainer.measure.backtest import Backtest, backtest
from retainer.project import Project
from tests.conftest import ProjectWriter

PROJECT = """
name: backtest
sources:
  accounts: {kind: accounts, from: data/accounts.csv, key: account_id, time: created_at}
  events: {from: data/events.csv, account: account_id, time: ts}
  tickets: {from: data/tickets.csv, account: account_id, time: opened_at}
  subscriptions: {kind: subscriptions, from: data/subscriptions.csv, account: account_id, time: started_at}
"""
RULEBOOK = {"main.yml": """
    traits:
      logins_30d: {count: events, window: 30d}
      tickets_30d: {count: tickets, window: 30d}
    health:
      components:
        usage:   {trait: logins_30d, weight: 50, scale: {0: 0, 10: 100}}
        support: {trait: tickets_30d, weight: 50, scale: {0: 100, 10: 0}}
      bands: {red: 0, yellow: 40, green: 70}
    segments:
      lifecycle:
        - at_risk: "health_band = 'red' or tickets_30d >= 5"
        - fine: else
    """}
D1, D2, D3, LATEST = (datetime(2026, 3, 1), datetime(2026, 3, 15), datetime(2026, 3, 29),
                      datetime(2026, 5, 1))
# Per 30 days: a login every 3 days is 10 (usage 100), every 6 days 5 (usage 50); tickets the
# same (support 0 and 50). Health = (usage + support) / 2:
#   a1, a2, a6: 10 logins, no tickets → 100 (green)
#   a4: 5 logins, 5 tickets → 50 (yellow, but at_risk for its tickets)
#   a3: no logins, 10 tickets → 0 (red);  a5: no logins, 5 tickets → 25 (red)
LOGINS = {"a1": 3, "a2": 3, "a6": 3, "a4": 6}
TICKETS = {"a4": 6, "a3": 3, "a5": 6}
# Churn: a4 on 03-20, a3 on 04-10, a6 on 04-20; a1, a2, a5 stay.
CANCELLED = {"a4": "2026-03-20", "a3": "2026-04-10", "a6": "2026-04-20"}


def every(days: int) -> list[str]:
    start = datetime(2026, 1, 1, 10)
    return [f"{start + timedelta(days=d):%Y-%m-%d %H:%M:%S}" for d in range(0, 121, days)]


DATA = {
    "accounts.csv": "account_id,created_at\n" + "".join(
        f"a{i},2025-01-01\n" for i in range(1, 7)),
    "events.csv": "account_id,ts\n" + "".join(
        f"{a},{t}\n" for a, gap in LOGINS.items() for t in every(gap)),
    "tickets.csv": "account_id,opened_at\n" + "".join(
        f"{a},{t}\n" for a, gap in TICKETS.items() for t in every(gap)),
    "subscriptions.csv": "subscription_id,account_id,mrr,started_at,cancelled_at\n" + "".join(
        f"s{i},a{i},100,2025-01-01,{CANCELLED.get(f'a{i}', '')}\n" for i in range(1, 7)),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("backtest") / "project"
    (root / "data").mkdir(parents=True)
    (root / "rulebook").mkdir()
    (root / "retainer.yml").write_text(PROJECT.lstrip(), encoding="utf-8")
    (root / "rulebook" / "main.yml").write_text(textwrap.dedent(RULEBOOK["main.yml"]).lstrip(),
                                                encoding="utf-8")
    for name, text in DATA.items():
        (root / "data" / name).write_text(text, encoding="utf-8")
    loaded = Project(root)
    loaded.backfill(D1, D3, timedelta(days=14))
    loaded.run(LATEST)
    return loaded


@pytest.fixture(scope="module")
def result(project: Project) -> Backtest:
    return backtest(project, horizon=timedelta(days=30))


def test_health_as_recorded_is_what_the_comments_say(project: Project) -> None:
    with project.store() as store:
        scores = {a: [s for _, s, _ in store.health_series(a)] for a in
                  ("a1", "a3", "a4", "a5")}
    assert scores == {"a1": [100, 100, 100, 100], "a3": [0, 0, 0, 0],
                      "a4": [50, 50, 50, 50], "a5": [25, 25, 25, 25]}


def test_dates_whose_horizon_is_not_observed_are_left_out(result: Backtest) -> None:
    assert result.dates == (D1, D2, D3)
    assert result.observed_until == LATEST
    assert any("1 date(s) left out" in note for note in result.notes)


def test_auc_counts_every_churner_against_every_stayer(result: Backtest) -> None:
    # Paying accounts per date: 6 on 03-01 and 03-15, 5 on 03-29 (a4 left) = 17.
    # Churned within 30 days: a4 (03-01, 03-15), a3 (03-15, 03-29), a6 (03-29) = 5.
    assert (result.observations, result.churned) == (17, 5)
    # Stayers' health: 100 ×8, 25 ×3, 0 ×1. A churner outranks a stayer when its health is
    # lower (ties count half): a4 at 50 beats 8 twice, a3 at 0 beats 8 + 3 + ½ twice, a6 at
    # 100 ties 8 → 16 + 23 + 4 = 43 of 5 × 12 pairs.
    assert result.roc.auc.value == pytest.approx(43 / 60)
    assert result.roc.auc.low is not None and result.roc.auc.low < 43 / 60


def test_bands_precision_and_recall(result: Backtest) -> None:
    rows = {b.band: (b.n, b.churned) for b in result.bands}
    assert [b.band for b in result.bands] == ["red", "yellow", "green"]
    assert rows == {"red": (6, 2), "yellow": (2, 2), "green": (9, 1)}
    red, yellow, green = result.bands
    assert red.churn_rate.value == pytest.approx(2 / 6) and red.recall == pytest.approx(2 / 5)
    assert yellow.cumulative_precision.value == pytest.approx(4 / 8)
    assert yellow.cumulative_recall.value == pytest.approx(4 / 5)
    assert green.cumulative_precision.value == pytest.approx(5 / 17)
    assert red.lift == pytest.approx((2 / 6) / (5 / 17))


def test_the_at_risk_segment_is_read_from_history(result: Backtest) -> None:
    flags = {f.label: f for f in result.flags}
    band = flags["health band red"]
    assert (band.flagged, band.churned) == (6, 2)
    segment = flags["segment lifecycle.at_risk"]   # red, plus a4 for its tickets
    assert (segment.flagged, segment.churned) == (8, 4)
    assert segment.precision.value == 0.5 and segment.recall.value == pytest.approx(0.8)


def test_lead_time_from_first_red_to_churn(result: Backtest) -> None:
    # Churners with a full 30 days of history before churning: a3 (04-10) and a6 (04-20);
    # a3 was red at the 03-15 run, 26 days before; a6 was never red.
    lead = result.lead
    assert (lead.churners, lead.caught, lead.days) == (2, 1, (26.0,))
    assert lead.median == 26.0


def test_calibration_by_slices_of_health(result: Backtest) -> None:
    rows = [(c.low, c.n, c.churn_rate.value) for c in result.calibration]
    assert rows == [(0, 3, pytest.approx(2 / 3)), (20, 3, 0.0), (50, 2, 1.0),
                    (90, 9, pytest.approx(1 / 9))]


def test_each_components_contribution(result: Backtest) -> None:
    parts = {c.name: c for c in result.components}
    # usage scores: churners 50, 50, 0, 0, 100; stayers 100 ×8, 0 ×4 → 40 of 60 pairs.
    # support: churners 50, 50, 0, 0, 100; stayers 100 ×8, 50 ×3, 0 ×1 → 46 of 60.
    assert parts["usage"].auc_alone.value == pytest.approx(40 / 60)
    assert parts["support"].auc_alone.value == pytest.approx(46 / 60)
    # Without one of two components, health is the other one.
    assert parts["usage"].auc_without == pytest.approx(46 / 60)
    assert parts["support"].auc_without == pytest.approx(40 / 60)


def test_dates_on_a_grid_must_have_runs(project: Project) -> None:
    weekly = backtest(project, D1, D3, timedelta(days=7), timedelta(days=30))
    assert weekly.dates == (D1, D2, D3)
    assert any("2 date(s) without a run" in note for note in weekly.notes)
    with pytest.raises(RetainerError, match="no date's 90-day horizon"):
        backtest(project, horizon=timedelta(days=90))
    with pytest.raises(RetainerError, match=r"no account segment 'lifecycle\.at_rsk'") as bad:
        backtest(project, segment="lifecycle.at_rsk")
    assert "lifecycle.at_risk" in str(bad.value.problem.hint)


def test_without_history_the_backtest_says_how_to_get_it(write_project: ProjectWriter,
                                                         tmp_path: Path) -> None:
    root = write_project(project=PROJECT, rulebook=RULEBOOK, data=DATA)
    with pytest.raises(RetainerError, match="no runs in history") as caught:
        backtest(Project(root))
    assert "retainer backfill" in str(caught.value.problem.hint)
