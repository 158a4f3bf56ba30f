"""docs/measures.md is tested: its YAML is the demo's measures (which the report test
computes on real history), its metrics are the ones the rulebook accepts."""

from __future__ import annotations

import re
from pathlib import Path

from ruamel.yaml import YAML

from retainer.rulebook.measure_models import METRICS

ROOT = Path(__file__).parent.parent.parent
DOC = ROOT / "docs" / "measures.md"
DEMO = ROOT / "src" / "retainer" / "demo" / "project" / "rulebook" / "measures.yml"


def test_the_documented_measures_are_the_demos() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    yaml = YAML(typ="safe")
    assert [yaml.load(b) for b in blocks] == [yaml.load(DEMO.read_text(encoding="utf-8"))]


def test_every_metric_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for metric in METRICS:
        assert f"| `{metric}` |" in text
