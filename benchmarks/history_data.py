"""The history benchmark's data and projects: demo data generated once per size, and fresh
copies of the demo project with that data hard-linked in."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / "data"
WORK = DATA_ROOT / "history"  # this benchmark's own projects and generated data
REPORT = HERE / "history.md"
END = datetime(2026, 12, 1)
SEED = 7
MB = 1_000_000
MEMBERSHIP_COLUMNS = ("level", "entity_id", "dimension", "segment", "entered_at", "exited_at",
                      "reason")


def size_name(accounts: int, events: int) -> str:
    return f"a{accounts}_e{events}"


def shared_data(accounts: int, events: int) -> Path | None:
    """Generated data of this size that is already there: the main benchmark's (same seed
    and end, see bench_run.py) or this benchmark's own."""
    wanted = {"accounts": accounts, "events": events, "seed": SEED, "end": END.isoformat()}
    for base in (DATA_ROOT, WORK):
        marker = base / size_name(accounts, events) / "data" / ".generated.json"
        try:
            if json.loads(marker.read_text()) == wanted:
                return marker.parent
        except (OSError, ValueError):
            continue
    return None


def source_data(accounts: int, events: int) -> Path:
    """The demo data of this size, generated once into benchmarks/data/history/ if needed."""
    found = shared_data(accounts, events)
    if found is not None:
        print(f"data: reusing {found.relative_to(HERE.parent)}")
        return found
    from retainer.demo.generator import generate

    data = WORK / size_name(accounts, events) / "data"
    print(f"data: generating {accounts:,} accounts / {events:,} events into "
          f"{data.relative_to(HERE.parent)} ...", flush=True)
    started = time.perf_counter()
    shutil.rmtree(data, ignore_errors=True)
    summary = generate(data, accounts=accounts, events=events, seed=SEED, end=END)
    (data / ".generated.json").write_text(json.dumps(
        {"accounts": accounts, "events": events, "seed": SEED, "end": END.isoformat()}))
    print(f"data: {summary.accounts:,} accounts, {summary.contacts:,} contacts, "
          f"{summary.events:,} events in {time.perf_counter() - started:.1f} s")
    return data


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # free, and immune to the shared copy being regenerated
    except OSError:
        shutil.copy2(source, target)


def fresh_project(directory: Path, data: Path) -> Path:
    """A new demo project: the rulebook template from the source tree and `data`."""
    shutil.rmtree(directory, ignore_errors=True)
    template = resources.files("retainer.demo") / "project"
    with resources.as_file(template) as source:
        shutil.copytree(source, directory)
    shutil.copytree(data, directory / "data", copy_function=_link_or_copy)
    return directory


def warm_cache(data: Path) -> None:
    """Read the source files once so neither contender pays for the first disk read."""
    for path in sorted(data.iterdir()):
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass


def state_path(project: Path) -> Path:
    from retainer.project import Project

    spec = Project(project).rulebook.config.state
    path = Path(spec).expanduser()
    return path if path.is_absolute() else project / path


def daily(end: datetime, count: int, every: timedelta) -> list[datetime]:
    return [end - every * (count - 1 - i) for i in range(count)]
