"""Impact diff: run two versions of a rulebook on the same data and show who moves.

The old version comes from a git ref (later also from the files stored with a run), the new
one from the working tree. Each runs in its own in-memory DuckDB engine at the same `as_of`;
the published results then meet in a third connection (as Arrow tables) where every count is
one set-based query, so 100k accounts cost a few joins. Sample entities are explained from
each side's own stored reasons, exactly as `retainer explain` would show them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import posixpath
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb
from sqlglot import exp

from retainer.compile.plan import Plan, compile_plan
from retainer.engines.duckdb import DuckDBEngine
from retainer.errors import Location, Problem, RetainerError, ValidationError, did_you_mean
from retainer.explain import Explanation, RuleOutcome, explain
from retainer.project import utc_now
from retainer.rulebook.loader import PROJECT_FILE, Origin, Rulebook, load_project
from retainer.rulebook.yamlpos import Positions

if sys.platform == "win32":  # pragma: no cover
    from pathlib import WindowsPath as _ConcretePath
else:
    from pathlib import PosixPath as _ConcretePath

Level = Literal["account", "contact"]
# Open memberships (level, entity_id, dimension, segment, entered_at) of some dimensions.
History = Callable[[Sequence[str]], Sequence[Sequence[Any]]]
Side = Literal["old", "new"]
Status = Literal["changed", "unchanged", "added", "removed"]
LEVELS: tuple[Level, ...] = ("account", "contact")
SCHEMA = "retainer.diff/1"
DIALECT = "duckdb"
NONE = "–"  # how a missing segment is shown


# --- the result --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """How many entities were in `from_segment` before and are in `to_segment` now.
    None: no segment (no rule matched, the dimension or the entity does not exist there)."""

    from_segment: str | None
    to_segment: str | None
    count: int

    @property
    def moved(self) -> bool:
        return self.from_segment != self.to_segment


@dataclass(frozen=True)
class ClauseValue:
    text: str
    value: bool | None
    values: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class RuleReason:
    segment: str
    when: str | None           # None: the `else` rule
    matched: bool
    mode: str                  # "all" (clauses joined by and) or "any" (by or)
    clauses: tuple[ClauseValue, ...]


@dataclass(frozen=True)
class Held:
    """A state machine kept the entity's stage from history instead of the rules' choice."""

    reason: str                # "min_days" or "transition"
    candidate: str | None      # what the rules alone gave
    rule: str                  # the state machine's rule, in words


@dataclass(frozen=True)
class SideReason:
    """One version's verdict: the rule that matched, the rule of the other version's segment
    when this version tried it and it did not match, and a state machine's hold if any."""

    segment: str | None
    matched: RuleReason | None
    passed_over: RuleReason | None
    held: Held | None = None


@dataclass(frozen=True)
class Sample:
    entity_id: str
    from_segment: str | None
    to_segment: str | None
    old: SideReason
    new: SideReason


@dataclass(frozen=True)
class DimensionImpact:
    name: str
    level: Level
    status: Status
    old_segments: tuple[str, ...]
    new_segments: tuple[str, ...]
    rules_changed: bool
    cells: tuple[Cell, ...]
    samples: tuple[Sample, ...]

    @property
    def moved(self) -> int:
        """Entities whose segment differs; for an added or removed dimension, every entity
        with a segment on the side that has it."""
        return sum(c.count for c in self.cells if c.moved)

    @property
    def order(self) -> tuple[str, ...]:
        """Every segment of either version: the old rules' order, then new segments."""
        return (*self.old_segments, *self.segments_added)

    @property
    def segments_added(self) -> tuple[str, ...]:
        return tuple(s for s in self.new_segments if s not in self.old_segments)

    @property
    def segments_removed(self) -> tuple[str, ...]:
        return tuple(s for s in self.old_segments if s not in self.new_segments)


@dataclass(frozen=True)
class TagImpact:
    name: str
    level: Level
    status: Status
    rules_changed: bool
    old_count: int
    new_count: int
    gained: int
    lost: int


@dataclass(frozen=True)
class HealthImpact:
    status: Status
    definition_changed: bool
    bands: tuple[str, ...]           # lowest first, the new version's then the old's
    cells: tuple[Cell, ...]          # band before → band after
    score_changed: int
    mean_abs_change: float | None
    max_abs_change: float | None

    @property
    def band_moved(self) -> int:
        return sum(c.count for c in self.cells if c.moved)


@dataclass(frozen=True)
class LevelTotal:
    level: Level
    entities: int
    moved: int                       # entities moved in a dimension both versions have


@dataclass(frozen=True)
class Impact:
    as_of: datetime
    old_label: str
    new_label: str
    old_hash: str
    new_hash: str
    totals: tuple[LevelTotal, ...]
    dimensions: tuple[DimensionImpact, ...]
    tags: tuple[TagImpact, ...]
    health: HealthImpact | None

    @property
    def summary(self) -> str:
        return summary_line(self)


class InvalidRulebook(ValidationError):
    """One side of the diff does not validate; `side` and `label` say which."""

    def __init__(self, side: Side, label: str, problems: Iterable[Problem]) -> None:
        super().__init__(problems)
        self.side = side
        self.label = label


# --- the old rulebook from git -----------------------------------------------------------------

def files_at_git_ref(project_root: Path, ref: str) -> dict[str, str]:
    """`retainer.yml` and the rulebook files as committed at `ref`, keyed by their path in the
    project (the `rulebook:` entries of that commit's config, default `rulebook/`)."""
    root = Path(project_root).resolve()
    if not root.is_dir():
        raise RetainerError(f"{root} is not a directory",
                            hint="pass --project DIR pointing at a project")
    found = _git(root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise RetainerError(f"{root} is not in a git repository",
                            hint="the impact diff compares with a committed rulebook: run "
                                 "'git init' and commit the project first")
    top = Path(found.stdout.decode().strip()).resolve()
    prefix = root.relative_to(top).as_posix()
    commit = _commit(top, ref)
    project_file = _inside(prefix, PROJECT_FILE) or PROJECT_FILE
    text = _show(top, commit, project_file)
    if text is None:
        raise RetainerError(f"the project did not exist at {ref}: {project_file} is not in "
                            "that commit",
                            hint="compare with a later commit, e.g. --against HEAD")
    files = {PROJECT_FILE: text}
    for entry in _rulebook_entries(text):
        path = _inside(prefix, entry)
        if path is None:
            continue  # outside the project: the loader finds nothing there either
        for name in _tree_files(top, commit, path):
            content = _show(top, commit, name)
            if content is not None:
                files[posixpath.relpath(name, prefix)] = content
    return files


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise RetainerError("git is not installed (or not on PATH)",
                            hint="install git to compare with a committed rulebook") from None


def _commit(top: Path, ref: str) -> str:
    if not ref.strip() or ref.startswith("-"):
        raise RetainerError(f"'{ref}' is not a git ref", hint="e.g. --against HEAD~1 or main")
    found = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode == 0:
        return found.stdout.decode().strip()
    if _git(top, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        raise RetainerError(f"unknown git ref '{ref}': the repository has no commits yet",
                            hint="commit the project first: git add -A && git commit")
    names = _git(top, "for-each-ref", "--format=%(refname:short)", "refs/heads",
                 "refs/tags").stdout.decode().split()
    raise RetainerError(f"unknown git ref '{ref}'", hint=did_you_mean(ref, names) or
                        "use a branch, a tag or a commit, e.g. HEAD, HEAD~1 or main")


def _inside(prefix: str, relative: str) -> str | None:
    """`relative` (from the project) as a path from the repository top, if it stays inside."""
    if posixpath.isabs(relative):
        return None
    joined = posixpath.normpath(posixpath.join(prefix, relative))
    inside_project = prefix == "." or joined == prefix or joined.startswith(prefix + "/")
    return joined if inside_project and not joined.startswith("..") else None


def _show(top: Path, commit: str, path: str) -> str | None:
    shown = _git(top, "show", f"{commit}:{path}")
    return shown.stdout.decode("utf-8", errors="replace") if shown.returncode == 0 else None


def _tree_files(top: Path, commit: str, path: str) -> list[str]:
    listed = _git(top, "ls-tree", "-r", "-z", "--name-only", commit, "--", path)
    names = [n for n in listed.stdout.decode().split("\0") if n]
    if names == [path]:
        return names  # a file named in `rulebook:`
    return sorted(n for n in names if n.endswith((".yml", ".yaml")))


def _rulebook_entries(project_text: str) -> tuple[str, ...]:
    """The `rulebook:` setting, read leniently: the loader reports a malformed one."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    try:
        document = YAML(typ="safe").load(project_text)
    except YAMLError:
        return ("rulebook",)
    entries = document.get("rulebook", "rulebook") if isinstance(document, dict) else None
    if isinstance(entries, str):
        return (entries,)
    if isinstance(entries, list) and all(isinstance(e, str) for e in entries):
        return tuple(entries)
    return ("rulebook",)


# --- loading either side -----------------------------------------------------------------------

class _Snapshot(_ConcretePath):
    """A file as stored elsewhere (a git ref, a run): it prints as `HEAD:rulebook/x.yml` and
    still serves its text, so expression errors found at compile time keep exact columns."""

    _text: str = ""

    @classmethod
    def of(cls, name: str, text: str) -> _Snapshot:
        path = cls(name)
        path._text = text
        return path

    def read_text(self, encoding: str | None = None, errors: str | None = None,
                  newline: str | None = None) -> str:
        return self._text


def rulebook_from_files(files: Mapping[str, str], data_root: Path,
                        label: str = "stored") -> Rulebook:
    """Load a rulebook from file texts (keyed by path in the project) and point its data paths
    at `data_root`, so an old rulebook runs on today's data. Errors and the rulebook's origins
    name files as `LABEL:rulebook/segments.yml:5:3`."""
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


@dataclass
class _Relabel:
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


def _as_side(side: Side, label: str, exc: RetainerError) -> RetainerError:
    """Rulebook problems become InvalidRulebook (exit 2, naming the side); others stay."""
    if isinstance(exc, ValidationError):
        return InvalidRulebook(side, label, exc.problems)
    if exc.problem.location is not None:  # YAML syntax, encoding: still the rulebook's fault
        return InvalidRulebook(side, label, [exc.problem])
    return exc


def rulebook_at_git_ref(project_root: Path, ref: str) -> Rulebook:
    """The project's rulebook as committed at `ref`, evaluated against today's data."""
    files = files_at_git_ref(project_root, ref)
    try:
        return rulebook_from_files(files, Path(project_root), label=ref)
    except RetainerError as exc:
        raise _as_side("old", ref, exc) from None


def working_tree_rulebook(project_root: Path) -> Rulebook:
    try:
        return load_project(Path(project_root))
    except RetainerError as exc:
        raise _as_side("new", "working tree", exc) from None


# --- evaluating and comparing ------------------------------------------------------------------

@dataclass(frozen=True)
class _Run:
    engine: DuckDBEngine
    plan: Plan
    side: Side

    def spec(self, level: Level) -> dict[str, Any]:
        levels: dict[str, dict[str, Any]] = self.plan.explain["levels"]
        return levels.get(level, {})

    def dimensions(self, level: Level) -> dict[str, list[dict[str, Any]]]:
        return dict(self.spec(level).get("dimensions", {}))

    def tags(self, level: Level) -> dict[str, dict[str, Any]]:
        return dict(self.spec(level).get("tags", {}))

    def health(self) -> dict[str, Any] | None:
        return self.spec("account").get("health")

    def columns(self, level: Level) -> dict[str, str]:
        """Column → comparison column (`d__`, `t__`, `h__` keep kinds apart)."""
        out = {name: f"d__{name}" for name in self.dimensions(level)}
        out |= {name: f"t__{name}" for name in self.tags(level)}
        if level == "account" and self.health() is not None:
            out |= {"health": "h__score", "health_band": "h__band"}
        return out

    def results(self, level: Level) -> Any:
        """The level's results as an Arrow table: a text key and the compared columns."""
        table = f"{level}_results"
        cursor = self.engine.connection.execute(
            exp.select(exp.Star()).from_(table).limit(0).sql(DIALECT))
        key = str(cursor.description[0][0])
        query = exp.select(_alias(exp.cast(_col(key), "VARCHAR"), "__key"), *(
            _alias(_col(column), alias) for column, alias in self.columns(level).items()))
        return self.engine.connection.sql(query.from_(table).sql(DIALECT)).to_arrow_table()


@contextmanager
def stored_history(rulebook: Rulebook) -> Iterator[History | None]:
    """The open stages the project's state store holds — what its next run starts from — or
    None when there is no store yet (the diff never creates one)."""
    spec = rulebook.config.state
    if not spec.startswith(("postgresql://", "postgres://")) and not rulebook.path(
            spec).exists():
        yield None
        return
    from retainer.state import open_store
    store = open_store(spec, rulebook.root)
    try:
        yield store.open_memberships
    finally:
        store.close()


@contextmanager
def _evaluated(rulebook: Rulebook, side: Side, label: str, as_of: datetime,
               clock: datetime, history: History | None) -> Iterator[_Run]:
    engine = DuckDBEngine()
    try:
        try:
            plan = compile_plan(rulebook, engine.attach_sources(rulebook), as_of, clock)
        except ValidationError as exc:
            raise _as_side(side, label, exc) from None
        if history is not None and plan.state_machines:
            engine.load_previous_state(history(plan.state_machines))
        engine.execute(plan)
        engine.publish(plan, {"as_of": as_of.isoformat(sep=" "), "project":
                              rulebook.config.name, "rulebook_hash": rulebook.content_hash})
        yield _Run(engine, plan, side)
    finally:
        engine.close()


_KINDS = {"d": "VARCHAR", "t": "BOOLEAN", "h__score": "DOUBLE", "h__band": "VARCHAR"}


class _Comparison:
    """Both sides' results in one connection, joined per level on the entity key."""

    def __init__(self, old: _Run, new: _Run) -> None:
        self.old, self.new = old, new
        self.connection = duckdb.connect()
        self.levels = [lvl for lvl in LEVELS if old.spec(lvl) or new.spec(lvl)]
        try:
            for level in self.levels:
                self._join(level)
        except BaseException:
            self.connection.close()
            raise

    def _join(self, level: Level) -> None:
        for run in (self.old, self.new):
            name = f"{run.side}_{level}"
            if run.spec(level):
                self.connection.register(name, run.results(level))
            else:
                schema = exp.Schema(this=exp.to_table(name), expressions=[exp.ColumnDef(
                    this=exp.to_identifier("__key"), kind=exp.DataType.build("VARCHAR"))])
                self.connection.execute(exp.Create(this=schema, kind="TABLE").sql(DIALECT))
        old_key, new_key = _col("__key", "old"), _col("__key", "new")
        columns: list[exp.Expr] = [
            _alias(exp.Coalesce(this=old_key, expressions=[new_key.copy()]), "__key"),
            _alias(exp.Not(this=old_key.copy().is_(exp.null())), "__in_old"),
            _alias(exp.Not(this=new_key.copy().is_(exp.null())), "__in_new")]
        compared = dict.fromkeys([*self.old.columns(level).values(),
                                  *self.new.columns(level).values()])
        for run in (self.old, self.new):
            present = set(run.columns(level).values())
            for column in compared:
                kind = _KINDS[column] if column in _KINDS else _KINDS[column[0]]
                value = _col(column, run.side) if column in present else exp.cast(
                    exp.null(), kind)
                columns.append(_alias(value, f"{run.side}__{column}"))
        query = exp.select(*columns).from_(exp.to_table(f"old_{level}").as_("old")).join(
            exp.to_table(f"new_{level}").as_("new"), on=old_key.copy().eq(new_key.copy()),
            join_type="full outer")
        self.connection.execute(exp.Create(this=exp.to_table(f"joined_{level}"), kind="TABLE",
                                           expression=query).sql(DIALECT))

    def rows(self, query: exp.Query) -> list[tuple[Any, ...]]:
        return self.connection.execute(query.sql(DIALECT)).fetchall()

    def matrix(self, level: Level, column: str) -> tuple[Cell, ...]:
        old, new = _col(f"old__{column}"), _col(f"new__{column}")
        query = exp.select(old, new, exp.Count(this=exp.Star())).from_(
            f"joined_{level}").group_by(old.copy(), new.copy())
        return tuple(Cell(r[0], r[1], int(r[2])) for r in self.rows(query))

    def sample_keys(self, level: Level, column: str, limit: int
                    ) -> list[tuple[str | None, str | None, str]]:
        """The `limit` smallest ids (in text order) of every moved from → to cell."""
        old, new = _col(f"old__{column}"), _col(f"new__{column}")
        number = exp.Window(this=exp.RowNumber(), partition_by=[old.copy(), new.copy()],
                            order=exp.Order(expressions=[exp.Ordered(this=_col("__key"))]))
        moved = exp.and_(exp.NullSafeNEQ(this=old.copy(), expression=new.copy()),
                         _col("__in_old"), _col("__in_new"))
        inner = exp.select(old, new, _col("__key"), _alias(number, "__n")).from_(
            f"joined_{level}").where(moved)
        query = exp.select(_col(f"old__{column}"), _col(f"new__{column}"), _col("__key")).from_(
            inner.subquery("moved")).where(
            exp.LTE(this=_col("__n"), expression=exp.Literal.number(limit))).order_by(
            _col("__key"))
        return [(r[0], r[1], str(r[2])) for r in self.rows(query)]

    def totals(self, level: Level, shared: Sequence[str]) -> LevelTotal:
        moved = exp.or_(*(exp.NullSafeNEQ(this=_col(f"old__d__{name}"),
                                          expression=_col(f"new__d__{name}"))
                          for name in shared)) if shared else exp.false()
        entities, changed = self.rows(exp.select(exp.Count(this=exp.Star()), exp.CountIf(
            this=moved)).from_(f"joined_{level}"))[0]
        return LevelTotal(level, int(entities), int(changed or 0))

    def tag_counts(self, level: Level, name: str) -> tuple[int, int, int, int]:
        old = exp.Coalesce(this=_col(f"old__t__{name}"), expressions=[exp.false()])
        new = exp.Coalesce(this=_col(f"new__t__{name}"), expressions=[exp.false()])
        query = exp.select(
            exp.CountIf(this=old), exp.CountIf(this=new.copy()),
            exp.CountIf(this=exp.and_(new.copy(), exp.not_(old.copy()))),
            exp.CountIf(this=exp.and_(old.copy(), exp.not_(new.copy())))).from_(
            f"joined_{level}")
        row = self.rows(query)[0]
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def score_change(self) -> tuple[int, float | None, float | None]:
        old, new = _col("old__h__score"), _col("new__h__score")
        change = exp.Abs(this=exp.Sub(this=new, expression=old))
        row = self.rows(exp.select(
            exp.CountIf(this=exp.NullSafeNEQ(this=old.copy(), expression=new.copy())),
            exp.Avg(this=change), exp.Max(this=change.copy())).from_("joined_account"))[0]
        return int(row[0] or 0), _rounded(row[1]), _rounded(row[2])

    def close(self) -> None:
        self.connection.close()


def compare(old: Rulebook, new: Rulebook, as_of: datetime, samples: int = 3, *,
            old_label: str = "old", new_label: str = "new",
            history: History | None = None) -> Impact:
    """Evaluate both rulebooks on the same data at the same `as_of` and measure who moves.

    `history` gives the stages state machines start from (see `stored_history`); both sides
    get the same, so a stage held by `min_days` is held in both. None: the rules decide alone.
    """
    clock = utc_now()
    with (_evaluated(old, "old", old_label, as_of, clock, history) as before,
          _evaluated(new, "new", new_label, as_of, clock, history) as after):
        comparison = _Comparison(before, after)
        try:
            explained: dict[tuple[Side, Level, str], Explanation] = {}

            def explanation(run: _Run, level: Level, key: str) -> Explanation:
                if (run.side, level, key) not in explained:
                    explained[(run.side, level, key)] = explain(run.engine, key, level)
                return explained[(run.side, level, key)]

            dimensions: list[DimensionImpact] = []
            tags: list[TagImpact] = []
            totals: list[LevelTotal] = []
            for level in comparison.levels:
                old_dims, new_dims = before.dimensions(level), after.dimensions(level)
                names = [*new_dims, *(n for n in old_dims if n not in new_dims)]
                for name in names:
                    dimension = _dimension(comparison, level, name, old_dims.get(name),
                                           new_dims.get(name))
                    if dimension.status == "changed" and samples > 0:
                        picked = comparison.sample_keys(level, f"d__{name}", samples)
                        dimension = dataclasses.replace(dimension, samples=tuple(
                            Sample(key, was, now,
                                   _side_reason(explanation(before, level, key), name, now),
                                   _side_reason(explanation(after, level, key), name, was))
                            for was, now, key in _ordered(picked, dimension)))
                    dimensions.append(dimension)
                old_tags, new_tags = before.tags(level), after.tags(level)
                for name in [*new_tags, *(n for n in old_tags if n not in new_tags)]:
                    tags.append(_tag(comparison, level, name, old_tags.get(name),
                                     new_tags.get(name)))
                totals.append(comparison.totals(level, [n for n in names if n in old_dims
                                                        and n in new_dims]))
            health = _health(comparison, before.health(), after.health())
        finally:
            comparison.close()
    return Impact(as_of, old_label, new_label, old.content_hash, new.content_hash,
                  tuple(totals), tuple(dimensions), tuple(tags), health)


def _dimension(comparison: _Comparison, level: Level, name: str,
               old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None
               ) -> DimensionImpact:
    old_segments = _segments(old or [])
    new_segments = _segments(new or [])
    order = [*old_segments, *(s for s in new_segments if s not in old_segments)]
    cells = sorted(comparison.matrix(level, f"d__{name}"),
                   key=lambda c: (_rank(order, c.from_segment), _rank(order, c.to_segment)))
    status: Status = "added" if old is None else "removed" if new is None else (
        "changed" if any(c.moved for c in cells) else "unchanged")
    changed = [(r["segment"], r["when"]) for r in old or []] != [
        (r["segment"], r["when"]) for r in new or []]
    return DimensionImpact(name, level, status, old_segments, new_segments, changed,
                           tuple(cells), ())


def _tag(comparison: _Comparison, level: Level, name: str, old: dict[str, Any] | None,
         new: dict[str, Any] | None) -> TagImpact:
    old_count, new_count, gained, lost = comparison.tag_counts(level, name)
    status: Status = "added" if old is None else "removed" if new is None else (
        "changed" if gained or lost else "unchanged")
    changed = (old or {}).get("when") != (new or {}).get("when")
    return TagImpact(name, level, status, changed, old_count, new_count, gained, lost)


def _health(comparison: _Comparison, old: dict[str, Any] | None, new: dict[str, Any] | None
            ) -> HealthImpact | None:
    if old is None and new is None:
        return None
    bands = [b[0] for b in sorted((new or old or {}).get("bands", []), key=lambda b: b[1])]
    bands += [b[0] for b in (old or {}).get("bands", []) if b[0] not in bands]
    cells = sorted(comparison.matrix("account", "h__band"), key=lambda c: (
        _rank(bands, c.from_segment), _rank(bands, c.to_segment)))
    changed, mean, largest = comparison.score_change()
    status: Status = "added" if old is None else "removed" if new is None else (
        "changed" if changed else "unchanged")
    return HealthImpact(status, old != new, tuple(bands), tuple(cells), changed, mean,
                        largest)


def _segments(rules: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(r["segment"]) for r in rules))


def _rank(order: Sequence[str], segment: str | None) -> tuple[int, str]:
    if segment is None:
        return (len(order) + 1, "")
    return (order.index(segment), "") if segment in order else (len(order), segment)


def _ordered(picked: list[tuple[str | None, str | None, str]], dimension: DimensionImpact
             ) -> list[tuple[str | None, str | None, str]]:
    order = [c for c in dimension.cells if c.moved]
    position = {(c.from_segment, c.to_segment): i for i, c in enumerate(order)}
    return sorted(picked, key=lambda p: (position.get((p[0], p[1]), len(order)), p[2]))


def _side_reason(item: Explanation, dimension: str, other: str | None) -> SideReason:
    outcome = next(d for d in item.dimensions if d.name == dimension)
    matched = next((r for r in outcome.rules if r.matched), None)
    passed = next((r for r in outcome.rules if not r.matched and r.segment == other), None)
    held = outcome.held
    return SideReason(outcome.segment, _reason(matched), _reason(passed), None if held is None
                      else Held(held.reason, held.candidate, held.rule))


def _reason(rule: RuleOutcome | None) -> RuleReason | None:
    if rule is None:
        return None
    return RuleReason(rule.segment, rule.when, rule.matched, rule.mode, tuple(
        ClauseValue(c.text, c.value, tuple(c.uses)) for c in rule.clauses))


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, name, quoted=True)


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


# --- words, JSON and markdown ------------------------------------------------------------------

def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def format_value(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return str(value)


def summary_line(impact: Impact) -> str:
    """One sentence for a pull request: who moves where, and what else changes."""
    totals = [t for t in impact.totals if t.moved]
    moves = sorted(((c.count, d, c) for d in impact.dimensions if d.status == "changed"
                    for c in d.cells if c.moved), key=lambda m: -m[0])
    if totals:
        head = "This change moves " + " and ".join(
            f"{t.moved:,} of {_count(t.entities, t.level)}" for t in totals)
        details = [f"{_count(n, d.level)} from {c.from_segment or NONE} to "
                   f"{c.to_segment or NONE} ({d.name})" for n, d, c in moves[:3]]
        if len(moves) > 3:
            details.append(f"and {len(moves) - 3} smaller move{'s' * (len(moves) > 4)}")
        parts = [f"{head}: {', '.join(details)}"]
    else:
        parts = ["This change moves no " + (" or ".join(
            f"{t.level}s" for t in impact.totals) or "entities")]
    for status, verb in (("added", "adds"), ("removed", "removes")):
        names = [d.name for d in impact.dimensions if d.status == status]
        if names:
            parts.append(f"{verb} dimension{'s' * (len(names) > 1)} {', '.join(names)}")
    for tag in impact.tags:
        if tag.status != "unchanged":
            change = [f"{_count(tag.gained, tag.level)} gain it" if tag.gained else "",
                      f"{_count(tag.lost, tag.level)} lose it" if tag.lost else ""]
            verb = {"added": "new tag", "removed": "removed tag"}.get(tag.status, "tag")
            parts.append(f"{verb} {tag.name}: " + (", ".join(c for c in change if c)
                                                   or "no one holds it"))
    health = impact.health
    if health is not None and health.status in ("added", "removed"):
        parts.append(f"health score {health.status}")
    elif health is not None and health.band_moved:
        parts.append(f"{_count(health.band_moved, 'account')} change health band")
    return "; ".join(parts) + "."


def gate(impact: Impact, limit: int) -> list[str]:
    """Why a CI gate with `--fail-if-moved LIMIT` fails (empty: it passes)."""
    return [f"{d.name} ({d.status}) moves {_count(d.moved, d.level)}, more than {limit:,}"
            for d in impact.dimensions if d.moved > limit]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _cell(cell: Cell) -> dict[str, Any]:
    return {"from": cell.from_segment, "to": cell.to_segment, "count": cell.count,
            "moved": cell.moved}


def _rule_dict(rule: RuleReason | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {"segment": rule.segment, "when": rule.when, "matched": rule.matched,
            "mode": rule.mode, "clauses": [{"text": c.text, "value": c.value,
                         "values": {label: _jsonable(v) for label, v in c.values}}
                        for c in rule.clauses]}


def _side_dict(side: SideReason) -> dict[str, Any]:
    held = side.held
    return {"segment": side.segment, "matched": _rule_dict(side.matched),
            "passed_over": _rule_dict(side.passed_over),
            "held": None if held is None else {"reason": held.reason, "candidate":
                                               held.candidate, "rule": held.rule}}


def impact_dict(impact: Impact) -> dict[str, Any]:
    """The documented JSON shape (docs/diff.md); `schema` changes when it does."""
    health = impact.health
    return {
        "schema": SCHEMA,
        "as_of": impact.as_of.isoformat(),
        "old": {"label": impact.old_label, "rulebook_hash": impact.old_hash},
        "new": {"label": impact.new_label, "rulebook_hash": impact.new_hash},
        "summary": impact.summary,
        "entities": {t.level: {"total": t.entities, "moved": t.moved} for t in impact.totals},
        "dimensions": [{
            "name": d.name, "level": d.level, "status": d.status, "moved": d.moved,
            "rules_changed": d.rules_changed,
            "segments": {"old": list(d.old_segments), "new": list(d.new_segments),
                         "added": list(d.segments_added), "removed": list(d.segments_removed)},
            "matrix": [_cell(c) for c in d.cells],
            "samples": [{"id": s.entity_id, "from": s.from_segment, "to": s.to_segment,
                         "old": _side_dict(s.old), "new": _side_dict(s.new)}
                        for s in d.samples]} for d in impact.dimensions],
        "tags": [{"name": t.name, "level": t.level, "status": t.status,
                  "rules_changed": t.rules_changed, "old": t.old_count, "new": t.new_count,
                  "gained": t.gained, "lost": t.lost} for t in impact.tags],
        "health": None if health is None else {
            "status": health.status, "definition_changed": health.definition_changed,
            "score_changed": health.score_changed, "band_moved": health.band_moved,
            "mean_abs_change": health.mean_abs_change,
            "max_abs_change": health.max_abs_change,
            "matrix": [_cell(c) for c in health.cells]},
    }


def impact_json(impact: Impact) -> str:
    return json.dumps(impact_dict(impact), indent=2, ensure_ascii=False) + "\n"


def _code(text: str | None) -> str:
    if text is None:
        return NONE
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


def matrix_axes(cells: Sequence[Cell], order: Sequence[str]
                ) -> tuple[list[str | None], list[str | None]]:
    """The matrix's rows (segments before) and columns (segments after) that hold anyone,
    in `order` (the rules' order), unknown segments next and "no segment" last."""
    def ranked(segments: Iterable[str | None]) -> list[str | None]:
        return sorted(set(segments), key=lambda s: _rank(order, s))
    return (ranked(c.from_segment for c in cells if c.count),
            ranked(c.to_segment for c in cells if c.count))


def _markdown_matrix(cells: Sequence[Cell], order: Sequence[str], corner: str) -> list[str]:
    rows, columns = matrix_axes(cells, order)
    counts = {(c.from_segment, c.to_segment): c for c in cells}
    lines = ["| " + " | ".join([corner, *(_code(c) for c in columns), "moved out"]) + " |",
             "|---" + "|--:" * (len(columns) + 1) + "|"]
    for row in rows:
        values = []
        for column in columns:
            cell = counts.get((row, column))
            values.append("" if cell is None else f"**{cell.count:,}**" if cell.moved
                          else f"{cell.count:,}")
        out = sum(c.count for c in cells if c.from_segment == row and c.moved)
        lines.append("| " + " | ".join([_code(row), *values, f"{out:,}" if out else ""])
                     + " |")
    moved_in = [sum(c.count for c in cells if c.to_segment == col and c.moved)
                for col in columns]
    total = sum(c.count for c in cells if c.moved)
    lines.append("| " + " | ".join(["moved in", *(f"{n:,}" if n else "" for n in moved_in),
                                    f"**{total:,}**"]) + " |")
    return lines


def _markdown_rule(rule: RuleReason, verdict: str) -> str:
    if rule.when is None:
        return f"{_code(rule.segment)} {verdict} (else: no earlier rule matched)"
    clauses = "; ".join(
        f"{'✓' if c.value is True else '✗' if c.value is False else '?'} {_code(c.text)}"
        + (f" ({', '.join(f'{k} = {format_value(v)}' for k, v in c.values)})"
           if c.values else "") for c in rule.clauses)
    join = f" ({rule.mode} of)" if len(rule.clauses) > 1 else ""
    return f"{_code(rule.segment)} {verdict}{join}: {clauses}"


def _markdown_side(side: SideReason) -> str:
    parts = []
    if side.held is not None:
        parts.append(f"held in {_code(side.segment)} ({side.held.rule}); the rules gave "
                     f"{_code(side.held.candidate)}")
    if side.passed_over is not None:
        parts.append(_markdown_rule(side.passed_over, "did not match"))
    if side.matched is not None:
        parts.append(_markdown_rule(side.matched, "matched"))
    return " — ".join(parts) or "no rule matched"


def impact_markdown(impact: Impact) -> str:
    """A pull-request comment: heading, summary, a table per moved dimension, samples."""
    lines = [f"### Retainer impact: {_code(impact.old_label)} → {_code(impact.new_label)}", "",
             f"As of {impact.as_of:%Y-%m-%d %H:%M} UTC · rulebook {_code(impact.old_hash)} → "
             f"{_code(impact.new_hash)}", "", f"**{impact.summary}**", ""]
    quiet = []
    for d in impact.dimensions:
        if d.status == "unchanged":
            quiet.append(_code(d.name))
            continue
        lines += [f"#### {_code(d.name)} ({d.level}s, {d.status}): "
                  f"{_count(d.moved, d.level)} moved", ""]
        lines += _markdown_matrix(d.cells, d.order, "before ＼ after")
        renamed = d.status == "changed"
        changes = [f"segments added: {', '.join(map(_code, d.segments_added))}"
                   if d.segments_added and renamed else "",
                   f"segments removed: {', '.join(map(_code, d.segments_removed))}"
                   if d.segments_removed and renamed else ""]
        lines += ["", *(f"_{c}_\n" for c in changes if c)]
    if quiet:
        lines += [f"No moves in {', '.join(quiet)}.", ""]
    moved_tags = [t for t in impact.tags if t.status != "unchanged"]
    if moved_tags:
        lines += ["#### Tags", "", "| tag | level | status | before | after | gained | lost |",
                  "|---|---|---|--:|--:|--:|--:|"]
        lines += [f"| {_code(t.name)} | {t.level} | {t.status} | {t.old_count:,} | "
                  f"{t.new_count:,} | {t.gained:,} | {t.lost:,} |" for t in moved_tags]
        lines.append("")
    health = impact.health
    if health is not None and health.status != "unchanged":
        lines += [f"#### Health ({health.status}): {_count(health.band_moved, 'account')} "
                  f"change band; {_count(health.score_changed, 'score')} changed, mean |Δ| "
                  f"{format_value(health.mean_abs_change)}, max |Δ| "
                  f"{format_value(health.max_abs_change)}", ""]
        lines += [*_markdown_matrix(health.cells, health.bands, "band before ＼ after"), ""]
    sampled = [d for d in impact.dimensions if d.samples]
    if sampled:
        count = sum(len(d.samples) for d in sampled)
        lines += ["<details>", f"<summary>Sample reasons ({count})</summary>", ""]
        for d in sampled:
            for s in d.samples:
                lines += [f"- {d.level} {_code(s.entity_id)} — {_code(d.name)}: "
                          f"{_code(s.from_segment)} → {_code(s.to_segment)}",
                          f"  - before: {_markdown_side(s.old)}",
                          f"  - after: {_markdown_side(s.new)}"]
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


__all__ = [
    "Cell", "ClauseValue", "DimensionImpact", "HealthImpact", "Held", "History", "Impact",
    "InvalidRulebook",
    "LevelTotal", "RuleReason", "Sample", "SideReason", "TagImpact", "compare",
    "files_at_git_ref", "format_value", "gate", "impact_dict", "impact_json",
    "impact_markdown", "matrix_axes", "rulebook_at_git_ref", "rulebook_from_files",
    "stored_history", "summary_line", "working_tree_rulebook",
]
