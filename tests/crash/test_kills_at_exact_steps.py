"""Runs killed from inside at exact steps: before recording, before and after publishing, and
between publishing and renaming the exports into place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from retainer.project import Project
from tests.crash.checks import Expected, read_outputs
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


@pytest.mark.parametrize("marker", ["", '{"run_id": 1}'], ids=["half-written", "of run 1"])
def test_a_marker_in_the_old_form_is_finished_or_discarded(
        demo: Path, tmp_path: Path, expected: dict[str, Expected], marker: str) -> None:
    """Earlier versions wrote the waiting run's id into `.publishing`: a kill as it wrote it
    left it empty (that run never published: its exports go), and one a kill left after
    run 1 published says its exports are the published ones (they are moved in)."""
    root = copy_project(demo, tmp_path / "acme")
    project, (outputs, _, run_id), _ = baseline(root, expected)
    assert run_id == 1
    name = exports(project)[0]
    final, partial = project.export_dir / name, project.export_dir / f"{name}.next"
    shutil.copyfile(final, partial)
    final.write_bytes(b"the previous run's export")
    (project.export_dir / ".publishing").write_text(marker, encoding="utf-8")
    Project(root)
    assert not (project.export_dir / ".publishing").exists() and not partial.exists()
    if marker:
        assert read_outputs(project).exports == outputs.exports
    else:
        assert final.read_bytes() == b"the previous run's export"
