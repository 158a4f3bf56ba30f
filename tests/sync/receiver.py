"""A real webhook receiver on loopback that behaves as a test scripts it.

It verifies signatures, keeps the state the records describe (upserts and deletes by key,
as a receiver honouring the protocol would), remembers every request, and can be told to
answer errors, stall, or drop connections for a number of requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes


@dataclass
class Receiver:
    url: str = ""
    secret: bytes | None = None
    # One entry consumed per request: an int status to answer without storing, "sleep:S"
    # to stall S seconds before answering 200, "hang" ("wait") to stall until `release()`
    # and then answer 503 (200), "drop" to close the connection, "429:retry=N" to answer
    # 429 with Retry-After: N. Afterwards requests succeed.
    script: list[int | str] = field(default_factory=list)
    fail_after: int | None = None      # answer 500 to every request after this many stored
    delay: float = 0.0                 # seconds every successful request takes
    # Record keys (or entity ids) answered with 422, quoting the refused records (and whom
    # they were for) as many receivers do.
    reject: set[str] = field(default_factory=set)
    requests: list[Received] = field(default_factory=list)      # every request that arrived
    stored: list[Received] = field(default_factory=list)        # the ones answered 2xx
    state: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → record
    seen_keys: set[str] = field(default_factory=set)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Let requests stalled by "hang" or "wait" finish."""
        self.released.set()

    def records(self) -> list[dict[str, Any]]:
        return [r for request in self.stored for r in request.body["records"]]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        headers = {k: v for k, v in handler.headers.items()}
        with self.lock:
            action = self.script.pop(0) if self.script else 200
            self.requests.append(Received(json.loads(raw or b"{}"), headers, raw))
        if action == "drop":
            handler.close_connection = True
            handler.connection.close()
            return
        if isinstance(action, str) and action.startswith("sleep:"):
            time.sleep(float(action.split(":")[1]))
            action = 200
        if action in ("hang", "wait"):
            self.released.wait(60)
            action = 503 if action == "hang" else 200
        if isinstance(action, str) and action[:1].isdigit():  # "429:retry=2": Retry-After
            status, _, retry = action.partition(":retry=")
            self._answer(handler, int(status), b"slow down", {"Retry-After": retry})
            return
        if self.secret is not None:
            expected = "sha256=" + hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, headers.get("X-Retainer-Signature", "")):
                with self.lock:
                    self.bad_signatures += 1
                self._answer(handler, 401, b"bad signature")
                return
        with self.lock:
            if self.fail_after is not None and len(self.stored) >= self.fail_after:
                action = 500
        refused = [r for r in json.loads(raw)["records"]
                   if r["key"] in self.reject or r["entity_id"] in self.reject]
        if action == 200 and refused:
            quoted = [{"key": r["key"], **r["payload"].get("contact", {})} for r in refused]
            self._answer(handler, 422, b"invalid records: " + json.dumps(quoted).encode())
            return
        if action != 200:
            self._answer(handler, int(action), b"scripted failure")
            return
        if self.delay:
            time.sleep(self.delay)
        body = json.loads(raw)
        with self.lock:
            received = Received(body, headers, raw)
            self.stored.append(received)
            self.seen_keys.add(headers.get("Idempotency-Key", ""))
            for record in body["records"]:
                if record["op"] == "delete":
                    self.state.pop(record["key"], None)
                else:
                    self.state[record["key"]] = record
        self._answer(handler, 200, b"{}")

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, body: bytes,
                headers: dict[str, str] | None = None) -> None:
        try:
            handler.send_response(status)
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)


@contextmanager
def running(receiver: Receiver | None = None, port: int = 0) -> Iterator[Receiver]:
    """Start `receiver` on 127.0.0.1 (`port`, or a free one) for the block."""
    receiver = receiver or Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver.handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        receiver.release()
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A loopback port nobody listens on (for 'destination down' cases)."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
