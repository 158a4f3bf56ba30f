"""Readers that must not create a state store ask first whether it is there."""

from __future__ import annotations

from pathlib import Path

from retainer.state import open_store, store_exists


def test_a_duckdb_store_exists_once_opened_and_asking_creates_nothing(tmp_path: Path) -> None:
    spec = ".retainer/state.duckdb"
    assert not store_exists(spec, tmp_path)
    assert not (tmp_path / ".retainer").exists()
    open_store(spec, tmp_path).close()
    assert store_exists(spec, tmp_path)
    assert store_exists(str(tmp_path / spec), Path("/elsewhere"))


def test_a_postgresql_store_always_counts_as_there(tmp_path: Path) -> None:
    assert store_exists("postgresql://postgres@127.0.0.1/test", tmp_path)
    assert store_exists("postgres://postgres@127.0.0.1/test", tmp_path)
