-- ratelab warehouse schema, version 3: currencies, assignment history, quarantine resolution.

-- Warehouse-wide settings. base_currency: what summaries and reports convert money into.
CREATE TABLE settings (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);
INSERT INTO settings VALUES ('base_currency', 'USD');

-- Exchange rates: 1 unit of `currency` is worth `rate` units of the base currency from `day`
-- (a UTC day) until the next day that has a rate for the currency. The rate in force on a
-- call's UTC day is the latest one on or before it (docs/rating.md, "Currencies").
CREATE TABLE fx_rates (
    day       DATE NOT NULL,
    currency  VARCHAR NOT NULL,
    rate      DECIMAL(18, 10) NOT NULL CHECK (rate > 0),
    source    VARCHAR NOT NULL DEFAULT '',
    set_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (day, currency)
);

-- Assignments keep their history. `assignments` holds the intervals in force (what rating,
-- routing and reports read); when a re-assignment changes an interval that had already
-- begun (only with replace_history, see rates.assign), the row as it was is moved here
-- with the moment it was superseded, never deleted. A new assignment that starts now or
-- later simply closes the old interval (sets its valid_to) in `assignments`.
CREATE TABLE assignments_superseded (
    table_name     VARCHAR NOT NULL,
    party          VARCHAR NOT NULL,
    side           VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,
    phone          VARCHAR,
    valid_from     TIMESTAMP NOT NULL,
    valid_to       TIMESTAMP,
    assigned_at    TIMESTAMP NOT NULL,
    superseded_at  TIMESTAMP NOT NULL
);

-- Quarantine entries get an id and can be resolved (by hand, or when the line is re-ingested).
CREATE SEQUENCE cdr_quarantine_id START 1;
ALTER TABLE cdr_quarantine ADD COLUMN id BIGINT DEFAULT nextval('cdr_quarantine_id');
ALTER TABLE cdr_quarantine ADD COLUMN resolved_at TIMESTAMP;
ALTER TABLE cdr_quarantine ADD COLUMN resolution VARCHAR;

-- Rated rows with both sides converted to the base currency at the rate in force on the call's
-- UTC day. revenue / cost stay as rated, in their rate table's currency (revenue_currency,
-- cost_currency); revenue_base / cost_base are converted: amount * rate rounded half up (away
-- from zero; amounts are never negative) to 6 places, once per call and side. An amount already
-- in the base currency is taken as it is; a cost of 0 with no vendor tried needs no rate.
-- *_fx_missing: the amount needs a rate and none is on or before the call's day (then *_base
-- is NULL; reports refuse, naming the currency and days, rather than add unlike money).
CREATE VIEW rated_base AS
WITH base AS (SELECT value AS base_currency FROM settings WHERE key = 'base_currency'),
sided AS (
    SELECT r.*, CAST(r.start_ts AS DATE) AS day,
           ct.currency AS revenue_currency,
           vt.currency AS cost_currency,
           b.base_currency
    FROM rated r
    CROSS JOIN base b
    LEFT JOIN rate_tables ct ON ct.name = r.customer_table
    LEFT JOIN rate_tables vt ON vt.name = r.vendor_table
),
fx_rev AS (
    SELECT s.*, fr.rate AS revenue_fx
    FROM sided s
    ASOF LEFT JOIN fx_rates fr ON fr.currency = s.revenue_currency AND s.day >= fr.day
),
fx_both AS (
    SELECT s.*, fc.rate AS cost_fx
    FROM fx_rev s
    ASOF LEFT JOIN fx_rates fc ON fc.currency = s.cost_currency AND s.day >= fc.day
)
SELECT * EXCLUDE (revenue_fx, cost_fx),
       -- the exchange rate applied to each side (1 in the base currency; NULL when missing)
       CASE WHEN revenue_currency IS NULL OR revenue_currency = base_currency
            THEN CAST(1 AS DECIMAL(18, 10)) ELSE revenue_fx END AS revenue_fx,
       CASE WHEN cost_currency IS NULL OR cost_currency = base_currency
            THEN CAST(1 AS DECIMAL(18, 10)) ELSE cost_fx END AS cost_fx,
       CASE WHEN revenue IS NULL THEN NULL
            WHEN revenue_currency IS NULL OR revenue_currency = base_currency THEN revenue
            ELSE CAST(round(CAST(revenue AS DECIMAL(38, 6)) * CAST(revenue_fx AS DECIMAL(38, 10)), 6)
                      AS DECIMAL(18, 6)) END AS revenue_base,
       CASE WHEN cost IS NULL THEN NULL
            WHEN cost_currency IS NULL OR cost_currency = base_currency THEN cost
            ELSE CAST(round(CAST(cost AS DECIMAL(38, 6)) * CAST(cost_fx AS DECIMAL(38, 10)), 6)
                      AS DECIMAL(18, 6)) END AS cost_base,
       revenue IS NOT NULL AND revenue_currency IS NOT NULL
           AND revenue_currency <> base_currency AND revenue_fx IS NULL AS revenue_fx_missing,
       cost IS NOT NULL AND cost_currency IS NOT NULL
           AND cost_currency <> base_currency AND cost_fx IS NULL AS cost_fx_missing
FROM fx_both;
