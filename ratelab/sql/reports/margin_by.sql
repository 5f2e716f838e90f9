-- margin_by: calls, minutes, revenue, cost, profit, margin and markup per destination,
-- customer, vendor or UTC day. The one margin query: reports.margin_by,
-- Warehouse.margin_summary, `ratelab summary` and the margin explorer (widgets.margin_view) all
-- run this file (through ratelab.reports.margins.margin_table), so they give the same numbers
-- with the same columns.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC (an open end is passed as the
-- earliest / latest timestamp, so the predicate stays a plain range DuckDB can prune on);
-- $by ('destination' | 'customer' | 'vendor' | 'day'); $customer, $vendor, $destination
-- (NULL: everyone; $destination is matched as grouped, so '(unrated)' picks the unrated calls).
-- The group is `key` (VARCHAR, NULL when $by = 'day') or `day` (DATE, NULL otherwise): the
-- caller keeps the one that is set. Sorted by day (NULL unless by day), then profit, highest
-- first, then key.
-- profit = revenue - cost (unrated sides count as 0); margin = profit / revenue and markup =
-- profit / cost, ratios of the exact sums, NULL when the divisor is 0, not rounded: rounding
-- is for display (the CLI shows one decimal of a percent), and rounding here first would round
-- twice.
-- minutes: customer-side billed minutes to one decimal, half up ((s + 3) // 6 tenths).
-- flagged: calls whose status is not 'ok' (a side without a rate, or a bad number);
-- synthetic: whether the group holds generated CDRs (the CLI's banner).
SELECT CASE $by WHEN 'customer' THEN coalesce(customer, '(none)')
                WHEN 'vendor' THEN coalesce(vendor, '(none)')
                WHEN 'day' THEN NULL
                ELSE coalesce(destination, '(unrated)') END AS key,
       CASE WHEN $by = 'day' THEN CAST(start_ts AS DATE) END AS day,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       CAST(CAST((coalesce(sum(billed_s_customer), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS minutes,
       CAST(coalesce(sum(revenue), 0) AS DECIMAL(18, 6)) AS revenue,
       CAST(coalesce(sum(cost), 0) AS DECIMAL(18, 6)) AS cost,
       CAST(coalesce(sum(revenue), 0) - coalesce(sum(cost), 0) AS DECIMAL(18, 6)) AS profit,
       CAST(coalesce(sum(revenue), 0) - coalesce(sum(cost), 0) AS DOUBLE)
           / NULLIF(CAST(coalesce(sum(revenue), 0) AS DOUBLE), 0) AS margin,
       CAST(coalesce(sum(revenue), 0) - coalesce(sum(cost), 0) AS DOUBLE)
           / NULLIF(CAST(coalesce(sum(cost), 0) AS DOUBLE), 0) AS markup,
       count(*) FILTER (WHERE status <> 'ok') AS flagged,
       bool_or(synthetic) AS synthetic
FROM rated
WHERE start_ts >= $start AND start_ts < $end
  AND ($customer IS NULL OR customer = $customer)
  AND ($vendor IS NULL OR vendor = $vendor)
  AND ($destination IS NULL OR coalesce(destination, '(unrated)') = $destination)
GROUP BY ALL
ORDER BY day, profit DESC, key
