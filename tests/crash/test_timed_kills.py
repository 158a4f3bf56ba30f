"""Runs killed at many moments, by time and by watching their files, with the DuckDB store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.crash.checks import Expected
from tests.crash.kills import kill_campaign
from tests.crash.projects import copy_project

PUBLISH_KILLS: list[tuple[Any, ...]] = [
    ("first-export",), ("exports", 0.0), ("exports", 0.05), ("exports", 0.3),
    ("store-commit",), ("outputs-commit",), ("renamed",),
]


@pytest.mark.slow
def test_sigkill_anywhere_publishes_all_or_nothing(demo: Path, tmp_path: Path,
                                                   expected: dict[str, Expected]) -> None:
    root = copy_project(demo, tmp_path / "acme")
    # The first kill comes as the outputs commit (after the store did), while the old as_of's
    # outputs are still published: history may be left one run ahead of them.
    kills = kill_campaign(root, expected, delays=12, extra=PUBLISH_KILLS,
                          first=("outputs-commit",))
    phases = Counter(k.phase for k in kills)
    assert len(kills) == 20 and sum(k.killed for k in kills) >= 12  # late delays may finish
    assert any(k.run_id is None for k in kills), "no kill before the run was recorded"
    assert any(k.phase == "before" and k.run_id for k in kills), "no kill while computing"
    assert phases["during"] >= 2 and phases["after"] >= 1, phases
    assert any(k.published and k.killed for k in kills), "no kill after publishing"
    # killed while the outputs commit, the store has committed: the run is recorded
    assert all(k.raw_status == "succeeded" for k in kills if k.strategy == ("outputs-commit",))
