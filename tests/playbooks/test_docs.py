"""docs/playbooks.md and docs/consent.md are tested: every YAML example is valid in the demo
project (validated as `retainer validate` does), the playbooks documented act on the demo,
and the documented payload has the keys a real one has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from retainer.checks import check_activation
from retainer.demo.generator import DemoSummary
from retainer.playbooks.act import act
from tests.conftest import DEMO_END
from tests.doc_examples import DOCS, blocks, demo_with, yaml

DOCUMENTS = (DOCS / "playbooks.md", DOCS / "consent.md")


def examples() -> list[Any]:
    return [pytest.param(body, id=f"{doc.stem}-{index}") for doc in DOCUMENTS
            for index, body in enumerate(blocks(doc, "yaml"))]


@pytest.mark.parametrize("body", examples())
def test_documented_example_is_valid(body: str, demo_project: tuple[Path, DemoSummary],
                                     tmp_path: Path) -> None:
    loaded = demo_with(demo_project[0], tmp_path / "demo", [body])
    catalog = loaded.catalog()
    check_activation(loaded.rulebook, loaded.plan(catalog=catalog), catalog)
    example = yaml.load(body)
    for name in (example or {}).get("playbooks", {}):
        assert name in loaded.rulebook.playbooks


def test_documented_playbooks_act_on_the_demo(demo_project: tuple[Path, DemoSummary],
                                              tmp_path: Path) -> None:
    bodies = blocks(DOCUMENTS[0], "yaml")
    loaded = demo_with(demo_project[0], tmp_path / "demo", bodies)
    loaded.run(DEMO_END)
    report = act(loaded, dry_run=True)
    documented = {name for body in bodies if not body.startswith("# retainer.yml")
                  for name in (yaml.load(body).get("playbooks") or {})}
    assert documented <= set(report.plan.playbooks)
    fired = [i for i in report.plan.items if i.outcome == "fire"]
    assert {i.playbook for i in fired} >= {"detractor_follow_up", "adoption_tips"}
    message = next(i for i in fired if i.action_kind == "message")
    [payload] = [json.loads(b) for b in blocks(DOCUMENTS[0], "json")]
    assert set(payload) == set(message.payload)
    assert set(payload["contact"]) == set(message.payload["contact"])
