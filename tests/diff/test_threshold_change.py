"""The impact diff of a threshold change, checked against two plain `Project.run`s of the old
and the new rulebook, whose published results are compared here with a hand-written query;
and that impact in each output format (JSON, Markdown, the terminal)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from rich.console import Console

from retainer.cli.diff_command import render_impact
from retainer.diff import impact_dict, impact_json, impact_markdown
from tests.demo_data import accounts_at
from tests.diff.helpers import AS_OF, ROOT, Threshold, dimension, tag


def test_a_threshold_change_moves_exactly_the_accounts_two_runs_disagree_on(
        threshold: Threshold) -> None:
    impact, runs, before = threshold
    accounts = accounts_at(before, AS_OF)
    assert 0 < accounts < 150  # the demo's newest accounts signed up after AS_OF
    expected = Counter({(f, t): n for f, t, n in runs.execute(
        "SELECT o.lifecycle, n.lifecycle, count(*) FROM old.account_results o "
        "JOIN new.account_results n USING (account_id) GROUP BY ALL").fetchall()})
    lifecycle = dimension(impact, "lifecycle")
    assert Counter({(c.from_segment, c.to_segment): c.count for c in lifecycle.cells}) == expected
    moved = sum(n for (f, t), n in expected.items() if f != t)
    assert moved > 0 and lifecycle.moved == moved and lifecycle.status == "changed"
    assert {c.to_segment for c in lifecycle.cells if c.moved} == {"power_user"}
    assert lifecycle.rules_changed and not lifecycle.segments_added
    assert impact.totals[0].level == "account" and impact.totals[0].entities == accounts
    assert impact.totals[0].moved == moved
    for other in ("nps_group", "value_tier", "support_pattern", "persona"):
        assert dimension(impact, other).status == "unchanged"
        assert dimension(impact, other).moved == 0
    assert impact.summary.startswith(f"This change moves {moved} of {accounts} accounts: ")
    assert "from activated to power_user (lifecycle)" in impact.summary


def test_tags_gained_and_lost_match_two_runs(
        threshold: Threshold) -> None:
    impact, runs, _ = threshold
    for name, level, key in (("champion", "contact", "contact_id"),
                             ("exec_sponsor_engaged", "account", "account_id")):
        old, new, gained, lost = runs.execute(
            f"SELECT count_if(o.{name}), count_if(n.{name}), count_if(n.{name} AND NOT o.{name}),"
            f" count_if(o.{name} AND NOT n.{name}) FROM old.{level}_results o "
            f"JOIN new.{level}_results n USING ({key})").fetchone() or ()
        found = tag(impact, name)
        assert (found.level, found.status) == (level, "changed")
        assert (found.old_count, found.new_count, found.gained, found.lost) == (
            old, new, gained, lost)
    assert tag(impact, "champion").gained > 0 and tag(impact, "champion").lost == 0
    assert tag(impact, "exec_sponsor_engaged").lost > 0
    assert tag(impact, "exec_sponsor_engaged").gained == 0
    assert tag(impact, "expansion_signal").status == "unchanged"
    assert "contacts gain it" in impact.summary


def test_samples_are_the_smallest_ids_with_both_versions_reasons(
        threshold: Threshold) -> None:
    impact, runs, _ = threshold
    lifecycle = dimension(impact, "lifecycle")
    for cell in (c for c in lifecycle.cells if c.moved):
        ids = [s.entity_id for s in lifecycle.samples
               if (s.from_segment, s.to_segment) == (cell.from_segment, cell.to_segment)]
        smallest = [str(r[0]) for r in runs.execute(
            "SELECT o.account_id FROM old.account_results o JOIN new.account_results n "
            "USING (account_id) WHERE o.lifecycle = ? AND n.lifecycle = ? "
            "ORDER BY CAST(o.account_id AS VARCHAR) LIMIT 3",
            [cell.from_segment, cell.to_segment]).fetchall()]
        assert ids == smallest
    sample = lifecycle.samples[0]
    assert (sample.old.segment, sample.new.segment) == (sample.from_segment, "power_user")
    assert sample.old.matched is not None and sample.old.matched.segment == sample.from_segment
    rejected = sample.old.passed_over  # why the old rules did not make it a power user
    assert rejected is not None and rejected.segment == "power_user" and not rejected.matched
    days = next(c for c in rejected.clauses if c.text == "active_days_30d >= 12")
    assert days.value is False and 8 <= dict(days.values)["active_days_30d"] < 12
    assert sample.new.matched is not None and sample.new.matched.matched
    assert sample.new.matched.when == "active_days_30d >= 8 and features_90d >= 5"
    assert all(c.value is True for c in sample.new.matched.clauses)
    assert sample.new.passed_over is None  # the old segment's rule comes after power_user


def test_json_output_has_the_documented_keys(
        threshold: Threshold) -> None:
    impact = threshold.impact
    parsed = json.loads(impact_json(impact))
    assert parsed == json.loads(json.dumps(impact_dict(impact)))
    documented = json.loads(re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "diff.md")
                                       .read_text(encoding="utf-8"), re.DOTALL)[0])

    def same_keys(actual: Any, example: Any, where: str) -> None:
        if isinstance(example, dict):
            assert isinstance(actual, dict) and set(actual) == set(example), where
            for key, value in example.items():
                if key != "values" and value is not None and actual[key] is not None:
                    same_keys(actual[key], value, f"{where}.{key}")
        elif isinstance(example, list) and example:
            assert isinstance(actual, list), where
            for item in actual:
                same_keys(item, example[0], f"{where}[]")

    same_keys(parsed, documented, "$")
    assert parsed["schema"] == "retainer.diff/1"
    assert parsed["as_of"] == "2026-11-01T00:00:00"
    assert parsed["old"]["label"] == "HEAD" and parsed["new"]["label"] == "working tree"
    lifecycle = parsed["dimensions"][0]
    assert lifecycle["name"] == "lifecycle" and lifecycle["moved"] > 0
    assert sum(c["count"] for c in lifecycle["matrix"]) == accounts_at(threshold.before, AS_OF)
    values = lifecycle["samples"][0]["old"]["passed_over"]["clauses"][0]["values"]
    assert isinstance(values["active_days_30d"], int)
    assert parsed["entities"]["contact"]["total"] > 0


def test_markdown_is_a_pull_request_comment(
        threshold: Threshold) -> None:
    impact = threshold.impact
    text = impact_markdown(impact)
    assert text.startswith("### Retainer impact: `HEAD` → `working tree`\n")
    assert f"**{impact.summary}**" in text
    moved = dimension(impact, "lifecycle").moved
    assert f"#### `lifecycle` (accounts, changed): {moved} accounts moved" in text
    assert "| before ＼ after | `lapsed` |" in text and "| moved in |" in text
    assert re.search(r"\| `activated` \|[^\n]*\*\*\d+\*\*", text)  # moved cells in bold
    assert "No moves in `nps_group`, `value_tier`, `support_pattern`, `persona`." in text
    assert "| `champion` | contact | changed |" in text
    details = text[text.index("<details>"):text.index("</details>")]
    assert "<summary>Sample reasons" in details
    assert "✗ `active_days_30d >= 12` (active_days_30d = " in details
    assert "`power_user` matched (all of): ✓ `active_days_30d >= 8`" in details


def test_the_terminal_table_shows_matrices_tags_and_reasons(threshold: Threshold) -> None:
    console = Console(record=True, width=120)
    render_impact(console, threshold.impact)
    out = console.export_text()
    assert "Impact of the working tree against HEAD, as of 2026-11-01 00:00 UTC" in out
    assert "This change moves" in out and "lifecycle (accounts, changed):" in out
    assert "before ＼ after" in out and "moved in" in out
    assert "✗ active_days_30d >= 12" in out and "→ power_user: matched" in out
    assert "champion" in out and "+" in out  # the tags table
    assert "no moves in nps_group, value_tier, support_pattern, persona" in out
