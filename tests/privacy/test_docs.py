"""docs/privacy.md is tested: its provenance is the demo's, the playbook it shows being
refused is refused with the problems it shows, its lineage output is what the command
prints, and its forget commands and compaction files are the ones Retainer has."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from retainer.checks import check_activation
from retainer.cli.main import app
from retainer.demo.generator import DemoSummary
from retainer.errors import ValidationError
from retainer.privacy.compaction import PENDING
from retainer.project import Project
from retainer.state.compact import PARTIAL_SUFFIX
from tests.doc_examples import DOCS
from tests.doc_examples import blocks as doc_blocks

DOC = DOCS / "privacy.md"
DEMO = DOCS.parent / "src" / "retainer" / "demo" / "project" / "retainer.yml"
RETAINER = str(Path(sys.executable).parent / "retainer")
yaml = YAML(typ="safe")


def blocks(language: str) -> list[str]:
    return doc_blocks(DOC, language)


def words(text: str) -> str:
    """Text with its line breaks and indentation gone, as a terminal may wrap it."""
    return " ".join(text.split())


def test_the_documented_provenance_is_the_demos() -> None:
    documented = yaml.load(blocks("yaml")[0])["sources"]
    demo = yaml.load(DEMO.read_text(encoding="utf-8"))["sources"]
    assert documented == {name: demo[name] for name in documented}


def test_the_refused_playbook_gives_the_documented_problems(
        demo_project: tuple[Path, DemoSummary], tmp_path: Path) -> None:
    refused = [b for b in blocks("yaml") if b.startswith("# refused")]
    assert len(refused) == 1
    root = tmp_path / "demo"
    shutil.copytree(demo_project[0], root, ignore=shutil.ignore_patterns(".retainer"))
    (root / "rulebook" / "refused.yml").write_text(refused[0], encoding="utf-8")
    project = Project(root)
    catalog = project.catalog()
    with pytest.raises(ValidationError) as caught:
        check_activation(project.rulebook, project.plan(catalog=catalog), catalog)
    shown = words(next(b for b in blocks("text") if "support_upsell" in b))
    assert shown.startswith(f"{len(caught.value.problems)} problem(s) in the project:")
    for problem in caught.value.problems:
        assert problem.location is not None and problem.location.file.name == "refused.yml"
        assert words(problem.message) in shown
    hint = caught.value.problems[0].hint or ""
    assert words(re.sub(r"\S+/retainer\.yml", "retainer.yml", hint)) in shown


def test_the_documented_lineage_output(demo_project: tuple[Path, DemoSummary]) -> None:
    documented = next(b for b in blocks("") if b.startswith("$ retainer lineage"))
    command, *expected = documented.rstrip("\n").splitlines()
    done = subprocess.run([RETAINER, *command.split()[2:], "-p", str(demo_project[0])],
                          capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    shown = [line for line in expected if line.strip() != "…"]
    assert done.stdout.splitlines()[:len(shown)] == shown


def test_the_documented_forget_commands_take_those_options() -> None:
    commands = [line.split("#")[0].split() for body in blocks("bash")
                for line in body.splitlines() if line.startswith("retainer forget")]
    assert len(commands) == 5
    done = CliRunner().invoke(app, ["forget", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    for command in commands:
        for word in command:
            assert not word.startswith("-") or f" {word} " in done.stdout, word


def test_the_documented_compaction_files_are_the_ones_it_writes() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"`{PENDING}`" in text
    assert f"`state.duckdb{PARTIAL_SUFFIX}`" in text
