"""Exports of a compiled rulebook to other tools; `dbt` writes a dbt project."""

from __future__ import annotations

from retainer.export.dbt import DBT_DIALECTS, DbtProject, export_dbt_project, render_dbt_project

__all__ = ["DBT_DIALECTS", "DbtProject", "export_dbt_project", "render_dbt_project"]
