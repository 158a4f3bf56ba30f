-- The demo rulebook (src/retainer/demo/project) written by hand as ONE DuckDB statement.
--
-- One row per account with every account trait, health, band, segment and tag, plus a
-- `contacts` column holding that account's contacts (traits, persona, champion) as a list of
-- structs, so that a single statement yields both levels.
--
-- Placeholders filled in by hand_sql.py: ${data} is the directory with the source files,
-- ${as_of} a TIMESTAMP literal. Windows are half-open, (as_of - N days, as_of]; nothing dated
-- after as_of counts.
CREATE TABLE hand_results AS
WITH
-- Legacy ids -> account ids (an alias claimed by two accounts resolves to the smaller id).
identities AS (
    SELECT source_id AS alias, min(account_id) AS account_id
    FROM read_csv('${data}/identities.csv')
    WHERE source_id IS NOT NULL AND account_id IS NOT NULL
    GROUP BY source_id
),
-- One row per id, the latest by its time at or before as_of (an account or contact created
-- later does not exist yet; an undated row is kept).
accounts AS (
    SELECT *
    FROM read_csv('${data}/accounts.csv')
    WHERE account_id IS NOT NULL AND (created_at IS NULL OR created_at <= ${as_of})
    QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY created_at DESC NULLS LAST) = 1
),
contacts AS (
    SELECT c.contact_id, coalesce(i.account_id, c.account_id) AS account_id, c.role,
           c.created_at
    FROM read_csv('${data}/contacts.csv') AS c
    LEFT JOIN identities AS i ON i.alias = c.account_id
    WHERE c.contact_id IS NOT NULL AND (c.created_at IS NULL OR c.created_at <= ${as_of})
    QUALIFY row_number() OVER (PARTITION BY c.contact_id ORDER BY c.created_at DESC NULLS LAST)
            = 1
),

-- Product events per account (ids resolved through identities; role of the event's user).
event_traits AS (
    SELECT
        coalesce(i.account_id, e.account_id) AS account_id,
        count(*) FILTER (e.name = 'login' AND e.ts > ${as_of} - INTERVAL 30 DAY) AS logins_30d,
        count(*) FILTER (e.name = 'login' AND e.ts > ${as_of} - INTERVAL 60 DAY
                         AND e.ts <= ${as_of} - INTERVAL 30 DAY) AS logins_prev_30d,
        count(DISTINCT e.ts::DATE) FILTER (e.ts > ${as_of} - INTERVAL 30 DAY) AS active_days_30d,
        count(DISTINCT e.feature) FILTER (e.name = 'feature_used'
                                          AND e.ts > ${as_of} - INTERVAL 90 DAY) AS features_90d,
        count(*) FILTER (e.name = 'integration_connected') AS integrations,
        count(*) FILTER (e.name = 'seat_added'
                         AND e.ts > ${as_of} - INTERVAL 90 DAY) AS seats_added_90d,
        max(e.ts) AS last_seen,
        count(*) FILTER (c.role = 'executive' AND e.ts > ${as_of} - INTERVAL 90 DAY) > 0
            AS exec_active_90d
    FROM read_parquet('${data}/events.parquet') AS e
    LEFT JOIN identities AS i ON i.alias = e.account_id
    LEFT JOIN contacts AS c ON c.contact_id = e.user_id
    WHERE e.ts <= ${as_of}
    GROUP BY ALL
),
-- Product events per contact (a contact's own id; its account plays no part here).
contact_event_traits AS (
    SELECT
        user_id AS contact_id,
        count(*) FILTER (name = 'login') AS logins,
        count(DISTINCT ts::DATE) AS active_days
    FROM read_parquet('${data}/events.parquet')
    WHERE ts > ${as_of} - INTERVAL 30 DAY AND ts <= ${as_of}
    GROUP BY ALL
),
ticket_traits AS (
    SELECT
        coalesce(i.account_id, t.account_id) AS account_id,
        count(*) FILTER (t.opened_at > ${as_of} - INTERVAL 30 DAY) AS tickets_30d,
        count(*) FILTER (t.priority IN ('high', 'urgent')
                         AND t.opened_at > ${as_of} - INTERVAL 90 DAY) AS urgent_tickets_90d
    FROM read_csv('${data}/tickets.csv') AS t
    LEFT JOIN identities AS i ON i.alias = t.account_id
    WHERE t.opened_at <= ${as_of}
    GROUP BY ALL
),
-- Surveys find their account through the answering contact; `latest` breaks ties by value.
survey_traits AS (
    SELECT
        c.account_id,
        arg_max(s.score, (s.answered_at, s.score))
            FILTER (s.kind = 'nps' AND s.score IS NOT NULL) AS nps,
        avg(s.score) FILTER (s.kind = 'csat'
                             AND s.answered_at > ${as_of} - INTERVAL 90 DAY) AS csat_90d
    FROM read_csv('${data}/surveys.csv') AS s
    JOIN contacts AS c USING (contact_id)
    WHERE s.answered_at <= ${as_of}
    GROUP BY ALL
),
subscription_traits AS (
    SELECT
        coalesce(i.account_id, s.account_id) AS account_id,
        arg_max(s.mrr, (s.started_at, s.mrr)) FILTER (s.mrr IS NOT NULL) AS mrr,
        max(s.cancelled_at) FILTER (s.cancelled_at <= ${as_of}) AS cancelled_at
    FROM read_csv('${data}/subscriptions.csv') AS s
    LEFT JOIN identities AS i ON i.alias = s.account_id
    WHERE s.started_at <= ${as_of}
    GROUP BY ALL
),

-- Contact level: traits, persona (first match wins) and the champion tag.
contact_results AS (
    SELECT
        c.contact_id,
        c.account_id,
        c.role,
        c.created_at,
        coalesce(ce.logins, 0) AS contact_logins_30d,
        coalesce(ce.active_days, 0) AS contact_active_days_30d,
        CASE
            WHEN contact_active_days_30d >= 12 THEN 'power'
            WHEN contact_logins_30d >= 1 THEN 'regular'
            ELSE 'inactive'
        END AS persona,
        coalesce(c.role = 'practitioner' AND contact_active_days_30d >= 12, false) AS champion
    FROM contacts AS c
    LEFT JOIN contact_event_traits AS ce USING (contact_id)
),
-- Roll-up over contacts, and the contacts themselves nested under their account.
contact_rollup AS (
    SELECT
        account_id,
        count(*) FILTER (created_at <= ${as_of} AND contact_logins_30d > 0) AS active_users_30d,
        list({'contact_id': contact_id, 'role': role,
              'contact_logins_30d': contact_logins_30d,
              'contact_active_days_30d': contact_active_days_30d,
              'persona': persona, 'champion': champion}) AS contacts
    FROM contact_results
    GROUP BY account_id
),

-- Account level: every trait, defaults for accounts without rows.
account_traits AS (
    SELECT
        a.account_id, a.name, a.tier, a.owner, a.seats_purchased, a.created_at,
        coalesce(e.logins_30d, 0) AS logins_30d,
        coalesce(e.logins_prev_30d, 0) AS logins_prev_30d,
        coalesce(e.active_days_30d, 0) AS active_days_30d,
        coalesce(e.features_90d, 0) AS features_90d,
        coalesce(e.integrations, 0) AS integrations,
        coalesce(e.seats_added_90d, 0) AS seats_added_90d,
        e.last_seen,
        coalesce(e.exec_active_90d, false) AS exec_active_90d,
        coalesce(t.tickets_30d, 0) AS tickets_30d,
        coalesce(t.urgent_tickets_90d, 0) AS urgent_tickets_90d,
        s.nps,
        s.csat_90d,
        b.mrr,
        b.cancelled_at,
        coalesce(r.active_users_30d, 0) AS active_users_30d,
        coalesce(r.contacts, []) AS contacts
    FROM accounts AS a
    LEFT JOIN event_traits AS e USING (account_id)
    LEFT JOIN ticket_traits AS t USING (account_id)
    LEFT JOIN survey_traits AS s USING (account_id)
    LEFT JOIN subscription_traits AS b USING (account_id)
    LEFT JOIN contact_rollup AS r USING (account_id)
),
-- Derived traits and the health components: piecewise-linear scales to 0-100, each segment
-- written as y0 + (x - x0) * slope, clamped at both ends.
scored AS (
    SELECT
        *,
        date_diff('day', created_at::DATE, ${as_of}::DATE) AS tenure_days,
        coalesce(date_diff('day', last_seen::DATE, ${as_of}::DATE), tenure_days)
            AS days_since_seen,
        logins_30d / nullif(logins_prev_30d, 0) AS logins_trend,
        active_users_30d / nullif(seats_purchased, 0) AS seat_utilisation,
        CASE
            WHEN active_days_30d <= 0 THEN 0
            WHEN active_days_30d <= 4 THEN 0 + (active_days_30d - 0) * (40 / 4)
            WHEN active_days_30d <= 10 THEN 40 + (active_days_30d - 4) * (30 / 6)
            WHEN active_days_30d <= 18 THEN 70 + (active_days_30d - 10) * (30 / 8)
            ELSE 100
        END::DOUBLE AS health__usage,
        CASE
            WHEN features_90d <= 0 THEN 0
            WHEN features_90d <= 2 THEN 0 + (features_90d - 0) * (40 / 2)
            WHEN features_90d <= 5 THEN 40 + (features_90d - 2) * (40 / 3)
            WHEN features_90d <= 8 THEN 80 + (features_90d - 5) * (20 / 3)
            ELSE 100
        END::DOUBLE AS health__breadth,
        CASE
            WHEN tickets_30d <= 0 THEN 100
            WHEN tickets_30d <= 2 THEN 100 + (tickets_30d - 0) * (-30 / 2)
            WHEN tickets_30d <= 5 THEN 70 + (tickets_30d - 2) * (-40 / 3)
            WHEN tickets_30d <= 8 THEN 30 + (tickets_30d - 5) * (-30 / 3)
            ELSE 0
        END::DOUBLE AS health__support,
        CASE
            WHEN nps IS NULL THEN NULL  -- no answer: the component is missing
            WHEN nps <= 0 THEN 0
            WHEN nps <= 6 THEN 0 + (nps - 0) * (30 / 6)
            WHEN nps <= 8 THEN 30 + (nps - 6) * (40 / 2)
            WHEN nps <= 10 THEN 70 + (nps - 8) * (30 / 2)
            ELSE 100
        END::DOUBLE AS health__sentiment
    FROM account_traits
),
-- Health: weighted average; a missing sentiment gives its weight to the others.
health AS (
    SELECT
        *,
        round((40 * health__usage + 20 * health__breadth + 15 * health__support
               + coalesce(25 * health__sentiment, 0))
              / (75 + CASE WHEN health__sentiment IS NULL THEN 0 ELSE 25 END), 2) AS health
    FROM scored
)
SELECT
    account_id, name, tier, owner,
    logins_30d, logins_prev_30d, active_days_30d, features_90d, integrations,
    seats_added_90d, last_seen, exec_active_90d, tickets_30d, urgent_tickets_90d, nps,
    csat_90d, mrr, cancelled_at, active_users_30d, tenure_days, days_since_seen,
    logins_trend, seat_utilisation,
    health,
    CASE
        WHEN health >= 70 THEN 'green'
        WHEN health >= 45 THEN 'yellow'
        WHEN health >= 0 THEN 'red'
    END AS health_band,
    health__usage, health__breadth, health__support, health__sentiment,
    -- Segments: the first matching rule wins.
    CASE
        WHEN cancelled_at IS NOT NULL THEN 'lapsed'
        WHEN tenure_days <= 30 THEN 'new'
        WHEN health_band = 'red' OR days_since_seen > 30 THEN 'at_risk'
        WHEN active_days_30d >= 12 AND features_90d >= 5 THEN 'power_user'
        WHEN features_90d >= 2 THEN 'activated'
        ELSE 'dormant'
    END AS lifecycle,
    CASE
        WHEN nps >= 9 THEN 'promoter'
        WHEN nps >= 7 THEN 'passive'
        WHEN nps >= 0 THEN 'detractor'
        ELSE 'no_answer'
    END AS nps_group,
    CASE
        WHEN tier = 'enterprise' OR mrr >= 5000 THEN 'strategic'
        WHEN mrr >= 500 THEN 'growth'
        ELSE 'scaled'
    END AS value_tier,
    CASE
        WHEN tickets_30d >= 4 OR urgent_tickets_90d >= 3 THEN 'heavy'
        WHEN tickets_30d >= 1 THEN 'occasional'
        ELSE 'self_serve'
    END AS support_pattern,
    -- Tags: overlapping, unknown counts as false.
    coalesce(seats_added_90d >= 3 OR seat_utilisation >= 0.9, false) AS expansion_signal,
    coalesce(exec_active_90d, false) AS exec_sponsor_engaged,
    coalesce(tenure_days BETWEEN 7 AND 30 AND features_90d = 0, false) AS activation_overdue,
    contacts
FROM health
