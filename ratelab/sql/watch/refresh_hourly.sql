-- The hourly aggregates of the rated calls starting in [$lo, $hi) (whole hours): the rows
-- of watch_hourly for those hours. Columns are read by name so `rated` may become a view.
-- Money is converted with the rule of the view rated_base (docs/rating.md "Currencies": each
-- call and side at the rate in force on its UTC day, rounded half up to 6 places, once per
-- call; money already in the base currency as it is), but the rate is looked up once per day
-- and currency rather than per call: rated_base's per-call ASOF joins cost 4x the whole
-- aggregation. tests/test_watch_engine.py checks the sums equal rated_base's.
WITH b AS (SELECT value AS base_currency FROM settings WHERE key = 'base_currency'),
calls AS (
    SELECT r.start_ts, coalesce(r.customer, '') AS customer,
           coalesce(r.destination, '') AS destination, r.answered, r.revenue, r.cost,
           c.duration_ms, r.revenue_currency, r.cost_currency,
           CAST(r.start_ts AS DATE) AS day
    FROM rated r
    JOIN (SELECT cdr_seq, duration_ms FROM cdrs WHERE start_ts >= $lo AND start_ts < $hi) c
      USING (cdr_seq)
    WHERE r.start_ts >= $lo AND r.start_ts < $hi
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
GROUP BY ALL
