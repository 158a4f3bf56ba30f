"""The behaviour suite: what a rulebook means, case by case, on a real engine.

Each case is a rulebook, literal source rows, an as_of and the expected results. Every case
runs on every engine (the `target` fixture) with the same expected values; DuckDB's answers are
the reference. Where an engine cannot do something, the case says so and checks the error.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from retainer.errors import RetainerError
from tests.engine.harness import SOURCES, Target, evaluate, spark_session, target

__all__ = ["spark_session", "target"]  # fixtures: every case on every engine

AS_OF = datetime(2026, 3, 1)
ACCOUNTS = [{"account_id": "a1", "created_at": datetime(2025, 1, 1)},
            {"account_id": "a2", "created_at": datetime(2026, 2, 20)}]


def login(account: str, ts: object, user: str = "u1", **extra: object) -> dict[str, object]:
    return {"account_id": account, "user_id": user, "ts": ts, "name": "login", **extra}


def test_window_edges_are_half_open_and_nothing_after_as_of_counts(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          last_30d:  {count: events, window: 30d}
          prior_30d: {count: events, window: [60d, 30d]}
          ever:      {count: events}
          last_24h:  {count: events, window: 24h}
        """, {"accounts": ACCOUNTS, "events": [
            login("a1", datetime(2026, 1, 30, 0, 0, 0)),   # exactly as_of − 30d: prior window
            login("a1", datetime(2026, 1, 30, 0, 0, 1)),   # one second later: last 30 days
            login("a1", datetime(2025, 12, 31, 0, 0, 0)),  # exactly as_of − 60d: neither
            login("a1", datetime(2026, 2, 28, 0, 0, 0)),   # exactly as_of − 24h: not last 24h
            login("a1", datetime(2026, 3, 1, 0, 0, 0)),    # exactly as_of: counts
            login("a1", datetime(2026, 3, 1, 0, 0, 1)),    # after as_of: never counts
        ]}, AS_OF)
    assert (rows["a1"]["last_30d"], rows["a1"]["prior_30d"], rows["a1"]["ever"],
            rows["a1"]["last_24h"]) == (3, 1, 5, 1)


def test_empty_windows_and_nulls(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          n:        {count: events}
          total:    {sum: seats, from: events}
          average:  {avg: seats, from: events}
          biggest:  {max: seats, from: events}
          any_row:  {exists: events}
          features: {count_distinct: feature, from: events}
          seats_or_one: {max: seats, from: events, default: 1}
        """, {"accounts": ACCOUNTS, "events": [
            login("a1", datetime(2026, 2, 1), seats=3, feature="api"),
            login("a1", datetime(2026, 2, 2), seats=None, feature=None),
            login("a1", datetime(2026, 2, 3), seats=5, feature="api"),
        ]}, AS_OF)
    a1, a2 = rows["a1"], rows["a2"]
    assert (a1["n"], a1["total"], a1["average"], a1["biggest"], a1["any_row"],
            a1["features"], a1["seats_or_one"]) == (3, 8, 4.0, 5, True, 1, 5)
    # No rows at all: counts and sums are 0, exists is false, the rest are missing.
    assert (a2["n"], a2["total"], a2["average"], a2["biggest"], a2["any_row"],
            a2["features"], a2["seats_or_one"]) == (0, 0, None, None, False, 0, 1)


def test_latest_and_first_break_ties_by_value_and_skip_nulls(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          latest_score: {latest: score, from: surveys}
          first_score:  {first: score, from: surveys}
        """, {"accounts": ACCOUNTS,
              "contacts": [{"contact_id": "c1", "account_id": "a1", "role": "manager"}],
              "surveys": [
                  {"contact_id": "c1", "answered_at": datetime(2026, 1, 1), "score": 4},
                  {"contact_id": "c1", "answered_at": datetime(2026, 1, 1), "score": 9},
                  {"contact_id": "c1", "answered_at": datetime(2026, 2, 1), "score": 6},
                  {"contact_id": "c1", "answered_at": datetime(2026, 2, 1), "score": 2},
                  {"contact_id": "c1", "answered_at": datetime(2026, 2, 2), "score": None},
              ]}, AS_OF)
    assert (rows["a1"]["latest_score"], rows["a1"]["first_score"]) == (6, 4)


def test_times_are_utc_and_offsets_are_honoured(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          by_as_of: {count: events}
        """, {"accounts": ACCOUNTS, "events": [
            login("a1", "2026-02-28 23:30:00"),         # naive: read as UTC, counts
            login("a1", "2026-02-28T23:30:00-02:00"),   # 2026-03-01 01:30 UTC: after as_of
            login("a1", "2026-03-01T01:30:00+02:00"),   # 2026-02-28 23:30 UTC: counts
            login("a1", "yesterday"),                   # unparseable: rejected, not counted
        ]}, AS_OF)
    assert rows["a1"]["by_as_of"] == 2


def test_identity_aliases_and_contact_rollups(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          logins_30d: {count: events, window: 30d}
          contact_logins_30d: {count: events, window: 30d, entity: contact}
          active_people: {count: contacts, where: "contact_logins_30d > 0"}
          active_execs:  {count: contacts, where: "role = 'executive' and contact_logins_30d > 0"}
        """, {"accounts": ACCOUNTS,
              "contacts": [{"contact_id": "c1", "account_id": "a1", "role": "practitioner"},
                           {"contact_id": "c2", "account_id": "legacy-1", "role": "executive"},
                           {"contact_id": "c3", "account_id": "a1", "role": "executive"}],
              "identities": [{"source_id": "legacy-1", "account_id": "a1"}],
              "events": [login("legacy-1", datetime(2026, 2, 20), user="c1"),
                         login("a1", datetime(2026, 2, 21), user="c2"),
                         login("a1", datetime(2025, 2, 21), user="c3")]}, AS_OF)
    assert (rows["a1"]["logins_30d"], rows["a1"]["active_people"],
            rows["a1"]["active_execs"]) == (2, 2, 1)


def test_dimensions_are_exclusive_first_match_wins_and_null_never_matches(
        target: Target) -> None:
    rows = evaluate(target, """
        traits:
          logins: {count: events}
          score:  {latest: score, from: surveys}
        segments:
          activity:
            - heavy: "logins >= 2"
            - some:  "logins >= 1"
            - none:  else
          sentiment:              # no else: an account that matches nothing has no segment
            - happy: "score >= 9"
            - unhappy: "score < 7"
        """, {"accounts": ACCOUNTS,
              "contacts": [{"contact_id": "c1", "account_id": "a1", "role": "manager"}],
              "surveys": [{"contact_id": "c1", "answered_at": datetime(2026, 1, 1), "score": 10}],
              "events": [login("a1", datetime(2026, 2, 1)), login("a1", datetime(2026, 2, 2))]},
        AS_OF)
    assert (rows["a1"]["activity"], rows["a1"]["sentiment"]) == ("heavy", "happy")
    assert (rows["a2"]["activity"], rows["a2"]["sentiment"]) == ("none", None)


@pytest.mark.parametrize(("missing", "expected"), [("redistribute", 50.0), ("50", 50.0),
                                                   ("0", 25.0)])
def test_health_with_a_missing_component(target: Target, missing: str,
                                         expected: float) -> None:
    rows = evaluate(target, f"""
        traits:
          logins: {{count: events}}
          score:  {{latest: score, from: surveys}}
        health:
          components:
            usage:     {{trait: logins, weight: 1, scale: {{0: 0, 4: 100}}}}
            sentiment: {{trait: score, weight: 1, scale: {{0: 0, 10: 100}}, missing: {missing}}}
          bands: {{red: 0, green: 50}}
        """, {"accounts": ACCOUNTS,
              "contacts": [{"contact_id": "c9", "account_id": "a9", "role": "manager"}],
              "surveys": [{"contact_id": "c9", "answered_at": datetime(2026, 1, 1), "score": 1}],
              "events": [login("a1", datetime(2026, 2, d)) for d in (1, 2)]}, AS_OF)
    a1 = rows["a1"]
    assert a1["health__usage"] == 50.0
    assert a1["health"] == expected
    assert a1["health_band"] == ("green" if expected >= 50 else "red")


def test_health_scale_interpolates_and_is_flat_beyond_the_ends(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          logins: {count: events}
        health:
          components:
            usage: {trait: logins, weight: 1, scale: {1: 20, 3: 60, 5: 100}}
          bands: {red: 0, yellow: 40, green: 70}
        """, {"accounts": [{"account_id": f"a{n}", "created_at": datetime(2025, 1, 1)}
                           for n in range(7)],
              "events": [login(f"a{n}", datetime(2026, 2, 1, k)) for n in range(7)
                         for k in range(n)]}, AS_OF)
    scores = [rows[f"a{n}"]["health"] for n in range(7)]
    assert scores == [20.0, 20.0, 40.0, 60.0, 80.0, 100.0, 100.0]
    assert [rows[f"a{n}"]["health_band"] for n in (0, 2, 4)] == ["red", "yellow", "green"]


def test_where_can_read_contact_and_account_columns(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          exec_logins: {count: events, where: "contact.role = 'executive'"}
          early_logins: {count: events, where: "ts < account.created_at + interval 300 day"}
        """, {"accounts": ACCOUNTS,
              "contacts": [{"contact_id": "c1", "account_id": "a1", "role": "executive"},
                           {"contact_id": "c2", "account_id": "a1", "role": "manager"}],
              "events": [login("a1", datetime(2026, 2, 1), user="c1"),
                         login("a1", datetime(2026, 2, 10), user="c2"),
                         login("a1", datetime(2025, 6, 1), user="c1")]}, AS_OF)
    assert (rows["a1"]["exec_logins"], rows["a1"]["early_logins"]) == (2, 1)


def test_contact_segments_and_tags(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          contact_logins: {count: events, entity: contact}
        segments:
          persona:
            entity: contact
            rules:
              - active: "contact_logins > 1"
              - idle: else
        tags:
          exec_user: {entity: contact, when: "role = 'executive' and contact_logins > 0"}
        """, {"accounts": ACCOUNTS,
              "contacts": [{"contact_id": "c1", "account_id": "a1", "role": "executive"},
                           {"contact_id": "c2", "account_id": "a2", "role": "manager"},
                           {"contact_id": "c3", "account_id": "nope", "role": "manager"}],
              "events": [login("a1", datetime(2026, 2, 1), user="c1"),
                         login("a1", datetime(2026, 2, 2), user="c1")]},
        AS_OF, level="contact")
    assert set(rows) == {"c1", "c2"}  # c3 belongs to no known account
    assert (rows["c1"]["persona"], rows["c1"]["exec_user"]) == ("active", True)
    assert (rows["c2"]["persona"], rows["c2"]["exec_user"]) == ("idle", False)


def test_derived_traits_and_functions(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          logins: {count: events}
          last_seen: {max: ts, from: events}
          tenure_days: "days_between(account.created_at, as_of)"
          quiet_days: "coalesce(days_since(last_seen), tenure_days)"
          per_week: "round(ratio(logins, tenure_days / 7.0), 3)"
          label: "case when logins > 1 then 'busy' else 'calm' end"
        """, {"accounts": ACCOUNTS, "events": [login("a1", datetime(2026, 2, 26, 23, 59)),
                                               login("a1", datetime(2026, 2, 1))]}, AS_OF)
    a1, a2 = rows["a1"], rows["a2"]
    assert (a1["tenure_days"], a1["quiet_days"], a1["label"]) == (424, 3, "busy")
    assert a1["per_week"] == pytest.approx(round(2 / (424 / 7), 3))
    assert (a2["tenure_days"], a2["quiet_days"], a2["per_week"], a2["label"]) == (
        9, 9, 0.0, "calm")


def test_text_times_in_every_spelling_and_calendar_checks(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          by_as_of: {count: events}
        """, {"accounts": ACCOUNTS, "events": [
            login("a1", "2026/02/27"),                        # slashes: counts
            login("a1", "2026-2-8 1:02"),                     # one-digit parts: counts
            login("a1", "2026-02-28 23:30:00 America/New_York"),  # 03-01 04:30 UTC: after
            login("a1", "2026-02-28 12:00:00 EST"),           # 17:00 UTC: counts
            login("a1", "2024-02-29"),                        # a leap day: counts
            login("a1", "2026-02-29"),                        # no such day: rejected
            login("a1", "2026-04-31 10:00"),                  # no such day: rejected
            login("a1", "2026-02-28 25:00"),                  # no such hour: rejected
            login("a1", ""),                                  # empty: rejected
            login("a1", None),                                # missing: rejected
        ]}, AS_OF)
    assert rows["a1"]["by_as_of"] == 4
    quality = evaluate(target, "traits: {n: {count: events}}\n", {"accounts": ACCOUNTS,
                       "events": [login("a1", "2026-02-29"), login("a1", "2026-02-01"),
                                  login("a1", "2026-03-02 10:00+02:00")]}, AS_OF,
                       output="data_quality")
    assert (quality["events"]["rows_read"], quality["events"]["bad_time"],
            quality["events"]["after_as_of"]) == (3, 1, 1)


def test_accounts_created_after_as_of_are_not_part_of_the_run(target: Target) -> None:
    rulebook = """
        output: {include: [name]}
        traits:
          tenure_days: "days_between(account.created_at, as_of)"
          n: {count: events}
        """
    given = {"accounts": [
        {"account_id": "a1", "name": "Acme", "created_at": datetime(2025, 1, 1)},
        {"account_id": "a1", "name": "Acme renamed", "created_at": datetime(2026, 3, 5)},
        {"account_id": "a2", "name": "Globex", "created_at": AS_OF},   # exactly as_of: in
        {"account_id": "a3", "name": "Initech", "created_at": datetime(2026, 3, 1, 0, 0, 1)},
        {"account_id": "a4", "name": "Hooli", "created_at": None},     # undated: in
    ], "events": [login("a3", datetime(2026, 3, 2)),       # the future account's event
                  login("ghost", datetime(2026, 2, 1))]}   # an account nobody knows
    rows = evaluate(target, rulebook, given, AS_OF)
    assert sorted(rows) == ["a1", "a2", "a4"]
    assert (rows["a1"]["name"], rows["a1"]["tenure_days"]) == ("Acme", 424)
    assert (rows["a2"]["tenure_days"], rows["a4"]["tenure_days"]) == (0, None)
    quality = evaluate(target, rulebook, given, AS_OF, output="data_quality")
    accounts, events = quality["accounts"], quality["events"]
    # The later rename and the account created one second after as_of are counted, not
    # duplicates; the future account's event is after as_of rather than of an unknown id.
    assert (accounts["rows_read"], accounts["missing_id"], accounts["duplicate_id"],
            accounts["bad_time"], accounts["after_as_of"]) == (5, 0, 0, 0, 2)
    assert (events["rows_read"], events["unknown_id"], events["after_as_of"]) == (2, 1, 1)


def test_rows_of_what_exists_only_after_as_of_are_not_of_an_unknown_id(target: Target) -> None:
    # An account or contact created after as_of is not in scope yet, which is no fault of the
    # data: its rows count as after as_of, whatever their own time. Only an id that matches
    # nothing is unknown — and the counts do not depend on which traits read the source.
    sources = SOURCES.replace("role: role}", "role: role, time: created_at}")
    given = {"accounts": [{"account_id": "a1", "created_at": datetime(2025, 1, 1)},
                          {"account_id": "a3", "created_at": datetime(2026, 3, 5)}],
             "contacts": [
                 {"contact_id": "c1", "account_id": "a1", "created_at": datetime(2025, 1, 1)},
                 {"contact_id": "c3", "account_id": "a3", "created_at": datetime(2026, 1, 1)},
                 {"contact_id": "c4", "account_id": "a1", "created_at": datetime(2026, 3, 10)},
                 {"contact_id": "c5", "account_id": "ghost", "created_at": datetime(2026, 1, 1)}],
             "events": [login("a1", "2026-02-01", "c1"),
                        login("a3", "2026-02-01", "c3"),      # the later account's
                        login("a3", "soon", "c3"),            # ... even with a bad time
                        login("ghost", "2026-02-01"),         # an account nobody knows
                        login("ghost", "2026-03-02")],        # ... dated after as_of
             "surveys": [{"contact_id": contact, "answered_at": datetime(2026, 2, 1)}
                         # c3's account and c4 itself come later; c5's account is unknown
                         for contact in ("c1", "c3", "c4", "c5", "nobody")]}
    per_account = "traits: {logins: {count: events}, answers: {count: surveys}}\n"
    rows = evaluate(target, per_account, given, AS_OF, sources=sources)
    assert list(rows) == ["a1"] and (rows["a1"]["logins"], rows["a1"]["answers"]) == (1, 1)
    counted = ("rows_read", "missing_id", "duplicate_id", "unknown_id", "bad_time",
               "after_as_of")
    for rulebook in (per_account, per_account.replace("surveys}", "surveys, entity: contact}")):
        quality = {source: tuple(row[c] for c in counted) for source, row in evaluate(
            target, rulebook, given, AS_OF, output="data_quality", sources=sources).items()}
        assert quality == {"accounts": (2, 0, 0, 0, 0, 1), "contacts": (4, 0, 0, 1, 0, 2),
                           "events": (5, 0, 0, 1, 0, 3), "surveys": (5, 0, 0, 2, 0, 2)}


def test_a_tie_between_rows_of_one_id_keeps_the_smallest_values(target: Target) -> None:
    rulebook = """
        output: {include: [name]}
        traits:
          n: {count: events}
        tags:
          executive: {entity: contact, when: "role = 'executive' and account.name = 'Acme'"}
        """
    given = {"accounts": [
        {"account_id": "a1", "name": "Zeta", "created_at": datetime(2025, 1, 1)},
        {"account_id": "a1", "name": "Acme", "created_at": datetime(2025, 1, 1)},
        {"account_id": "a1", "name": "Older", "created_at": datetime(2024, 1, 1)},
    ], "contacts": [
        # Undated rows always tie; a column the run does not read plays no part.
        {"contact_id": "c1", "email": "a@x", "account_id": "a1", "role": "manager"},
        {"contact_id": "c1", "email": "z@x", "account_id": "a1", "role": "executive"},
    ]}
    assert evaluate(target, rulebook, given, AS_OF)["a1"]["name"] == "Acme"
    contacts = evaluate(target, rulebook, given, AS_OF, level="contact")
    assert (contacts["c1"]["role"], contacts["c1"]["executive"]) == ("executive", True)


def test_windowed_traits_beside_a_scan_of_every_row(target: Target) -> None:
    # `ever` and the quality counts read every row; the windowed traits (distinct counts,
    # one reading the contact's role) are computed apart from them, over their windows only,
    # and must mean the same.
    rulebook = """
        traits:
          days_30d: {count_distinct: "date(ts)", from: events, window: 30d}
          features_30d: {count_distinct: feature, from: events, where: "name = 'login'", window: 30d}
          exec_logins_30d: {count: events, where: "contact.role = 'executive'", window: 30d}
          logins_prev_30d: {count: events, window: [60d, 30d]}
          ever: {count: events}
        """
    given = {"accounts": ACCOUNTS, "contacts": [
        {"contact_id": "u1", "account_id": "a1", "role": "executive"},
        {"contact_id": "u2", "account_id": "a1", "role": "manager"},
    ], "events": [
        login("a1", datetime(2026, 2, 20, 9), feature="api"),
        login("a1", datetime(2026, 2, 20, 17), "u2", feature="ui"),
        login("a1", datetime(2026, 2, 25), feature="api"),
        login("a1", datetime(2026, 1, 30), feature="api"),     # exactly 30 days: previous
        login("a1", datetime(2025, 6, 1), feature="export"),   # outside every window
        login("a1", datetime(2026, 3, 2), feature="sso"),      # after as_of
        login("a2", datetime(2025, 1, 1), feature="api"),      # a2: nothing in the window
    ]}
    rows = evaluate(target, rulebook, given, AS_OF)
    assert (rows["a1"]["days_30d"], rows["a1"]["features_30d"], rows["a1"]["exec_logins_30d"],
            rows["a1"]["logins_prev_30d"], rows["a1"]["ever"]) == (2, 2, 2, 1, 5)
    assert (rows["a2"]["days_30d"], rows["a2"]["features_30d"], rows["a2"]["exec_logins_30d"],
            rows["a2"]["logins_prev_30d"], rows["a2"]["ever"]) == (0, 0, 0, 0, 1)
    quality = evaluate(target, rulebook, given, AS_OF, output="data_quality")
    assert (quality["events"]["rows_read"], quality["events"]["after_as_of"]) == (7, 1)


def test_an_unknown_time_zone_name(target: Target) -> None:
    rows = {"accounts": ACCOUNTS, "events": [login("a1", "2026-02-28 10:00:00 Mars/Olympus")]}
    rulebook = "traits: {n: {count: events}}\n"
    if target.engine == "postgres":
        # PostgreSQL has no TRY_CAST: a text that looks like a time is cast, and a zone name
        # it does not know stops the run with its own message instead of rejecting the row.
        with pytest.raises(RetainerError, match='time zone "mars/olympus" not recognized'):
            evaluate(target, rulebook, rows, AS_OF)
        return
    assert evaluate(target, rulebook, rows, AS_OF)["a1"]["n"] == 0


def test_rounding_at_ties_is_duckdbs_rounding_of_doubles(target: Target) -> None:
    values = {"a1": 2.675, "a2": 0.125, "a3": -0.125, "a4": 1.005, "a5": 1234.5}
    rows = evaluate(target, """
        traits:
          amount: {sum: amount, from: events}
          cents: "round(amount, 2)"
          whole: "round(amount)"
          tens: "round(amount, -1)"
        """, {"accounts": [{"account_id": a, "created_at": datetime(2025, 1, 1)}
                           for a in values],
              "events": [login(a, datetime(2026, 2, 1), amount=v) for a, v in values.items()]},
        AS_OF)
    # 2.675 and 1.005 are just below their halves as doubles; 0.125 is exact.
    assert [rows[a]["cents"] for a in values] == [2.67, 0.13, -0.13, 1.0, 1234.5]
    assert [rows[a]["whole"] for a in values] == [3.0, 0.0, -0.0, 1.0, 1235.0]
    assert [rows[a]["tens"] for a in values] == [0.0, 0.0, -0.0, 0.0, 1230.0]


def test_text_functions_division_and_boolean_values(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          logins: {count: events}
          any_api: {max: "feature = 'api'", from: events}
          all_api: {min: "feature = 'api'", from: events}
          last_seen: {max: ts, from: events}
          half: "logins / 2"
          modulo: "logins % 2"
          acme: "contains(account.name, 'cme')"
          starts: "starts_with(lower(account.name), 'acme')"
          pattern: "regexp_matches(account.name, '^A.*e$')"
          letters: "length(trim(account.name))"
          seen_year: "year(last_seen)"
          seen_day: "date(last_seen)"
        health:
          components:
            api: {trait: any_api, weight: 1, scale: {0: 0, 1: 100}}
          bands: {red: 0, green: 50}
        """, {"accounts": [{"account_id": "a1", "name": " Acme ", "created_at": datetime(2025, 1, 1)},
                           {"account_id": "a2", "name": "Globex", "created_at": datetime(2025, 1, 1)}],
              "events": [login("a1", datetime(2026, 2, 1, 10), feature="api"),
                         login("a1", datetime(2026, 2, 2, 10), feature="ui"),
                         login("a1", datetime(2026, 2, 3, 10), feature="api")]}, AS_OF)
    a1, a2 = rows["a1"], rows["a2"]
    assert (a1["half"], a1["modulo"], a2["half"]) == (1.5, 1, 0.0)
    assert (a1["any_api"], a1["all_api"], a2["any_api"]) == (True, False, None)
    assert (a1["acme"], a1["starts"], a1["pattern"], a1["letters"]) == (True, False, False, 4)
    assert (a2["acme"], a2["starts"], a2["pattern"], a2["letters"]) == (False, False, False, 6)
    assert (a1["seen_year"], str(a1["seen_day"])) == (2026, "2026-02-03")
    assert (a1["health"], a1["health_band"], a2["health"]) == (100.0, "green", None)


def test_a_boolean_cast_to_a_number(target: Target) -> None:
    rulebook = """
        traits:
          active: {exists: events}
          score: "cast(active as double)"
        """
    given = {"accounts": ACCOUNTS, "events": [login("a1", datetime(2026, 2, 1))]}
    if target.engine == "postgres":
        # PostgreSQL casts a boolean to an integer only; the error names the cast.
        with pytest.raises(RetainerError, match="cannot cast type boolean to double precision"):
            evaluate(target, rulebook, given, AS_OF)
        return
    rows = evaluate(target, rulebook, given, AS_OF)
    assert (rows["a1"]["score"], rows["a2"]["score"]) == (1.0, 0.0)


def test_an_unparseable_account_time_is_rejected_and_counted_once(target: Target) -> None:
    # "soon" might be after as_of: the row is left out and counted as a bad time only — not
    # also as a duplicate of a3's readable row, nor as after as_of. An undated row is kept.
    given = {"accounts": [{"account_id": "a1", "created_at": "2025-01-01"},
                          {"account_id": "a2", "created_at": "soon"},
                          {"account_id": "a3", "created_at": "2025-02-01"},
                          {"account_id": "a3", "created_at": "later"},
                          {"account_id": "a4", "created_at": None}],
             "events": [login("a2", datetime(2026, 2, 1)), login("a3", datetime(2026, 2, 1))]}
    rulebook = "traits: {n: {count: events}}\n"
    rows = evaluate(target, rulebook, given, AS_OF)
    assert sorted(rows) == ["a1", "a3", "a4"] and rows["a3"]["n"] == 1
    quality = evaluate(target, rulebook, given, AS_OF, output="data_quality")
    accounts, events = quality["accounts"], quality["events"]
    assert (accounts["rows_read"], accounts["duplicate_id"], accounts["bad_time"],
            accounts["after_as_of"]) == (5, 0, 2, 0)
    assert (events["rows_read"], events["unknown_id"]) == (2, 1)  # a2 is not in the run


def test_health_rounds_the_exact_double_half_away_from_zero(target: Target) -> None:
    rows = evaluate(target, """
        traits:
          logins: {count: events}
        health:
          components:
            usage: {trait: logins, weight: 1, scale: {0: 0, 1: 2.675, 2: 0.125}}
          bands: {red: 0}
        """, {"accounts": ACCOUNTS, "events": [login("a1", datetime(2026, 2, 1))]}, AS_OF)
    # 2.675 is stored just below itself; PostgreSQL's own ROUND would give 2.68.
    assert (rows["a1"]["health__usage"], rows["a1"]["health"]) == (2.675, 2.67)
