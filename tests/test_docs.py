"""The documentation is tested: every YAML example in docs/rulebook.md and the README runs
against the demo project's data, and the README's commands work as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from ruamel.yaml import YAML

from retainer.demo.generator import DemoSummary
from retainer.project import Project
from retainer.rulebook.loader import SECTIONS
from retainer.testing import run_all
from tests.conftest import DEMO_END

ROOT = Path(__file__).parent.parent
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
yaml = YAML(typ="safe")


def blocks(document: Path, language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(document.read_text(encoding="utf-8"))
            if lang == language]


def examples() -> list[Any]:
    found = []
    for document in (ROOT / "docs" / "rulebook.md", ROOT / "README.md"):
        for index, body in enumerate(blocks(document, "yaml")):
            found.append(pytest.param(body, id=f"{document.name}-{index}"))
    return found


@pytest.fixture
def demo_copy(demo_project: tuple[Path, DemoSummary], tmp_path: Path) -> Path:
    target = tmp_path / "demo"
    shutil.copytree(demo_project[0], target, ignore=shutil.ignore_patterns(".retainer"))
    return target


def merged_rulebook(root: Path, example: dict[str, Any]) -> dict[str, Any]:
    """The demo rulebook with the example's definitions put in place of the same names."""
    merged: dict[str, Any] = {}
    for file in sorted((root / "rulebook").glob("*.yml")):
        for section, entries in (yaml.load(file.read_text()) or {}).items():
            merged.setdefault(section, {}).update(entries)
    for section, entries in example.items():
        if section == "health":
            merged["health"] = entries
        else:
            merged.setdefault(section, {}).update(entries)
    return merged


@pytest.mark.parametrize("body", examples())
def test_documented_example_runs(body: str, demo_copy: Path) -> None:
    example = yaml.load(body)
    if isinstance(example, list):  # rule tests
        shutil.rmtree(demo_copy / "tests")
        (demo_copy / "tests").mkdir()
        (demo_copy / "tests" / "doc.yml").write_text(body, encoding="utf-8")
        results = run_all(Project(demo_copy))
        assert results and all(r.passed for r in results), [
            (r.case.name, r.mismatches, r.error) for r in results]
        return
    if body.startswith("# retainer.yml"):
        settings = {k: v for k, v in example.items() if k not in SECTIONS}
        config = Project(demo_copy).rulebook.config.model_validate(settings)
        assert config.name == example["name"]
        return
    assert set(example) <= set(SECTIONS), f"unexpected sections {set(example) - set(SECTIONS)}"
    if "sources" in example:
        project = yaml.load((demo_copy / "retainer.yml").read_text())
        project["sources"].update(example.pop("sources"))
        with (demo_copy / "retainer.yml").open("w") as handle:
            YAML().dump(project, handle)
    merged = merged_rulebook(demo_copy, example)
    for file in (demo_copy / "rulebook").glob("*.yml"):
        file.unlink()
    with (demo_copy / "rulebook" / "all.yml").open("w") as handle:
        YAML().dump(merged, handle)
    Project(demo_copy).run(DEMO_END)
    with duckdb.connect(str(demo_copy / ".retainer/output.duckdb"), read_only=True) as db:
        columns = {row[0] for table in ("account_results", "contact_results")
                   for row in db.sql(f"DESCRIBE {table}").fetchall()}
    for section in ("traits", "segments", "tags"):
        for name in example.get(section, {}):
            assert name in columns, f"{name} missing from the results"


def test_readme_commands_work_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line.split("#")[0].strip() for body in blocks(ROOT / "README.md", "bash")
                for line in body.splitlines() if line.startswith(".venv/bin/retainer")]
    assert len(commands) == 9, commands
    assert "./dev demo" in readme and "./dev test" in readme
    project = tmp_path / "my-project"
    executable = Path(sys.executable).parent / "retainer"
    for command in commands:
        words = shlex.split(command.replace("my-project", str(project)))
        words[0] = str(executable)
        if words[1] == "init":
            words += ["--accounts", "60"]
        if "ACCOUNT_ID" in words:
            words[words.index("ACCOUNT_ID")] = "A000001"
        done = subprocess.run(words, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
