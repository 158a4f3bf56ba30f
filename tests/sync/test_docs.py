"""docs/sync.md is tested: its rulebook examples validate against the demo (and the ones that
write files sync for real), its JSON shapes are what Retainer sends, and its receiver
snippet verifies a real request (tests/sync/test_destinations.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from retainer.checks import check_activation
from retainer.destinations.base import Record
from retainer.destinations.webhook import WebhookDestination, idempotency_key
from retainer.project import Project
from retainer.sync.apply import SyncResult
from retainer.sync.records import Change
from retainer.sync.runner import run_syncs
from tests.conftest import DEMO_END
from tests.test_docs import blocks, merged_rulebook

DOC = Path(__file__).parents[2] / "docs" / "sync.md"
yaml = YAML(typ="safe")


@pytest.fixture(scope="module")
def ran_demo(demo_project: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
             ) -> Path:
    target = tmp_path_factory.mktemp("syncdocs") / "demo"
    shutil.copytree(demo_project[0], target, ignore=shutil.ignore_patterns(".retainer"))
    Project(target).run(DEMO_END)
    return target


@pytest.mark.parametrize("index", range(len(blocks(DOC, "yaml"))))
def test_documented_rulebook_example(index: int, ran_demo: Path, tmp_path: Path) -> None:
    example = yaml.load(blocks(DOC, "yaml")[index])
    root = tmp_path / "demo"
    shutil.copytree(ran_demo, root)
    merged = merged_rulebook(root, example)
    for file in (root / "rulebook").glob("*.yml"):
        file.unlink()
    with (root / "rulebook" / "all.yml").open("w") as handle:
        YAML().dump(merged, handle)
    project = Project(root)
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
