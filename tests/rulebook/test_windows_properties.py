"""Property-based tests of durations and trait windows (`retainer.rulebook.windows`).

The documented rule: a window is half-open and ends at or before `as_of`:

    `30d`        → (as_of − 30 days, as_of]
    `[60d, 30d]` → (as_of − 60 days, as_of − 30 days]
    `all`        → everything up to and including as_of

A row exactly at the lower bound belongs to the earlier window, a row exactly at as_of counts,
and nothing after as_of is ever counted. These tests generate durations, windows, as_of times
and event times (with many events placed exactly on, or a microsecond either side of, each
bound) and check the rule against DuckDB evaluating the same literal bounds.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from retainer.compile.sql import timestamp
from retainer.rulebook.windows import Window, format_duration, parse_duration

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MICROSECOND = timedelta(microseconds=1)

# Up to ~20 years in any unit: far beyond any real window, far inside datetime's range.
counts = st.integers(0, 1000)
duration_texts = st.builds(lambda n, unit: f"{n}{unit}", counts, st.sampled_from(sorted(UNITS)))
as_of_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 12, 31))


@functools.cache
def connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


# --- durations -----------------------------------------------------------------------------------


@SETTINGS
@given(counts, st.sampled_from(sorted(UNITS)), st.sampled_from(["", " ", "  "]))
@example(0, "d", "")
@example(7, "d", "")
@example(24, "h", "")
@example(168, "h", " ")
def test_durations_round_trip_through_format(n: int, unit: str, space: str) -> None:
    """`parse_duration` reads `<n><unit>` (spaces allowed) as n units, and `format_duration`
    spells it back in the largest unit that divides it exactly (`14d` → `2w`, `48h` → `2d`),
    which parses to the same duration."""
    value = parse_duration(f"{space}{n}{space}{unit}{space}")
    assert value == n * UNITS[unit]
    text = format_duration(value)
    assert parse_duration(text) == value
    match = re.fullmatch(r"(\d+)([hdw])", text)
    assert match is not None, text
    shown, shown_unit = int(match.group(1)), match.group(2)
    larger = [u for u in ("d", "w") if UNITS[u] > UNITS[shown_unit]]
    if value:
        assert all(value % UNITS[u] for u in larger), (value, text)  # the largest exact unit
    assert shown * UNITS[shown_unit] == value


@SETTINGS
@given(st.one_of(
    st.text(max_size=8),
    st.from_regex(r"\s*-?\d{0,8}(\.\d)?\s*[hdwmsyHDW]?\s*", fullmatch=True),
))
@example("30")
@example("-1d")
@example("1.5d")
@example("30 days")
@example("d")
@example("")
def test_parse_duration_raises_only_value_error(text: str) -> None:
    """Anything that is not `<digits><h|d|w>` is refused with a ValueError (which the rulebook
    models turn into a located problem); nothing else is ever raised."""
    try:
        value = parse_duration(text)
    except ValueError as error:
        assert str(error)
        return
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", text)
    assert match is not None, text
    assert value == int(match.group(1)) * UNITS[match.group(2)]


@SETTINGS
@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers()),
                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)))
def test_non_text_durations_are_refused(value: Any) -> None:
    """Bare numbers (`30`), booleans (YAML `yes`), None, lists and mappings are not durations."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@SETTINGS
@given(st.from_regex(r"[1-9]\d{0,29}", fullmatch=True), st.sampled_from(sorted(UNITS)))
@example("9999999999", "d")
@example("99999999999", "w")
@example("9" * 30, "h")
@example("200000", "w")
def test_huge_durations_are_refused_with_value_error(digits: str, unit: str) -> None:
    """However many digits, a duration is either a timedelta or a ValueError (never an
    OverflowError, which pydantic would not turn into a located problem; commit 56a14b1 raised
    one for `9999999999d`)."""
    try:
        value = parse_duration(f"{digits}{unit}")
    except ValueError as error:
        assert str(error)
        return
    assert value == int(digits) * UNITS[unit]


@SETTINGS
@given(st.integers(1, 10**8), st.sampled_from(sorted(UNITS)), st.booleans(), as_of_times)
@example(200000, "w", False, datetime(2000, 1, 1))
@example(9999999, "d", True, datetime(2000, 1, 1))
def test_accepted_windows_can_be_applied_to_as_of(n: int, unit: str, prior: bool,
                                                  as_of: datetime) -> None:
    """A window that parses can be placed before any realistic as_of: `as_of - start`, which
    the compiler computes, must not leave the calendar (in commit 56a14b1 `200000w` parsed and
    then raised OverflowError there)."""
    value: Any = [f"{n}{unit}", "1h"] if prior else f"{n}{unit}"
    try:
        window = Window.parse(value)
    except ValueError:
        return
    assert window.start is not None
    assert as_of - window.start < as_of - window.end <= as_of


# --- window parsing ------------------------------------------------------------------------------


@SETTINGS
@given(duration_texts, duration_texts, st.sampled_from([list, tuple]))
@example("30d", "30d", list)
@example("1w", "7d", list)
@example("30d", "60d", tuple)
@example("168h", "1w", list)
def test_prior_window_needs_the_older_bound_first(older: str, newer: str,
                                                  kind: type[list[str]] | type[tuple[str, ...]]
                                                  ) -> None:
    """`[a, b]` is the prior period (as_of − a, as_of − b]; it is refused with a ValueError
    unless a is strictly longer than b (otherwise it would be empty or inverted), whatever the
    units (`[1w, 7d]` is empty too)."""
    start, end = parse_duration(older), parse_duration(newer)
    value = kind([older, newer])
    if start <= end:
        with pytest.raises(ValueError, match="empty"):
            Window.parse(value)
        return
    window = Window.parse(value)
    assert (window.start, window.end) == (start, end)
    assert not window.unbounded
    if end:
        assert str(window) == f"from {format_duration(start)} to {format_duration(end)} ago"
    else:  # `[30d, 0d]` is just `30d`
        assert window == Window.parse(older)


@SETTINGS
@given(duration_texts)
def test_single_duration_and_all_windows(text: str) -> None:
    """`30d` is (as_of − 30d, as_of]; `all` and a missing window are unbounded; a list that is
    not a pair is refused."""
    assume(parse_duration(text))  # an empty window is refused (see below)
    window = Window.parse(text)
    assert (window.start, window.end) == (parse_duration(text), timedelta(0))
    assert str(window) == f"last {format_duration(parse_duration(text))}"
    for unbounded in ("all", None):
        assert Window.parse(unbounded) == Window(None, timedelta(0))
        assert Window.parse(unbounded).unbounded
    for wrong in ([text], [text, text, text], []):
        with pytest.raises(ValueError, match="older, newer"):
            Window.parse(wrong)


# --- membership: the documented rule against DuckDB ----------------------------------------------


def in_window(window: Window, as_of: datetime, time: datetime) -> bool:
    """The documented half-open rule, written independently of the compiler."""
    if time > as_of - window.end:
        return False
    return window.start is None or time > as_of - window.start


@st.composite
def windows(draw: st.DrawFn) -> Window:
    """`all`, `<n><unit>` or a prior `[older, newer]`, built through `Window.parse`."""
    kind = draw(st.sampled_from(["all", "single", "prior"]))
    if kind == "all":
        return Window.parse("all")
    if kind == "single":
        return Window.parse(draw(duration_texts.filter(lambda t: parse_duration(t) > timedelta(0))))
    newer = draw(duration_texts)
    gap = draw(st.integers(1, 500))
    unit = draw(st.sampled_from(sorted(UNITS)))
    older = format_duration(parse_duration(newer) + gap * UNITS[unit])
    return Window.parse([older, newer])


def edge_times(window: Window, as_of: datetime) -> list[datetime]:
    """Every bound, and a microsecond and a second either side of it, plus as_of itself."""
    bounds = [as_of, as_of - window.end]
    if window.start is not None:
        bounds.append(as_of - window.start)
    return [bound + delta for bound in bounds
            for delta in (timedelta(0), MICROSECOND, -MICROSECOND, timedelta(seconds=1),
                          -timedelta(seconds=1))]


def offsets_from(as_of: datetime) -> st.SearchStrategy[datetime]:
    """Event times from ~30 weeks after as_of to ~3 years before it, to the microsecond."""
    return st.timedeltas(min_value=timedelta(weeks=-30), max_value=timedelta(days=1100)
                         ).map(lambda d: as_of - d)


def duckdb_members(events: list[datetime], lower: str | None, upper: str) -> list[bool]:
    """For each event, whether DuckDB's `t > lower AND t <= upper` keeps it."""
    con = connection()
    con.execute("CREATE OR REPLACE TABLE events (i INTEGER, t TIMESTAMP)")
    con.executemany("INSERT INTO events VALUES (?, ?)", list(enumerate(events)))
    condition = f"t <= {upper}" + (f" AND t > {lower}" if lower is not None else "")
    kept = {i for (i,) in con.execute(f"SELECT i FROM events WHERE {condition}").fetchall()}
    return [i in kept for i in range(len(events))]


def literal(value: datetime) -> str:
    """An exact TIMESTAMP literal (microseconds included)."""
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


@SETTINGS
@given(st.data(), windows(), as_of_times)
def test_membership_rule_matches_duckdb_on_the_same_bounds(data: st.DataObject, window: Window,
                                                           as_of: datetime) -> None:
    """For random events and events exactly at/around each bound, the half-open rule agrees
    with DuckDB filtering `t > as_of − start AND t <= as_of − end`; an event at as_of − end
    counts, one at as_of − start does not, and nothing after as_of ever counts."""
    events = edge_times(window, as_of) + data.draw(st.lists(offsets_from(as_of), max_size=20))
    lower = None if window.start is None else literal(as_of - window.start)
    expected = [in_window(window, as_of, t) for t in events]
    assert duckdb_members(events, lower, literal(as_of - window.end)) == expected
    assert in_window(window, as_of, as_of - window.end)
    if window.start is not None:
        assert not in_window(window, as_of, as_of - window.start)
    assert not any(in_window(window, as_of, t) for t in events if t > as_of)


@SETTINGS
@given(st.data(), duration_texts, st.integers(1, 400), st.integers(1, 400), as_of_times)
def test_adjacent_windows_split_a_window_without_gaps_or_overlap(
        data: st.DataObject, newest: str, gap1: int, gap2: int, as_of: datetime) -> None:
    """For s > m > e, every event of (as_of − s, as_of − e] is in exactly one of
    (as_of − s, as_of − m] and (as_of − m, as_of − e]: a row exactly at the shared bound belongs
    to the earlier window (e.g. `60d` = `[60d, 30d]` + `30d`)."""
    e = parse_duration(newest)
    m = e + gap1 * UNITS["d"]
    s = m + gap2 * UNITS["h"]
    whole, earlier, later = Window(s, e), Window(s, m), Window(m, e)
    events = (edge_times(whole, as_of) + edge_times(earlier, as_of)
              + data.draw(st.lists(offsets_from(as_of), max_size=20)))
    for t in events:
        parts = [in_window(earlier, as_of, t), in_window(later, as_of, t)]
        assert in_window(whole, as_of, t) == any(parts)
        assert not all(parts)
    assert in_window(earlier, as_of, as_of - m) and not in_window(later, as_of, as_of - m)


@SETTINGS
@given(st.data(), windows(), as_of_times)
@example(None, Window.parse("30d"), datetime(2026, 11, 30, 12, 0, 0, 500000))
@example(None, Window.parse(["60d", "30d"]), datetime(2026, 11, 30, 12, 0, 0, 1))
def test_compiler_literals_give_the_same_membership(data: st.DataObject | None, window: Window,
                                                    as_of: datetime) -> None:
    """The literals the compiler writes (`retainer.compile.sql.timestamp`) give the documented
    membership in DuckDB, also for an as_of with microseconds (`parse_as_of` keeps them): a
    literal cut to the second would drop an event exactly at as_of, as commit 56a14b1 did."""
    events = edge_times(window, as_of)
    if data is not None:  # explicit examples check the edges only
        events += data.draw(st.lists(offsets_from(as_of), max_size=20))
    lower = None if window.start is None else timestamp(as_of - window.start).sql("duckdb")
    upper = timestamp(as_of - window.end).sql("duckdb")
    assert duckdb_members(events, lower, upper) == [in_window(window, as_of, t) for t in events]


@pytest.mark.parametrize("text", ["0d", "0w", "٣d", "３d"])
def test_empty_and_non_ascii_durations_are_refused(text: str) -> None:
    """An empty window counts nothing and is certainly a mistake; digits are ASCII only."""
    with pytest.raises(ValueError):
        Window.parse(text)
