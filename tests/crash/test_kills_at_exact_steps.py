"""Runs killed from inside at exact steps: before recording, before and after publishing, and
between publishing and renaming the exports into place."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crash.checks import Expected
from tests.crash.kills import baseline, check_after_kill, inject_kill, recover
from tests.crash.projects import copy_project, exports


def test_sigkill_at_each_step_of_recording_and_publishing(
        demo: Path, tmp_path: Path, expected: dict[str, Expected]) -> None:
    root = copy_project(demo, tmp_path / "acme")
    project, position, good_run = baseline(root, expected)
    kills = []
    for point in ("record", "publish", "summarize"):
        kill = inject_kill(root, project, point)
        position = check_after_kill(kill, project, expected, position)
        kills.append(kill)
    before_record, before_publish, after_publish = kills
    # exports written, nothing recorded: the run is interrupted, nothing changed
    assert before_record.exports_at_kill == len(exports(project))
    assert (before_record.raw_status, before_record.published) == ("running", False)
    # recorded, not published: history is one run ahead of the outputs until the next run
    assert (before_publish.raw_status, before_publish.published) == ("succeeded", False)
    assert before_publish.store_ahead
    # published and renamed: all of the new result
    assert (after_publish.raw_status, after_publish.published) == ("succeeded", True)
    assert not after_publish.store_ahead and not after_publish.stale_exports
    recover(root, project, expected, position, kills, good_run)


@pytest.mark.parametrize("renamed", [0, 1], ids=["before-any-rename", "between-renames"])
def test_a_kill_between_publishing_and_renaming_leaves_no_stale_export(
        demo: Path, tmp_path: Path, expected: dict[str, Expected], renamed: int) -> None:
    root = copy_project(demo, tmp_path / "acme")
    project, position, _ = baseline(root, expected)
    if len(exports(project)) <= renamed:
        pytest.skip("one export only")
    kill = inject_kill(root, project, "rename", renamed + 1)
    check_after_kill(kill, project, expected, position)
