-- ratelab warehouse schema, version 7: each rated row's currencies come with the rate rows.
--
-- The view rated_base found each call's currencies by joining rate_tables on the table names the
-- view rated had just joined from the rate rows: two more hash joins on strings over every
-- rated row, about a third of a report's time at 10M CDRs. The view rated now joins each rate
-- row with its table's currency once (a few thousand rows) and shows it: revenue_currency and
-- cost_currency, the currencies of revenue and cost as rated (NULL without a rate on that
-- side). rated_base reads them from there; its columns and rule are unchanged (migration 005).

CREATE OR REPLACE VIEW rated AS
WITH rate_info AS (   -- each rate row with its table's currency: a few thousand rows
    SELECT r.rate_id, r.table_name, r.prefix, r.destination, r.rate, t.currency
    FROM rate_rows r LEFT JOIN rate_tables t ON t.name = r.table_name
)
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
       r.billed_s_vendor, r.cost, r.rated_at,
       c.currency AS revenue_currency, v.currency AS cost_currency
FROM rated_rows r
LEFT JOIN rate_info c ON c.rate_id = r.customer_rate_id
LEFT JOIN rate_info v ON v.rate_id = r.vendor_rate_id;


CREATE OR REPLACE VIEW rated_base AS
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
    SELECT r.*, CAST(r.start_ts AS DATE) AS day, b.base_currency
    FROM rated r
    CROSS JOIN base b
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
