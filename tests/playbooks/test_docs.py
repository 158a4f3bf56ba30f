"""docs/playbooks.md and docs/consent.md are tested: every YAML example is valid in the demo
project (validated as `retainer validate` does), the playbooks documented act on the demo,
and the documented payload has the keys a real one has."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from retainer.checks import check_activation
from retainer.demo.generator import DemoSummary
from retainer.playbooks.act import act
from retainer.project import Project
from retainer.rulebook.loader import SECTIONS
from tests.conftest import DEMO_END
from tests.test_docs import merged_rulebook

ROOT = Path(__file__).parent.parent.parent
DOCS = (ROOT / "docs" / "playbooks.md", ROOT / "docs" / "consent.md")
yaml = YAML(typ="safe")


def blocks(document: Path, language: str) -> list[str]:
    text = document.read_text(encoding="utf-8")
    return [body for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.DOTALL)
            if lang == language]


def examples() -> list[Any]:
    return [pytest.param(body, id=f"{doc.stem}-{index}") for doc in DOCS
            for index, body in enumerate(blocks(doc, "yaml"))]


def with_example(demo: Path, target: Path, bodies: list[str]) -> Project:
    """A copy of the demo with the examples' definitions put in place of the same names."""
    shutil.copytree(demo, target, ignore=shutil.ignore_patterns(".retainer"))
    project = yaml.load((target / "retainer.yml").read_text())
    merged: dict[str, Any] = {}
    for body in bodies:
        example = yaml.load(body)
        if body.startswith("# retainer.yml"):
            project.update(example)
            continue
        assert set(example) <= set(SECTIONS), set(example) - set(SECTIONS)
        project["sources"].update(example.pop("sources", {}))
        for section, entries in example.items():
            merged.setdefault(section, {}).update(entries)
    with (target / "retainer.yml").open("w") as handle:
        YAML().dump(project, handle)
    rulebook = merged_rulebook(target, merged)
    for file in (target / "rulebook").glob("*.yml"):
        file.unlink()
    with (target / "rulebook" / "all.yml").open("w") as handle:
        YAML().dump(rulebook, handle)
    return Project(target)


@pytest.mark.parametrize("body", examples())
def test_documented_example_is_valid(body: str, demo_project: tuple[Path, DemoSummary],
                                     tmp_path: Path) -> None:
    loaded = with_example(demo_project[0], tmp_path / "demo", [body])
    catalog = loaded.catalog()
    check_activation(loaded.rulebook, loaded.plan(catalog=catalog), catalog)
    example = yaml.load(body)
    for name in (example or {}).get("playbooks", {}):
        assert name in loaded.rulebook.playbooks


def test_documented_playbooks_act_on_the_demo(demo_project: tuple[Path, DemoSummary],
                                              tmp_path: Path) -> None:
    bodies = blocks(DOCS[0], "yaml")
    loaded = with_example(demo_project[0], tmp_path / "demo", bodies)
    loaded.run(DEMO_END)
    report = act(loaded, dry_run=True)
    documented = {name for body in bodies if not body.startswith("# retainer.yml")
                  for name in (yaml.load(body).get("playbooks") or {})}
    assert documented <= set(report.plan.playbooks)
    fired = [i for i in report.plan.items if i.outcome == "fire"]
    assert {i.playbook for i in fired} >= {"detractor_follow_up", "adoption_tips"}
    message = next(i for i in fired if i.action_kind == "message")
    [payload] = [json.loads(b) for b in blocks(DOCS[0], "json")]
    assert set(payload) == set(message.payload)
    assert set(payload["contact"]) == set(message.payload["contact"])
