"""`retainer forget` and syncs removed from the rulebook whose state says their destination
holds records about the person: erased there while the destination is declared; otherwise
reported loudly as not reached — as docs/privacy.md shows — the erasure unfinished until
it is."""

from __future__ import annotations

import textwrap
from pathlib import Path

from typer.testing import CliRunner

from retainer.cli.main import app
from retainer.destinations.files import FilesDestination
from retainer.project import Project
from retainer.sync import state
from tests.conftest import ProjectWriter
from tests.doc_examples import DOCS, blocks
from tests.sync.faults import sync_once
from tests.sync.project import DAY, make_project

SYNCS = """
destinations:
  out: {type: files, dir: out, format: csv}
  archive: {type: files, dir: archive, format: csv}
syncs:
  people: {to: out, entity: contact}
  people_archive: {to: archive, entity: contact}
"""


def cli(*args: str | Path, code: int = 0) -> str:
    done = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "2000"})
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    assert done.exit_code == code, done.output[-3000:]
    return done.stdout + done.stderr


def words(text: str) -> str:
    return " ".join(text.split())


def rulebook(root: Path, text: str) -> None:
    (root / "rulebook" / "syncs.yml").write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_removed_syncs_destination_is_erased_or_reported(write_project: ProjectWriter
                                                            ) -> None:
    root = make_project(write_project, SYNCS, count=2)
    Project(root).run(DAY)
    assert {r.status for r in sync_once(root)} == {"succeeded"}
    archive = FilesDestination("archive", root / "archive", "csv")
    assert "a01-c1" in archive.read("people_archive")
    rulebook(root, SYNCS.replace("  archive: {type: files, dir: archive, format: csv}\n", "")
             .replace("  people_archive: {to: archive, entity: contact}\n", ""))

    done = cli("forget", "--contact", "a01-c1", "-p", root, "--yes", code=1)
    assert ("1 synced record delivered by syncs no longer in the rulebook "
            "(people_archive: 1)") in done
    assert "out (sync people): deleted 1 record(s) from people" in done
    assert ("archive (sync people_archive): not reached: sync 'people_archive' is no longer "
            "in the rulebook and its destination 'archive' is not declared under "
            "'destinations:'") in done
    assert "1 deletion(s) at destinations failed" in done
    [documented] = [b for b in blocks(DOCS / "privacy.md", "text") if "not reached" in b]
    assert words(documented) in words(done)
    assert "a01-c1" in archive.read("people_archive")
    assert "unfinished" in cli("erasures", "-p", root)

    # The destination is declared again (the sync stays removed): the erasure finishes.
    rulebook(root, SYNCS.replace("  people_archive: {to: archive, entity: contact}\n", ""))
    again = cli("forget", "--contact", "a01-c1", "-p", root, "--yes")
    assert ("archive (sync people_archive): deleted 1 record(s) from people_archive (sync "
            "'people_archive' is no longer in the rulebook; destination 'archive' still is)"
            ) in again
    assert "a01-c1" not in archive.read("people_archive")
    assert "a01-c2" in archive.read("people_archive")
    assert "unfinished" not in cli("erasures", "-p", root)
    with Project(root).store() as store:
        assert [h.sync for h in state.held_by_entities(store, ["a01-c1"])] == []
        assert "a01-c2" in state.known_state(store, "people_archive")
