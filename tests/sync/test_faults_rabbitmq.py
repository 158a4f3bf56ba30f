"""RabbitMQ faults, for one message per segment change: down at the start, the connection
cut once and for good mid-sync, a hung broker, no queue bound. After the next successful
sync every expected change has arrived; a message can arrive twice only when the
connection died between the broker taking it and Retainer hearing so — then with the same
message_id, by which consumers drop it, and the tests count them."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from retainer.project import Project
from retainer.sync.apply import SyncResult
from retainer.sync.records import changes_since
from tests.conftest import ProjectWriter
from tests.sync.faults import CASES, FaultCase, expected, sync_once
from tests.sync.project import DAY, make_project, rerun
from tests.sync.receiver import free_port
from tests.sync.servers import Proxy, Queue, proxy, rabbit_queue

COUNT = 12


def project(write_project: ProjectWriter, port: int, exchange: str, mode: str = "changes",
            timeout: float = 2) -> Path:
    root = make_project(write_project, f"""
    destinations:
      bus: {{type: rabbitmq, url: "amqp://guest:guest@127.0.0.1:{port}/%2F",
             exchange: {exchange}, timeout: {timeout}, retries: 1, backoff: 0.05, batch: 4}}
    syncs:
      moves: {{to: bus, mode: {mode}, table: segment.changes}}
    """, count=COUNT)
    Project(root).run(DAY)
    return root


def expected_ids(root: Path) -> set[str]:
    project = Project(root)
    with project.store() as store:
        changes = changes_since(store, project.rulebook, project.rulebook.syncs["moves"], DAY)
    return {c.key for c in changes}


def recover(root: Path, queue: Queue, fault: str, bad: SyncResult | None,
            received: list[tuple[Any, dict[str, Any]]]) -> Counter[str]:
    [good] = sync_once(root)
    received += queue.messages()
    ids = Counter(str(body["key"]) for _, body in received)
    # A change sent twice carries the same message_id both times: the consumer drops it.
    assert len({(body["key"], p.message_id) for p, body in received}) == len(ids)
    exact = good.status == "succeeded" and set(ids) == expected_ids(root)
    duplicates = sum(n - 1 for n in ids.values())
    CASES.append(FaultCase("rabbitmq", fault, bad is not None and bad.status == "failed",
                           exact, duplicates))
    assert exact, (good.error, sorted(set(ids) ^ expected_ids(root)))
    return ids


def test_changes_down_at_the_start(write_project: ProjectWriter) -> None:
    port = free_port()
    with rabbit_queue("segment.#") as queue:
        root = project(write_project, port, queue.exchange)
        [bad] = sync_once(root)
        assert (bad.status, bad.failed, bad.pending) == ("failed", 4, COUNT + 4 - 4)
        with proxy(("127.0.0.1", 5672), port=port):
            ids = recover(root, queue, "down at the start (connection refused)", bad, [])
    assert sum(ids.values()) == len(ids)          # nothing arrived twice


def test_connection_cut_once_mid_sync(write_project: ProjectWriter) -> None:
    with rabbit_queue("segment.#") as queue, proxy(("127.0.0.1", 5672)) as link:
        root = project(write_project, link.port, queue.exchange)
        [result] = sync_once(root, lambda call: link.cut() if call == 2 else None)
        assert result.status == "succeeded" and link.accepted == 2
        received = queue.messages()
        ids = Counter(str(body["key"]) for _, body in received)
        exact = set(ids) == expected_ids(root)
        CASES.append(FaultCase("rabbitmq", "connection cut once mid-sync (reconnects)", False,
                               exact, sum(n - 1 for n in ids.values())))
        assert exact


def test_connection_lost_for_good_mid_sync(write_project: ProjectWriter) -> None:
    with rabbit_queue("segment.#") as queue, proxy(("127.0.0.1", 5672)) as link:
        root = project(write_project, link.port, queue.exchange)

        def lose(call: int, link: Proxy = link) -> None:
            if call == 1:
                link.refuse = True
                link.cut()

        [bad] = sync_once(root, lose)
        assert (bad.status, bad.messages, bad.failed) == ("failed", 4, 4)
        received = queue.messages()
        link.refuse = False
        recover(root, queue, "connection lost for good mid-sync", bad, received)


def test_hung_broker_times_out(write_project: ProjectWriter) -> None:
    with rabbit_queue("segment.#") as queue, proxy(("127.0.0.1", 5672)) as link:
        root = project(write_project, link.port, queue.exchange, timeout=0.5)

        def hang(call: int, link: Proxy = link) -> None:
            if call == 1:
                link.stall = True

        [bad] = sync_once(root, hang)
        assert bad.status == "failed" and "did not c" in (bad.error or "")
        link.stall = False
        link.cut()
        received = queue.messages()
        recover(root, queue, "broker hangs (no confirm within the timeout)", bad, received)


def test_no_queue_bound_is_a_loud_failure(write_project: ProjectWriter) -> None:
    with rabbit_queue("nothing.matches") as queue:
        root = project(write_project, 5672, queue.exchange)
        [bad] = sync_once(root)
        assert bad.status == "failed" and "no queue is bound" in (bad.error or "")
        queue.channel.queue_bind(queue.name, queue.exchange, "segment.#")
        recover(root, queue, "unroutable (no queue bound), then bound", bad, [])


def test_upsert_mode_and_later_changes(write_project: ProjectWriter) -> None:
    with rabbit_queue("segment.#") as queue:
        root = project(write_project, 5672, queue.exchange, mode="upsert")
        [first] = sync_once(root)
        rerun(root, COUNT, {"a01": 5}, DAY + timedelta(days=1))
        [second] = sync_once(root)
        received = queue.messages()
    assert (first.upserted, second.upserted) == (COUNT, 1)
    latest = {str(body["key"]): body["payload"] for _, body in received}
    assert latest == expected(root, "moves")
