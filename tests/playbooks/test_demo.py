"""The demo's playbooks on the demo data: a fresh `retainer init` project acts right after
its first run, and after weeks of history every kind of playbook has work to do."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from retainer.demo.generator import DemoSummary
from retainer.playbooks.act import act
from retainer.project import Project
from retainer.scaffold import create_demo_project
from tests.conftest import DEMO_END
from tests.playbooks.conftest import decision_rows, ledger_rows
from tests.playbooks.test_cli import retainer


def test_a_fresh_project_acts_after_its_first_run(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    create_demo_project(root, accounts=60, seed=5)     # what `retainer init` does
    Project(root).run()                                # and `retainer run`
    dry = retainer("act", "--dry-run", "-p", root).stdout
    assert "nothing is written or sent" in dry and "adoption_tips" in dry
    assert ledger_rows(root) == []
    done = retainer("act", "-p", root).stdout
    assert "Act 1" in done and "✓ everything planned" in done
    assert (root / ".retainer" / "outbox" / "nurture.csv").exists()


def test_weeks_of_history_give_every_playbook_work(demo_project: tuple[Path, DemoSummary],
                                                    tmp_path: Path) -> None:
    root = tmp_path / "demo"
    shutil.copytree(demo_project[0], root, ignore=shutil.ignore_patterns(".retainer"))
    project = Project(root)
    project.backfill(DEMO_END - timedelta(weeks=5), DEMO_END, timedelta(weeks=1))
    report = act(project)
    assert report.ok
    counts = report.plan.counts()
    for name in ("save_call", "executive_check_in", "adoption_tips", "lapsed_review",
                 "detractor_follow_up"):
        assert counts[name]["fire"] > 0, (name, counts[name])
    # Lapsed accounts leave the nurture cadence: every stopped one is lapsed now.
    stopped = {i.entity_id for i in report.plan.items if i.outcome == "stopped"}
    assert stopped
    with duckdb.connect(str(root / ".retainer" / "output.duckdb"), read_only=True) as db:
        lifecycle = dict(db.execute("SELECT account_id, lifecycle FROM account_results")
                         .fetchall())
    assert {lifecycle[e] for e in stopped} == {"lapsed"}
    # Tasks with an owner column are kept in the ledger; messages go to the outbox or are
    # suppressed, each with a logged decision.
    rows = ledger_rows(root)
    statuses = Counter((r["action_kind"], r["status"]) for r in rows)
    assert statuses[("task", "recorded")] > 0 and statuses[("route", "sent")] > 0
    messages = statuses[("message", "sent")] + statuses[("message", "suppressed")]
    assert statuses[("message", "sent")] > 0 and statuses[("message", "suppressed")] > 0
    exec_tasks = statuses[("task", "suppressed")] + sum(
        1 for r in rows if r["playbook"] == "executive_check_in" and r["status"] ==
        "recorded")
    assert len(decision_rows(root)) == messages + exec_tasks
    with (root / ".retainer" / "outbox" / "nurture.csv").open(newline="") as handle:
        sent = list(csv.DictReader(handle))
    assert len(sent) == statuses[("message", "sent")]
    assert {row["template"] for row in sent} == {"adoption_tips"}
    # Acting again on the same run adds nothing.
    again = act(project)
    assert again.written == 0 and len(ledger_rows(root)) == len(rows)
    assert datetime.fromisoformat(sent[0]["as_of"]) == DEMO_END
