"""The local servers the sync tests talk to: PostgreSQL, RabbitMQ, and a TCP proxy that
can cut connections to them (a network failure between Retainer and a real server).

Like tests/conftest.py: without the server a test skips with instructions, except under CI,
where its absence is a failure.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/%2F"


def require_rabbitmq() -> None:
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(RABBITMQ + "?connection_attempts=1"
                                                   "&socket_timeout=3")).close()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"RabbitMQ is not reachable at 127.0.0.1:5672 ({exc}); start it with "
                    "'service rabbitmq-server start'")


@dataclass
class Queue:
    """A queue bound to a fresh exchange, to read what a destination published."""

    exchange: str
    name: str
    routing_key: str
    connection: Any = None
    channel: Any = None

    def messages(self) -> list[tuple[Any, dict[str, Any]]]:
        """Everything waiting in the queue: (properties, decoded body), acknowledged."""
        import json

        found = []
        while True:
            method, properties, body = self.channel.basic_get(self.name, auto_ack=True)
            if method is None:
                return found
            found.append((properties, json.loads(body)))


@contextmanager
def rabbit_queue(routing_key: str = "#") -> Iterator[Queue]:
    import pika

    require_rabbitmq()
    suffix = uuid.uuid4().hex[:8]
    queue = Queue(f"retainer_test_{suffix}", f"retainer_test_{suffix}", routing_key)
    queue.connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ))
    queue.channel = queue.connection.channel()
    queue.channel.exchange_declare(queue.exchange, exchange_type="topic", durable=True)
    queue.channel.queue_declare(queue.name, durable=False, auto_delete=False)
    queue.channel.queue_bind(queue.name, queue.exchange, routing_key)
    try:
        yield queue
    finally:
        queue.channel.queue_delete(queue.name)
        queue.channel.exchange_delete(queue.exchange)
        queue.connection.close()


@dataclass
class Proxy:
    """Forwards 127.0.0.1:<port> to a server; `cut()` drops every open connection and
    `refuse` makes it close new ones at once (the server looks down)."""

    target: tuple[str, int]
    port: int = 0
    refuse: bool = False
    stall: bool = False                    # hold everything sent upstream (a hung server)
    delay: float = 0.0                     # seconds added to every chunk sent upstream
    cut_after_bytes: int | None = None     # drop connections once this much went upstream
    sent: int = 0
    accepted: int = 0                      # connections made through the proxy
    pairs: list[tuple[socket.socket, socket.socket]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def cut(self) -> None:
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for client, upstream in pairs:
            for end in (client, upstream):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        ends = [client, upstream]
        try:
            while True:
                ready, _, _ = select.select(ends, [], [], 0.5)
                if self.stall:
                    time.sleep(0.05)
                    continue
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    other = upstream if end is client else client
                    if end is client and self.delay:
                        time.sleep(self.delay)
                    if end is client:
                        with self.lock:
                            self.sent += len(data)
                            over = (self.cut_after_bytes is not None
                                    and self.sent > self.cut_after_bytes)
                        if over:
                            self.cut_after_bytes = None
                            threading.Thread(target=self.cut, daemon=True).start()
                            return
                    other.sendall(data)
        except (OSError, ValueError):  # ValueError: a socket closed by cut()
            return
        finally:
            for end in ends:
                with suppress(OSError):
                    end.close()


@contextmanager
def proxy(target: tuple[str, int], port: int = 0) -> Iterator[Proxy]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    state = Proxy(target, listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.2)
            if not ready:
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if state.refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with state.lock:
                state.pairs.append((client, upstream))
                state.accepted += 1
            threading.Thread(target=state._pump, args=(client, upstream), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        state.cut()
