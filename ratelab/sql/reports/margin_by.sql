-- margin_by: calls, minutes, revenue, cost, profit, margin and markup per destination,
-- customer or vendor.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $by ('destination' | 'customer' |
-- 'vendor').
-- Like Warehouse.margin_summary: profit = revenue - cost (unrated sides count as 0), margin =
-- profit / revenue and markup = profit / cost, ratios of sums, NULL when the divisor is 0.
-- minutes: customer-side billed minutes to one decimal, half up ((s + 3) // 6 tenths).
SELECT CASE $by WHEN 'customer' THEN coalesce(customer, '(none)')
                WHEN 'vendor' THEN coalesce(vendor, '(none)')
                ELSE coalesce(destination, '(unrated)') END AS key,
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
           / NULLIF(CAST(coalesce(sum(cost), 0) AS DOUBLE), 0) AS markup
FROM rated
WHERE start_ts >= $start AND start_ts < $end
GROUP BY ALL
ORDER BY profit DESC, key
