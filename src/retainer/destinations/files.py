"""Files destination: `<dir>/<stream>.<format>` holds the current state, one row per key.

A delivery reads the file, applies upserts and deletes by key, and replaces the file
atomically (write beside it, then rename), so a reader never sees half a file and a crash
leaves either the old or the new state. Columns are `key`, `entity_id`, then the payload's
fields; nested values (lists, mappings) are written as JSON text.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from retainer.destinations.base import DeliveryError, Destination, Record
from retainer.errors import Location, RetainerError
from retainer.rulebook.destination_models import FilesDestination as FilesSettings
from retainer.rulebook.loader import Rulebook

Row = dict[str, Any]
STREAM = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
RESERVED = ("key", "entity_id")


def valid_stream(stream: str) -> bool:
    """Whether a stream can name a file of the destination's directory (and only there)."""
    return bool(STREAM.match(stream)) and ".." not in stream


class FilesDestination(Destination):
    kind = "files"
    batch_size = 10_000  # every delivery rewrites the whole file: few, large batches

    def __init__(self, name: str, directory: Path,
                 file_format: Literal["parquet", "csv"] = "parquet") -> None:
        super().__init__(name)
        self.directory = directory
        self.format = file_format

    @classmethod
    def open(cls, name: str, settings: Any, rulebook: Rulebook,
             location: Location | None = None) -> FilesDestination:
        assert isinstance(settings, FilesSettings)
        return cls(name, rulebook.path(settings.dir), settings.format)

    def path(self, stream: str) -> Path:
        if not valid_stream(stream):
            raise DeliveryError(
                f"'{stream}' cannot be a file name in destination '{self.name}'",
                retryable=False, hint="use letters, digits, '_', '-' and '.' (no '/')")
        return self.directory / f"{stream}.{self.format}"

    def deliver(self, stream: str, records: Sequence[Record]) -> None:
        if not records:
            return
        path = self.path(stream)
        rows = self.read(stream)
        for record in records:
            if record.op == "delete":
                rows.pop(record.key, None)
                continue
            clash = [name for name in RESERVED if name in record.payload]
            if clash:
                raise DeliveryError(
                    f"record '{record.key}' has a payload field named '{clash[0]}', which "
                    f"the files destination '{self.name}' uses for itself", retryable=False,
                    hint="rename that column in the sync's 'columns'")
            rows[record.key] = {"key": record.key, "entity_id": record.entity_id,
                                **{k: _flat(v) for k, v in record.payload.items()}}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, list(rows.values()), self.format)
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc.strerror or exc}",
                                retryable=True,
                                hint="check that the directory exists and is writable") from None

    def read(self, stream: str) -> dict[str, Row]:
        """The rows the file holds now, by key (empty when there is no file yet)."""
        path = self.path(stream)
        if not path.exists():
            return {}
        try:
            rows = _read_parquet(path) if self.format == "parquet" else _read_csv(path)
        except (OSError, ValueError, RetainerError) as exc:
            raise DeliveryError(f"cannot read {path}: {exc}", retryable=False,
                                hint="move the damaged file away; the next sync rewrites "
                                     "it after 'retainer sync --full'") from None
        return {str(row["key"]): row for row in rows}


def _flat(value: Any) -> Any:
    """Lists and mappings become JSON text: one scalar per cell in both formats."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _columns(rows: list[Row]) -> list[str]:
    names: dict[str, None] = dict.fromkeys(RESERVED)
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _write_atomically(path: Path, rows: list[Row], file_format: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        if file_format == "parquet":
            _write_parquet(partial, rows)
        else:
            _write_csv(partial, rows)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    # Make the rename itself durable: without it a power cut may bring the old file back.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _write_parquet(path: Path, rows: list[Row]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for name in _columns(rows):
        values = [row.get(name) for row in rows]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed kinds in one column (a field that changed type): keep them all as text.
            arrays[name] = pa.array([None if v is None else str(v) for v in values],
                                    pa.string())
    pq.write_table(pa.table(arrays), path)


def _read_parquet(path: Path) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows: list[Row] = pq.read_table(path).to_pylist()
    except pa.ArrowException as exc:
        raise ValueError(str(exc)) from None
    return rows


def _write_csv(path: Path, rows: list[Row]) -> None:
    columns = _columns(rows)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(row.get(name)) for name in columns])


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_csv(path: Path) -> list[Row]:
    # CSV has no types: cells come back as text, and an empty cell as no value.
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "key" not in reader.fieldnames:
            raise ValueError("it has no 'key' column")
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]
