"""The consent gate (docs/consent.md): before anything Retainer does reaches a person, the
consent valid at that moment for the purpose and channel, under the person's jurisdiction
policy, decides; every decision is appended to the decision log."""

from __future__ import annotations

from retainer.consent.gate import ConsentGate, Decision
from retainer.consent.policy import Resolved, resolve

__all__ = ["ConsentGate", "Decision", "Resolved", "resolve"]
