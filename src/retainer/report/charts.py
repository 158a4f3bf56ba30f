"""The report's Plotly figures, each built from plain report data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped,unused-ignore]

from retainer.measure.formatting import figure_text
from retainer.measure.metrics import MeasureResult
from retainer.report.data import QUALITY_COLUMNS, ReportData, RetentionCurves

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2",
           "#ff9da6", "#9d755d", "#bab0ac")
BAND_COLOURS = {"red": "#d62728", "yellow": "#f2b701", "green": "#2ca02c"}
LAYOUT: dict[str, Any] = {"template": "plotly_white", "height": 380,
                          "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
                          "font": {"family": "system-ui, sans-serif", "size": 12}}


def _figure(title: str, **layout: Any) -> Any:
    figure = go.Figure()
    figure.update_layout(**{**LAYOUT, "title": {"text": title}, **layout})
    return figure


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def segment_sizes(dimension: str, rows: Sequence[tuple[Any, str, int]],
                  order: Sequence[str] = ()) -> Any:
    figure = _figure(f"{dimension}: accounts per segment over time",
                     yaxis={"title": "accounts"}, hovermode="x unified")
    dates = sorted({r[0] for r in rows})
    found = set(r[1] for r in rows)
    segments = [s for s in order if s in found] + sorted(found - set(order))
    counts = {(r[0], r[1]): r[2] for r in rows}
    for index, segment in enumerate(segments):
        figure.add_trace(go.Scatter(x=dates, y=[counts.get((d, segment), 0) for d in dates],
                                    name=segment, stackgroup="one", mode="lines",
                                    line={"color": colour(index), "width": 0.5}))
    return figure


def flows(data: ReportData) -> Any:
    assert data.flows is not None
    dimension, start, end, rows = data.flows
    sources = sorted({a for a, _, _ in rows})
    targets = sorted({b for _, b, _ in rows})
    labels = [f"{s} ({start:%Y-%m-%d})" for s in sources] + \
             [f"{t} ({end:%Y-%m-%d})" for t in targets]
    tint = {name: colour(i) for i, name in enumerate(sorted(set(sources) | set(targets)))}
    figure = _figure(f"{dimension}: flows from {start:%Y-%m-%d} to {end:%Y-%m-%d}", height=480)
    figure.add_trace(go.Sankey(
        node={"label": labels, "pad": 14, "thickness": 16,
              "color": [tint[s] for s in sources] + [tint[t] for t in targets]},
        link={"source": [sources.index(a) for a, _, _ in rows],
              "target": [len(sources) + targets.index(b) for _, b, _ in rows],
              "value": [n for _, _, n in rows]}))
    return figure


def health_distribution(data: ReportData) -> Any:
    figure = _figure(f"health as of {data.as_of:%Y-%m-%d}", barmode="stack",
                     xaxis={"title": "health", "range": [0, 100]},
                     yaxis={"title": "accounts"})
    for index, band in enumerate(data.health_bands):
        scores = [s for s, b in data.health_now if b == band]
        figure.add_trace(go.Histogram(x=scores, name=band, xbins={"start": 0, "end": 100,
                                                                   "size": 5},
                                      marker={"color": BAND_COLOURS.get(band, colour(index))}))
    return figure


def health_trend(data: ReportData) -> Any:
    figure = _figure("health over time: median and middle half",
                     yaxis={"title": "health", "range": [0, 100]})
    dates = [r[0] for r in data.health_trend]
    figure.add_trace(go.Scatter(x=dates, y=[r[3] for r in data.health_trend], name="75th %",
                                mode="lines", line={"width": 0}, showlegend=False))
    figure.add_trace(go.Scatter(x=dates, y=[r[1] for r in data.health_trend], name="25–75th %",
                                mode="lines", line={"width": 0}, fill="tonexty",
                                fillcolor="rgba(76,120,168,0.2)"))
    figure.add_trace(go.Scatter(x=dates, y=[r[2] for r in data.health_trend], name="median",
                                mode="lines+markers", line={"color": PALETTE[0]}))
    return figure


def band_trend(data: ReportData) -> Any:
    figure = _figure("health bands over time", yaxis={"title": "accounts"}, barmode="stack")
    dates = sorted({r[0] for r in data.band_trend})
    counts = {(r[0], r[1]): r[2] for r in data.band_trend}
    for index, band in enumerate(data.health_bands):
        figure.add_trace(go.Bar(x=dates, y=[counts.get((d, band), 0) for d in dates],
                                name=band,
                                marker={"color": BAND_COLOURS.get(band, colour(index))}))
    return figure


def measure(result: MeasureResult) -> Any:
    scale = 100 if result.unit in ("share", "ratio") else 1
    suffix = "%" if scale == 100 else ""
    horizon = f", {result.horizon.days}-day horizon" if result.horizon else ""
    figure = _figure(f"{result.name}: {result.metric} by {result.by} "
                     f"(as of {result.as_of:%Y-%m-%d}{horizon})",
                     yaxis={"title": f"{result.metric}{' (%)' if suffix else ''}"},
                     showlegend=False)
    figures = [f for f in result.figures if f.value is not None]
    values = [(f.value or 0) * scale for f in figures]
    figure.add_trace(go.Bar(
        x=[f.group for f in figures], y=values,
        error_y={"type": "data", "symmetric": False,
                 "array": [((f.high if f.high is not None else f.value or 0) - (f.value or 0))
                           * scale for f in figures],
                 "arrayminus": [((f.value or 0) - (f.low if f.low is not None else
                                                   f.value or 0)) * scale for f in figures]},
        marker={"color": [("#bab0ac" if f.small else PALETTE[0]) for f in figures],
                "pattern": {"shape": ["/" if f.small else "" for f in figures]}},
        text=[f"n={f.n:,}{' (small)' if f.small else ''}" for f in figures],
        textposition="outside", cliponaxis=False,
        hovertext=[f"{f.group}: {figure_text(result.unit, f.value, f.low, f.high)[0]} "
                   f"({figure_text(result.unit, f.value, f.low, f.high)[1]}), n={f.n:,}"
                   for f in figures], hoverinfo="text"))
    return figure


def retention(curves: RetentionCurves) -> Any:
    figure = _figure(f"{curves.measure}: share of paying accounts still paying, by "
                     f"{curves.by} (cohort of {curves.cohort:%Y-%m-%d})",
                     xaxis={"title": "days after the cohort date"},
                     yaxis={"title": "retained (%)"})
    for index, curve in enumerate(curves.curves):
        figure.add_trace(go.Scatter(x=list(curve.days), y=[100 * r for r in curve.retained],
                                    name=f"{curve.group} (n={curve.n:,})", mode="lines",
                                    line={"color": colour(index), "shape": "hv"}))
    return figure


def roc(data: ReportData) -> Any:
    assert data.backtest is not None
    result = data.backtest
    auc = result.roc.auc.value
    figure = _figure(f"health as a churn predictor: ROC (AUC {auc:.3f})" if auc is not None
                     else "ROC", xaxis={"title": "false positive rate", "range": [0, 1]},
                     yaxis={"title": "true positive rate", "range": [0, 1]},
                     height=460, width=None)
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                                line={"dash": "dash", "color": "#999"}))
    figure.add_trace(go.Scatter(x=list(result.roc.fpr), y=list(result.roc.tpr), mode="lines",
                                name="health", line={"color": PALETTE[0]}))
    return figure


def calibration(data: ReportData) -> Any:
    assert data.backtest is not None
    rows = data.backtest.calibration
    figure = _figure(f"churn within {data.backtest.horizon.days} days by health",
                     xaxis={"title": "health"}, yaxis={"title": "churned (%)"},
                     showlegend=False)
    figure.add_trace(go.Bar(
        x=[f"{r.low:g}–{r.high:g}" for r in rows],
        y=[100 * (r.churn_rate.value or 0) for r in rows],
        error_y={"type": "data", "symmetric": False,
                 "array": [100 * ((r.churn_rate.high or 0) - (r.churn_rate.value or 0))
                           for r in rows],
                 "arrayminus": [100 * ((r.churn_rate.value or 0) - (r.churn_rate.low or 0))
                                for r in rows]},
        text=[f"n={r.n:,}" for r in rows], textposition="outside", cliponaxis=False,
        marker={"color": PALETTE[3]}))
    return figure


def components(data: ReportData) -> Any:
    assert data.backtest is not None
    rows = data.backtest.components
    figure = _figure("each health component's AUC", yaxis={"title": "AUC", "range": [0.4, 1]},
                     barmode="group")
    figure.add_trace(go.Bar(x=[r.name for r in rows],
                            y=[r.auc_alone.value for r in rows], name="alone",
                            marker={"color": PALETTE[0]}))
    figure.add_trace(go.Bar(x=[r.name for r in rows], y=[r.auc_without for r in rows],
                            name="health without it", marker={"color": PALETTE[1]}))
    return figure


def lead_time(data: ReportData) -> Any:
    assert data.backtest is not None
    lead = data.backtest.lead
    figure = _figure(f"days between first red and churn ({lead.caught} of {lead.churners} "
                     "churners were red before churning)",
                     xaxis={"title": "days before churn"}, yaxis={"title": "churners"},
                     showlegend=False)
    figure.add_trace(go.Histogram(x=list(lead.days), xbins={"size": 7},
                                  marker={"color": PALETTE[3]}))
    return figure


def quality(data: ReportData) -> Any:
    reasons = QUALITY_COLUMNS[2:6]
    figure = _figure("rows rejected per source, and why", barmode="stack",
                     yaxis={"title": "rows"})
    sources = [str(r[0]) for r in data.quality]
    for index, reason in enumerate(reasons):
        column = QUALITY_COLUMNS.index(reason)
        figure.add_trace(go.Bar(x=sources, y=[int(r[column] or 0) for r in data.quality],
                                name=reason.replace("_", " "), marker={"color": colour(index)}))
    return figure
