-- UTC days in [$lo, $hi) whose aggregates were converted at an exchange rate that is no longer
-- the one in force (a rate set or corrected after rating, or a new base currency): their
-- hours are aggregated again before money is judged. Same rule as the view rated_base.
WITH base AS (SELECT value AS base_currency FROM settings WHERE key = 'base_currency'),
used AS (
    SELECT DISTINCT CAST(hour AS DATE) AS day, revenue_currency AS currency, revenue_fx AS fx
    FROM watch_hourly WHERE hour >= $lo AND hour < $hi
    UNION
    SELECT DISTINCT CAST(hour AS DATE), cost_currency, cost_fx
    FROM watch_hourly WHERE hour >= $lo AND hour < $hi
),
wanted AS (
    SELECT u.day, u.fx,
           CASE WHEN u.currency IS NULL OR u.currency = b.base_currency
                THEN CAST(1 AS DECIMAL(18, 10)) ELSE f.rate END AS want
    FROM used u CROSS JOIN base b
    ASOF LEFT JOIN fx_rates f ON f.currency = u.currency AND u.day >= f.day
)
SELECT DISTINCT day FROM wanted WHERE fx IS DISTINCT FROM want ORDER BY day
