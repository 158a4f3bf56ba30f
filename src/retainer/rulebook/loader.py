"""Read a project directory into a Rulebook, collecting every problem with its file:line.

A project is `retainer.yml` plus rulebook files (default: `rulebook/*.yml`). Each section —
sources, traits, segments, tags, health, measures — may appear in any of them; a name defined
twice is an error that points at both places.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from retainer.errors import Location, Problem, RetainerError, ValidationError, did_you_mean
from retainer.rulebook.destination_models import (
    DESTINATION_TYPES,
    Destination,
    FilesDestination,
    PostgresDestination,
    RabbitMQDestination,
    Sync,
    WebhookDestination,
)
from retainer.rulebook.fields import Entity, is_name
from retainer.rulebook.measure_models import Measure
from retainer.rulebook.models import (
    AggregateTrait,
    DerivedTrait,
    Dimension,
    Health,
    ProjectConfig,
    Source,
    Tag,
    Trait,
)
from retainer.rulebook.playbook_models import ConsentSettings, Playbook
from retainer.rulebook.yamlpos import PathKey, Positions, load_yaml, string_offset_location

M = TypeVar("M", bound=pydantic.BaseModel)
PROJECT_FILE = "retainer.yml"
SECTIONS = ("sources", "traits", "segments", "tags", "health", "measures", "playbooks",
            "destinations", "syncs", "consent")


@dataclass(frozen=True)
class Origin:
    """Where a rulebook element was written, so later checks can point at it."""

    positions: Positions
    path: PathKey

    @property
    def location(self) -> Location:
        return self.positions.key(self.path)

    def at(self, *sub: str | int) -> Location:
        return self.positions.value((*self.path, *sub))

    def inside(self, sub: tuple[str | int, ...], offset: int) -> Location:
        """Position of character `offset` of the string at `sub` (for expression errors)."""
        return string_offset_location(self.positions, (*self.path, *sub), offset)


@dataclass(frozen=True)
class Rulebook:
    """The whole validated definition of a project, ready to compile."""

    root: Path
    config: ProjectConfig
    sources: Mapping[str, Source]
    traits: Mapping[str, Trait]
    dimensions: Mapping[str, Dimension]
    tags: Mapping[str, Tag]
    health: Health | None
    origins: Mapping[tuple[str, str], Origin] = field(repr=False)
    content_hash: str = ""
    files: tuple[Path, ...] = ()     # the YAML files it was read from
    measures: Mapping[str, Measure] = field(default_factory=dict)  # docs/measures.md
    playbooks: Mapping[str, Playbook] = field(default_factory=dict)  # docs/playbooks.md
    destinations: Mapping[str, Destination] = field(default_factory=dict)  # docs/sync.md
    syncs: Mapping[str, Sync] = field(default_factory=dict)
    consent: ConsentSettings = field(default_factory=ConsentSettings)  # docs/consent.md

    def file_texts(self) -> dict[str, str]:
        """The rulebook's files as written, by path relative to the project (kept per run)."""
        texts = {}
        for file in self.files:
            try:
                name = str(file.relative_to(self.root))
            except ValueError:
                name = str(file)
            texts[name] = file.read_text(encoding="utf-8")
        return texts

    def origin(self, section: str, name: str) -> Origin:
        return self.origins[(section, name)]

    def source_location(self, name: str) -> Location | None:
        """Where source `name` is declared, when it is declared in a file at all."""
        origin = self.origins.get(("sources", name))
        return origin.location if origin else None

    def path(self, relative: str) -> Path:
        """A path from the project file, resolved against the project directory."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    def source_of_kind(self, kind: str) -> str | None:
        """The source of `kind` (validation allows one source of the accounts and contacts
        kinds), or None."""
        return next((n for n, s in self.sources.items() if s.kind == kind), None)

    def key_column(self, level: Entity) -> str:
        """The column naming each account (or contact) in the results and everything made
        from them: the accounts (contacts) source's `key`, else `account_id` (`contact_id`)."""
        name = self.source_of_kind("accounts" if level == "account" else "contacts")
        key = self.sources[name].key if name is not None else None
        return key or f"{level}_id"

    def contact_account_column(self) -> str:
        """The column naming a contact's account in the contact results: the contacts
        source's `account`, else the account key column."""
        name = self.source_of_kind("contacts")
        account = self.sources[name].account if name is not None else None
        return account or self.key_column("account")


def load_project(root: Path) -> Rulebook:
    """Load and structurally validate a project; raises ValidationError listing all problems."""
    root = root.resolve()
    project_file = root / PROJECT_FILE
    if not project_file.is_file():
        raise RetainerError(f"no {PROJECT_FILE} in {root}",
                            hint="run 'retainer init DIR' to create a project, or pass "
                                 "--project DIR pointing at one")
    builder = _Builder(root)
    builder.files.append(project_file)
    document, positions = load_yaml(project_file)
    if not isinstance(document, dict):
        raise ValidationError([Problem(f"{PROJECT_FILE} must be a mapping of settings",
                                       Location(project_file, 1, 1))])
    settings = {k: v for k, v in document.items() if k not in SECTIONS}
    config = builder.model(ProjectConfig, settings, positions, ())
    builder.sections(document, positions)
    if config is not None:
        for entry in config.rulebook:
            for file in _rulebook_files(root / entry):
                builder.files.append(file)
                loaded, file_positions = load_yaml(file)
                builder.rulebook_file(loaded, file_positions)
    builder.raise_if_problems()
    assert config is not None
    return builder.build(config)


DESTINATION_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "postgres": PostgresDestination, "webhook": WebhookDestination, "files": FilesDestination,
    "rabbitmq": RabbitMQDestination}


def _rulebook_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("**/*.yml"), *path.glob("**/*.yaml")])
    return [path] if path.is_file() else []


class _Builder:
    """Accumulates elements and problems across files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.sources: dict[str, Source] = {}
        self.traits: dict[str, Trait] = {}
        self.dimensions: dict[str, Dimension] = {}
        self.tags: dict[str, Tag] = {}
        self.health: Health | None = None
        self.measures: dict[str, Measure] = {}
        self.playbooks: dict[str, Playbook] = {}
        self.destinations: dict[str, Destination] = {}
        self.syncs: dict[str, Sync] = {}
        self.consent: ConsentSettings | None = None
        self.origins: dict[tuple[str, str], Origin] = {}
        self.hasher = hashlib.sha256()
        self.files: list[Path] = []

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ValidationError(self.problems)

    def build(self, config: ProjectConfig) -> Rulebook:
        return Rulebook(self.root, config, dict(self.sources), dict(self.traits),
                        dict(self.dimensions), dict(self.tags), self.health, dict(self.origins),
                        self.hasher.hexdigest()[:16], tuple(self.files),
                        measures=dict(self.measures), playbooks=dict(self.playbooks),
                        destinations=dict(self.destinations), syncs=dict(self.syncs),
                        consent=self.consent or ConsentSettings())

    def rulebook_file(self, document: Any, positions: Positions) -> None:
        if document is None:
            return
        if not isinstance(document, dict):
            self.problems.append(Problem("a rulebook file must be a mapping with sections "
                                         + ", ".join(SECTIONS), positions.key(())))
            return
        for key in document:
            if key not in SECTIONS:
                hint = did_you_mean(str(key), SECTIONS) or ("rulebook files hold the sections "
                                                            + ", ".join(SECTIONS))
                self.problems.append(Problem(f"unknown section '{key}'",
                                             positions.key((key,)), hint))
        self.sections(document, positions)

    def sections(self, document: dict[str, Any], positions: Positions) -> None:
        self.hasher.update(repr(sorted((k, repr(v)) for k, v in document.items()
                                       if k in SECTIONS)).encode())
        self.hasher.update(repr({k: v for k, v in document.items() if k not in SECTIONS}
                                ).encode())
        for section, parse in (("sources", self._source), ("traits", self._trait),
                               ("segments", self._dimension), ("tags", self._tag),
                               ("measures", self._measure), ("playbooks", self._playbook),
                               ("destinations", self._destination), ("syncs", self._sync)):
            entries = document.get(section)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                self.problems.append(Problem(f"'{section}' must be a mapping of names",
                                             positions.value((section,))))
                continue
            for name, raw in entries.items():
                self._named(section, str(name), raw, positions, parse)
        if "health" in document:
            if self.health is not None:
                self.problems.append(Problem("health is defined twice",
                                             positions.key(("health",)),
                                             "keep one health section"))
            origin = Origin(positions, ("health",))
            self.origins[("health", "health")] = origin
            self.health = self.model(Health, document["health"], positions, ("health",))
        if "consent" in document:
            if self.consent is not None:
                self.problems.append(Problem("consent is defined twice",
                                             positions.key(("consent",)),
                                             "keep one consent section"))
            self.origins[("consent", "consent")] = Origin(positions, ("consent",))
            self.consent = self.model(ConsentSettings, document["consent"], positions,
                                      ("consent",))

    def _named(self, section: str, name: str, raw: Any, positions: Positions,
               parse: Callable[[str, Any, Positions, PathKey], None]) -> None:
        path: PathKey = (section, name)
        if not is_name(name):
            self.problems.append(Problem(
                f"'{name}' is not a valid name", positions.key(path),
                "use lowercase letters, digits and underscores, starting with a letter"))
            return
        previous = self.origins.get((section, name))
        if previous is not None:
            self.problems.append(Problem(
                f"{section[:-1] if section != 'segments' else 'dimension'} '{name}' is "
                f"defined twice (first at {previous.location})", positions.key(path),
                "rename one of them or remove the duplicate"))
            return
        self.origins[(section, name)] = Origin(positions, path)
        parse(name, raw, positions, path)

    def _source(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        model = self.model(Source, raw, positions, path)
        if model is not None:
            self.sources[name] = model

    def _trait(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        if isinstance(raw, str):
            raw = {"expr": raw}
        if isinstance(raw, dict) and "expr" in raw:
            derived = self.model(DerivedTrait, raw, positions, path)
            if derived is not None:
                self.traits[name] = derived
            return
        aggregate = self.model(AggregateTrait, raw, positions, path)
        if aggregate is not None:
            self.traits[name] = aggregate

    def _tag(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        model = self.model(Tag, {"when": raw} if isinstance(raw, str) else raw, positions, path)
        if model is not None:
            self.tags[name] = model

    def _measure(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        model = self.model(Measure, raw, positions, path)
        if model is not None:
            self.measures[name] = model

    def _playbook(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        model = self.model(Playbook, raw, positions, path)
        if model is not None:
            self.playbooks[name] = model

    def _destination(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        adapter: pydantic.TypeAdapter[Destination] = pydantic.TypeAdapter(Destination)
        try:
            self.destinations[name] = adapter.validate_python(raw if raw is not None else {})
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                # The first part of a location is the union member (the destination type).
                loc = tuple(error["loc"])
                loc = loc[1:] if loc and loc[0] in DESTINATION_TYPES else loc
                cls = DESTINATION_MODELS.get(str(raw.get("type")) if isinstance(raw, dict)
                                             else "", WebhookDestination)
                if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                    self.problems.append(Problem(
                        "a destination needs 'type': one of " + ", ".join(DESTINATION_TYPES),
                        positions.key(path) if not isinstance(raw, dict) or "type" not in raw
                        else positions.value((*path, "type")),
                        did_you_mean(str(raw.get("type")), DESTINATION_TYPES)
                        if isinstance(raw, dict) and "type" in raw else None))
                    continue
                self.problems.append(_problem(cls, error, positions, (*path, *loc)))

    def _sync(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        model = self.model(Sync, raw, positions, path)
        if model is not None:
            self.syncs[name] = model

    def _dimension(self, name: str, raw: Any, positions: Positions, path: PathKey) -> None:
        rules_path: PathKey = path
        if isinstance(raw, dict):
            settings = {k: v for k, v in raw.items() if k != "rules"}
            raw_rules = raw.get("rules")
            rules_path = (*path, "rules")
        else:
            settings, raw_rules = {}, raw
        if not isinstance(raw_rules, list):
            self.problems.append(Problem(
                f"dimension '{name}' needs a list of rules", positions.value(path),
                "write '- segment_name: \"condition\"' items, ending with '- name: else'"))
            return
        rules: list[dict[str, Any]] = []
        for index, item in enumerate(raw_rules):
            rule = _rule(item)
            if rule is None:
                self.problems.append(Problem(
                    "a rule is one 'segment_name: condition' pair",
                    positions.value((*rules_path, index)),
                    "e.g. '- at_risk: \"health < 40\"' or '- dormant: else'"))
                return
            rules.append(rule)
        model = self.model(Dimension, {**settings, "rules": rules}, positions, path,
                           remap=lambda loc: _rule_loc(loc, rules_path, rules))
        if model is not None:
            self.dimensions[name] = model

    def model(
            self, cls: type[M], raw: Any, positions: Positions, path: PathKey,
            remap: Callable[[tuple[Any, ...]], PathKey] | None = None) -> M | None:
        """Validate `raw` as `cls`; translate pydantic's errors into located problems."""
        try:
            return cls.model_validate(raw if raw is not None else {})
        except pydantic.ValidationError as exc:
            found = exc.errors()
            for error in found:
                loc = tuple("from" if part == "from_" else part for part in error["loc"])
                if error["type"] == "too_short" and any(
                        other is not error and other["loc"][:len(error["loc"])] == error["loc"]
                        for other in found):
                    continue  # a list whose items failed: the items' errors say why
                target = remap(loc) if remap else (*path, *loc)
                self.problems.append(_problem(cls, error, positions, target))
            return None


def _rule(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or len(item) != 1:
        return None
    segment, body = next(iter(item.items()))
    if body == "else" or body is None:
        return {"segment": segment, "when": None}
    if isinstance(body, dict):
        when = body.get("when")
        return {"segment": segment, **body, "when": None if when == "else" else when}
    return {"segment": segment, "when": str(body) if isinstance(body, (int, float, bool))
            else body}


def _rule_loc(loc: tuple[Any, ...], rules_path: PathKey,
              rules: list[dict[str, Any]]) -> PathKey:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        segment = str(rules[loc[1]]["segment"])
        return (*rules_path, loc[1], segment)
    return (*rules_path[:-1], *loc) if rules_path[-1] == "rules" else (*rules_path, *loc)


def _problem(cls: type[pydantic.BaseModel], error: Any, positions: Positions,
             path: PathKey) -> Problem:
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        key = str(path[-1])
        fields = [f.alias or n for n, f in cls.model_fields.items()]
        hint = did_you_mean(key, fields) or "allowed keys: " + ", ".join(sorted(fields))
        return Problem(f"unknown key '{key}'", positions.key(path), hint)
    if kind == "missing":
        return Problem(f"missing required key '{path[-1]}'", positions.key(path[:-1]))
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return Problem(f"'{error['input']}' is not allowed here", positions.value(path),
                       f"expected {expected}")
    if kind == "string_pattern_mismatch":
        return Problem(f"'{error['input']}' is not a valid name", positions.value(path),
                       "use lowercase letters, digits and underscores, starting with a letter")
    return Problem(message, positions.value(path))
