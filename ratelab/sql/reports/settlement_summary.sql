-- settlement_summary: calls, revenue, cost and profit per day, ISO week or calendar month,
-- per settlement currency.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $period ('day' | 'week' | 'month').
-- period_start is the UTC start of the bucket (weeks start on Monday); the first and last
-- buckets may be partial when the period does not start or end on a boundary.
-- currency: the customer rate table's currency; for calls the customer side did not rate, the
-- vendor table's; '(unrated)' when neither side rated. No currency conversion happens: cost is
-- summed as rated, in its vendor table's currency.
SELECT CAST(date_trunc($period, r.start_ts) AS DATE) AS period_start,
       coalesce(c.currency, v.currency, '(unrated)') AS currency,
       count(*) AS calls,
       count(*) FILTER (WHERE r.answered) AS answered,
       CAST(coalesce(sum(r.revenue), 0) AS DECIMAL(18, 6)) AS revenue,
       CAST(coalesce(sum(r.cost), 0) AS DECIMAL(18, 6)) AS cost,
       CAST(coalesce(sum(r.revenue), 0) - coalesce(sum(r.cost), 0) AS DECIMAL(18, 6)) AS profit,
       -- a ratio of sums; NULL when there is no revenue
       CAST(coalesce(sum(r.revenue), 0) - coalesce(sum(r.cost), 0) AS DOUBLE)
           / NULLIF(CAST(coalesce(sum(r.revenue), 0) AS DOUBLE), 0) AS margin
FROM rated r
LEFT JOIN rate_tables c ON c.name = r.customer_table
LEFT JOIN rate_tables v ON v.name = r.vendor_table
WHERE r.start_ts >= $start AND r.start_ts < $end
GROUP BY ALL
ORDER BY period_start, currency
