"""Which code and machine a history measurement ran on: a hash of Retainer's source, a frozen
copy of it for trees others are editing, the commit, cores and versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from history_data import HERE, WORK


def package_dir() -> Path:
    """Where `retainer` is imported from (the checkout's src/, or a frozen copy)."""
    import importlib.util

    spec = importlib.util.find_spec("retainer")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def src_fingerprint(package: Path | None = None) -> str:
    """A hash of Retainer's code and demo template, to notice code that changed during a
    measurement (other people work in this tree)."""
    import hashlib

    package = package or package_dir()
    digest = hashlib.sha1()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yml", ".yaml"):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def freeze_src() -> str:
    """Run everything (this process and its children) on a copy of src/retainer as it is
    now, so that edits made meanwhile cannot reach one contender and not the other."""
    live = HERE.parent / "src" / "retainer"
    fingerprint = src_fingerprint(live)
    target = WORK / "frozen_src" / fingerprint
    if not (target / "retainer").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(live, target / "retainer",
                        ignore=shutil.ignore_patterns("__pycache__"))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(target), *filter(None, [os.environ.get("PYTHONPATH")])])
    sys.path.insert(0, str(target))
    print(f"code: a frozen copy of src/retainer ({fingerprint}) in "
          f"{target.relative_to(HERE.parent)}")
    return fingerprint


def context() -> dict[str, Any]:
    import duckdb

    def git(*command: str) -> str:
        done = subprocess.run(["git", "-C", str(HERE.parent), *command], capture_output=True,
                              text=True, check=False)
        return done.stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "src").splitlines() if line]
    frozen = package_dir().parent.parent.name == "frozen_src"
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "dirty": dirty,
            "frozen": frozen,
            "cores": os.cpu_count(), "python": platform.python_version(),
            "duckdb": duckdb.__version__, "when": datetime.now().strftime("%Y-%m-%d %H:%M")}
