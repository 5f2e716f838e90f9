-- ratelab warehouse schema, version 5: narrow rated rows (issue 15).
--
-- Rating used to write about 20 columns per CDR, 9 of them strings (table names, prefixes, the
-- destination, the status), and that write was half of the rating time. A rated row now holds
-- integer references to the rate rows that priced it and the exact amounts; the strings come
-- from joins when someone reads the view `rated`, which keeps the old columns and names.
--
-- For the references to stay valid, rate rows are never deleted any more: a row a deck
-- corrects (same prefix, band and effective_from) is moved to `rates_superseded` with its id.

-- Every rate row gets a stable id (new ones: max + 1 over both tables, see rates.import_rows).
ALTER TABLE rates ADD COLUMN rate_id BIGINT;
UPDATE rates SET rate_id = rowid + 1;

-- Rate rows replaced by a correction, kept so the calls they priced stay explainable. Pricing
-- terms are NULL only for rows archived by this migration from a rated row whose rate row had
-- already been deleted by an older ratelab (all that was left of it is in the rated row).
CREATE TABLE rates_superseded (
    table_name      VARCHAR NOT NULL,
    prefix          VARCHAR NOT NULL,
    destination     VARCHAR NOT NULL,
    band            VARCHAR,
    first_rate      DECIMAL(18,6),
    first_period    INTEGER,
    rate            DECIMAL(18,6) NOT NULL,
    cycle           INTEGER,
    connect_fee     DECIMAL(18,6),
    effective_from  TIMESTAMP,
    effective_to    TIMESTAMP,
    import_id       INTEGER,
    rate_id         BIGINT NOT NULL,
    superseded_at   TIMESTAMP NOT NULL
);

-- Every rate row ever in force, current or superseded: what rated rows refer to.
CREATE VIEW rate_rows AS
SELECT rate_id, table_name, prefix, destination, band, rate FROM rates
UNION ALL
SELECT rate_id, table_name, prefix, destination, band, rate FROM rates_superseded;

-- The index segments name the rate row that owns them: the band's own row, else the prefix's
-- 'any' row, in force at the group's epoch (how rates.rebuild_index chose it).
ALTER TABLE rate_segments ADD COLUMN rate_id BIGINT;
UPDATE rate_segments s SET rate_id = m.rate_id
FROM (SELECT s2.sid, arg_min(r.rate_id, CASE WHEN r.band = g.band THEN 0 ELSE 1 END) AS rate_id
      FROM rate_segments s2
      JOIN rate_groups g ON g.grp = s2.grp
      JOIN rates r
        ON r.table_name = g.table_name AND r.prefix = s2.prefix
       AND (r.band = g.band OR r.band = 'any')
       AND r.effective_from <= g.epoch_from
       AND (r.effective_to IS NULL OR r.effective_to > g.epoch_from)
      GROUP BY s2.sid) m
WHERE s.sid = m.sid;

-- One narrow row per rated CDR. status and customer_kind are small codes (the view `rated`
-- names them); revenue and cost are DECIMAL(18,6), which DuckDB stores as 64-bit integers of
-- millionths. start_ts, customer and vendor stay so range re-rating and reports filter without
-- a join to `cdrs`.
CREATE TABLE rated_rows (
    cdr_seq            BIGINT NOT NULL,
    start_ts           TIMESTAMP NOT NULL,
    customer           VARCHAR,
    vendor             VARCHAR,
    synthetic          BOOLEAN NOT NULL,
    answered           BOOLEAN NOT NULL,
    status             UTINYINT NOT NULL,  -- 0 ok, 1 no_customer_rate, 2 no_vendor_rate,
                                           -- 3 no_rates, 4 bad_number
    customer_kind      UTINYINT,           -- 0 phone_private, 1 account_private, 2 account,
                                           -- 3 period
    customer_rate_id   BIGINT,             -- rate_rows.rate_id of the winning customer row
    billed_s_customer  INTEGER,
    revenue            DECIMAL(18,6),
    vendor_rate_id     BIGINT,             -- rate_rows.rate_id of the vendor row
    billed_s_vendor    INTEGER,
    cost               DECIMAL(18,6),
    rated_at           TIMESTAMP NOT NULL
);

-- Existing rated rows: find the rate row that priced each side (its table, prefix and rate,
-- in force at the call's start). A rated row whose rate row an older ratelab deleted (a
-- corrected deck row) gets an archived row built from what the rated row recorded.
CREATE TEMP TABLE legacy_sides AS
SELECT DISTINCT side, table_name, prefix, rate, destination FROM (
    SELECT 'c' AS side, customer_table AS table_name, customer_prefix AS prefix,
           customer_rate AS rate, destination, start_ts
    FROM rated WHERE customer_table IS NOT NULL
    UNION ALL
    SELECT 'v', vendor_table, vendor_prefix, vendor_rate,
           CASE WHEN customer_table IS NULL THEN destination ELSE '' END, start_ts
    FROM rated WHERE vendor_table IS NOT NULL) x
WHERE NOT EXISTS (SELECT 1 FROM rates r WHERE r.table_name = x.table_name
                  AND r.prefix = x.prefix AND r.rate = x.rate
                  AND r.effective_from <= x.start_ts
                  AND (r.effective_to IS NULL OR r.effective_to > x.start_ts));

INSERT INTO rates_superseded (table_name, prefix, destination, rate, rate_id, superseded_at)
SELECT table_name, prefix, coalesce(any_value(destination), ''), rate,
       (SELECT coalesce(max(rate_id), 0) FROM rates)
           + row_number() OVER (ORDER BY table_name, prefix, rate),
       now()::TIMESTAMP
FROM legacy_sides GROUP BY table_name, prefix, rate;

INSERT INTO rated_rows
WITH candidates AS (   -- archived legacy rows have no dates: they match at any time
    SELECT rate_id, table_name, prefix, rate, effective_from, effective_to, false AS legacy
    FROM rates
    UNION ALL
    SELECT rate_id, table_name, prefix, rate, NULL, NULL, true FROM rates_superseded
),
customer_ids AS (
    SELECT r.cdr_seq, min(k.rate_id) AS rate_id
    FROM rated r JOIN candidates k
      ON k.table_name = r.customer_table AND k.prefix = r.customer_prefix
     AND k.rate = r.customer_rate
     AND (k.legacy OR (k.effective_from <= r.start_ts
                       AND (k.effective_to IS NULL OR k.effective_to > r.start_ts)))
    GROUP BY r.cdr_seq
),
vendor_ids AS (
    SELECT r.cdr_seq, min(k.rate_id) AS rate_id
    FROM rated r JOIN candidates k
      ON k.table_name = r.vendor_table AND k.prefix = r.vendor_prefix
     AND k.rate = r.vendor_rate
     AND (k.legacy OR (k.effective_from <= r.start_ts
                       AND (k.effective_to IS NULL OR k.effective_to > r.start_ts)))
    GROUP BY r.cdr_seq
)
SELECT r.cdr_seq, r.start_ts, r.customer, r.vendor, r.synthetic, r.answered,
       CASE r.status WHEN 'ok' THEN 0 WHEN 'no_customer_rate' THEN 1
                     WHEN 'no_vendor_rate' THEN 2 WHEN 'no_rates' THEN 3 ELSE 4 END,
       CASE r.customer_kind WHEN 'phone_private' THEN 0 WHEN 'account_private' THEN 1
                            WHEN 'account' THEN 2 WHEN 'period' THEN 3 END,
       c.rate_id, r.billed_s_customer, r.revenue,
       v.rate_id, r.billed_s_vendor, r.cost, r.rated_at
FROM rated r
LEFT JOIN customer_ids c ON c.cdr_seq = r.cdr_seq
LEFT JOIN vendor_ids v ON v.cdr_seq = r.cdr_seq;

DROP TABLE legacy_sides;
DROP VIEW rated_base;
DROP TABLE rated;

-- The rated CDRs as they always read: the same columns, names and types as the table `rated`
-- had (docs/rating.md, "What each rated CDR holds").
CREATE VIEW rated AS
SELECT r.cdr_seq, r.start_ts, r.customer, r.vendor, r.synthetic, r.answered,
       CASE r.status WHEN 0 THEN 'ok' WHEN 1 THEN 'no_customer_rate'
                     WHEN 2 THEN 'no_vendor_rate' WHEN 3 THEN 'no_rates'
                     ELSE 'bad_number' END AS status,
       c.table_name AS customer_table,
       CASE r.customer_kind WHEN 0 THEN 'phone_private' WHEN 1 THEN 'account_private'
                            WHEN 2 THEN 'account' WHEN 3 THEN 'period' END AS customer_kind,
       c.prefix AS customer_prefix,
       coalesce(c.destination, v.destination) AS destination,
       c.rate AS customer_rate, r.billed_s_customer, r.revenue,
       v.table_name AS vendor_table, v.prefix AS vendor_prefix, v.rate AS vendor_rate,
       r.billed_s_vendor, r.cost, r.rated_at
FROM rated_rows r
LEFT JOIN rate_rows c ON c.rate_id = r.customer_rate_id
LEFT JOIN rate_rows v ON v.rate_id = r.vendor_rate_id;

-- As in migration 003 (the same columns and rule), over the view, with one change for speed:
-- the exchange rate of a call's day comes from a per-day table of the rates in force (each
-- rate from its day until the next rate's day, the last until the newest rated call's day),
-- joined on (currency, day), instead of an ASOF join that sorted every rated row.
CREATE VIEW rated_base AS
WITH base AS (SELECT value AS base_currency FROM settings WHERE key = 'base_currency'),
fx_days AS (
    SELECT currency, rate,
           CAST(unnest(generate_series(CAST(day AS TIMESTAMP),
                                       CAST(coalesce(next_day - 1, greatest(day, last_day))
                                            AS TIMESTAMP),
                                       INTERVAL 1 DAY)) AS DATE) AS day
    FROM (SELECT currency, day, rate,
                 lead(day) OVER (PARTITION BY currency ORDER BY day) AS next_day,
                 (SELECT CAST(max(start_ts) AS DATE) FROM rated_rows) AS last_day
          FROM fx_rates)
),
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
fx_both AS (
    SELECT s.*, fr.rate AS revenue_fx, fc.rate AS cost_fx
    FROM sided s
    LEFT JOIN fx_days fr ON fr.currency = s.revenue_currency AND fr.day = s.day
    LEFT JOIN fx_days fc ON fc.currency = s.cost_currency AND fc.day = s.day
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
