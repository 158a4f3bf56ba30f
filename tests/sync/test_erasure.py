"""forget_entities: what syncs delivered about people is taken back from the destinations
and forgotten by the store."""

from __future__ import annotations

from datetime import timedelta

from retainer.destinations.files import FilesDestination
from retainer.privacy.propagation import propagate
from retainer.project import Project
from retainer.state import Store
from retainer.sync import state
from retainer.sync.erasure import Erased, forget_entities
from tests.conftest import ProjectWriter
from tests.sync.faults import sync_once
from tests.sync.project import DAY, make_project, rerun
from tests.sync.receiver import Receiver, free_port, running


def syncs(url: str) -> str:
    return f"""
    destinations:
      out: {{type: files, dir: out, format: csv}}
      hook: {{type: webhook, url: "{url}", retries: 0}}
    syncs:
      people: {{to: out, entity: contact, mode: mirror}}
      people_hook: {{to: hook, entity: contact}}
      people_moves: {{to: out, entity: contact, mode: changes}}
      accounts: {{to: out}}
    """


def details(outcomes: list[Erased]) -> dict[str, str]:
    assert all(o.ok for o in outcomes), outcomes
    return {o.sync: o.detail for o in outcomes}


def held(store: Store, entity_id: str) -> list[tuple[str, str]]:
    """(sync, key) of every record the store says a destination holds about the entity."""
    return [(h.sync, h.record_key) for h in state.held_by_entities(store, [entity_id])]


def test_forget_a_contact_everywhere(write_project: ProjectWriter) -> None:
    with running(Receiver()) as server:
        root = make_project(write_project, syncs(server.url), count=3)
        Project(root).run(DAY)
        assert {r.status for r in sync_once(root)} == {"succeeded"}
        files = FilesDestination("out", root / "out", "csv")
        assert "a01-c1" in files.read("people") and "a01-c1" in server.state
        project = Project(root)
        with project.store() as store:
            outcomes = details(forget_entities(project.rulebook, store, ["a01-c1"], "contact"))
            assert held(store, "a01-c1") == []
            assert "a01-c2" in state.known_state(store, "people")
        assert outcomes == {
            "people": "deleted 1 record(s) from people",
            "people_hook": "deleted 1 record(s) from people_hook",
            "people_moves": "sent an erasure message to people_moves, withdrawing 1 "
                            "earlier message(s)"}
    assert "a01-c1" not in files.read("people") and "a01-c2" in files.read("people")
    assert "a01-c1" not in server.state and server.stored[-1].body["records"] == [
        {"key": "a01-c1", "entity_id": "a01-c1", "op": "delete", "payload": {}}]
    moves = files.read("people_moves")
    assert not [k for k, row in moves.items() if row["entity_id"] == "a01-c1"]
    assert [k for k, row in moves.items() if row["entity_id"] == "a02-c1"]


def test_a_failed_erasure_is_reported_and_kept(write_project: ProjectWriter) -> None:
    port = free_port()
    with running(port=port):
        root = make_project(write_project, syncs(f"http://127.0.0.1:{port}/hook"), count=2)
        Project(root).run(DAY)
        sync_once(root)
    project = Project(root)                      # the receiver is gone now
    with project.store() as store:
        [people, hook, moves] = forget_entities(project.rulebook, store, ["a01-c1"], "contact")
        assert (people.ok, moves.ok, hook.sync, hook.ok) == (True, True, "people_hook", False)
        assert hook.detail.startswith("failed: destination 'hook' failed")
        assert held(store, "a01-c1") == [("people_hook", "a01-c1")]


def test_an_erased_entity_is_not_sent_again_by_mirror(write_project: ProjectWriter) -> None:
    with running(Receiver()) as server:
        root = make_project(write_project, syncs(server.url), count=2)
        Project(root).run(DAY)
        sync_once(root)
        project = Project(root)
        with project.store() as store:
            forget_entities(project.rulebook, store, ["a02"], "account")
        # The account leaves the sources as well (the privacy side suppresses it).
        rerun(root, 2, day=DAY + timedelta(days=1), gone=("a02",))
        results = {r.plan.name: r for r in sync_once(root)}
    assert results["accounts"].upserted == 0 and results["accounts"].deleted == 0
    assert "a02" not in FilesDestination("out", root / "out", "csv").read("accounts")


def test_a_changes_sync_says_nothing_about_someone_it_never_sent(
        write_project: ProjectWriter) -> None:
    """Executives never carry the practitioner tag, so no message was ever sent about
    a01-c2: erasing them must not hand their id to the destination either."""
    with running(Receiver()) as server:
        root = make_project(write_project, f"""
        destinations:
          hook: {{type: webhook, url: "{server.url}", retries: 0}}
        syncs:
          moves: {{to: hook, entity: contact, mode: changes, columns: [practitioner]}}
        """, count=2)
        Project(root).run(DAY)
        sync_once(root)
        sent = [r["entity_id"] for r in server.records()]
        assert "a01-c1" in sent and "a01-c2" not in sent
        project = Project(root)
        with project.store() as store:
            assert forget_entities(project.rulebook, store, ["a01-c2"], "contact") == []
    assert "a01-c2" not in str([r.body for r in server.requests])


def test_one_erasure_opens_each_destination_once(write_project: ProjectWriter) -> None:
    """The contact ids of one erasure (everyone with an address) go to a destination
    together: the webhook gets one request, not one per id."""
    with running(Receiver()) as server:
        root = make_project(write_project, syncs(server.url), count=3)
        Project(root).run(DAY)
        sync_once(root)
        before = len(server.requests)
        project = Project(root)
        with project.store() as store:
            outcomes = propagate(project.rulebook, store, ["a01-c1", "a02-c1", "a03-c2"], [])
        requests = server.requests[before:]
    assert len(requests) == 1
    assert {o.what: (o.destination, o.ok, o.detail) for o in outcomes} == {
        "sync people": ("out", True, "deleted 3 record(s) from people"),
        "sync people_hook": ("hook", True, "deleted 3 record(s) from people_hook"),
        # a03-c2 is an executive: no message was ever sent about them.
        "sync people_moves": ("out", True, "sent 2 erasure messages to people_moves, "
                                           "withdrawing 2 earlier message(s)")}
    assert sorted(r["key"] for r in requests[0].body["records"]) == [
        "a01-c1", "a02-c1", "a03-c2"]
    assert not {"a01-c1", "a02-c1", "a03-c2"} & set(server.state)


def test_a_removed_syncs_records_are_told_apart_by_their_key_columns(
        write_project: ProjectWriter) -> None:
    """Its level went with the sync, so its records say whom they are about. A person who is
    their own account (B2C) is named in both key columns: their contact record is theirs."""
    from retainer.sync.erasure import _about
    rulebook = Project(make_project(write_project, "syncs: {}\n", count=1)).rulebook

    def about_contact(payload: dict[str, str] | None) -> bool:
        return _about(rulebook, state.Held("gone", "u1", "k", payload), "contact")

    assert about_contact({"contact_id": "u1", "account_id": "u1"})
    assert about_contact({"contact_id": "u1", "account_id": "a1"})
    assert not about_contact({"account_id": "u1", "lifecycle": "new"})  # the account u1's
    assert about_contact(None)  # a delete that waits: its sync meant it gone
