"""Files and webhook destinations on their own: idempotent delivery, signatures, retries."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from retainer.destinations import DeliveryError, Record, open_destination
from retainer.destinations.files import FilesDestination
from retainer.destinations.webhook import RetryPolicy, WebhookDestination, idempotency_key
from retainer.errors import RetainerError
from retainer.rulebook.loader import load_project
from tests.conftest import ProjectWriter
from tests.sync.receiver import Receiver, free_port, running

FAST = RetryPolicy(retries=3, backoff=0.01)


def rec(key: str, op: str = "upsert", **payload: object) -> Record:
    return Record(key, key.split(":")[0], dict(payload), op)  # type: ignore[arg-type]


# --- files -------------------------------------------------------------------------------

@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_files_merge_by_key_and_redelivery_changes_nothing(tmp_path: Path,
                                                           file_format: str) -> None:
    files = FilesDestination("out", tmp_path / "out", file_format)  # type: ignore[arg-type]
    files.deliver("accounts", [rec("a1", tier="gold", health=71.5, tags=["x"]),
                               rec("a2", tier="free", health=None)])
    files.deliver("accounts", [rec("a2", tier="pro", health=40.0), rec("a3", tier="free")])
    files.deliver("accounts", [rec("a1", "delete")])
    first = (tmp_path / "out" / f"accounts.{file_format}").read_bytes()
    files.deliver("accounts", [rec("a2", tier="pro", health=40.0), rec("a1", "delete")])
    state = files.read("accounts")
    assert sorted(state) == ["a2", "a3"]
    assert state["a2"]["tier"] == "pro"
    assert state["a3"]["entity_id"] == "a3"
    if file_format == "parquet":
        assert state["a2"]["health"] == 40.0
        table = pq.read_table(tmp_path / "out" / "accounts.parquet")
        assert table.column_names == ["key", "entity_id", "tier", "health", "tags"]
        assert (tmp_path / "out" / "accounts.parquet").read_bytes() == first
    else:
        with open(tmp_path / "out" / "accounts.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["key"] for r in rows] == ["a2", "a3"]
        assert rows[1]["health"] == ""          # no value is an empty cell
    assert not list((tmp_path / "out").glob(".*partial"))  # nothing left half-written


def test_files_keep_nested_values_as_json_and_survive_a_type_change(tmp_path: Path) -> None:
    files = FilesDestination("out", tmp_path, "parquet")
    files.deliver("s", [rec("k1", value=1, extra={"b": 2, "a": 1})])
    files.deliver("s", [rec("k2", value="one")])   # the column changes kind: kept as text
    state = files.read("s")
    assert state["k1"]["extra"] == '{"a": 1, "b": 2}'
    assert {state["k1"]["value"], state["k2"]["value"]} == {"1", "one"}


def test_files_refuse_a_path_as_stream_and_a_reserved_field(tmp_path: Path) -> None:
    files = FilesDestination("out", tmp_path, "csv")
    with pytest.raises(DeliveryError, match="cannot be a file name") as raised:
        files.deliver("../escape", [rec("k")])
    assert not raised.value.retryable
    with pytest.raises(DeliveryError, match="payload field named 'key'"):
        files.deliver("s", [Record("k", "k", {"key": "x"})])
    assert not (tmp_path / "s.csv").exists()


def test_files_report_a_damaged_file(tmp_path: Path) -> None:
    (tmp_path / "s.parquet").write_text("not parquet")
    with pytest.raises(DeliveryError, match="cannot read"):
        FilesDestination("out", tmp_path, "parquet").deliver("s", [rec("k")])
    assert (tmp_path / "s.parquet").read_text() == "not parquet"


# --- the registry ------------------------------------------------------------------------

DESTINATIONS = """
destinations:
  exports: {type: files, dir: out, format: csv}
  hooks: {type: webhook, url: "http://127.0.0.1:9/hook", secret_env: TEST_HOOK_SECRET}
"""


def test_open_destination_builds_the_declared_one(write_project: ProjectWriter,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rulebook = load_project(write_project(rulebook={"out.yml": DESTINATIONS}))
    with open_destination("exports", rulebook) as files:
        assert isinstance(files, FilesDestination)
        assert files.directory == rulebook.root / "out" and files.format == "csv"
    with pytest.raises(RetainerError, match="no destination named 'export'") as raised:
        open_destination("export", rulebook)
    assert "did you mean 'exports'" in str(raised.value)
    monkeypatch.delenv("TEST_HOOK_SECRET", raising=False)
    with pytest.raises(RetainerError, match="TEST_HOOK_SECRET, which is not set") as missing:
        open_destination("hooks", rulebook)
    assert missing.value.problem.location is not None
    assert missing.value.problem.location.file.name == "out.yml"
    monkeypatch.setenv("TEST_HOOK_SECRET", "s3cret")
    with open_destination("hooks", rulebook) as hook:
        assert isinstance(hook, WebhookDestination) and hook.secret == b"s3cret"


# --- webhook -----------------------------------------------------------------------------

def test_webhook_posts_signed_batches_with_a_stable_idempotency_key() -> None:
    with running(Receiver(secret=b"k3y")) as server:
        hook = WebhookDestination("hook", server.url, secret=b"k3y", batch=2, policy=FAST)
        records = [rec("a1", health=10), rec("a2", health=20), rec("a3", "delete")]
        hook.deliver("accounts", records)
        hook.deliver("accounts", records)       # a resend: same keys, the receiver can drop
        hook.close()
    assert server.bad_signatures == 0
    assert [len(r.body["records"]) for r in server.stored] == [2, 1, 2, 1]
    first, second = server.stored[0], server.stored[2]
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert len(server.seen_keys) == 2
    assert first.body["stream"] == "accounts"
    assert first.body["records"][0] == {"key": "a1", "entity_id": "a1", "op": "upsert",
                                        "payload": {"health": 10}}
    assert abs(int(first.headers["X-Retainer-Timestamp"]) - time.time()) < 60
    expected = hmac.new(b"k3y", first.raw, hashlib.sha256).hexdigest()
    assert first.headers["X-Retainer-Signature"] == f"sha256={expected}"
    assert sorted(server.state) == ["a1", "a2"]


def test_idempotency_key_changes_with_the_payload() -> None:
    assert idempotency_key("s", [rec("a", x=1)]) == idempotency_key("s", [rec("a", x=1)])
    assert idempotency_key("s", [rec("a", x=1)]) != idempotency_key("s", [rec("a", x=2)])
    assert idempotency_key("s", [rec("a", x=1)]) != idempotency_key("t", [rec("a", x=1)])
    assert idempotency_key("s", [rec("a")]) != idempotency_key("s", [rec("a", "delete")])


def test_webhook_retries_5xx_drops_and_429_then_succeeds() -> None:
    with running(Receiver(script=[503, "drop", "429:retry=0.2", 500])) as server:
        waits: list[float] = []
        policy = RetryPolicy(retries=4, backoff=0.01, sleep=lambda s: (waits.append(s),
                                                                       time.sleep(s)))
        hook = WebhookDestination("hook", server.url, policy=policy)
        hook.deliver("s", [rec("a1", v=1)])
        hook.close()
    assert len(server.requests) == 5 and len(server.stored) == 1
    assert waits[2] >= 0.2                     # Retry-After was honoured
    assert waits[0] < waits[1] < 0.2           # the backoff doubles
    assert len({r.headers["Idempotency-Key"] for r in server.requests}) == 1


def test_webhook_does_not_retry_a_client_error() -> None:
    with running(Receiver(script=[422])) as server:
        hook = WebhookDestination("hook", server.url, policy=FAST)
        with pytest.raises(DeliveryError, match=r"refused the request.*422") as raised:
            hook.deliver("s", [rec("a1")])
        hook.close()
    assert not raised.value.retryable
    assert len(server.requests) == 1


def test_webhook_gives_up_loudly_when_the_server_stays_down() -> None:
    hook = WebhookDestination("hook", f"http://127.0.0.1:{free_port()}/hook", policy=FAST)
    with pytest.raises(DeliveryError, match=r"failed after 4 attempt\(s\): cannot reach") as e:
        hook.deliver("s", [rec("a1")])
    hook.close()
    assert e.value.retryable
    assert "next sync sends these records again" in (e.value.problem.hint or "")


def test_webhook_times_out_a_stalled_server_and_retries() -> None:
    with running(Receiver(script=["sleep:1.0"])) as server:
        hook = WebhookDestination("hook", server.url, timeout=0.2, policy=FAST)
        hook.deliver("s", [rec("a1", v=1)])
        hook.close()
        time.sleep(1.0)                        # let the stalled handler finish
    # The stalled request was answered after the client gave up; the retry was stored.
    assert len(server.requests) == 2
    assert server.state["a1"]["payload"] == {"v": 1}


def test_webhook_signature_verifies_as_documented() -> None:
    """The receiver snippet in docs/sync.md, run against a real request."""
    document = (Path(__file__).parents[2] / "docs" / "sync.md").read_text(encoding="utf-8")
    snippet = document.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(snippet, namespace)
    verify = namespace["verify"]
    with running(Receiver()) as server:
        hook = WebhookDestination("hook", server.url, secret=b"topsecret", policy=FAST)
        hook.deliver("s", [rec("a1", v=1)])
        hook.close()
    request = server.stored[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert verify(request.raw, headers, b"topsecret") == json.loads(request.raw)  # type: ignore[operator]
    with pytest.raises(ValueError):
        verify(request.raw.replace(b'"v":1', b'"v":2'), headers, b"topsecret")  # type: ignore[operator]
    with pytest.raises(ValueError):
        verify(request.raw, headers, b"wrong")  # type: ignore[operator]
