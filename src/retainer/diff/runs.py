"""What the project's state store gives a diff: the rulebook a recorded run used, and the
stages history holds now. The diff only reads the store and never creates one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from retainer.diff.results import History
from retainer.diff.rulebooks import old_rulebook
from retainer.errors import RetainerError
from retainer.rulebook.loader import Rulebook
from retainer.state import Store, open_store, store_exists


def run_label(run_id: int) -> str:
    """How the old side is named in output and error locations: `run 12:rulebook/…`."""
    return f"run {run_id}"


def rulebook_of_run(project: Rulebook, run_id: int) -> Rulebook:
    """The rulebook recorded run `run_id` used (its stored files), evaluated against today's
    data. `project` is the working tree's rulebook: its state store holds the run and its
    directory the data."""
    with _existing_store(project) as store:
        if store is None:
            raise RetainerError(f"no run {run_id}: the project has no runs recorded yet",
                                hint="'retainer run' records one; 'retainer runs' lists them")
        record = store.run(run_id)  # an unknown id is an error naming 'retainer runs'
        files = store.rulebook_files(run_id)
    if not files:
        raise RetainerError(
            f"run {run_id} was recorded before Retainer kept each run's rulebook files, so "
            "its rulebook cannot be rebuilt",
            hint=f"compare with the commit it ran at: --against {record.git_commit[:12]}"
            if record.git_commit else "compare with a git ref (--against GIT_REF) or with a "
                                      "later run")
    return old_rulebook(files, project.root, run_label(run_id))


@contextmanager
def stored_history(rulebook: Rulebook) -> Iterator[History | None]:
    """The open stages the project's state store holds — what its next run starts from — or
    None when there is no store yet."""
    with _existing_store(rulebook) as store:
        yield None if store is None else store.open_memberships


@contextmanager
def _existing_store(rulebook: Rulebook) -> Iterator[Store | None]:
    spec = rulebook.config.state
    if not store_exists(spec, rulebook.root):
        yield None
        return
    store = open_store(spec, rulebook.root)
    try:
        yield store
    finally:
        store.close()
