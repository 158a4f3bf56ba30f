"""`retainer init`: a ready-to-run demo project — rulebook, rule tests and generated data."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from retainer.demo.generator import DemoSummary, generate
from retainer.errors import RetainerError


def create_demo_project(directory: Path, *, accounts: int = 400, seed: int = 7,
                        force: bool = False, end: object = None) -> DemoSummary:
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not force:
        raise RetainerError(f"{directory} is not empty",
                            hint="choose a new directory, or pass --force to write into it")
    if accounts < 1:
        raise RetainerError("--accounts must be at least 1")
    template = resources.files("retainer.demo") / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, directory, dirs_exist_ok=True)
    return generate(directory / "data", accounts=accounts, seed=seed, end=end)  # type: ignore[arg-type]
