"""One self-contained HTML page: Plotly's JavaScript is embedded once, nothing is fetched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from retainer.measure.formatting import figure_text, percent, share_interval
from retainer.measure.metrics import MeasureResult
from retainer.report import charts
from retainer.report.data import QUALITY_COLUMNS, ReportData, rejected

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #1f2d3d; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; opacity: .8; }
nav { padding: 8px 32px; background: #eef1f4; font-size: 14px; }
nav a { margin-right: 16px; color: #1f4e79; text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1200px; }
section { margin-top: 28px; }
h2 { border-bottom: 2px solid #dde3ea; padding-bottom: 4px; }
.chart { background: #fff; border: 1px solid #e3e7eb; border-radius: 6px; margin: 12px 0;
         padding: 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; background: #fff; }
th, td { border-bottom: 1px solid #e3e7eb; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f7; }
.note { color: #8a6d00; font-size: 13px; }
.method { color: #666; font-size: 13px; }
.small { color: #8a6d00; }
.empty { color: #666; font-style: italic; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid #e3e7eb; border-radius: 6px; padding: 10px 16px; }
.card b { display: block; font-size: 22px; }
"""


class Page:
    """Sections of HTML and figures; the first figure carries Plotly's JavaScript."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.sections: list[tuple[str, str]] = []
        self.figures = 0

    def section(self, anchor: str, title: str) -> None:
        if self.sections:
            self.parts.append("</section>")
        self.sections.append((anchor, title))
        self.parts.append(f'<section id="{anchor}"><h2>{escape(title)}</h2>')

    def html(self, text: str) -> None:
        self.parts.append(text)

    def text(self, text: str, kind: str = "") -> None:
        css = f' class="{kind}"' if kind else ""
        self.parts.append(f"<p{css}>{escape(text)}</p>")

    def figure(self, figure: Any) -> None:
        import plotly.io as pio  # type: ignore[import-untyped,unused-ignore]

        self.figures += 1
        body = pio.to_html(figure, full_html=False, include_plotlyjs=self.figures == 1,
                           div_id=f"chart-{self.figures}",
                           config={"displaylogo": False, "responsive": True})
        self.parts.append(f'<div class="chart">{body}</div>')

    def table(self, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                       for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def render(self, title: str, subtitle: str) -> str:
        if self.sections:
            self.parts.append("</section>")
        nav = "".join(f'<a href="#{a}">{escape(t)}</a>' for a, t in self.sections)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
                f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
                f"<nav>{nav}</nav><main>{''.join(self.parts)}</main></body></html>\n")


def render(data: ReportData) -> str:
    page = Page()
    _overview(page, data)
    _segments(page, data)
    _health(page, data)
    _measures(page, data)
    _backtest(page, data)
    _uplift(page, data)
    _quality(page, data)
    when = f"as of {data.as_of:%Y-%m-%d}" if data.as_of else "no results yet"
    return page.render(f"Retainer report — {data.project}",
                       f"{when} · data observed until {data.observed_until:%Y-%m-%d} · "
                       f"generated {data.generated:%Y-%m-%d %H:%M} UTC")


def _overview(page: Page, data: ReportData) -> None:
    page.section("overview", "Overview")
    cards = [("accounts", f"{len(data.health_now):,}" if data.health_now else "–"),
             ("dates in history", f"{len(data.dates):,}"),
             ("measures", f"{len(data.measures):,}")]
    if data.backtest is not None and data.backtest.roc.auc.value is not None:
        cards.append((f"health AUC ({data.backtest.horizon.days}-day churn)",
                      f"{data.backtest.roc.auc.value:.3f}"))
    page.html('<div class="cards">' + "".join(
        f'<div class="card"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in cards) + "</div>")


def _segments(page: Page, data: ReportData) -> None:
    page.section("segments", "Segments over time")
    if not data.sizes:
        page.text("No history yet: fill it with 'retainer backfill --from D1 --to D2 "
                  "--every 7d' to see segments over time and flows.", "empty")
        return
    for dimension, rows in data.sizes.items():
        page.figure(charts.segment_sizes(dimension, rows, data.segment_order.get(dimension, ())))
    if data.flows is not None:
        page.figure(charts.flows(data))


def _health(page: Page, data: ReportData) -> None:
    page.section("health", "Health")
    if not data.health_now:
        page.text("The rulebook has no health score.", "empty")
        return
    page.figure(charts.health_distribution(data))
    if data.health_trend:
        page.figure(charts.health_trend(data))
        page.figure(charts.band_trend(data))


def _measures(page: Page, data: ReportData) -> None:
    page.section("measures", "Measures")
    if not data.measures and not data.measure_errors:
        page.text("No measures in the rulebook yet (add a 'measures:' section; see "
                  "docs/measures.md).", "empty")
    curves = {c.measure: c for c in data.retention}
    for result in data.measures:
        page.figure(charts.measure(result))
        _measure_table(page, result)
        if result.name in curves:
            page.figure(charts.retention(curves[result.name]))
    for name, error in data.measure_errors.items():
        page.text(f"{name}: could not be computed: {error}", "note")


def _measure_table(page: Page, result: MeasureResult) -> None:
    rows = []
    shown = (*result.figures, result.total) if len(result.figures) > 1 else result.figures
    for figure in shown:
        value, interval = figure_text(result.unit, figure.value, figure.low, figure.high)
        rows.append((figure.group, value, interval, f"{figure.n:,}",
                     "small group" if figure.small else ""))
    page.table(("group", result.metric, f"{100 * result.confidence:g}% interval", "n", ""),
               rows)
    page.text(f"Interval: {result.method}.", "method")
    for note in result.notes:
        page.text(note, "note")


def _backtest(page: Page, data: ReportData) -> None:
    page.section("backtest", "Health backtest")
    result = data.backtest
    if result is None:
        page.text(f"No backtest: {data.backtest_error or 'no history yet'}", "empty")
        return
    auc = result.roc.auc
    page.text(f"{len(result.dates)} dates from {result.dates[0]:%Y-%m-%d} to "
              f"{result.dates[-1]:%Y-%m-%d}; {result.observations:,} account-dates of paying "
              f"accounts, {result.churned:,} churned within {result.horizon.days} days "
              f"({percent(result.base_rate)}). ROC AUC {auc.value:.3f} (95% interval "
              f"{auc.low:.3f}–{auc.high:.3f}, Hanley–McNeil)." if auc.value is not None and
              auc.low is not None and auc.high is not None else "ROC AUC: not enough churn.")
    page.figure(charts.roc(data))
    page.table(("band", "account-dates", "churned", "churn rate (precision)", "recall", "lift",
                "this band or lower: precision", "recall"),
               [(b.band, f"{b.n:,}", f"{b.churned:,}", share_interval(b.churn_rate),
                 percent(b.recall), f"{b.lift:.2f}×", share_interval(b.cumulative_precision),
                 share_interval(b.cumulative_recall)) for b in result.bands])
    page.table(("flag", "flagged", "churned", "precision", "recall"),
               [(f.label, f"{f.flagged:,}", f"{f.churned:,}", share_interval(f.precision),
                 share_interval(f.recall)) for f in result.flags])
    page.figure(charts.calibration(data))
    page.figure(charts.components(data))
    lead = result.lead
    if lead.days:
        page.figure(charts.lead_time(data))
    page.text(f"Lead time: {lead.caught} of {lead.churners} churners were red within the "
              f"{result.horizon.days} days before churning"
              + (f", first red a median {lead.median:.0f} days before." if lead.median is not None
                 else "."), "method")
    for note in result.notes:
        page.text(note, "note")


def _uplift(page: Page, data: ReportData) -> None:
    page.section("uplift", "Playbook uplift")
    if not data.uplifts:
        page.text(data.uplift_note, "empty")
        return
    page.table(("playbook", "outcome", "treated", "holdout", "uplift", "95% interval"),
               [(u.playbook, u.outcome, share_interval(u.treated.rate),
                 share_interval(u.holdout.rate), percent(u.difference.value),
                 f"{percent(u.difference.low)} to {percent(u.difference.high)}")
                for u in data.uplifts])


def _quality(page: Page, data: ReportData) -> None:
    page.section("quality", "Data quality")
    if not data.quality:
        page.text("No runs yet.", "empty")
        return
    when = f" (run as of {data.quality_as_of:%Y-%m-%d})" if data.quality_as_of else ""
    page.text(f"Rows read and rejected per source{when}. Rows dated after as_of, or of an "
              "account or contact that exists only after it, are not rejected: they are "
              "simply not counted yet.", "method")
    labels = [c.replace("_", " ") for c in QUALITY_COLUMNS]
    page.table(["source", "read", "used", "rejected", *labels[2:]],
               [(r[0], f"{int(r[1] or 0):,}",
                 f"{int(r[1] or 0) - rejected(r) - int(r[6] or 0):,}", f"{rejected(r):,}",
                 *(f"{int(v or 0):,}" for v in r[2:])) for r in data.quality])
    page.figure(charts.quality(data))
    if data.quality_trend:
        page.table(("run as of", "rows read", "rows rejected"),
                   [(f"{w:%Y-%m-%d}", f"{read:,}", f"{bad:,}")
                    for w, read, bad in data.quality_trend[-12:]])
