"""Retainer: customer segmentation for retention, as a rulebook in git compiled to SQL."""

from __future__ import annotations

__version__ = "0.1.0"
