"""Demo data for Retainer: a deterministic, realistic B2B SaaS customer base."""

from __future__ import annotations

from retainer.demo.generator import DemoSummary, generate

__all__ = ["DemoSummary", "generate"]
