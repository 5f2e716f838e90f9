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
    calls             BIGINT NOT NULL,
    answered          BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    short_calls       BIGINT NOT NULL,    -- answered and shorter than 10 s
    revenue           DECIMAL(38,6),
    cost              DECIMAL(38,6),
    revenue_base      DECIMAL(38,6),
    cost_base         DECIMAL(38,6),
    revenue_fx        DECIMAL(18,10),
    cost_fx           DECIMAL(18,10),
    fx_missing        BIGINT NOT NULL
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

-- Back-fill from what is already rated (the same query as ratelab/sql/watch/refresh_hourly.sql
-- over every hour; tests check the two agree).
INSERT INTO watch_hourly
SELECT date_trunc('hour', r.start_ts) AS hour,
       coalesce(r.customer, '') AS customer,
       coalesce(r.destination, '') AS destination,
       r.revenue_currency, r.cost_currency,
       count(*) AS calls,
       count(*) FILTER (WHERE r.answered) AS answered,
       coalesce(sum(c.duration_ms), 0) AS duration_ms,
       count(*) FILTER (WHERE r.answered AND c.duration_ms < 10000) AS short_calls,
       sum(r.revenue) AS revenue, sum(r.cost) AS cost,
       sum(r.revenue_base) AS revenue_base, sum(r.cost_base) AS cost_base,
       any_value(r.revenue_fx) AS revenue_fx, any_value(r.cost_fx) AS cost_fx,
       count(*) FILTER (WHERE r.revenue_fx_missing OR r.cost_fx_missing) AS fx_missing
FROM rated_base r JOIN cdrs c USING (cdr_seq)
GROUP BY ALL;
