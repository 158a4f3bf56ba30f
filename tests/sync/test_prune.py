"""A sync removed from the rulebook leaves its state in the store: `retainer sync` reports
it, and only `retainer sync --prune` deletes it — that sync's state and nothing else, in
one transaction; the sync log keeps its history."""

from __future__ import annotations

from pathlib import Path

from retainer.errors import RetainerError
from retainer.project import Project
from retainer.sync.prune import StaleSync, prune, stale
from retainer.sync.runner import run_syncs
from tests.conftest import ProjectWriter
from tests.sync.project import DAY, PROJECT, SEGMENTS, data
from tests.sync.receiver import free_port
from tests.sync.test_cli import quick

SYNCS = """
destinations:
  out: {{type: files, dir: out, format: csv}}
  hook: {{type: webhook, url: "http://127.0.0.1:{port}/in", retries: 0, batch: 2}}
syncs:
  mirrored: {{to: out, mode: mirror}}
  moves: {{to: out, mode: changes}}
  pushed: {{to: hook}}
"""
ONLY_MIRRORED = """
destinations:
  out: {type: files, dir: out, format: csv}
syncs:
  mirrored: {to: out, mode: mirror}
"""
TABLES = ("sync_state", "dead_letters", "sync_cursors", "sync_log")


def synced(write_project: ProjectWriter, state: str = "") -> Path:
    """Four accounts synced once: `mirrored` holds 4 records, `moves` 5 change messages and
    a cursor, and `pushed` (nobody listens) 2 dead letters and 2 records never tried."""
    root = write_project(PROJECT + state, {"segments.yml": SEGMENTS,
                                           "syncs.yml": SYNCS.format(port=free_port())},
                         data(4))
    Project(root).run(DAY)
    run_syncs(Project(root))
    return root


def rows(root: Path) -> dict[tuple[str, str], int]:
    """How many rows each sync has in each sync table."""
    with Project(root).store() as store:
        return {(table, str(sync)): int(count) for table in TABLES for sync, count in
                store.backend.fetch(f"SELECT sync, count(*) FROM {table} GROUP BY sync")}


BEFORE = {("sync_state", "mirrored"): 4, ("sync_state", "moves"): 5,
          ("dead_letters", "pushed"): 2, ("sync_cursors", "moves"): 1,
          ("sync_log", "mirrored"): 1, ("sync_log", "moves"): 1, ("sync_log", "pushed"): 1}
STALE = [StaleSync("moves", 5, 0, True), StaleSync("pushed", 0, 2, False)]


def remove_syncs(root: Path) -> None:
    (root / "rulebook" / "syncs.yml").write_text(ONLY_MIRRORED)


def test_stale_state_is_reported_and_kept_by_every_sync(write_project: ProjectWriter) -> None:
    root = synced(write_project)
    assert rows(root) == BEFORE
    remove_syncs(root)
    heard: list[list[StaleSync]] = []
    [result] = run_syncs(Project(root), on_stale=heard.append)
    assert heard == [STALE]
    assert result.plan.unchanged == 4           # type: ignore[union-attr]
    cli = quick(root, "sync")
    assert "note: stale sync state for 'moves': 5 record(s), 0 dead letter(s), its cursor " \
           "— the sync is no longer in the rulebook" in cli.stderr
    assert "note: stale sync state for 'pushed': 0 record(s), 2 dead letter(s) — the sync " \
           "is no longer in the rulebook" in cli.stderr
    assert "'retainer sync --prune' deletes that state" in cli.stderr
    assert "stale sync state" in quick(root, "sync", "--dry-run").stderr
    assert rows(root) == {**BEFORE, ("sync_log", "mirrored"): 3}


def test_prune_deletes_only_what_it_is_asked_to(write_project: ProjectWriter) -> None:
    root = synced(write_project)
    remove_syncs(root)

    dry = quick(root, "sync", "--prune", "--dry-run").stdout
    assert "would prune stale sync state for 'moves': 5 record(s), 0 dead letter(s), its " \
           "cursor" in dry
    assert "would prune stale sync state for 'pushed': 0 record(s), 2 dead letter(s)" in dry
    assert rows(root) == BEFORE

    refused = quick(root, "sync", "--prune", "mirrored", code=1).stderr
    assert "sync 'mirrored' is in the rulebook: its state is in use" in refused
    unknown = quick(root, "sync", "--prune", "pushd", code=1).stderr
    assert "the store holds no state of a sync named 'pushd'" in unknown
    assert "did you mean 'pushed'?" in unknown
    assert rows(root) == BEFORE

    one = quick(root, "sync", "--prune", "pushed").stdout
    assert "pruned stale sync state for 'pushed': 0 record(s), 2 dead letter(s)" in one
    assert "✓ 1 sync(s), 0 record(s), 2 dead letter(s)" in one
    assert rows(root) == {k: v for k, v in BEFORE.items() if k != ("dead_letters", "pushed")}

    rest = quick(root, "sync", "--prune").stdout
    assert "pruned stale sync state for 'moves': 5 record(s), 0 dead letter(s), its " \
           "cursor" in rest
    # Only the removed syncs' state went; their log stays, and so does the kept sync's state.
    assert rows(root) == {("sync_state", "mirrored"): 4, ("sync_log", "mirrored"): 1,
                          ("sync_log", "moves"): 1, ("sync_log", "pushed"): 1}
    assert "nothing to prune" in quick(root, "sync", "--prune").stdout
    assert "stale sync state" not in quick(root, "sync").stderr


def test_a_rulebook_without_syncs_points_at_the_stale_state(
        write_project: ProjectWriter) -> None:
    root = synced(write_project)
    (root / "rulebook" / "syncs.yml").unlink()
    try:
        run_syncs(Project(root))
    except RetainerError as exc:
        assert exc.problem.message == "the rulebook declares no syncs"
        assert exc.problem.hint == (
            "add a 'syncs:' section (see docs/sync.md); the store still holds the state of "
            "removed syncs (mirrored, moves, pushed): 'retainer sync --prune' deletes it")
    else:
        raise AssertionError("a rulebook without syncs was synced")
    assert "pruned stale sync state for 'mirrored'" in quick(root, "sync", "--prune").stdout
    assert rows(root) == {("sync_log", "mirrored"): 1, ("sync_log", "moves"): 1,
                          ("sync_log", "pushed"): 1}


def test_prune_with_a_postgres_store(write_project: ProjectWriter, postgres_url: str) -> None:
    root = synced(write_project, f"state: {postgres_url}\n")
    assert rows(root) == BEFORE
    remove_syncs(root)
    with Project(root).store() as store:
        assert stale(store, ["mirrored"]) == STALE
        assert prune(store, ["mirrored"], ["moves"]) == STALE[:1]
        assert stale(store, ["mirrored"]) == STALE[1:]
        assert prune(store, ["mirrored"]) == STALE[1:]
        assert stale(store, ["mirrored"]) == []
    assert rows(root) == {("sync_state", "mirrored"): 4, ("sync_log", "mirrored"): 1,
                          ("sync_log", "moves"): 1, ("sync_log", "pushed"): 1}
