"""The `measures:` section: figures per group with sample sizes and intervals (docs/measures.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, model_validator
from pydantic import Tag as UnionTag

from retainer.rulebook.fields import DurationField, Model, Name

# --- measures --------------------------------------------------------------------------------

METRICS = ("nps", "csat", "logo_retention", "gross_revenue_retention", "net_revenue_retention",
           "expansion_rate", "mean", "rate")
Metric = Literal["nps", "csat", "logo_retention", "gross_revenue_retention",
                 "net_revenue_retention", "expansion_rate", "mean", "rate"]
SURVEY_METRICS = ("nps", "csat")
REVENUE_METRICS = ("gross_revenue_retention", "net_revenue_retention", "expansion_rate")
BILLING_METRICS = ("logo_retention", *REVENUE_METRICS)
TRAIT_METRICS = ("mean", "rate")
# A trait, `health`, `health_band` or `health.<component>` (a column of the results).
MeasureColumn = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*"
                                             r"(\.[a-z][a-z0-9]*(_[a-z0-9]+)*)?$")]


class Buckets(Model):
    """Groups by ranges of a number: `{trait: mrr, buckets: [0, 500, 5000]}` gives
    `< 0`, `0–500`, `500–5000` and `≥ 5000` (each range includes its lower bound)."""

    trait: MeasureColumn
    buckets: tuple[float, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _increasing(self) -> Buckets:
        if any(b <= a for a, b in zip(self.buckets, self.buckets[1:], strict=False)):
            raise ValueError("buckets must be increasing bounds, e.g. [0, 500, 5000]")
        return self


def _by_kind(value: Any) -> str:
    return "buckets" if isinstance(value, (dict, Buckets)) else "name"


# `by:` is a name, or a mapping of buckets; errors come from the shape that was written.
GroupBy = Annotated[Annotated[MeasureColumn, UnionTag("name")]
                    | Annotated[Buckets, UnionTag("buckets")], Discriminator(_by_kind)]


class Measure(Model):
    """A figure computed inside each group of accounts, with its sample size and a confidence
    interval (docs/measures.md): `{metric: nps, by: value_tier}`."""

    metric: Metric
    by: GroupBy | None = None
    trait: MeasureColumn | None = None           # mean, rate
    horizon: DurationField | None = None         # retention metrics: how far ahead
    window: DurationField | None = None          # surveys: answers in (as_of − window, as_of]
    source: Name | None = None                   # the surveys / subscriptions source
    score: str = "score"                         # surveys: the answer's score column
    where: str | None = None                     # surveys: which answers count
    satisfied: float = 4                         # csat: a score at least this is satisfied
    cancelled: str = "cancelled_at"              # subscriptions: when it was cancelled
    revenue: str = "mrr"                         # subscriptions: recurring revenue
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    min_sample: int = Field(default=30, ge=1)    # smaller groups are flagged
    description: str | None = None

    @model_validator(mode="after")
    def _fits_metric(self) -> Measure:
        metric, given = self.metric, self.model_fields_set
        if metric in TRAIT_METRICS and self.trait is None:
            raise ValueError(f"metric '{metric}' needs 'trait': the trait (or health, "
                             "health.<component>, a tag) it is computed from")
        if metric in BILLING_METRICS and self.horizon is None:
            raise ValueError(f"metric '{metric}' needs 'horizon': how far after as_of "
                             "to look, e.g. horizon: 90d")
        allowed = {"metric", "by", "confidence", "min_sample", "description"}
        allowed |= {"trait"} if metric in TRAIT_METRICS else set()
        allowed |= {"window", "source", "score", "where"} if metric in SURVEY_METRICS else set()
        allowed |= {"satisfied"} if metric == "csat" else set()
        allowed |= {"horizon", "source", "cancelled"} if metric in BILLING_METRICS else set()
        allowed |= {"revenue"} if metric in REVENUE_METRICS else set()
        extra = sorted(given - allowed)
        if extra:
            raise ValueError(f"'{extra[0]}' does not apply to metric '{metric}'; it takes "
                             + ", ".join(sorted(allowed - {"metric"})))
        if self.horizon is not None and not self.horizon:
            raise ValueError("horizon must be a positive duration, e.g. 90d")
        if self.window is not None and not self.window:
            raise ValueError("window must be a positive duration, e.g. 365d")
        return self
