"""How figures are written for people, the same in the terminal and in the HTML report."""

from __future__ import annotations

from retainer.measure.stats import Estimate


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def share_interval(estimate: Estimate) -> str:
    """`14.7% (13.7–15.8%)`."""
    if estimate.value is None:
        return "–"
    if estimate.low is None or estimate.high is None:
        return percent(estimate.value)
    return f"{percent(estimate.value)} ({100 * estimate.low:.1f}–{100 * estimate.high:.1f}%)"


def figure_text(unit: str, value: float | None, low: float | None, high: float | None
                ) -> tuple[str, str]:
    """A figure and its interval in the measure's unit: NPS as a signed score, shares and
    revenue ratios as percentages, means as numbers."""
    if value is None:
        return "–", "–"

    def one(number: float) -> str:
        if unit == "nps":
            return f"{number:+.1f}"
        if unit in ("share", "ratio"):
            return f"{100 * number:.1f}%"
        return f"{number:,.2f}"

    interval = "–" if low is None or high is None else f"{one(low)} to {one(high)}"
    return one(value), interval
