"""The impact diff of a reshaped rulebook: renamed segments, added and removed dimensions,
a health weight, and stage rules whose state machine starts from the stored history."""

from __future__ import annotations

import json
import shutil
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from retainer.diff import (
    Impact,
    compare,
    gate,
    impact_json,
    impact_markdown,
    rulebook_at_git_ref,
    stored_history,
    working_tree_rulebook,
)
from tests.demo_data import accounts_at
from tests.diff.helpers import AS_OF, Threshold, clone, diff_working_tree, dimension, edit


@pytest.fixture(scope="module")
def reshaped(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Impact:
    """power_user renamed; support_pattern removed; a new dimension `engagement`."""
    root = clone(repo, tmp_path_factory.mktemp("reshaped") / "acme")
    rules = root / "rulebook" / "segments.yml"
    edit(root, "rulebook/segments.yml", "- power_user: ", "- champion_user: ")
    yaml = YAML(typ="rt")
    document = yaml.load(rules.read_text(encoding="utf-8"))
    del document["segments"]["support_pattern"]
    with rules.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)
    (root / "rulebook" / "engagement.yml").write_text(textwrap.dedent("""\
        segments:
          engagement:
            - daily:  "active_days_30d >= 15"
            - weekly: "active_days_30d >= 4"
            - rare:   else
        """), encoding="utf-8")
    return diff_working_tree(root)


def test_a_renamed_segment_shows_as_moved(reshaped: Impact) -> None:
    lifecycle = dimension(reshaped, "lifecycle")
    assert lifecycle.segments_added == ("champion_user",)
    assert lifecycle.segments_removed == ("power_user",)
    moved = [c for c in lifecycle.cells if c.moved]
    assert [(c.from_segment, c.to_segment) for c in moved] == [("power_user", "champion_user")]
    assert moved[0].count > 0 and lifecycle.moved == moved[0].count
    assert "segments added: `champion_user`" in impact_markdown(reshaped)


def test_added_and_removed_dimensions_are_reported(reshaped: Impact, repo: Path) -> None:
    accounts = accounts_at(repo, AS_OF)
    added, removed = dimension(reshaped, "engagement"), dimension(reshaped, "support_pattern")
    assert (added.status, added.old_segments) == ("added", ())
    assert (removed.status, removed.new_segments) == ("removed", ())
    assert {c.from_segment for c in added.cells} == {None} and added.moved == accounts
    assert {c.to_segment for c in removed.cells} == {None} and removed.moved == accounts
    assert sum(c.count for c in added.cells if c.to_segment == "daily") > 0
    assert "adds dimension engagement" in reshaped.summary
    assert "removes dimension support_pattern" in reshaped.summary
    assert reshaped.totals[0].moved == dimension(reshaped, "lifecycle").moved  # shared only
    assert gate(reshaped, accounts - 1) == [
        f"engagement (added) moves {accounts} accounts, more than {accounts - 1}",
        f"support_pattern (removed) moves {accounts} accounts, more than {accounts - 1}"]
    parsed = json.loads(impact_json(reshaped))
    engagement = next(d for d in parsed["dimensions"] if d["name"] == "engagement")
    assert engagement["segments"]["new"] == ["daily", "weekly", "rare"]
    assert all(c["from"] is None for c in engagement["matrix"])


def test_a_health_weight_change_moves_bands_and_only_at_risk(
        repo: Path, tmp_path: Path) -> None:
    root = clone(repo, tmp_path / "acme")
    edit(root, "rulebook/health.yml", "{trait: active_days_30d, weight: 40,",
         "{trait: active_days_30d, weight: 5,")
    impact = diff_working_tree(root, samples=0)
    health = impact.health
    assert health is not None and health.status == "changed" and health.definition_changed
    assert sum(c.count for c in health.cells) == accounts_at(repo, AS_OF)
    assert health.band_moved > 0 and health.score_changed >= health.band_moved
    assert health.mean_abs_change is not None and health.max_abs_change is not None
    assert 0 < health.mean_abs_change <= health.max_abs_change
    assert health.bands == ("red", "yellow", "green")
    lifecycle = dimension(impact, "lifecycle")
    assert all("at_risk" in (c.from_segment, c.to_segment) for c in lifecycle.cells if c.moved)
    assert all(not d.samples for d in impact.dimensions)
    assert f"{health.band_moved} accounts change health band" in impact.summary
    assert "#### Health (changed)" in impact_markdown(impact)


def test_state_machines_start_both_versions_from_the_same_history(
        threshold: Threshold, tmp_path: Path) -> None:
    """at_risk lasts at least 14 days: a narrower at_risk rule frees no one a day later."""
    root = tmp_path / "acme"  # its run at AS_OF is the history: every stage entered then
    shutil.copytree(threshold.before, root)
    edit(root, "rulebook/segments.yml", "\"health_band = 'red' or days_since_seen > 30\"",
         "\"health_band = 'red'\"")
    old, new = rulebook_at_git_ref(root, "HEAD"), working_tree_rulebook(root)
    next_day = datetime(2026, 11, 2)
    free = dimension(compare(old, new, next_day, 0), "lifecycle")
    assert sum(c.count for c in free.cells if c.moved and c.from_segment == "at_risk") > 0
    with stored_history(new) as history:
        assert history is not None
        impact = compare(old, new, next_day, 3, history=history)
    held = dimension(impact, "lifecycle")
    assert not [c for c in held.cells if c.moved and c.from_segment == "at_risk"]
    at_risk = sum(c.count for c in held.cells if c.from_segment == "at_risk")
    assert at_risk == sum(c.count for c in free.cells if c.from_segment == "at_risk")
    for sample in held.samples:  # any move left is explained, holds included
        for side in (sample.old, sample.new):
            assert side.held is None or side.held.reason in ("min_days", "transition")
