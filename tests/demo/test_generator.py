"""Tests for the demo data generator: real files on disk, read back through DuckDB."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from retainer.demo.generator import DemoSummary, generate

END = datetime(2025, 6, 30)

EXPECTED_COLUMNS = {
    "accounts": [
        "account_id", "name", "tier", "industry", "region", "owner", "seats_purchased",
        "created_at",
    ],
    "contacts": [
        "contact_id", "account_id", "email", "name", "role", "country", "state", "created_at",
    ],
    "events": ["event_id", "account_id", "user_id", "ts", "name", "feature"],
    "tickets": [
        "ticket_id", "account_id", "contact_id", "opened_at", "priority", "category", "status",
    ],
    "surveys": ["response_id", "contact_id", "kind", "score", "answered_at", "comment"],
    "subscriptions": [
        "subscription_id", "account_id", "plan", "status", "mrr", "seats", "started_at",
        "renews_at", "cancelled_at",
    ],
    "consents": [
        "contact_id", "purpose", "channel", "status", "legal_basis", "jurisdiction",
        "recorded_at", "source",
    ],
    "identities": ["source_id", "account_id"],
}

TIMESTAMP_COLUMNS = {
    "accounts": ["created_at"],
    "contacts": ["created_at"],
    "events": ["ts"],
    "tickets": ["opened_at"],
    "surveys": ["answered_at"],
    "subscriptions": ["started_at", "cancelled_at"],  # renews_at lies in the future by design
    "consents": ["recorded_at"],
}


def _connect(summary: DemoSummary) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    for source, path in summary.files.items():
        reader = (
            f"read_parquet('{path}')"
            if path.suffix == ".parquet"
            else f"read_csv('{path}', sample_size = -1)"
        )
        db.execute(f"CREATE VIEW {source} AS SELECT * FROM {reader}")
    # Events with legacy aliases resolved to the canonical account id.
    db.execute(
        """
        CREATE VIEW resolved AS
        SELECT e.*, coalesce(i.account_id, e.account_id) AS acct
        FROM events e LEFT JOIN identities i ON e.account_id = i.source_id
        """
    )
    db.execute(
        """
        CREATE VIEW lifecycle AS
        SELECT a.*, s.status, s.cancelled_at,
               coalesce(s.cancelled_at, TIMESTAMP '2025-06-30') AS stop
        FROM accounts a JOIN subscriptions s USING (account_id)
        """
    )
    return db


def _one(db: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = db.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _digests(summary: DemoSummary) -> dict[str, str]:
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in summary.files.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    return generate(
        tmp_path_factory.mktemp("demo"), accounts=3000, events=400_000, seed=11, end=END
    )


@pytest.fixture(scope="module")
def db(demo: DemoSummary) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = _connect(demo)
    yield connection
    connection.close()


# --- files, schema, determinism ---------------------------------------------------------


def test_writes_every_source_with_exact_columns(
    demo: DemoSummary, db: duckdb.DuckDBPyConnection
) -> None:
    assert set(demo.files) == set(EXPECTED_COLUMNS)
    for source, columns in EXPECTED_COLUMNS.items():
        assert demo.files[source].exists()
        got = [d[0] for d in db.execute(f"SELECT * FROM {source} LIMIT 0").description]
        assert got == columns, source


def test_summary_matches_the_files(demo: DemoSummary, db: duckdb.DuckDBPyConnection) -> None:
    assert _one(db, "SELECT count(*) FROM accounts") == demo.accounts == 3000
    assert _one(db, "SELECT count(*) FROM contacts") == demo.contacts
    assert _one(db, "SELECT count(*) FROM events") == demo.events == 400_000
    assert _one(db, "SELECT count(*) FROM tickets") == demo.tickets
    assert _one(db, "SELECT count(*) FROM surveys") == demo.surveys
    cancelled = "SELECT count(*) FROM subscriptions WHERE status = 'cancelled'"
    assert _one(db, cancelled) == demo.churned
    assert demo.end == END


def test_timestamps_are_naive_iso_seconds(demo: DemoSummary) -> None:
    line = demo.files["accounts"].read_text().splitlines()[1]
    assert re.search(r",\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", line)


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    args: dict[str, Any] = {"accounts": 120, "events": 15_000, "end": END}
    first = _digests(generate(tmp_path / "a", seed=3, **args))
    again = _digests(generate(tmp_path / "b", seed=3, **args))
    other = _digests(generate(tmp_path / "c", seed=4, **args))
    assert first == again
    assert all(first[k] != other[k] for k in ("accounts", "contacts", "events", "tickets"))


def test_end_accepts_a_date_and_defaults_to_today(tmp_path: Path) -> None:
    summary = generate(tmp_path / "d", accounts=5, events=300, end=date(2024, 1, 15))
    assert summary.end == datetime(2024, 1, 15)
    before = datetime.now(UTC).date()
    default = generate(tmp_path / "e", accounts=5, events=300)
    after = datetime.now(UTC).date()
    assert default.end in {datetime(d.year, d.month, d.day) for d in (before, after)}
    assert default.end.tzinfo is None


def test_rejects_nonsense_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, accounts=0)
    with pytest.raises(ValueError):
        generate(tmp_path, accounts=10, events=-1)


# --- time ---------------------------------------------------------------------------------


def test_nothing_is_dated_after_end(db: duckdb.DuckDBPyConnection) -> None:
    for source, columns in TIMESTAMP_COLUMNS.items():
        for column in columns:
            latest = _one(db, f"SELECT max({column}) FROM {source}")
            assert latest <= END, f"{source}.{column}"


def test_everything_lies_in_the_two_years_before_end(db: duckdb.DuckDBPyConnection) -> None:
    earliest = END - timedelta(days=731)
    assert _one(db, "SELECT min(created_at) FROM accounts") >= earliest
    assert _one(db, "SELECT min(ts) FROM events") >= earliest


def test_renewals_are_the_next_anniversary_after_end(db: duckdb.DuckDBPyConnection) -> None:
    # Anniversaries of Feb 29 fall on Feb 28, as DuckDB's year arithmetic does too.
    bad = _one(
        db,
        """
        SELECT count(*) FROM subscriptions
        WHERE status = 'active'
          AND NOT (renews_at > TIMESTAMP '2025-06-30'
                   AND renews_at <= TIMESTAMP '2025-06-30' + INTERVAL 1 YEAR
                   AND renews_at IN (started_at + INTERVAL 1 YEAR, started_at + INTERVAL 2 YEAR,
                                     started_at + INTERVAL 3 YEAR))
        """,
    )
    assert bad == 0


def test_new_signups_populate_the_new_stage(db: duckdb.DuckDBPyConnection) -> None:
    share = _one(
        db, "SELECT avg((created_at > TIMESTAMP '2025-05-31')::INT) FROM accounts"
    )
    assert 0.05 <= share <= 0.11


def test_events_are_sorted_by_time(db: duckdb.DuckDBPyConnection) -> None:
    unsorted = _one(
        db,
        """
        SELECT count(*) FROM (
          SELECT ts < lag(ts) OVER (ORDER BY event_id) AS back FROM events
        ) WHERE back
        """,
    )
    assert unsorted == 0


# --- referential integrity ---------------------------------------------------------------


def test_contacts_belong_to_accounts_and_join_after_signup(
    db: duckdb.DuckDBPyConnection,
) -> None:
    orphans = _one(
        db,
        """
        SELECT count(*) FROM contacts c LEFT JOIN accounts a USING (account_id)
        WHERE a.account_id IS NULL OR c.created_at < a.created_at
        """,
    )
    assert orphans == 0
    assert _one(db, "SELECT count(*) = count(DISTINCT email) FROM contacts")
    assert _one(db, "SELECT count(*) = count(DISTINCT contact_id) FROM contacts")


def test_event_users_are_contacts_of_the_resolved_account(
    db: duckdb.DuckDBPyConnection,
) -> None:
    orphans = db.execute(
        """
        SELECT r.account_id, count(*) FROM resolved r
        LEFT JOIN contacts c ON c.contact_id = r.user_id AND c.account_id = r.acct
        WHERE c.contact_id IS NULL GROUP BY 1
        """
    ).fetchall()
    known = {r[0] for r in db.execute("SELECT account_id FROM accounts").fetchall()}
    # The only orphans are the few events from accounts that exist nowhere.
    assert orphans
    assert all(account_id not in known for account_id, _ in orphans)
    assert all(re.fullmatch(r"A9{3}\d{4}", account_id) for account_id, _ in orphans)
    assert 0 < sum(n for _, n in orphans) <= 0.001 * 400_000


def test_legacy_aliases_resolve_through_identities(db: duckdb.DuckDBPyConnection) -> None:
    alias_share = _one(db, "SELECT avg((account_id LIKE 'legacy-%')::INT) FROM events")
    assert 0.005 <= alias_share <= 0.02
    unresolved = _one(
        db,
        """
        SELECT count(*) FROM events e LEFT JOIN identities i ON e.account_id = i.source_id
        WHERE e.account_id LIKE 'legacy-%' AND i.source_id IS NULL
        """,
    )
    assert unresolved == 0
    assert _one(db, "SELECT count(*) = count(DISTINCT source_id) FROM identities")
    aliased = _one(
        db, "SELECT count(DISTINCT account_id) / (SELECT count(*) FROM accounts) FROM identities"
    )
    assert 0.15 <= aliased <= 0.25


def test_nothing_happens_after_a_cancellation(db: duckdb.DuckDBPyConnection) -> None:
    late = _one(
        db,
        """
        SELECT (SELECT count(*) FROM resolved r JOIN lifecycle l ON l.account_id = r.acct
                WHERE r.ts > l.stop OR r.ts < l.created_at)
             + (SELECT count(*) FROM tickets t JOIN lifecycle l USING (account_id)
                WHERE t.opened_at > l.stop)
             + (SELECT count(*) FROM surveys s JOIN contacts c USING (contact_id)
                JOIN lifecycle l ON l.account_id = c.account_id WHERE s.answered_at > l.stop)
        """,
    )
    assert late == 0


# --- shape of the customer base ----------------------------------------------------------


def test_tier_mix_owners_and_seats(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        """
        SELECT tier, count(*) / 3000, avg((owner IS NULL)::INT),
               min(seats_purchased), max(seats_purchased)
        FROM accounts GROUP BY tier
        """
    ).fetchall()
    stats = {r[0]: r[1:] for r in rows}
    expected = {
        "smb": (0.65, 3, 25), "mid_market": (0.27, 20, 150), "enterprise": (0.08, 100, 2000),
    }
    assert set(stats) == set(expected)
    for tier, (share, lo, hi) in expected.items():
        got_share, unowned, seats_min, seats_max = stats[tier]
        assert abs(got_share - share) <= 0.03, tier
        assert lo <= seats_min and seats_max <= hi, tier
        if tier == "smb":
            assert 0.22 <= unowned <= 0.38
        else:
            assert unowned == 0, tier
    eu = _one(db, "SELECT avg((region = 'eu')::INT) FROM accounts")
    assert 0.35 <= eu <= 0.45
    assert _one(db, "SELECT count(*) = count(DISTINCT name) FROM accounts")


def test_roles_and_contact_counts(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        """
        SELECT a.tier, min(n), max(n), avg((practitioners >= 1)::INT), avg((managers >= 1)::INT),
               avg(executives)
        FROM accounts a JOIN (
          SELECT account_id, count(*) AS n,
                 count(*) FILTER (role = 'practitioner') AS practitioners,
                 count(*) FILTER (role = 'manager') AS managers,
                 count(*) FILTER (role = 'executive') AS executives
          FROM contacts GROUP BY 1
        ) USING (account_id) GROUP BY 1
        """
    ).fetchall()
    stats = {r[0]: r[1:] for r in rows}
    bounds = {"smb": (2, 6), "mid_market": (5, 20), "enterprise": (15, 60)}
    for tier, (lo, hi) in bounds.items():
        n_min, n_max, has_practitioner, has_manager, _ = stats[tier]
        assert lo <= n_min and n_max <= hi, tier
        assert has_practitioner == 1.0, tier
        assert has_manager >= 0.8, tier
    assert stats["enterprise"][4] > stats["mid_market"][4] > stats["smb"][4]
    assert _one(db, "SELECT count(DISTINCT role) FROM contacts") == 3


def test_geography_and_consent_jurisdictions(db: duckdb.DuckDBPyConnection) -> None:
    mismatched = _one(
        db,
        """
        SELECT count(*) FROM contacts c JOIN accounts a USING (account_id)
        WHERE NOT CASE a.region
          WHEN 'eu' THEN c.country IN ('DE', 'FR', 'NL', 'ES', 'IE') AND c.state IS NULL
          ELSE c.country = 'US' AND length(c.state) = 2 END
        """,
    )
    assert mismatched == 0
    wrong_jurisdiction = _one(
        db,
        """
        SELECT count(*) FROM consents k JOIN contacts c USING (contact_id)
        WHERE k.jurisdiction <> CASE WHEN c.country = 'US' THEN 'US-' || c.state ELSE 'EU' END
        """,
    )
    assert wrong_jurisdiction == 0


def test_consent_log_semantics(db: duckdb.DuckDBPyConnection) -> None:
    # A withdrawal always follows an earlier grant for the same contact/purpose/channel.
    dangling = _one(
        db,
        """
        SELECT count(*) FROM consents w WHERE w.status = 'withdrawn' AND NOT EXISTS (
          SELECT 1 FROM consents g
          WHERE g.contact_id = w.contact_id AND g.purpose = w.purpose
            AND g.channel = w.channel AND g.status = 'granted' AND g.recorded_at < w.recorded_at)
        """,
    )
    assert dangling == 0
    eu_basis = _one(
        db,
        """
        SELECT avg((legal_basis = 'consent')::INT) FROM consents
        WHERE purpose = 'marketing' AND jurisdiction = 'EU'
        """,
    )
    us_basis = _one(
        db,
        """
        SELECT avg((legal_basis = 'legitimate_interest')::INT) FROM consents
        WHERE purpose = 'marketing' AND jurisdiction LIKE 'US-%'
        """,
    )
    assert eu_basis == 1.0
    assert us_basis >= 0.7


def test_feature_is_set_only_on_feature_used(db: duckdb.DuckDBPyConnection) -> None:
    wrong = _one(
        db,
        """
        SELECT count(*) FROM events
        WHERE (name = 'feature_used') <> (feature IS NOT NULL)
        """,
    )
    assert wrong == 0
    assert _one(db, "SELECT count(DISTINCT name) FROM events") == 6
    assert _one(db, "SELECT count(DISTINCT feature) FROM events") == 10


def test_some_accounts_never_activate(db: duckdb.DuckDBPyConnection) -> None:
    share = _one(
        db,
        """
        SELECT avg((coalesce(f.n, 0) <= 1)::INT)
        FROM accounts a LEFT JOIN (
          SELECT acct, count(DISTINCT feature) AS n FROM resolved GROUP BY 1
        ) f ON f.acct = a.account_id
        WHERE a.created_at < TIMESTAMP '2025-05-31'
        """,
    )
    assert 0.08 <= share <= 0.25


# --- churn mechanics ---------------------------------------------------------------------


def test_churn_rate_and_timing(db: duckdb.DuckDBPyConnection) -> None:
    rate = _one(db, "SELECT avg((status = 'cancelled')::INT) FROM lifecycle")
    assert 0.12 <= rate <= 0.20
    too_early = _one(
        db,
        """
        SELECT count(*) FROM lifecycle
        WHERE (status = 'cancelled') <> (cancelled_at IS NOT NULL)
           OR cancelled_at < created_at + INTERVAL 30 DAY
        """,
    )
    assert too_early == 0
    by_tier = dict(
        db.execute(
            "SELECT tier, avg((status = 'cancelled')::INT) FROM lifecycle GROUP BY 1"
        ).fetchall()
    )
    assert by_tier["smb"] > by_tier["enterprise"]


def test_churners_go_quiet_before_cancelling(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        """
        SELECT l.status, avg(coalesce(x.logins, 0))
        FROM lifecycle l LEFT JOIN (
          SELECT r.acct, count(*) AS logins
          FROM resolved r JOIN lifecycle l2 ON l2.account_id = r.acct
          WHERE r.name = 'login' AND r.ts > l2.stop - INTERVAL 30 DAY
          GROUP BY 1
        ) x ON x.acct = l.account_id
        GROUP BY 1
        """
    ).fetchall()
    logins = dict(rows)
    assert logins["cancelled"] < 0.5 * logins["active"]


def test_tickets_surge_and_escalate_before_churn(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        """
        SELECT t.opened_at > l.stop - INTERVAL 60 DAY AND l.status = 'cancelled' AS pre_churn,
               avg((t.priority IN ('high', 'urgent'))::INT)
        FROM tickets t JOIN lifecycle l USING (account_id) GROUP BY 1
        """
    ).fetchall()
    escalated = dict(rows)
    assert escalated[True] > escalated[False] + 0.1


def test_nps_tracks_health(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        """
        SELECT l.status, avg(s.score)
        FROM surveys s JOIN contacts c USING (contact_id)
        JOIN lifecycle l ON l.account_id = c.account_id
        WHERE s.kind = 'nps' GROUP BY 1
        """
    ).fetchall()
    nps = dict(rows)
    assert nps["cancelled"] < nps["active"] - 1.0
    ranges = dict(
        (r[0], r[1:])
        for r in db.execute(
            "SELECT kind, min(score), max(score) FROM surveys GROUP BY 1"
        ).fetchall()
    )
    assert ranges["nps"][0] >= 0 and ranges["nps"][1] <= 10
    assert ranges["csat"][0] >= 1 and ranges["csat"][1] <= 5


# --- scale --------------------------------------------------------------------------------


def test_scale_smoke(tmp_path: Path) -> None:
    summary = generate(tmp_path, accounts=20_000, events=1_000_000, seed=5, end=END)
    db = _connect(summary)
    try:
        events = _one(db, "SELECT count(*) FROM events")
        assert abs(events - 1_000_000) <= 100_000
        assert events == summary.events
        assert _one(db, "SELECT count(*) FROM accounts") == 20_000
        assert 5 * 20_000 <= summary.contacts <= 12 * 20_000
        assert 0.12 <= summary.churned / 20_000 <= 0.20
    finally:
        db.close()
