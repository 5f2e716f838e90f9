-- settlement_summary: calls, revenue, cost and profit per day, ISO week or calendar month,
-- per settlement currency, unconverted.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $period ('day' | 'week' | 'month').
-- period_start is the UTC start of the bucket (weeks start on Monday); the first and last
-- buckets may be partial when the period does not start or end on a boundary.
-- Each amount is summed in its own currency: revenue under the customer rate table's
-- currency, cost under the vendor rate table's (a cost of 0 with no vendor tried goes with the
-- revenue's currency). No conversion happens, so a row never adds unlike money: a EUR deck's
-- cost appears on the EUR row even when the revenue was in USD. calls and answered are counted
-- under the customer side's currency (the vendor side's when the customer side did not rate;
-- '(unrated)' when neither did). profit and margin are of the row's own sums.
WITH r AS (
    SELECT CAST(date_trunc($period, start_ts) AS DATE) AS period_start, *
    FROM rated_base
    WHERE start_ts >= $start AND start_ts < $end
),
parts AS (
    SELECT period_start, coalesce(revenue_currency, cost_currency, '(unrated)') AS currency,
           1 AS calls, CASE WHEN answered THEN 1 ELSE 0 END AS answered,
           CAST(0 AS DECIMAL(18, 6)) AS revenue, CAST(0 AS DECIMAL(18, 6)) AS cost
    FROM r
    UNION ALL
    SELECT period_start, revenue_currency, 0, 0, revenue, 0 FROM r WHERE revenue IS NOT NULL
    UNION ALL
    SELECT period_start, coalesce(cost_currency, revenue_currency, '(unrated)'), 0, 0, 0, cost
    FROM r WHERE cost IS NOT NULL
)
SELECT period_start,
       currency,
       CAST(sum(calls) AS BIGINT) AS calls,
       CAST(sum(answered) AS BIGINT) AS answered,
       CAST(sum(revenue) AS DECIMAL(18, 6)) AS revenue,
       CAST(sum(cost) AS DECIMAL(18, 6)) AS cost,
       CAST(sum(revenue) - sum(cost) AS DECIMAL(18, 6)) AS profit,
       -- a ratio of sums; NULL when there is no revenue
       CAST(sum(revenue) - sum(cost) AS DOUBLE) / NULLIF(CAST(sum(revenue) AS DOUBLE), 0)
           AS margin
FROM parts
GROUP BY ALL
ORDER BY period_start, currency
