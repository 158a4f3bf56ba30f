"""The demo project with real history: the backtest finds the churn the generator built in,
the commands print what users read, and the HTML report renders in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from retainer.cli.measure_commands import backtest, measure, report
from retainer.demo.generator import DemoSummary
from retainer.measure.backtest import backtest as run_backtest
from retainer.measure.uplift import NO_PLAYBOOKS
from retainer.project import Project
from tests.demo_data import accounts_at
from tests.measure.browser import CHARTS_DRAWN, Browser, find_chromium

ROOT = Path(__file__).parent.parent.parent
ARTIFACTS = ROOT / "artifacts"
START, END, STEP = datetime(2026, 6, 2), datetime(2026, 12, 1), timedelta(days=14)

app = typer.Typer()
app.command(name="measure")(measure)
app.command(name="backtest")(backtest)
app.command(name="report")(report)


def cli(*args: str | Path, code: int = 0) -> str:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture(scope="module")
def demo(demo_project: tuple[Path, DemoSummary], tmp_path_factory: pytest.TempPathFactory
         ) -> Project:
    """The demo project (300 accounts) with 14 fortnightly dates of history."""
    root = tmp_path_factory.mktemp("report") / "acme"
    shutil.copytree(demo_project[0], root, ignore=shutil.ignore_patterns(".retainer"))
    project = Project(root)
    project.backfill(START, END, STEP)
    return project


@pytest.fixture(scope="module")
def page(demo: Project) -> Path:
    target = demo.root / "out" / "report.html"
    output = cli("report", "-p", demo.root, "-o", target)
    assert f"wrote {target}" in output.replace("\n", "")
    return target


def test_health_predicts_churn_on_the_demo(demo: Project) -> None:
    result = run_backtest(demo, horizon=timedelta(days=90))
    assert len(result.dates) == 7            # the later dates' 90 days are not over yet
    auc = result.roc.auc
    assert auc.value is not None and auc.low is not None and auc.value > 0.7 and auc.low > 0.6
    rates = [b.churn_rate.value or 0 for b in result.bands]
    assert [b.band for b in result.bands] == ["red", "yellow", "green"]
    assert rates[0] > rates[1] > rates[2]
    assert result.lead.caught > 0 and all(0 < d <= 90 for d in result.lead.days)


def test_measure_command(demo: Project) -> None:
    output = cli("measure", "nps_by_tier", "retention_by_lifecycle", "-p", demo.root)
    for text in ("nps_by_tier", "strategic", "95% interval", "normal approximation",
                 "retention_by_lifecycle", "as of 2026-09-02", "Wilson score interval"):
        assert text in output
    data = json.loads(cli("measure", "exec_rate", "--json", "--as-of", "2026-11-03",
                          "-p", demo.root))
    assert data[0]["as_of"] == "2026-11-03T00:00:00" and data[0]["unit"] == "share"
    existing = accounts_at(demo.root, datetime(2026, 11, 3))
    assert sum(f["n"] for f in data[0]["figures"]) == data[0]["total"]["n"] == existing
    assert "did you mean 'nps_by_tier'" in cli("measure", "nps_by_teir", "-p", demo.root,
                                              code=1)


def test_measure_command_rejects_an_invalid_measure_with_its_location(demo: Project,
                                                                      tmp_path: Path) -> None:
    root = tmp_path / "broken"
    shutil.copytree(demo.root, root, ignore=shutil.ignore_patterns(".retainer", "out"))
    (root / "rulebook" / "measures.yml").write_text(
        "measures:\n  nps_by_tier: {metric: nps, by: value_teir}\n", encoding="utf-8")
    output = cli("measure", "-p", root, code=2)
    assert "measures.yml:2" in output and "did you mean 'value_tier'" in output


def test_backtest_command(demo: Project) -> None:
    output = cli("backtest", "--from", "2026-06-02", "--to", "2026-12-01", "--every", "14d",
                 "--horizon", "90d", "-p", demo.root)
    for text in ("ROC AUC", "Hanley–McNeil", "red", "segment lifecycle.at_risk", "lead time",
                 "calibration", "usage", "7 date(s) left out"):
        assert text in output
    data = json.loads(cli("backtest", "--json", "-p", demo.root))
    assert data["roc"]["auc"]["value"] > 0.7
    assert "--every" in cli("backtest", "--every", "soon", "-p", demo.root, code=1)


def test_report_is_one_offline_file(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert html.count("<script") >= 10 and len(html) > 3_000_000   # plotly.js is inside
    markup = re.sub(r"<script\b.*?</script>", "", html, flags=re.DOTALL)
    assert not re.search(r"<script[^>]*\bsrc=", html), "loads a script"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup), "links out"
    for heading in ("Segments over time", "Health", "Measures", "Health backtest",
                    "Playbook uplift", "Data quality"):
        assert f">{heading}</h2>" in html
    assert NO_PLAYBOOKS in html
    assert "could not be computed" not in markup   # every demo measure is there
    assert "unknown id" in html            # the demo's events with ids of no account


def test_report_renders_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    executable = find_chromium()
    if executable is None:
        message = "Chromium is not installed (apt-get install chromium); the report's " \
                  "browser test needs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    browser = Browser(executable, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        session = browser.open(page.as_uri())
        charts = browser.evaluate(session, CHARTS_DRAWN)
        ARTIFACTS.mkdir(exist_ok=True)
        browser.screenshot(session, ARTIFACTS / "report.png")
        text = browser.evaluate(session, "document.body.innerText")
    finally:
        browser.close()
    titles = " | ".join(c["title"] for c in charts)
    assert len(charts) >= 20, titles
    for expected in ("accounts per segment over time", "flows from", "health as of",
                     "health over time", "nps_by_tier", "still paying", "ROC (AUC",
                     "churn within 90 days by health", "component", "rows rejected"):
        assert expected in titles
    for chart in charts:
        assert chart["svg"] and chart["traces"] > 0 and chart["drawn"] > 0, chart
        assert chart["width"] > 300 and chart["height"] > 200, chart
    assert browser.console_errors() == []
    assert [u for u in browser.requested() if not u.startswith("file:")] == []
    assert NO_PLAYBOOKS in text
    assert (ARTIFACTS / "report.png").stat().st_size > 50_000


def test_a_report_without_history_says_what_is_missing(demo_project: tuple[Path, DemoSummary],
                                                       tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    shutil.copytree(demo_project[0], root, ignore=shutil.ignore_patterns(".retainer"))
    (root / "rulebook" / "measures.yml").unlink()
    project = Project(root)
    project.run(END)
    target = tmp_path / "report.html"
    cli("report", "-p", root, "-o", target, "--horizon", "30d")
    html = target.read_text(encoding="utf-8")
    assert "No measures in the rulebook yet" in html
    assert "No backtest: no date" in html      # one run, its horizon not over
    assert "health as of 2026-12-01" in html
