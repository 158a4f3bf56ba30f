"""The examples of docs/*.md, for the tests that check them: fenced blocks, and a copy of
the demo project with an example's definitions put in place of the same names."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from retainer.project import Project
from retainer.rulebook.loader import SECTIONS
from tests.test_docs import merged_rulebook

DOCS = Path(__file__).parent.parent / "docs"
yaml = YAML(typ="safe")


def blocks(document: Path, language: str) -> list[str]:
    """The document's fenced blocks in `language` ('' for those without one)."""
    text = document.read_text(encoding="utf-8")
    return [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.DOTALL)
            if lang == language]


def demo_with(demo: Path, target: Path, bodies: Sequence[str],
              keep_results: bool = False) -> Project:
    """A copy of the demo at `target` (with its results and store when `keep_results`),
    with the examples' definitions in place: `# retainer.yml` examples are settings,
    the others rulebook sections."""
    ignore = None if keep_results else shutil.ignore_patterns(".retainer")
    shutil.copytree(demo, target, ignore=ignore)
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
