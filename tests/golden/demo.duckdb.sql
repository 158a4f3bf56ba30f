-- stg_identities: alias ids → account ids
CREATE OR REPLACE VIEW stg_identities AS
SELECT
  s.source_id AS __alias,
  MIN(s.account_id) AS __account
FROM src_identities AS s
WHERE
  NOT s.source_id IS NULL AND NOT s.account_id IS NULL
GROUP BY
  s.source_id;

-- stg_accounts_rows: every account row, ranked per id
CREATE OR REPLACE TABLE stg_accounts_rows AS
SELECT
  s.account_id AS __account,
  s.created_at AS __time,
  s.name,
  s.tier,
  s.owner,
  s.seats_purchased,
  s.created_at,
  (
    s.created_at IS NULL OR s.created_at <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
  )
  AND NOT (
    NOT s.created_at IS NULL AND s.created_at IS NULL
  ) AS __in_run,
  NOT s.created_at IS NULL AND s.created_at IS NULL AS __bad_time,
  ROW_NUMBER() OVER (
    PARTITION BY s.account_id, (
      s.created_at IS NULL OR s.created_at <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND NOT (
      NOT s.created_at IS NULL AND s.created_at IS NULL
    )
    ORDER BY s.created_at DESC, CAST(s.name AS TEXT) NULLS FIRST, CAST(s.tier AS TEXT) NULLS FIRST, CAST(s.owner AS TEXT) NULLS FIRST, CAST(s.seats_purchased AS TEXT) NULLS FIRST, CAST(s.created_at AS TEXT) NULLS FIRST
  ) AS __rank
FROM src_accounts AS s;

-- stg_accounts: one row per account id
CREATE OR REPLACE TABLE stg_accounts AS
SELECT
  __account,
  __time,
  name,
  tier,
  owner,
  seats_purchased,
  created_at
FROM stg_accounts_rows
WHERE
  NOT __account IS NULL AND __in_run AND __rank = 1;

-- stg_accounts_later: account ids that exist only after as_of
CREATE OR REPLACE TABLE stg_accounts_later AS
SELECT
  __account
FROM stg_accounts_rows
WHERE
  NOT __account IS NULL AND NOT __bad_time
GROUP BY
  __account
HAVING
  NOT BOOL_OR(CAST(__in_run AS BOOLEAN));

-- stg_contacts_rows: every contact row, ranked per id, with its account
CREATE OR REPLACE TABLE stg_contacts_rows AS
SELECT
  s.contact_id AS __contact,
  COALESCE(ids.__account, s.account_id) AS __account,
  s.created_at AS __time,
  s.role,
  (
    s.created_at IS NULL OR s.created_at <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
  )
  AND NOT (
    NOT s.created_at IS NULL AND s.created_at IS NULL
  ) AS __in_run,
  NOT s.created_at IS NULL AND s.created_at IS NULL AS __bad_time,
  ROW_NUMBER() OVER (
    PARTITION BY s.contact_id, (
      s.created_at IS NULL OR s.created_at <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND NOT (
      NOT s.created_at IS NULL AND s.created_at IS NULL
    )
    ORDER BY s.created_at DESC, CAST(s.account_id AS TEXT) NULLS FIRST, CAST(s.role AS TEXT) NULLS FIRST
  ) AS __rank
FROM src_contacts AS s
LEFT JOIN stg_identities AS ids
  ON ids.__alias = s.account_id;

-- stg_contacts: one row per contact id, with its account
CREATE OR REPLACE TABLE stg_contacts AS
SELECT
  __contact,
  __account,
  __time,
  role
FROM stg_contacts_rows
WHERE
  NOT __contact IS NULL AND __in_run AND __rank = 1;

-- stg_contacts_later: contact ids that exist only after as_of
CREATE OR REPLACE TABLE stg_contacts_later AS
SELECT
  __contact
FROM stg_contacts_rows
WHERE
  NOT __contact IS NULL AND NOT __bad_time
GROUP BY
  __contact
HAVING
  NOT BOOL_OR(CAST(__in_run AS BOOLEAN));

-- stg_events_windowed: events rows with resolved ids and UTC time, per account
CREATE OR REPLACE VIEW stg_events_windowed AS
SELECT
  COALESCE(ids.__account, s.account_id) AS __account,
  s.user_id AS __contact,
  s.ts AS __time,
  s.*,
  c.role AS contact__role
FROM src_events AS s
LEFT JOIN stg_identities AS ids
  ON ids.__alias = s.account_id
LEFT JOIN stg_contacts AS c
  ON c.__contact = s.user_id;

-- stg_events: events rows with resolved ids and UTC time, per account
CREATE OR REPLACE VIEW stg_events AS
SELECT
  COALESCE(ids.__account, s.account_id) AS __account,
  s.user_id AS __contact,
  s.ts AS __time,
  s.account_id IS NULL AS __no_id,
  s.*
FROM src_events AS s
LEFT JOIN stg_identities AS ids
  ON ids.__alias = s.account_id;

-- stg_tickets: tickets rows with resolved ids and UTC time, per account
CREATE OR REPLACE VIEW stg_tickets AS
SELECT
  COALESCE(ids.__account, s.account_id) AS __account,
  s.contact_id AS __contact,
  s.opened_at AS __time,
  s.account_id IS NULL AS __no_id,
  s.*
FROM src_tickets AS s
LEFT JOIN stg_identities AS ids
  ON ids.__alias = s.account_id;

-- stg_surveys: surveys rows with resolved ids and UTC time, per account
CREATE OR REPLACE VIEW stg_surveys AS
SELECT
  c.__account AS __account,
  s.contact_id AS __contact,
  s.answered_at AS __time,
  s.contact_id IS NULL AS __no_id,
  NOT later.__contact IS NULL AS __later,
  s.*
FROM src_surveys AS s
LEFT JOIN stg_contacts AS c
  ON c.__contact = s.contact_id
LEFT JOIN stg_contacts_later AS later
  ON later.__contact = s.contact_id;

-- stg_subscriptions: subscriptions rows with resolved ids and UTC time, per account
CREATE OR REPLACE VIEW stg_subscriptions AS
SELECT
  COALESCE(ids.__account, s.account_id) AS __account,
  s.started_at AS __time,
  s.account_id IS NULL AS __no_id,
  s.*
FROM src_subscriptions AS s
LEFT JOIN stg_identities AS ids
  ON ids.__alias = s.account_id;

-- stg_events_by_contact: events rows with resolved ids and UTC time, per contact
CREATE OR REPLACE VIEW stg_events_by_contact AS
SELECT
  s.user_id AS __contact,
  s.ts AS __time,
  s.*
FROM src_events AS s;

-- agg_events_by_contact: 2 trait(s) of events per contact, one pass
CREATE OR REPLACE TABLE agg_events_by_contact AS
SELECT
  __contact,
  COUNT(*) FILTER(WHERE
    (
      __time > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      name = 'login'
    )) AS contact_logins_30d,
  COUNT(
    DISTINCT CASE
      WHEN __time > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
      THEN CAST(__time AS DATE)
    END
  ) AS contact_active_days_30d
FROM stg_events_by_contact
WHERE
  __time > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
  AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
GROUP BY
  __contact;

-- agg_events: 2 trait(s) of events per account, one pass
CREATE OR REPLACE TABLE agg_events AS
SELECT
  __account,
  COUNT(*) FILTER(WHERE
    __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    AND (
      name = 'integration_connected'
    )) AS integrations,
  MAX(__time) FILTER(WHERE
    __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)) AS last_seen,
  COUNT(*) AS __rows,
  COUNT(*) FILTER(WHERE
    __no_id) AS __no_id,
  COUNT(*) FILTER(WHERE
    __time IS NULL) AS __bad_time,
  COUNT(*) FILTER(WHERE
    NOT __no_id AND __time > CAST('2026-12-01 00:00:00' AS TIMESTAMP)) AS __after_as_of,
  COUNT(*) FILTER(WHERE
    NOT __no_id AND __time > CAST('2026-12-01 06:00:00' AS TIMESTAMP)) AS __future
FROM stg_events
GROUP BY
  __account;

-- agg_events_windowed: 6 windowed trait(s) of events per account, one pass
CREATE OR REPLACE TABLE agg_events_windowed AS
SELECT
  __account,
  COUNT(*) FILTER(WHERE
    (
      __time > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      name = 'login'
    )) AS logins_30d,
  COUNT(*) FILTER(WHERE
    (
      __time > CAST('2026-10-02 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-11-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      name = 'login'
    )) AS logins_prev_30d,
  COUNT(
    DISTINCT CASE
      WHEN __time > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
      THEN CAST(__time AS DATE)
    END
  ) AS active_days_30d,
  COUNT(
    DISTINCT CASE
      WHEN (
        __time > CAST('2026-09-02 00:00:00' AS TIMESTAMP)
        AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
      )
      AND (
        name = 'feature_used'
      )
      THEN feature
    END
  ) AS features_90d,
  COUNT(*) FILTER(WHERE
    (
      __time > CAST('2026-09-02 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      name = 'seat_added'
    )) AS seats_added_90d,
  COUNT(*) FILTER(WHERE
    (
      __time > CAST('2026-09-02 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      contact__role = 'executive'
    )) > 0 AS exec_active_90d
FROM stg_events_windowed
WHERE
  __time > CAST('2026-09-02 00:00:00' AS TIMESTAMP)
  AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
GROUP BY
  __account;

-- agg_subscriptions: 2 trait(s) of subscriptions per account, one pass
CREATE OR REPLACE TABLE agg_subscriptions AS
SELECT
  __account,
  ARG_MAX(mrr, (__time, mrr)) FILTER(WHERE
    __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP) AND NOT mrr IS NULL) AS mrr,
  MAX(cancelled_at) FILTER(WHERE
    __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    AND (
      cancelled_at <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )) AS cancelled_at,
  COUNT(*) AS __rows,
  COUNT(*) FILTER(WHERE
    __no_id) AS __no_id,
  COUNT(*) FILTER(WHERE
    __time IS NULL) AS __bad_time,
  COUNT(*) FILTER(WHERE
    NOT __no_id AND __time > CAST('2026-12-01 00:00:00' AS TIMESTAMP)) AS __after_as_of,
  COUNT(*) FILTER(WHERE
    NOT __no_id AND __time > CAST('2026-12-01 06:00:00' AS TIMESTAMP)) AS __future
FROM stg_subscriptions
GROUP BY
  __account;

-- agg_surveys: 2 trait(s) of surveys per account, one pass
CREATE OR REPLACE TABLE agg_surveys AS
SELECT
  __account,
  ARG_MAX(score, (__time, score)) FILTER(WHERE
    (
      __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP) AND (
        kind = 'nps'
      )
    )
    AND NOT score IS NULL) AS nps,
  AVG(score) FILTER(WHERE
    (
      __time > CAST('2026-09-02 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      kind = 'csat'
    )) AS csat_90d,
  COUNT(*) AS __rows,
  COUNT(*) FILTER(WHERE
    __no_id) AS __no_id,
  COUNT(*) FILTER(WHERE
    __time IS NULL) AS __bad_time,
  COUNT(*) FILTER(WHERE
    NOT __no_id
    AND (
      __time > CAST('2026-12-01 00:00:00' AS TIMESTAMP) OR __later
    )) AS __after_as_of,
  COUNT(*) FILTER(WHERE
    NOT __no_id AND __time > CAST('2026-12-01 06:00:00' AS TIMESTAMP)) AS __future
FROM stg_surveys
GROUP BY
  __account;

-- agg_tickets: 2 trait(s) of tickets per account, one pass
CREATE OR REPLACE TABLE agg_tickets AS
SELECT
  __account,
  COUNT(*) FILTER(WHERE
    __time > CAST('2026-11-01 00:00:00' AS TIMESTAMP)
    AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)) AS tickets_30d,
  COUNT(*) FILTER(WHERE
    (
      __time > CAST('2026-09-02 00:00:00' AS TIMESTAMP)
      AND __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    )
    AND (
      priority IN ('high', 'urgent')
    )) AS urgent_tickets_90d,
  COUNT(*) AS __rows,
  COUNT(*) FILTER(WHERE
    __no_id) AS __no_id,
  COUNT(*) FILTER(WHERE
    __time IS NULL) AS __bad_time,
  COUNT(*) FILTER(WHERE
    NOT __no_id AND __time > CAST('2026-12-01 00:00:00' AS TIMESTAMP)) AS __after_as_of,
  COUNT(*) FILTER(WHERE
    NOT __no_id AND __time > CAST('2026-12-01 06:00:00' AS TIMESTAMP)) AS __future
FROM stg_tickets
GROUP BY
  __account;

-- run_contact: traits, health, segments and tags per contact
CREATE OR REPLACE TABLE run_contact AS
WITH base AS (
  SELECT
    e.__account,
    e.__contact,
    e.__time,
    e.role AS contact__role,
    COALESCE(agg_events_by_contact.contact_logins_30d, 0) AS contact_logins_30d,
    COALESCE(agg_events_by_contact.contact_active_days_30d, 0) AS contact_active_days_30d
  FROM stg_contacts AS e
  JOIN stg_accounts AS a
    ON a.__account = e.__account
  LEFT JOIN agg_events_by_contact
    ON agg_events_by_contact.__contact = e.__contact
), layer_1 AS (
  SELECT
    *,
    contact_active_days_30d >= 12 AS __r__persona__0__0,
    contact_logins_30d >= 1 AS __r__persona__1__0,
    CASE
      WHEN (
        contact_active_days_30d >= 12
      )
      THEN 'power'
      WHEN (
        contact_logins_30d >= 1
      )
      THEN 'regular'
      ELSE 'inactive'
    END AS persona,
    contact__role = 'practitioner' AS __t__champion__0,
    contact_active_days_30d >= 12 AS __t__champion__1,
    COALESCE(
      (
        contact__role = 'practitioner'
      ) AND (
        contact_active_days_30d >= 12
      ),
      FALSE
    ) AS champion
  FROM base
)
SELECT
  *
FROM layer_1;

-- agg_contacts: roll-up of contacts per account
CREATE OR REPLACE TABLE agg_contacts AS
SELECT
  __account,
  COUNT(*) FILTER(WHERE
    __time <= CAST('2026-12-01 00:00:00' AS TIMESTAMP)
    AND (
      contact_logins_30d > 0
    )) AS active_users_30d
FROM run_contact
GROUP BY
  __account;

-- run_account: traits, health, segments and tags per account
CREATE OR REPLACE TABLE run_account AS
WITH base AS (
  SELECT
    e.__account,
    e.name AS account__name,
    e.tier AS account__tier,
    e.owner AS account__owner,
    e.seats_purchased AS account__seats_purchased,
    e.created_at AS account__created_at,
    previous_lifecycle.segment AS __prev__lifecycle,
    previous_lifecycle.entered_at AS __since__lifecycle,
    COALESCE(agg_events_windowed.logins_30d, 0) AS logins_30d,
    COALESCE(agg_events_windowed.logins_prev_30d, 0) AS logins_prev_30d,
    COALESCE(agg_events_windowed.active_days_30d, 0) AS active_days_30d,
    COALESCE(agg_events_windowed.features_90d, 0) AS features_90d,
    COALESCE(agg_events.integrations, 0) AS integrations,
    COALESCE(agg_events_windowed.seats_added_90d, 0) AS seats_added_90d,
    agg_events.last_seen AS last_seen,
    COALESCE(agg_events_windowed.exec_active_90d, FALSE) AS exec_active_90d,
    COALESCE(agg_tickets.tickets_30d, 0) AS tickets_30d,
    COALESCE(agg_tickets.urgent_tickets_90d, 0) AS urgent_tickets_90d,
    agg_surveys.nps AS nps,
    agg_surveys.csat_90d AS csat_90d,
    agg_subscriptions.mrr AS mrr,
    agg_subscriptions.cancelled_at AS cancelled_at,
    COALESCE(agg_contacts.active_users_30d, 0) AS active_users_30d
  FROM stg_accounts AS e
  LEFT JOIN agg_events_windowed
    ON agg_events_windowed.__account = e.__account
  LEFT JOIN agg_events
    ON agg_events.__account = e.__account
  LEFT JOIN agg_tickets
    ON agg_tickets.__account = e.__account
  LEFT JOIN agg_surveys
    ON agg_surveys.__account = e.__account
  LEFT JOIN agg_subscriptions
    ON agg_subscriptions.__account = e.__account
  LEFT JOIN agg_contacts
    ON agg_contacts.__account = e.__account
  LEFT JOIN previous_state AS previous_lifecycle
    ON previous_lifecycle.entity_id = e.__account
    AND previous_lifecycle.dimension = 'lifecycle'
    AND previous_lifecycle.level = 'account'
), layer_1 AS (
  SELECT
    *,
    DATE_DIFF(
      'DAY',
      CAST(account__created_at AS DATE),
      CAST(CAST('2026-12-01 00:00:00' AS TIMESTAMP) AS DATE)
    ) AS tenure_days,
    CASE
      WHEN (
        logins_prev_30d
      ) IS NULL OR (
        logins_prev_30d
      ) = 0
      THEN NULL
      ELSE CAST((
        logins_30d
      ) AS DOUBLE) / (
        logins_prev_30d
      )
    END AS logins_trend,
    CASE
      WHEN (
        account__seats_purchased
      ) IS NULL OR (
        account__seats_purchased
      ) = 0
      THEN NULL
      ELSE CAST((
        active_users_30d
      ) AS DOUBLE) / (
        account__seats_purchased
      )
    END AS seat_utilisation,
    nps >= 9 AS __r__nps_group__0__0,
    nps >= 7 AS __r__nps_group__1__0,
    nps >= 0 AS __r__nps_group__2__0,
    CASE
      WHEN (
        nps >= 9
      )
      THEN 'promoter'
      WHEN (
        nps >= 7
      )
      THEN 'passive'
      WHEN (
        nps >= 0
      )
      THEN 'detractor'
      ELSE 'no_answer'
    END AS nps_group,
    account__tier = 'enterprise' AS __r__value_tier__0__0,
    mrr >= 5000 AS __r__value_tier__0__1,
    mrr >= 500 AS __r__value_tier__1__0,
    CASE
      WHEN (
        account__tier = 'enterprise'
      ) OR (
        mrr >= 5000
      )
      THEN 'strategic'
      WHEN (
        mrr >= 500
      )
      THEN 'growth'
      ELSE 'scaled'
    END AS value_tier,
    tickets_30d >= 4 AS __r__support_pattern__0__0,
    urgent_tickets_90d >= 3 AS __r__support_pattern__0__1,
    tickets_30d >= 1 AS __r__support_pattern__1__0,
    CASE
      WHEN (
        tickets_30d >= 4
      ) OR (
        urgent_tickets_90d >= 3
      )
      THEN 'heavy'
      WHEN (
        tickets_30d >= 1
      )
      THEN 'occasional'
      ELSE 'self_serve'
    END AS support_pattern,
    exec_active_90d AS __t__exec_sponsor_engaged__0,
    COALESCE((
      exec_active_90d
    ), FALSE) AS exec_sponsor_engaged,
    CAST(CASE
      WHEN active_days_30d IS NULL
      THEN NULL
      WHEN active_days_30d <= 0.0
      THEN 0.0
      WHEN active_days_30d <= 4.0
      THEN 0.0 + (
        active_days_30d - 0.0
      ) * 10.0
      WHEN active_days_30d <= 10.0
      THEN 40.0 + (
        active_days_30d - 4.0
      ) * 5.0
      WHEN active_days_30d <= 18.0
      THEN 70.0 + (
        active_days_30d - 10.0
      ) * 3.75
      ELSE 100.0
    END AS DOUBLE) AS health__usage,
    CAST(CASE
      WHEN features_90d IS NULL
      THEN NULL
      WHEN features_90d <= 0.0
      THEN 0.0
      WHEN features_90d <= 2.0
      THEN 0.0 + (
        features_90d - 0.0
      ) * 20.0
      WHEN features_90d <= 5.0
      THEN 40.0 + (
        features_90d - 2.0
      ) * 13.333333333333334
      WHEN features_90d <= 8.0
      THEN 80.0 + (
        features_90d - 5.0
      ) * 6.666666666666667
      ELSE 100.0
    END AS DOUBLE) AS health__breadth,
    CAST(CASE
      WHEN tickets_30d IS NULL
      THEN NULL
      WHEN tickets_30d <= 0.0
      THEN 100.0
      WHEN tickets_30d <= 2.0
      THEN 100.0 + (
        tickets_30d - 0.0
      ) * -15.0
      WHEN tickets_30d <= 5.0
      THEN 70.0 + (
        tickets_30d - 2.0
      ) * -13.333333333333334
      WHEN tickets_30d <= 8.0
      THEN 30.0 + (
        tickets_30d - 5.0
      ) * -10.0
      ELSE 0.0
    END AS DOUBLE) AS health__support,
    CAST(CASE
      WHEN nps IS NULL
      THEN NULL
      WHEN nps <= 0.0
      THEN 0.0
      WHEN nps <= 6.0
      THEN 0.0 + (
        nps - 0.0
      ) * 5.0
      WHEN nps <= 8.0
      THEN 30.0 + (
        nps - 6.0
      ) * 20.0
      WHEN nps <= 10.0
      THEN 70.0 + (
        nps - 8.0
      ) * 15.0
      ELSE 100.0
    END AS DOUBLE) AS health__sentiment
  FROM base
), layer_2 AS (
  SELECT
    *,
    COALESCE(
      DATE_DIFF(
        'DAY',
        CAST(last_seen AS DATE),
        CAST(CAST('2026-12-01 00:00:00' AS TIMESTAMP) AS DATE)
      ),
      tenure_days
    ) AS days_since_seen,
    seats_added_90d >= 3 AS __t__expansion_signal__0,
    seat_utilisation >= 0.9 AS __t__expansion_signal__1,
    COALESCE((
      seats_added_90d >= 3
    ) OR (
      seat_utilisation >= 0.9
    ), FALSE) AS expansion_signal,
    tenure_days BETWEEN 7 AND 30 AS __t__activation_overdue__0,
    features_90d = 0 AS __t__activation_overdue__1,
    COALESCE((
      tenure_days BETWEEN 7 AND 30
    ) AND (
      features_90d = 0
    ), FALSE) AS activation_overdue,
    CAST(ROUND(
      (
        COALESCE(health__usage * 40.0, 0) + COALESCE(health__breadth * 20.0, 0) + COALESCE(health__support * 15.0, 0) + COALESCE(health__sentiment * 25.0, 0)
      ) / NULLIF(
        (
          CASE WHEN NOT health__usage IS NULL THEN 40.0 ELSE 0 END + CASE WHEN NOT health__breadth IS NULL THEN 20.0 ELSE 0 END + CASE WHEN NOT health__support IS NULL THEN 15.0 ELSE 0 END + CASE WHEN NOT health__sentiment IS NULL THEN 25.0 ELSE 0 END
        ),
        0
      ),
      2
    ) AS DOUBLE) AS health
  FROM layer_1
), layer_3 AS (
  SELECT
    *,
    CASE
      WHEN health >= 70.0
      THEN 'green'
      WHEN health >= 45.0
      THEN 'yellow'
      WHEN health >= 0.0
      THEN 'red'
      ELSE NULL
    END AS health_band
  FROM layer_2
), layer_4 AS (
  SELECT
    *,
    NOT cancelled_at IS NULL AS __r__lifecycle__0__0,
    tenure_days <= 30 AS __r__lifecycle__1__0,
    health_band = 'red' AS __r__lifecycle__2__0,
    days_since_seen > 30 AS __r__lifecycle__2__1,
    active_days_30d >= 12 AS __r__lifecycle__3__0,
    features_90d >= 5 AS __r__lifecycle__3__1,
    features_90d >= 2 AS __r__lifecycle__4__0,
    CASE
      WHEN (
        NOT cancelled_at IS NULL
      )
      THEN 'lapsed'
      WHEN (
        tenure_days <= 30
      )
      THEN 'new'
      WHEN (
        health_band = 'red'
      ) OR (
        days_since_seen > 30
      )
      THEN 'at_risk'
      WHEN (
        active_days_30d >= 12
      ) AND (
        features_90d >= 5
      )
      THEN 'power_user'
      WHEN (
        features_90d >= 2
      )
      THEN 'activated'
      ELSE 'dormant'
    END AS __cand__lifecycle,
    CASE
      WHEN (
        NOT __prev__lifecycle IS NULL
        AND CASE
          WHEN (
            NOT cancelled_at IS NULL
          )
          THEN 'lapsed'
          WHEN (
            tenure_days <= 30
          )
          THEN 'new'
          WHEN (
            health_band = 'red'
          ) OR (
            days_since_seen > 30
          )
          THEN 'at_risk'
          WHEN (
            active_days_30d >= 12
          ) AND (
            features_90d >= 5
          )
          THEN 'power_user'
          WHEN (
            features_90d >= 2
          )
          THEN 'activated'
          ELSE 'dormant'
        END IS DISTINCT FROM __prev__lifecycle
      )
      AND (
        __prev__lifecycle = 'at_risk'
        AND DATE_DIFF(
          'DAY',
          CAST(__since__lifecycle AS DATE),
          CAST(CAST('2026-12-01 00:00:00' AS TIMESTAMP) AS DATE)
        ) < 14
      )
      THEN 'min_days'
      WHEN (
        NOT __prev__lifecycle IS NULL
        AND CASE
          WHEN (
            NOT cancelled_at IS NULL
          )
          THEN 'lapsed'
          WHEN (
            tenure_days <= 30
          )
          THEN 'new'
          WHEN (
            health_band = 'red'
          ) OR (
            days_since_seen > 30
          )
          THEN 'at_risk'
          WHEN (
            active_days_30d >= 12
          ) AND (
            features_90d >= 5
          )
          THEN 'power_user'
          WHEN (
            features_90d >= 2
          )
          THEN 'activated'
          ELSE 'dormant'
        END IS DISTINCT FROM __prev__lifecycle
      )
      AND (
        __prev__lifecycle = 'lapsed'
        AND COALESCE(
          NOT CASE
            WHEN (
              NOT cancelled_at IS NULL
            )
            THEN 'lapsed'
            WHEN (
              tenure_days <= 30
            )
            THEN 'new'
            WHEN (
              health_band = 'red'
            ) OR (
              days_since_seen > 30
            )
            THEN 'at_risk'
            WHEN (
              active_days_30d >= 12
            ) AND (
              features_90d >= 5
            )
            THEN 'power_user'
            WHEN (
              features_90d >= 2
            )
            THEN 'activated'
            ELSE 'dormant'
          END IN ('new'),
          TRUE
        )
      )
      THEN 'transition'
      ELSE NULL
    END AS __hold__lifecycle,
    CASE
      WHEN NOT CASE
        WHEN (
          NOT __prev__lifecycle IS NULL
          AND CASE
            WHEN (
              NOT cancelled_at IS NULL
            )
            THEN 'lapsed'
            WHEN (
              tenure_days <= 30
            )
            THEN 'new'
            WHEN (
              health_band = 'red'
            ) OR (
              days_since_seen > 30
            )
            THEN 'at_risk'
            WHEN (
              active_days_30d >= 12
            ) AND (
              features_90d >= 5
            )
            THEN 'power_user'
            WHEN (
              features_90d >= 2
            )
            THEN 'activated'
            ELSE 'dormant'
          END IS DISTINCT FROM __prev__lifecycle
        )
        AND (
          __prev__lifecycle = 'at_risk'
          AND DATE_DIFF(
            'DAY',
            CAST(__since__lifecycle AS DATE),
            CAST(CAST('2026-12-01 00:00:00' AS TIMESTAMP) AS DATE)
          ) < 14
        )
        THEN 'min_days'
        WHEN (
          NOT __prev__lifecycle IS NULL
          AND CASE
            WHEN (
              NOT cancelled_at IS NULL
            )
            THEN 'lapsed'
            WHEN (
              tenure_days <= 30
            )
            THEN 'new'
            WHEN (
              health_band = 'red'
            ) OR (
              days_since_seen > 30
            )
            THEN 'at_risk'
            WHEN (
              active_days_30d >= 12
            ) AND (
              features_90d >= 5
            )
            THEN 'power_user'
            WHEN (
              features_90d >= 2
            )
            THEN 'activated'
            ELSE 'dormant'
          END IS DISTINCT FROM __prev__lifecycle
        )
        AND (
          __prev__lifecycle = 'lapsed'
          AND COALESCE(
            NOT CASE
              WHEN (
                NOT cancelled_at IS NULL
              )
              THEN 'lapsed'
              WHEN (
                tenure_days <= 30
              )
              THEN 'new'
              WHEN (
                health_band = 'red'
              ) OR (
                days_since_seen > 30
              )
              THEN 'at_risk'
              WHEN (
                active_days_30d >= 12
              ) AND (
                features_90d >= 5
              )
              THEN 'power_user'
              WHEN (
                features_90d >= 2
              )
              THEN 'activated'
              ELSE 'dormant'
            END IN ('new'),
            TRUE
          )
        )
        THEN 'transition'
        ELSE NULL
      END IS NULL
      THEN __prev__lifecycle
      ELSE CASE
        WHEN (
          NOT cancelled_at IS NULL
        )
        THEN 'lapsed'
        WHEN (
          tenure_days <= 30
        )
        THEN 'new'
        WHEN (
          health_band = 'red'
        ) OR (
          days_since_seen > 30
        )
        THEN 'at_risk'
        WHEN (
          active_days_30d >= 12
        ) AND (
          features_90d >= 5
        )
        THEN 'power_user'
        WHEN (
          features_90d >= 2
        )
        THEN 'activated'
        ELSE 'dormant'
      END
    END AS lifecycle
  FROM layer_3
)
SELECT
  *
FROM layer_4;

-- run_quality: rows read and rejected per source
CREATE OR REPLACE TABLE run_quality AS
SELECT
  'accounts' AS source,
  COUNT(*) AS rows_read,
  COUNT(*) FILTER(WHERE
    __account IS NULL) AS missing_id,
  COUNT(*) FILTER(WHERE
    NOT __account IS NULL AND __in_run) - (
    SELECT
      COUNT(*)
    FROM stg_accounts
  ) AS duplicate_id,
  0 AS unknown_id,
  COUNT(*) FILTER(WHERE
    NOT __account IS NULL AND __bad_time) AS bad_time,
  COUNT(*) FILTER(WHERE
    NOT __account IS NULL AND NOT __in_run AND NOT __bad_time) AS after_as_of,
  COUNT(*) FILTER(WHERE
    NOT __account IS NULL AND __time > CAST('2026-12-01 06:00:00' AS TIMESTAMP)) AS future_dated
FROM stg_accounts_rows
UNION ALL
SELECT
  'contacts' AS source,
  COUNT(*) AS rows_read,
  COUNT(*) FILTER(WHERE
    __contact IS NULL) AS missing_id,
  COUNT(*) FILTER(WHERE
    NOT __contact IS NULL AND __in_run) - (
    SELECT
      COUNT(*)
    FROM stg_contacts
  ) AS duplicate_id,
  (
    SELECT
      COUNT(*)
    FROM stg_contacts AS c
    LEFT JOIN stg_accounts AS a
      ON a.__account = c.__account
    LEFT JOIN stg_accounts_later AS later_a
      ON later_a.__account = c.__account
    WHERE
      a.__account IS NULL AND later_a.__account IS NULL
  ) AS unknown_id,
  COUNT(*) FILTER(WHERE
    NOT __contact IS NULL AND __bad_time) AS bad_time,
  COUNT(*) FILTER(WHERE
    NOT __contact IS NULL AND NOT __in_run AND NOT __bad_time) + (
    SELECT
      COUNT(*)
    FROM stg_contacts AS c
    LEFT JOIN stg_accounts AS a
      ON a.__account = c.__account
    LEFT JOIN stg_accounts_later AS later_a
      ON later_a.__account = c.__account
    WHERE
      NOT later_a.__account IS NULL
  ) AS after_as_of,
  COUNT(*) FILTER(WHERE
    NOT __contact IS NULL AND __time > CAST('2026-12-01 06:00:00' AS TIMESTAMP)) AS future_dated
FROM stg_contacts_rows
UNION ALL
SELECT
  'events' AS source,
  CAST(COALESCE(SUM(g.__rows), 0) AS BIGINT) AS rows_read,
  CAST(COALESCE(SUM(g.__no_id), 0) AS BIGINT) AS missing_id,
  0 AS duplicate_id,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN a.__account IS NULL AND later_a.__account IS NULL
        THEN g.__rows - g.__no_id - g.__after_as_of
        ELSE 0
      END
    ),
    0
  ) AS BIGINT) AS unknown_id,
  CAST(COALESCE(SUM(CASE WHEN NOT a.__account IS NULL THEN g.__bad_time ELSE 0 END), 0) AS BIGINT) AS bad_time,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN NOT later_a.__account IS NULL
        THEN g.__rows - g.__no_id
        ELSE g.__after_as_of
      END
    ),
    0
  ) AS BIGINT) AS after_as_of,
  CAST(COALESCE(SUM(g.__future), 0) AS BIGINT) AS future_dated
FROM agg_events AS g
LEFT JOIN stg_accounts AS a
  ON a.__account = g.__account
LEFT JOIN stg_accounts_later AS later_a
  ON later_a.__account = g.__account
UNION ALL
SELECT
  'tickets' AS source,
  CAST(COALESCE(SUM(g.__rows), 0) AS BIGINT) AS rows_read,
  CAST(COALESCE(SUM(g.__no_id), 0) AS BIGINT) AS missing_id,
  0 AS duplicate_id,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN a.__account IS NULL AND later_a.__account IS NULL
        THEN g.__rows - g.__no_id - g.__after_as_of
        ELSE 0
      END
    ),
    0
  ) AS BIGINT) AS unknown_id,
  CAST(COALESCE(SUM(CASE WHEN NOT a.__account IS NULL THEN g.__bad_time ELSE 0 END), 0) AS BIGINT) AS bad_time,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN NOT later_a.__account IS NULL
        THEN g.__rows - g.__no_id
        ELSE g.__after_as_of
      END
    ),
    0
  ) AS BIGINT) AS after_as_of,
  CAST(COALESCE(SUM(g.__future), 0) AS BIGINT) AS future_dated
FROM agg_tickets AS g
LEFT JOIN stg_accounts AS a
  ON a.__account = g.__account
LEFT JOIN stg_accounts_later AS later_a
  ON later_a.__account = g.__account
UNION ALL
SELECT
  'surveys' AS source,
  CAST(COALESCE(SUM(g.__rows), 0) AS BIGINT) AS rows_read,
  CAST(COALESCE(SUM(g.__no_id), 0) AS BIGINT) AS missing_id,
  0 AS duplicate_id,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN a.__account IS NULL AND later_a.__account IS NULL
        THEN g.__rows - g.__no_id - g.__after_as_of
        ELSE 0
      END
    ),
    0
  ) AS BIGINT) AS unknown_id,
  CAST(COALESCE(SUM(CASE WHEN NOT a.__account IS NULL THEN g.__bad_time ELSE 0 END), 0) AS BIGINT) AS bad_time,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN NOT later_a.__account IS NULL
        THEN g.__rows - g.__no_id
        ELSE g.__after_as_of
      END
    ),
    0
  ) AS BIGINT) AS after_as_of,
  CAST(COALESCE(SUM(g.__future), 0) AS BIGINT) AS future_dated
FROM agg_surveys AS g
LEFT JOIN stg_accounts AS a
  ON a.__account = g.__account
LEFT JOIN stg_accounts_later AS later_a
  ON later_a.__account = g.__account
UNION ALL
SELECT
  'subscriptions' AS source,
  CAST(COALESCE(SUM(g.__rows), 0) AS BIGINT) AS rows_read,
  CAST(COALESCE(SUM(g.__no_id), 0) AS BIGINT) AS missing_id,
  0 AS duplicate_id,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN a.__account IS NULL AND later_a.__account IS NULL
        THEN g.__rows - g.__no_id - g.__after_as_of
        ELSE 0
      END
    ),
    0
  ) AS BIGINT) AS unknown_id,
  CAST(COALESCE(SUM(CASE WHEN NOT a.__account IS NULL THEN g.__bad_time ELSE 0 END), 0) AS BIGINT) AS bad_time,
  CAST(COALESCE(
    SUM(
      CASE
        WHEN NOT later_a.__account IS NULL
        THEN g.__rows - g.__no_id
        ELSE g.__after_as_of
      END
    ),
    0
  ) AS BIGINT) AS after_as_of,
  CAST(COALESCE(SUM(g.__future), 0) AS BIGINT) AS future_dated
FROM agg_subscriptions AS g
LEFT JOIN stg_accounts AS a
  ON a.__account = g.__account
LEFT JOIN stg_accounts_later AS later_a
  ON later_a.__account = g.__account;

-- contact_results: published results per contact
CREATE OR REPLACE TABLE contact_results AS
SELECT
  __contact AS contact_id,
  __account AS account_id,
  contact__role AS role,
  contact_logins_30d,
  contact_active_days_30d,
  persona,
  champion,
  CAST('2026-12-01 00:00:00' AS TIMESTAMP) AS as_of
FROM run_contact;

-- contact_reasons: clause values behind each contact's segments and tags
CREATE OR REPLACE TABLE contact_reasons AS
SELECT
  __contact AS __key,
  __r__persona__0__0 AS __r__persona__0__0,
  __r__persona__1__0 AS __r__persona__1__0,
  __t__champion__0 AS __t__champion__0,
  __t__champion__1 AS __t__champion__1,
  contact__role
FROM run_contact;

-- account_results: published results per account
CREATE OR REPLACE TABLE account_results AS
SELECT
  __account AS account_id,
  account__name AS name,
  account__tier AS tier,
  account__owner AS owner,
  logins_30d,
  logins_prev_30d,
  active_days_30d,
  features_90d,
  integrations,
  seats_added_90d,
  last_seen,
  exec_active_90d,
  tickets_30d,
  urgent_tickets_90d,
  nps,
  csat_90d,
  mrr,
  cancelled_at,
  active_users_30d,
  tenure_days,
  days_since_seen,
  logins_trend,
  seat_utilisation,
  health,
  health_band,
  health__usage,
  health__breadth,
  health__support,
  health__sentiment,
  lifecycle,
  nps_group,
  value_tier,
  support_pattern,
  expansion_signal,
  exec_sponsor_engaged,
  activation_overdue,
  CAST('2026-12-01 00:00:00' AS TIMESTAMP) AS as_of
FROM run_account;

-- account_reasons: clause values behind each account's segments and tags
CREATE OR REPLACE TABLE account_reasons AS
SELECT
  __account AS __key,
  __r__lifecycle__0__0 AS __r__lifecycle__0__0,
  __r__lifecycle__1__0 AS __r__lifecycle__1__0,
  __r__lifecycle__2__0 AS __r__lifecycle__2__0,
  __r__lifecycle__2__1 AS __r__lifecycle__2__1,
  __r__lifecycle__3__0 AS __r__lifecycle__3__0,
  __r__lifecycle__3__1 AS __r__lifecycle__3__1,
  __r__lifecycle__4__0 AS __r__lifecycle__4__0,
  __cand__lifecycle AS __cand__lifecycle,
  __hold__lifecycle AS __hold__lifecycle,
  __r__nps_group__0__0 AS __r__nps_group__0__0,
  __r__nps_group__1__0 AS __r__nps_group__1__0,
  __r__nps_group__2__0 AS __r__nps_group__2__0,
  __r__value_tier__0__0 AS __r__value_tier__0__0,
  __r__value_tier__0__1 AS __r__value_tier__0__1,
  __r__value_tier__1__0 AS __r__value_tier__1__0,
  __r__support_pattern__0__0 AS __r__support_pattern__0__0,
  __r__support_pattern__0__1 AS __r__support_pattern__0__1,
  __r__support_pattern__1__0 AS __r__support_pattern__1__0,
  __t__expansion_signal__0 AS __t__expansion_signal__0,
  __t__expansion_signal__1 AS __t__expansion_signal__1,
  __t__exec_sponsor_engaged__0 AS __t__exec_sponsor_engaged__0,
  __t__activation_overdue__0 AS __t__activation_overdue__0,
  __t__activation_overdue__1 AS __t__activation_overdue__1,
  __prev__lifecycle,
  __since__lifecycle,
  account__tier
FROM run_account;

-- data_quality: published quality report
CREATE OR REPLACE TABLE data_quality AS
SELECT
  *
FROM run_quality;
