-- ratelab warehouse schema, version 4: the loss and fraud watch (docs/watch.md).

-- Hourly aggregates of the rated calls, kept up to date at rating time (Warehouse.rate calls
-- ratelab.watch.refresh_hourly for the hours it touched) so a watch run never scans history.
-- One row per UTC hour, customer, destination and currency pair: money of different
-- currencies is never added. revenue / cost are in their rate table's currency;
-- revenue_base / cost_base are the sums of rated_base's per-call conversions (rounded once per
-- call and side, as every report does), made at the rates revenue_fx / cost_fx (one per
-- currency and UTC day, so one per row); a watch run re-aggregates the hours whose stored
-- rates are no longer the ones in force. fx_missing counts the calls with a side that needs a
-- rate that is missing (their *_base is left out of the sums).
CREATE TABLE watch_hourly (
    hour              TIMESTAMP NOT NULL,
    customer          VARCHAR NOT NULL,   -- '' when the CDR has none
    destination       VARCHAR NOT NULL,   -- the customer side's destination; '' when unrated
    revenue_currency  VARCHAR,
    cost_currency     VARCHAR,
    calls             INTEGER NOT NULL,
    answered          INTEGER NOT NULL,
    duration_ms       BIGINT NOT NULL,
    short_calls       INTEGER NOT NULL,    -- answered and shorter than 10 s
    revenue           DECIMAL(18,6),
    cost              DECIMAL(18,6),
    revenue_base      DECIMAL(18,6),
    cost_base         DECIMAL(18,6),
    revenue_fx        DECIMAL(18,10),
    cost_fx           DECIMAL(18,10),
    fx_missing        INTEGER NOT NULL
);

-- Findings, one row per stable id (same subject and window -> same id): a later run that
-- finds it again updates last_seen (and the numbers), never raises it as new.
CREATE TABLE watch_findings (
    id            VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL,
    severity      VARCHAR NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    customer      VARCHAR,
    destination   VARCHAR,
    window_start  TIMESTAMP NOT NULL,
    window_end    TIMESTAMP NOT NULL,
    summary       VARCHAR NOT NULL,
    numbers       JSON NOT NULL,
    first_seen    TIMESTAMP NOT NULL,
    last_seen     TIMESTAMP NOT NULL,
    resolved_at   TIMESTAMP,
    resolution    VARCHAR
);

-- One row per watch run: its "now" and window decide the next run's window.
CREATE TABLE watch_runs (
    run_id        INTEGER PRIMARY KEY,
    now           TIMESTAMP NOT NULL,
    window_start  TIMESTAMP NOT NULL,
    window_end    TIMESTAMP NOT NULL,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP NOT NULL,
    findings      INTEGER NOT NULL,
    new_findings  INTEGER NOT NULL
);

-- Back-fill from what is already rated: ratelab/sql/watch/refresh_hourly.sql over every hour
-- (tests check the two agree).
INSERT INTO watch_hourly BY NAME
WITH b AS (SELECT value AS base_currency FROM settings WHERE key = 'base_currency'),
calls AS (
    SELECT r.start_ts, coalesce(r.customer, '') AS customer,
           coalesce(r.destination, '') AS destination, r.answered, r.revenue, r.cost,
           c.duration_ms, ct.currency AS revenue_currency, vt.currency AS cost_currency,
           CAST(r.start_ts AS DATE) AS day
    FROM rated r
    JOIN (SELECT cdr_seq, duration_ms FROM cdrs) c USING (cdr_seq)
    LEFT JOIN rate_tables ct ON ct.name = r.customer_table
    LEFT JOIN rate_tables vt ON vt.name = r.vendor_table
),
needed AS (
    SELECT DISTINCT n.day, n.currency
    FROM (SELECT DISTINCT day, revenue_currency AS currency FROM calls
          UNION SELECT DISTINCT day, cost_currency FROM calls) n
    CROSS JOIN b WHERE n.currency IS NOT NULL AND n.currency <> b.base_currency
),
day_fx AS (
    SELECT n.day, n.currency, f.rate
    FROM needed n ASOF LEFT JOIN fx_rates f ON f.currency = n.currency AND n.day >= f.day
),
converted AS (
    SELECT k.*,
           CASE WHEN k.revenue_currency IS NULL OR k.revenue_currency = b.base_currency
                THEN CAST(1 AS DECIMAL(18, 10)) ELSE rf.rate END AS revenue_fx,
           CASE WHEN k.cost_currency IS NULL OR k.cost_currency = b.base_currency
                THEN CAST(1 AS DECIMAL(18, 10)) ELSE cf.rate END AS cost_fx
    FROM calls k CROSS JOIN b
    LEFT JOIN day_fx rf ON rf.day = k.day AND rf.currency = k.revenue_currency
    LEFT JOIN day_fx cf ON cf.day = k.day AND cf.currency = k.cost_currency
)
SELECT date_trunc('hour', start_ts) AS hour, customer, destination,
       revenue_currency, cost_currency,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       coalesce(sum(duration_ms), 0) AS duration_ms,
       count(*) FILTER (WHERE answered AND duration_ms < 10000) AS short_calls,
       sum(revenue) AS revenue, sum(cost) AS cost,
       sum(CASE WHEN revenue_fx = 1 THEN revenue
                ELSE CAST(round(CAST(revenue AS DECIMAL(38, 6))
                                * CAST(revenue_fx AS DECIMAL(38, 10)), 6) AS DECIMAL(18, 6))
           END) AS revenue_base,
       sum(CASE WHEN cost_fx = 1 THEN cost
                ELSE CAST(round(CAST(cost AS DECIMAL(38, 6))
                                * CAST(cost_fx AS DECIMAL(38, 10)), 6) AS DECIMAL(18, 6))
           END) AS cost_base,
       any_value(revenue_fx) AS revenue_fx, any_value(cost_fx) AS cost_fx,
       count(*) FILTER (WHERE (revenue IS NOT NULL AND revenue_fx IS NULL)
                           OR (cost IS NOT NULL AND cost_fx IS NULL)) AS fx_missing
FROM converted
GROUP BY ALL;
