"""docs/sync.md is tested: its rulebook examples validate against the demo (and the ones that
write files sync for real), its JSON shapes are what Retainer sends, and its receiver
snippet verifies a real request (tests/sync/test_destinations.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from retainer.checks import check_activation
from retainer.destinations.base import Record
from retainer.destinations.webhook import WebhookDestination, idempotency_key
from retainer.sync.apply import SyncResult
from retainer.sync.records import Change
from retainer.sync.runner import run_syncs
from tests.conftest import DEMO_END
from tests.doc_examples import DOCS, blocks, demo_with, yaml

DOC = DOCS / "sync.md"


@pytest.fixture(scope="module")
def ran_demo(demo_project: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
             ) -> Path:
    target = tmp_path_factory.mktemp("syncdocs") / "demo"
    demo_with(demo_project[0], target, []).run(DEMO_END)
    return target


@pytest.mark.parametrize("index", range(len(blocks(DOC, "yaml"))))
def test_documented_rulebook_example(index: int, ran_demo: Path, tmp_path: Path) -> None:
    body = blocks(DOC, "yaml")[index]
    example = yaml.load(body)
    project = demo_with(ran_demo, tmp_path / "demo", [body], keep_results=True)
    catalog = project.catalog()
    check_activation(project.rulebook, project.plan(catalog=catalog), catalog)
    local = [name for name in example.get("syncs", {})
             if project.rulebook.destinations[project.rulebook.syncs[name].to].type == "files"]
    for result in run_syncs(project, local) if local else []:
        assert isinstance(result, SyncResult) and result.status == "succeeded", result
        assert result.upserted + result.messages > 0


def test_documented_json_is_what_is_sent() -> None:
    change, request = (json.loads(body) for body in blocks(DOC, "json"))
    sent = Change("A1", "lifecycle", DEMO_END, 1, "activated", "at_risk", {}).record(
        "account", "account_id")
    assert set(change) == set(sent.payload)
    body, _ = WebhookDestination("hook", "http://127.0.0.1:9").request(
        "s", [Record("A1", "A1", {"x": 1}), Record("A2", "A2", op="delete")],
        idempotency_key("s", []))
    real = json.loads(body)
    assert set(request) == set(real)
    assert [set(r) for r in request["records"]] == [set(r) for r in real["records"]]
    assert request["records"][1]["payload"] == real["records"][1]["payload"] == {}
