"""Loading either side of a diff. The old side comes as file texts (from a git ref or a
recorded run) and is loaded as if it were the project, but reads today's data; its errors
and origins name files as `HEAD:rulebook/segments.yml:5:3` or `run 12:rulebook/…`."""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retainer.diff.git import files_at_git_ref
from retainer.errors import Location, Problem, RetainerError, ValidationError
from retainer.rulebook.loader import Origin, Rulebook, load_project
from retainer.rulebook.yamlpos import Positions

if sys.platform == "win32":  # pragma: no cover
    from pathlib import WindowsPath as _ConcretePath
else:
    from pathlib import PosixPath as _ConcretePath

Side = Literal["old", "new"]
WORKING_TREE = "working tree"


class InvalidRulebook(ValidationError):
    """One side of the diff does not validate; `side` and `label` say which."""

    def __init__(self, side: Side, label: str, problems: Iterable[Problem]) -> None:
        super().__init__(problems)
        self.side = side
        self.label = label


def as_side(side: Side, label: str, exc: RetainerError) -> RetainerError:
    """Rulebook problems become InvalidRulebook (exit 2, naming the side); others stay."""
    if isinstance(exc, ValidationError):
        return InvalidRulebook(side, label, exc.problems)
    if exc.problem.location is not None:  # YAML syntax, encoding: still the rulebook's fault
        return InvalidRulebook(side, label, [exc.problem])
    return exc


def working_tree_rulebook(project_root: Path) -> Rulebook:
    try:
        return load_project(Path(project_root))
    except RetainerError as exc:
        raise as_side("new", WORKING_TREE, exc) from None


def rulebook_at_git_ref(project_root: Path, ref: str) -> Rulebook:
    """The project's rulebook as committed at `ref`, evaluated against today's data."""
    return old_rulebook(files_at_git_ref(project_root, ref), Path(project_root), ref)


def old_rulebook(files: Mapping[str, str], data_root: Path, label: str) -> Rulebook:
    """`rulebook_from_files` for the old side: its problems make an InvalidRulebook."""
    try:
        return rulebook_from_files(files, data_root, label)
    except RetainerError as exc:
        raise as_side("old", label, exc) from None


def rulebook_from_files(files: Mapping[str, str], data_root: Path,
                        label: str = "stored") -> Rulebook:
    """Load a rulebook from file texts (keyed by path in the project) and point its data paths
    at `data_root`, so an old rulebook runs on today's data. Errors and the rulebook's origins
    name files as `LABEL:rulebook/segments.yml:5:3`."""
    # The loader reads a directory, so the texts are written to a temporary one; every path
    # that could mention it is relabelled before anything leaves this function.
    with tempfile.TemporaryDirectory(prefix="retainer-diff-") as directory:
        temp = Path(directory).resolve()
        for name, text in files.items():
            target = (temp / name).resolve()
            if not target.is_relative_to(temp) or target == temp:
                raise RetainerError(f"{label}: the file path '{name}' leaves the project")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        relabel = _Relabel(temp, label, files)
        try:
            rulebook = load_project(temp)
        except ValidationError as exc:
            raise ValidationError([relabel.problem(p) for p in exc.problems]) from None
        except RetainerError as exc:
            problem = relabel.problem(exc.problem)
            raise type(exc)(problem.message, hint=problem.hint,
                            location=problem.location) from None
    return dataclasses.replace(rulebook, root=Path(data_root).resolve(),
                               origins=relabel.origins(rulebook.origins),
                               files=tuple(relabel.path(f) for f in rulebook.files))


class _Snapshot(_ConcretePath):
    """A file as stored elsewhere (a git ref, a run): it prints as `HEAD:rulebook/x.yml` and
    still serves its text, so expression errors found at compile time (which read the line
    back to place the column) keep exact columns after the temporary directory is gone."""

    _text: str = ""

    @classmethod
    def of(cls, name: str, text: str) -> _Snapshot:
        path = cls(name)
        path._text = text
        return path

    def read_text(self, encoding: str | None = None, errors: str | None = None,
                  newline: str | None = None) -> str:
        return self._text


@dataclass(frozen=True)
class _Relabel:
    """Renames the temporary directory to `label:` in paths, messages and origins."""

    temp: Path
    label: str
    files: Mapping[str, str]

    def path(self, file: Path) -> Path:
        if not file.is_relative_to(self.temp):
            return file
        relative = file.relative_to(self.temp).as_posix()
        return _Snapshot.of(f"{self.label}:{relative}", self.files.get(relative, ""))

    def text(self, text: str | None) -> str | None:
        if text is None:
            return None
        return text.replace(f"{self.temp}/", f"{self.label}:").replace(str(self.temp),
                                                                        self.label)

    def problem(self, problem: Problem) -> Problem:
        location = problem.location
        if location is not None:
            location = Location(self.path(location.file), location.line, location.column)
        return Problem(self.text(problem.message) or "", location, self.text(problem.hint))

    def origins(self, origins: Mapping[tuple[str, str], Origin]
                ) -> dict[tuple[str, str], Origin]:
        # Origins of one file share their Positions: relabel each Positions once.
        moved: dict[int, Positions] = {}
        out: dict[tuple[str, str], Origin] = {}
        for key, origin in origins.items():
            positions = moved.get(id(origin.positions))
            if positions is None:
                positions = dataclasses.replace(origin.positions,
                                                file=self.path(origin.positions.file))
                moved[id(origin.positions)] = positions
            out[key] = Origin(positions, origin.path)
        return out
