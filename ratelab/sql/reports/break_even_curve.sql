-- break_even_curve: cumulative profit per UTC day against the fixed costs.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $fixed_costs (a decimal string).
-- Every day from the day of $start to the last day before $end is listed, days without calls
-- included (their profit is 0); no rows at all when the period has no calls. Profit is in the
-- base currency (`currency`), converted per call at its day's exchange rate (rated_base).
WITH daily AS (
    SELECT CAST(start_ts AS DATE) AS day,
           coalesce(sum(revenue_base), 0) - coalesce(sum(cost_base), 0) AS profit
    FROM rated_base
    WHERE start_ts >= $start AND start_ts < $end
    GROUP BY ALL
),
days AS (
    SELECT CAST(d AS DATE) AS day
    FROM range(date_trunc('day', CAST($start AS TIMESTAMP)), CAST($end AS TIMESTAMP),
               INTERVAL 1 DAY) AS t(d)
    WHERE EXISTS (SELECT 1 FROM daily)
)
SELECT days.day,
       (SELECT value FROM settings WHERE key = 'base_currency') AS currency,
       CAST(sum(coalesce(daily.profit, 0)) OVER (ORDER BY days.day) AS DECIMAL(18, 6))
           AS cumulative_profit,
       CAST($fixed_costs AS DECIMAL(18, 6)) AS fixed_costs
FROM days
LEFT JOIN daily ON daily.day = days.day
ORDER BY days.day
