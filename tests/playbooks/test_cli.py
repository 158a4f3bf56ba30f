"""`retainer act`, `actions` and `decisions` as a user runs them: real processes, exit
codes, readable output and no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.playbooks.conftest import Writer, ledger_rows, with_destinations
from tests.sync.receiver import Receiver

RETAINER = str(Path(sys.executable).parent / "retainer")
PLAYBOOKS = """
playbooks:
  welcome:
    purpose: marketing
    on: {enter: stage.fresh}
    actions:
      - task: {owner: owner, title: "Welcome {name}", due: 2d}
      - message: {to: outbox, template: welcome}
  quiet_ping:
    purpose: operations
    on: {enter: stage.quiet}
    actions: [{webhook: {to: hook}}]
"""


def retainer(*args: str | Path, code: int = 0, columns: int = 160
             ) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it, in its own process, in a terminal `columns` wide."""
    done = subprocess.run([RETAINER, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={"COLUMNS": str(columns), "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == code, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def quick(*args: str | Path, code: int = 0) -> str:
    """The same command in this process (for output formats; saves a start-up each)."""
    from typer.testing import CliRunner

    from retainer.cli.main import app
    done = CliRunner().invoke(app, [str(a) for a in args])
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert done.exit_code == code, done.output[-3000:]
    return done.output


def test_dry_run_act_actions_and_decisions(make_project: Writer, receiver: Receiver) -> None:
    root = make_project(with_destinations(PLAYBOOKS, receiver.url))
    dry = retainer("act", "--dry-run", "-p", root).stdout
    assert "Dry run as of 2026-01-16 00:00 UTC (run 2) — nothing is written or sent" in dry
    assert "welcome" in dry and "quiet_ping" in dry
    assert "would fire" in dry and "task for ana@us.example: Welcome Initech" in dry
    assert "why: entered stage.fresh 2026-01-16" in dry
    # c4 is in FR: EU marketing needs a consent, and there is none.
    assert "would be suppressed" in dry
    assert "consent suppressed: EU marketing is opt-in and no consent is recorded" in dry
    assert ledger_rows(root) == []

    done = retainer("act", "-p", root).stdout
    assert "Act 1 as of 2026-01-16 00:00 UTC (run 2) — 3 new ledger row(s)" in done
    assert "✓ everything planned was delivered, recorded or suppressed" in done
    assert len(receiver.records()) == 1

    listed = retainer("actions", "-p", root, "--playbook", "welcome").stdout
    assert "welcome  a3  recorded\n    task: Welcome Initech (owner ana@us.example, due " \
           "2026-01-18) → ledger\n" in listed
    assert "welcome  a3  suppressed\n    message: 'welcome' to c4 → outbox/messages\n" in listed
    as_json = json.loads(quick("actions", "-p", root, "--format", "json"))
    assert {r["status"] for r in as_json} == {"recorded", "suppressed", "sent"}

    decisions = retainer("decisions", "-p", root, "--contact", "c4").stdout
    assert "contact c4  suppressed  welcome\n    marketing/email · FR (policy eu, opt_in)\n" \
        in decisions
    assert "EU marketing is opt-in and no consent is recorded" in decisions
    rows = json.loads(quick("decisions", "-p", root, "--format", "json", "--outcome",
                            "suppressed"))
    assert [r["contact_id"] for r in rows] == ["c4"]
    csv_text = quick("decisions", "-p", root, "--format", "csv")
    assert csv_text.splitlines()[0].startswith("decision_id,decided_at,action_key,playbook")
    assert "no decisions recorded" in quick("decisions", "-p", root, "--playbook",
                                            "quiet_ping")
    plan = json.loads(quick("act", "--dry-run", "-p", root, "--format", "json"))
    assert plan["dry_run"] and [p["playbook"] for p in plan["playbooks"]] == [
        "welcome", "quiet_ping"]


def test_failures_are_loud_and_errors_readable(make_project: Writer,
                                               receiver: Receiver) -> None:
    root = make_project(with_destinations(PLAYBOOKS, receiver.url))
    receiver.script = [503]
    failed = retainer("act", "-p", root, code=1)
    assert "failed: hook/actions: 1 action(s) failed" in failed.stderr
    assert "answered 503" in failed.stderr and "will retry at the next act" in failed.stderr
    assert "Act 2" in retainer("act", "-p", root).stdout   # retried, now delivered
    assert len(receiver.records()) == 1
    # What each act did, newest first: the retry sent what the first act failed to.
    acts = quick("acts", "-p", root)
    second, first = acts.split("act 2 ")[1].split("act 1 ")
    assert "as of 2026-01-16 00:00 (run 2)  succeeded" in second
    assert "planned 0: sent 1, recorded 0, suppressed 0, failed 0," in second
    assert "as of 2026-01-16 00:00 (run 2)  failed" in first
    assert "planned 3: sent 0, recorded 1, suppressed 1, failed 1," in first
    assert "error: hook/actions: 1 action(s) failed" in first
    rows = json.loads(quick("acts", "-p", root, "--format", "json", "--limit", "1"))
    assert [(r["act_id"], r["status"], r["sent"], r["retired"]) for r in rows] == [
        (2, "succeeded", 1, 0)]
    for command in ("acts", "actions", "decisions"):   # a usage error, not a traceback
        assert "greater than or equal to 1" in quick(command, "-p", root, "--limit", "-1",
                                                      code=2)
    wrong = quick("act", "-p", root, "--playbook", "welcom", code=1)
    assert "no playbook named 'welcom'" in wrong and "did you mean 'welcome'" in wrong
    assert "unknown outcome 'sendt'" in quick("decisions", "-p", root, "--outcome", "sendt",
                                              code=1)
    (root / "rulebook" / "playbooks.yml").write_text(
        with_destinations(PLAYBOOKS, receiver.url).replace("stage.fresh", "stage.frsh"))
    invalid = retainer("act", "-p", root, code=2)
    assert "playbooks.yml:9" in invalid.stderr and "'frsh' is not a segment of stage" in \
        invalid.stderr


def test_act_counts_stay_whole_in_a_narrow_terminal(make_project: Writer,
                                                    receiver: Receiver) -> None:
    root = make_project(with_destinations(PLAYBOOKS, receiver.url))
    # Too narrow for the table of counts, whose headers would be cut ('recor…'): a line per
    # playbook, its counts wrapped between counts, never inside one.
    narrow = retainer("act", "-p", root, columns=30).stdout
    assert "┃" not in narrow and "…" not in narrow
    assert (" welcome     2 fire\n"
            "             1 recorded\n"
            "             1 suppressed\n"
            " quiet_ping  1 fire · 1 sent\n") in re.sub(r" +\n", "\n", narrow)
    wide = retainer("act", "-p", root, "--dry-run", columns=100).stdout
    assert " playbook   ┃ fire ┃ done before \n" in wide
    # A name too long to leave room beside it for a count: the counts go under it.
    (root / "rulebook" / "playbooks.yml").write_text(
        with_destinations(PLAYBOOKS.replace("welcome:", "welcome_new_accounts_by_hand:"),
                          receiver.url), encoding="utf-8")
    retainer("run", "-p", root, "--as-of", "2026-01-17")
    longer = retainer("act", "-p", root, columns=30).stdout
    assert (" welcome_new_accounts_by_hand\n"
            "    2 fire · 1 recorded\n"
            "    1 suppressed\n") in re.sub(
        r" +\n", "\n", longer)
