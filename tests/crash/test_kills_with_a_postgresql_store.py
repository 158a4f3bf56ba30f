"""Runs killed at many moments with the state store in PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from retainer.project import Project
from tests.crash.checks import Expected
from tests.crash.kills import kill_campaign
from tests.crash.projects import copy_project


def test_sigkill_with_a_postgresql_store(pg_state: str, demo: Path, tmp_path: Path,
                                         expected: dict[str, Expected]) -> None:
    root = copy_project(demo, tmp_path / "acme", state=pg_state)
    assert Project(root).rulebook.config.state == pg_state
    kills = kill_campaign(root, expected, delays=6,
                          extra=[("first-export",), ("outputs-commit",), ("renamed",)])
    assert len(kills) == 9 and sum(k.killed for k in kills) >= 6  # late delays may finish
    assert {k.phase for k in kills} == {"before", "during", "after"}
    assert all(k.raw_status == "succeeded" for k in kills if k.strategy == ("outputs-commit",))
    assert not (root / ".retainer" / "state.duckdb").exists()
