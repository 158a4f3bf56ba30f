"""Check measures against the rulebook they sit in: every name they use must exist and fit.

Problems point at the measure's own line (file:line:column) and suggest a fix, like every
other rulebook error. Columns of source data are checked when a measure is computed, since
only then are the sources read.
"""

from __future__ import annotations

from retainer.errors import Location, Problem, ValidationError, did_you_mean
from retainer.measure.groups import known_columns
from retainer.rulebook.loader import Rulebook
from retainer.rulebook.measure_models import BILLING_METRICS, SURVEY_METRICS, Buckets, Measure

# What each use of a name accepts (by kind of name, see groups.known_columns).
_GROUPS = ("dimension", "tag", "health band", "trait", "account column", "health component",
           "health score")
_NUMBERS = ("trait", "account column", "health score", "health component")
_FLAGS = ("trait", "tag", "account column")


def check_measures(rulebook: Rulebook, names: list[str] | None = None) -> None:
    """Raise ValidationError listing every problem of the named (default: all) measures."""
    problems: list[Problem] = []
    for name in names if names is not None else list(rulebook.measures):
        problems += measure_problems(rulebook, name, rulebook.measures[name])
    if problems:
        raise ValidationError(problems)


def measure_problems(rulebook: Rulebook, name: str, measure: Measure) -> list[Problem]:
    origin = rulebook.origins.get(("measures", name))

    def at(*path: str) -> Location | None:
        return origin.at(*path) if origin is not None else None

    known = known_columns(rulebook)
    contact_level = {n for n, d in rulebook.dimensions.items() if d.entity == "contact"}
    contact_level |= {n for n, t in rulebook.tags.items() if t.entity == "contact"}
    contact_level |= {n for n, t in rulebook.traits.items() if t.entity == "contact"}
    problems: list[Problem] = []

    def need(value: str, kinds: tuple[str, ...], what: str, *path: str) -> None:
        kind = known.get(value)
        if kind in kinds:
            return
        if value in contact_level:
            problems.append(Problem(f"'{value}' is computed per contact; measures group and "
                                    "measure accounts", at(*path),
                                    "use an account-level trait, dimension or tag"))
        elif kind is None:
            choices = [n for n, k in known.items() if k in kinds]
            problems.append(Problem(f"unknown name '{value}' in {what}", at(*path),
                                    did_you_mean(value, choices) or
                                    "use one of: " + ", ".join(sorted(choices))))
        else:
            problems.append(Problem(f"'{value}' is a {kind}, which {what} cannot use",
                                    at(*path), "it takes a " + " or ".join(kinds)))

    if isinstance(measure.by, Buckets):
        need(measure.by.trait, _NUMBERS, "by.trait (a number to bucket)", "by", "trait")
    elif measure.by is not None:
        need(measure.by, _GROUPS, "by", "by")
    if measure.metric == "mean" and measure.trait is not None:
        need(measure.trait, _NUMBERS, "a mean's trait", "trait")
    if measure.metric == "rate" and measure.trait is not None:
        need(measure.trait, _FLAGS, "a rate's trait (a yes/no value)", "trait")
    kind = "surveys" if measure.metric in SURVEY_METRICS else \
        "subscriptions" if measure.metric in BILLING_METRICS else None
    if kind is not None:
        if measure.source is not None and measure.source not in rulebook.sources:
            problems.append(Problem(f"unknown source '{measure.source}'", at("source"),
                                    did_you_mean(measure.source, rulebook.sources) or
                                    "sources: " + ", ".join(rulebook.sources)))
        elif measure.source is None and not any(s.kind == kind for s in
                                                rulebook.sources.values()):
            problems.append(Problem(
                f"metric '{measure.metric}' reads a source of kind '{kind}', and the project "
                "has none", at("metric"),
                f"declare one (kind: {kind}) or name the source with 'source:'"))
    return problems
