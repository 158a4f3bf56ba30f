"""Which consent rule applies to a contact: jurisdiction → policy → rule for a purpose.

A jurisdiction is a code such as `DE`, `EU` or `US-IL`. A policy matches it by exact code
first (in any policy), otherwise by the longest prefix pattern (`US*` matches `US-IL`), so
a policy for `US-CA` wins over one for `US*`; a subdivision no policy names (`DE-BY`) then
takes its country's (`DE`). A contact matching no policy, or of
unknown jurisdiction, gets `otherwise` — opt-in by default, the safe choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from retainer.rulebook.playbook_models import ConsentRule, ConsentSettings

OTHERWISE = "otherwise"


@dataclass(frozen=True)
class Resolved:
    jurisdiction: str | None     # the code looked up (None: unknown)
    policy: str                  # the policy's name, or "otherwise"
    rule: ConsentRule            # opt_in, opt_out or none for the purpose

    def label(self, purpose: str) -> str:
        """How a reason names the situation, before "is opt-in …": `EU marketing`, or
        `BR matches no policy; otherwise marketing`."""
        if self.policy != OTHERWISE:
            name = self.policy.upper() if len(self.policy) <= 3 else self.policy
            return f"{name} {purpose}"
        where = f"{self.jurisdiction} matches no policy" if self.jurisdiction \
            else "jurisdiction unknown"
        return f"{where}; otherwise {purpose}"


def normalise(code: str | None) -> str | None:
    text = (code or "").strip().upper()
    return text or None


def match_policy(settings: ConsentSettings, jurisdiction: str | None) -> str | None:
    """The name of the policy for a jurisdiction code, or None when none matches."""
    code = normalise(jurisdiction)
    if code is None:
        return None
    for name, policy in settings.jurisdictions.items():
        if any(normalise(p) == code for p in policy.match if not p.endswith("*")):
            return name
    best: tuple[int, str] | None = None
    for name, policy in settings.jurisdictions.items():
        for pattern in policy.match:
            prefix = normalise(pattern.rstrip("*")) if pattern.endswith("*") else None
            if prefix and code.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name)
    if best is not None:
        return best[1]
    # A subdivision (ISO 3166-2: DE-BY, GB-ENG) is governed by its country's policy.
    country, dash, _ = code.partition("-")
    return match_policy(settings, country) if dash and country else None


def resolve(settings: ConsentSettings, jurisdiction: str | None, purpose: str) -> Resolved:
    """The rule for `purpose` under the policy that governs `jurisdiction`."""
    code = normalise(jurisdiction)
    name = match_policy(settings, code)
    if name is None:
        return Resolved(code, OTHERWISE, settings.otherwise)
    policy = settings.jurisdictions[name]
    return Resolved(code, name, policy.purposes.get(purpose, policy.default))
