"""Two writers — two syncs, or a sync and a playbook action — never share one target:
`retainer validate` names both, where each is written, and how to part them. What "the
same target" is depends on the destination type."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from retainer.errors import Problem
from retainer.project import Project
from retainer.sync import targets
from tests.conftest import ProjectWriter
from tests.sync.project import PROJECT, SEGMENTS, data
from tests.sync.test_validate import RETAINER

SYNCS = """
destinations:
  crm_db: {type: postgres, url: "postgresql://crm@db.example:5432/crm?schema=sales"}
  crm_db_again: {type: postgres, url: "postgresql://crm@db.example:5432/crm"}
  out: {type: files, dir: out, format: csv}
  out_again: {type: files, dir: ./out/, format: csv}
  out_parquet: {type: files, dir: out}
  bus: {type: rabbitmq, exchange: retainer}
  other_bus: {type: rabbitmq, exchange: elsewhere}
  hook: {type: webhook, url: "https://crm.example.com/hooks"}
  hook_again: {type: webhook, url: "https://crm.example.com/hooks"}
syncs:
  accounts: {to: crm_db}
  sales_accounts: {to: crm_db_again, table: sales.accounts}
  public_accounts: {to: crm_db_again, table: accounts}
  tasks: {to: out}
  parquet_tasks: {to: out_parquet, table: tasks}
  changes: {to: bus, mode: changes, table: segments.activity}
  other_changes: {to: other_bus, mode: changes, table: segments.activity}
  crm: {to: hook}
  crm_actions: {to: hook_again, table: actions}
"""
PLAYBOOKS = """
playbooks:
  follow_up:
    purpose: operations
    when: "logins_30d = 0"
    actions:
      - route: {queue: follow_up, to: out_again, stream: tasks}
      - route: {queue: follow_up, to: out, stream: queues}
      - webhook: {to: hook}
  nudge:
    purpose: operations
    when: "logins_30d > 5"
    actions:
      - route: {queue: nudge, to: out, stream: queues}
      - route: {queue: nudge, to: bus, stream: segments.activity}
"""


def project(write_project: ProjectWriter, syncs: str = SYNCS,
            playbooks: str = PLAYBOOKS) -> Path:
    return write_project(PROJECT, {"segments.yml": SEGMENTS, "syncs.yml": syncs,
                                   "playbooks.yml": playbooks}, data(3))


def line(text: str, needle: str) -> int:
    """The line (1-based, as the rulebook file is written) holding `needle`."""
    lines = textwrap.dedent(text).lstrip().splitlines()
    [found] = [n for n, content in enumerate(lines, 1) if needle in content]
    return found


def found(root: Path) -> list[tuple[str, int | None, str | None]]:
    problems: list[Problem] = targets.problems(Project(root).rulebook)
    return [(p.message, p.location.line if p.location else None, p.hint) for p in problems]


def test_writers_of_one_target_are_named_with_where_each_is_written(
        write_project: ProjectWriter) -> None:
    root = project(write_project)
    syncs = "rulebook/syncs.yml"
    playbooks = "rulebook/playbooks.yml"
    at = {name: line(SYNCS, f"  {name}: ") for name in (
        "accounts", "sales_accounts", "tasks", "changes", "crm_actions")}
    route = line(PLAYBOOKS, "to: out_again, stream: tasks")
    webhook = line(PLAYBOOKS, "webhook: {to: hook}")
    routed = line(PLAYBOOKS, "to: bus, stream: segments.activity")
    # Not clashing: public.accounts is another table, tasks.parquet another file, the
    # exchange 'elsewhere' another exchange, sync 'crm' another stream at the hook's URL,
    # and the two playbooks' routes to out/queues are told apart by their action keys.
    assert found(root) == [
        # A table named without a schema is in the schema of the URL, else `schema:`.
        (f"sync 'accounts' ({syncs}:{at['accounts']}) and sync 'sales_accounts' "
         f"({syncs}:{at['sales_accounts']}) both write table sales.accounts at destinations "
         "'crm_db' and 'crm_db_again' (the same database): each would overwrite the other's "
         "rows", at["sales_accounts"], "give one of them its own 'table'"),
        (f"sync 'tasks' ({syncs}:{at['tasks']}) and playbook 'follow_up' action 1 (route) "
         f"({playbooks}:{route}) both write file 'tasks.csv' at destinations 'out' and "
         "'out_again' (the same directory): each would overwrite the other's records",
         route, "give sync 'tasks' its own 'table', or the action its own 'stream'"),
        (f"sync 'crm_actions' ({syncs}:{at['crm_actions']}) and playbook 'follow_up' "
         f"action 3 (webhook) ({playbooks}:{webhook}) both write stream 'actions' at "
         "destinations 'hook_again' and 'hook' (the same URL): the receiver could not tell "
         "their records apart", webhook,
         "give sync 'crm_actions' its own 'table', or the action its own 'stream'"),
        (f"sync 'changes' ({syncs}:{at['changes']}) and playbook 'nudge' action 2 (route) "
         f"({playbooks}:{routed}) both write routing key 'segments.activity' of exchange "
         "'retainer' at destination 'bus': a consumer could not tell their messages apart",
         routed, "give sync 'changes' its own 'table', or the action its own 'stream'"),
    ]


CLASHING = """
destinations:
  out: {type: files, dir: out, format: csv}
  hook: {type: webhook, url: "https://crm.example.com/hooks"}
syncs:
  queues: {to: out, columns: [activity]}
  crm: {to: hook}
"""
SHARING = """
playbooks:
  follow_up:
    purpose: operations
    when: "logins_30d = 0"
    actions:
      - route: {queue: follow_up, to: out, stream: queues}
      - webhook: {to: hook}
  nudge:
    purpose: operations
    when: "logins_30d > 5"
    actions:
      - route: {queue: nudge, to: out, stream: queues}
      - webhook: {to: hook, stream: nudges}
"""


def validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RETAINER, "validate", "-p", str(root)], capture_output=True,
                          text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_validate_refuses_a_shared_target_and_accepts_shared_urls_and_streams(
        write_project: ProjectWriter) -> None:
    root = project(write_project, CLASHING, SHARING)
    refused = validate(root)
    assert refused.returncode == 2 and "Traceback" not in refused.stdout + refused.stderr
    output = " ".join((refused.stdout + refused.stderr).split())
    # Both playbooks route to out/queues, the file sync 'queues' writes: two problems.
    for name, needle in (("follow_up", "queue: follow_up"), ("nudge", "queue: nudge")):
        where = line(SHARING, needle)
        assert (f"rulebook/playbooks.yml:{where}:"
                f"{line_column(SHARING, needle, 'queues}')}: sync 'queues' "
                f"(rulebook/syncs.yml:{line(CLASHING, 'queues: ')}) and playbook '{name}' "
                f"action 1 (route) (rulebook/playbooks.yml:{where}) both write file "
                "'queues.csv' at destination 'out'") in output
    assert output.count("hint: give sync 'queues' its own 'table', or the action its own "
                        "'stream'") == 2
    assert "2 problem(s) in the project" in output

    # The sync writes its own file; every action shares the hook's URL with sync 'crm',
    # told apart by their streams (actions, nudges, crm).
    (root / "rulebook" / "syncs.yml").write_text(textwrap.dedent(CLASHING).replace(
        "queues: {to: out,", "queues: {to: out, table: queue_sizes,"))
    accepted = validate(root)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def line_column(text: str, needle: str, value: str) -> int:
    """The column (1-based) where `value` starts on the line holding `needle`."""
    [content] = [c for c in textwrap.dedent(text).lstrip().splitlines() if needle in c]
    return content.index(value) + 1
