"""Load YAML into plain Python data while remembering where every key and value came from.

Pydantic validates plain dicts and reports error paths like ('traits', 'logins_30d', 'window');
the position map turns such a path back into file:line:column for the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from retainer.errors import Location, RetainerError

PathKey = tuple[str | int, ...]


@dataclass
class Positions:
    """Where each path of a loaded document sits: the key's position and the value's."""

    file: Path
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def key(self, path: PathKey) -> Location:
        """Position of the key at `path`, or of its nearest ancestor we know about."""
        return self._nearest(path, self.keys)

    def value(self, path: PathKey) -> Location:
        """Position of the value at `path` (for a string: its first character)."""
        return self._nearest(path, self.values)

    def _nearest(self, path: PathKey, table: dict[PathKey, tuple[int, int]]) -> Location:
        for end in range(len(path), -1, -1):
            hit = table.get(path[:end]) or self.keys.get(path[:end])
            if hit is not None:
                return Location(self.file, hit[0] + 1, hit[1] + 1)
        return Location(self.file, 1, 1)


def load_yaml(file: Path) -> tuple[Any, Positions]:
    """Parse one YAML file; syntax errors become RetainerError with the exact position."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RetainerError(f"file not found: {file}") from None
    except UnicodeDecodeError as exc:
        raise RetainerError(f"{file} is not UTF-8 text ({exc.reason})",
                            location=Location(file)) from None
    yaml = YAML(typ="rt")
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or exc.context or "invalid YAML"
        raise RetainerError(f"invalid YAML: {problem}", location=where,
                            hint="check indentation, and quote expressions that contain ':' "
                                 "or start with a special character") from None
    positions = Positions(file)
    return _plain(document, (), positions), positions


def _plain(node: Any, path: PathKey, positions: Positions) -> Any:
    """Convert ruamel's commented containers to dict/list, recording positions on the way."""
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            key_line, key_col = node.lc.key(key)
            positions.keys[child] = (key_line, key_col)
            value_pos = node.lc.value(key)
            if value_pos is not None:
                positions.values[child] = (value_pos[0], value_pos[1])
            out[str(key) if not isinstance(key, (int, float)) else key] = _plain(
                value, child, positions)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            child = (*path, index)
            line, col = node.lc.item(index)
            positions.keys[child] = (line, col)
            positions.values[child] = (line, col)
            items.append(_plain(value, child, positions))
        return items
    if isinstance(node, str):
        return str(node)
    return node


def string_offset_location(positions: Positions, path: PathKey, offset: int) -> Location:
    """Location of character `offset` inside the string value at `path`.

    ruamel points at the opening quote of a quoted scalar, so a quote there shifts by one.
    Block scalars and folded lines fall back to the value's own position.
    """
    start = positions.value(path)
    if start.line is None or start.column is None:
        return start
    try:
        line = positions.file.read_text(encoding="utf-8").splitlines()[start.line - 1]
    except (OSError, IndexError):
        return start
    first = line[start.column - 1: start.column]
    if first in "|>":
        return start
    quote = 1 if first in ("'", '"') else 0
    return start.shifted(quote + offset)
