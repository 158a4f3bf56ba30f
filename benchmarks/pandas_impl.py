"""The demo rulebook written by hand in idiomatic, vectorised pandas.

Same semantics as Retainer and `handwritten.sql`: windows are half-open, (as_of - N days,
as_of]; nothing dated after as_of counts; account ids go through the identity map; surveys
find their account through the answering contact; `latest` breaks ties by the larger value;
a health component that is missing gives its weight to the others; the first matching
segment rule wins; tags are false when unknown.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

# Health: component -> (trait, weight, scale points).
HEALTH: dict[str, tuple[str, float, dict[float, float]]] = {
    "usage": ("active_days_30d", 40, {0: 0, 4: 40, 10: 70, 18: 100}),
    "breadth": ("features_90d", 20, {0: 0, 2: 40, 5: 80, 8: 100}),
    "support": ("tickets_30d", 15, {0: 100, 2: 70, 5: 30, 8: 0}),
    "sentiment": ("nps", 25, {0: 0, 6: 30, 8: 70, 10: 100}),
}
COUNTS = (
    "logins_30d", "logins_prev_30d", "active_days_30d", "features_90d", "integrations",
    "seats_added_90d", "tickets_30d", "urgent_tickets_90d", "active_users_30d",
)


def compute(data_dir: Path, as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(account results indexed by account_id, contact results indexed by contact_id)."""
    now = pd.Timestamp(as_of)
    identities = _identities(_read_csv(data_dir / "identities.csv"))
    accounts = _latest_per_id(_read_csv(data_dir / "accounts.csv"), "account_id", now)
    contacts = _latest_per_id(_read_csv(data_dir / "contacts.csv"), "contact_id", now)
    contacts["account_id"] = _resolve(contacts["account_id"], identities)

    # Ids and names repeat a lot: read them as categoricals (pyarrow dictionary columns).
    events = pd.read_parquet(data_dir / "events.parquet",
                             columns=["account_id", "user_id", "ts", "name", "feature"],
                             read_dictionary=["account_id", "user_id", "name", "feature"])
    events = events[events["ts"] <= now]
    events["account_id"] = _resolve(events["account_id"], identities)
    events["role"] = events["user_id"].map(contacts.set_index("contact_id")["role"])

    contact_results = _contact_results(contacts, events, accounts, now)
    active_users = (
        contact_results[(contact_results["created_at"] <= now)
                        & (contact_results["contact_logins_30d"] > 0)]
        .groupby("account_id", observed=True).size().rename("active_users_30d")
    )
    traits = accounts.set_index("account_id")[
        ["name", "tier", "owner", "seats_purchased", "created_at"]
    ].join([
        _event_traits(events, now),
        _ticket_traits(_read_csv(data_dir / "tickets.csv"), identities, now),
        _survey_traits(_read_csv(data_dir / "surveys.csv"), contacts, now),
        _subscription_traits(_read_csv(data_dir / "subscriptions.csv"), identities, now),
        active_users,
    ])
    traits[list(COUNTS)] = traits[list(COUNTS)].fillna(0).astype("int64")
    traits["exec_active_90d"] = traits["exec_active_90d"].fillna(False).astype(bool)
    return _account_results(traits, now), contact_results.drop(columns="created_at")


# --- sources --------------------------------------------------------------------------------

def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, engine="pyarrow")


def _identities(raw: pd.DataFrame) -> pd.Series:
    """Legacy id -> account id; an alias claimed by two accounts resolves to the smaller id."""
    return raw.dropna(subset=["source_id", "account_id"]).groupby("source_id")["account_id"].min()


def _resolve(ids: pd.Series, identities: pd.Series) -> pd.Series:
    """Ids through the identity map; ids without an alias entry stay as they are.

    Categorical ids are resolved once per category and stay categorical.
    """
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        return ids.map(identities).fillna(ids)
    distinct = ids.cat.categories.to_series()
    resolved = pd.Categorical(distinct.map(identities).fillna(distinct))
    codes = ids.cat.codes.to_numpy()
    new_codes = np.where(codes >= 0, resolved.codes[codes], -1)
    return pd.Series(pd.Categorical.from_codes(new_codes, resolved.categories), index=ids.index)


def _latest_per_id(raw: pd.DataFrame, key: str, now: pd.Timestamp) -> pd.DataFrame:
    """One row per id, the latest by created_at at or before as_of (undated rows are kept);
    rows without an id are dropped."""
    existing = raw["created_at"].isna() | (raw["created_at"] <= now)
    return (raw[existing].dropna(subset=[key])
            .sort_values("created_at", ascending=False, na_position="last", kind="stable")
            .drop_duplicates(key)
            .reset_index(drop=True))


def _window(times: pd.Series, now: pd.Timestamp, start: int, end: int = 0) -> pd.Series:
    """(now - start days, now - end days]."""
    return (times > now - pd.Timedelta(days=start)) & (times <= now - pd.Timedelta(days=end))


# --- aggregates -----------------------------------------------------------------------------

def _event_traits(events: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    name, ts = events["name"], events["ts"]
    in_30d, in_90d = _window(ts, now, 30), _window(ts, now, 90)
    flags = pd.DataFrame({
        "account_id": events["account_id"],
        "logins_30d": (name == "login") & in_30d,
        "logins_prev_30d": (name == "login") & _window(ts, now, 60, 30),
        "integrations": name == "integration_connected",
        "seats_added_90d": (name == "seat_added") & in_90d,
        "exec_active_90d": (events["role"] == "executive") & in_90d,
        "last_seen": ts,
    })
    per_account = flags.groupby("account_id", observed=True).agg(
        logins_30d=("logins_30d", "sum"),
        logins_prev_30d=("logins_prev_30d", "sum"),
        integrations=("integrations", "sum"),
        seats_added_90d=("seats_added_90d", "sum"),
        exec_active_90d=("exec_active_90d", "any"),
        last_seen=("last_seen", "max"),
    )
    active_days = (events.loc[in_30d, "ts"].dt.normalize()
                   .groupby(events.loc[in_30d, "account_id"], observed=True).nunique())
    used = events[(name == "feature_used") & in_90d]
    features = used.groupby("account_id", observed=True)["feature"].nunique()
    return per_account.assign(active_days_30d=active_days, features_90d=features)


def _contact_results(contacts: pd.DataFrame, events: pd.DataFrame, accounts: pd.DataFrame,
                     now: pd.Timestamp) -> pd.DataFrame:
    recent = events[_window(events["ts"], now, 30)]
    per_contact = (
        recent.assign(login=recent["name"] == "login", day=recent["ts"].dt.normalize())
        .groupby("user_id", observed=True)
        .agg(contact_logins_30d=("login", "sum"), contact_active_days_30d=("day", "nunique"))
    )
    known = contacts[contacts["account_id"].isin(accounts["account_id"])]
    result = known.set_index("contact_id")[["account_id", "role", "created_at"]].join(per_contact)
    counts = ["contact_logins_30d", "contact_active_days_30d"]
    result[counts] = result[counts].fillna(0).astype("int64")
    days, logins = result["contact_active_days_30d"], result["contact_logins_30d"]
    result["persona"] = np.select([days >= 12, logins >= 1], ["power", "regular"], "inactive")
    result["champion"] = (result["role"] == "practitioner") & (days >= 12)
    return result


def _ticket_traits(tickets: pd.DataFrame, identities: pd.Series,
                   now: pd.Timestamp) -> pd.DataFrame:
    opened = tickets["opened_at"]
    return pd.DataFrame({
        "account_id": _resolve(tickets["account_id"], identities),
        "tickets_30d": _window(opened, now, 30),
        "urgent_tickets_90d": tickets["priority"].isin(["high", "urgent"])
        & _window(opened, now, 90),
    })[opened <= now].groupby("account_id", observed=True).sum()


def _survey_traits(surveys: pd.DataFrame, contacts: pd.DataFrame,
                   now: pd.Timestamp) -> pd.DataFrame:
    answers = surveys[surveys["answered_at"] <= now].merge(
        contacts[["contact_id", "account_id"]], on="contact_id")
    nps = (answers[(answers["kind"] == "nps") & answers["score"].notna()]
           .sort_values(["answered_at", "score"])
           .groupby("account_id", observed=True)["score"].last())
    csat = (answers[(answers["kind"] == "csat") & _window(answers["answered_at"], now, 90)]
            .groupby("account_id", observed=True)["score"].mean())
    return pd.DataFrame({"nps": nps, "csat_90d": csat})


def _subscription_traits(subscriptions: pd.DataFrame, identities: pd.Series,
                         now: pd.Timestamp) -> pd.DataFrame:
    subs = subscriptions[subscriptions["started_at"] <= now].assign(
        account_id=lambda s: _resolve(s["account_id"], identities))
    mrr = (subs[subs["mrr"].notna()].sort_values(["started_at", "mrr"])
           .groupby("account_id", observed=True)["mrr"].last())
    cancelled = (subs[subs["cancelled_at"] <= now]
                 .groupby("account_id", observed=True)["cancelled_at"].max())
    return pd.DataFrame({"mrr": mrr, "cancelled_at": cancelled})


# --- per account: derived traits, health, segments, tags -------------------------------------

def _account_results(t: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    today = now.normalize()
    t["tenure_days"] = (today - t["created_at"].dt.normalize()).dt.days
    t["days_since_seen"] = (today - t["last_seen"].dt.normalize()).dt.days.fillna(
        t["tenure_days"])
    t["logins_trend"] = t["logins_30d"] / t["logins_prev_30d"].where(t["logins_prev_30d"] != 0)
    t["seat_utilisation"] = t["active_users_30d"] / t["seats_purchased"].where(
        t["seats_purchased"] != 0)

    weighted = pd.Series(0.0, index=t.index)
    weights = pd.Series(0.0, index=t.index)
    for component, (trait, weight, scale) in HEALTH.items():
        score = pd.Series(np.interp(t[trait].astype(float), list(scale), list(scale.values())),
                          index=t.index).where(t[trait].notna())
        t[f"health__{component}"] = score
        weighted += (score * weight).fillna(0)
        weights += score.notna() * weight
    t["health"] = _round_half_away(weighted / weights.where(weights > 0), 2)
    # Bands from their lower bounds: [0, 45) red, [45, 70) yellow, [70, ...) green.
    t["health_band"] = pd.cut(t["health"], [0, 45, 70, np.inf], right=False,
                              labels=["red", "yellow", "green"])

    t["lifecycle"] = np.select(
        [t["cancelled_at"].notna(),
         t["tenure_days"] <= 30,
         (t["health_band"] == "red") | (t["days_since_seen"] > 30),
         (t["active_days_30d"] >= 12) & (t["features_90d"] >= 5),
         t["features_90d"] >= 2],
        ["lapsed", "new", "at_risk", "power_user", "activated"], "dormant")
    t["nps_group"] = np.select([t["nps"] >= 9, t["nps"] >= 7, t["nps"] >= 0],
                               ["promoter", "passive", "detractor"], "no_answer")
    t["value_tier"] = np.select([(t["tier"] == "enterprise") | (t["mrr"] >= 5000),
                                 t["mrr"] >= 500], ["strategic", "growth"], "scaled")
    t["support_pattern"] = np.select(
        [(t["tickets_30d"] >= 4) | (t["urgent_tickets_90d"] >= 3), t["tickets_30d"] >= 1],
        ["heavy", "occasional"], "self_serve")

    # Comparisons with a missing value are False here, which is the tags' "unknown is false".
    t["expansion_signal"] = (t["seats_added_90d"] >= 3) | (t["seat_utilisation"] >= 0.9)
    t["exec_sponsor_engaged"] = t["exec_active_90d"]
    t["activation_overdue"] = t["tenure_days"].between(7, 30) & (t["features_90d"] == 0)
    return t.drop(columns=["seats_purchased", "created_at"])


def _round_half_away(values: pd.Series, decimals: int) -> pd.Series:
    """Round half away from zero (like SQL's ROUND), not to even as numpy does."""
    scaled: npt.NDArray[np.float64] = np.abs(values.to_numpy(dtype=float)) * 10**decimals
    whole = np.floor(scaled)
    rounded = np.copysign(whole + (scaled - whole >= 0.5), values.to_numpy(dtype=float))
    return pd.Series(rounded / 10**decimals, index=values.index)
