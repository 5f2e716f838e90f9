-- margin_by_day: revenue, cost, profit and margin per UTC day and destination, customer or
-- vendor (the margin heatmap).
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $by ('destination' | 'customer' |
-- 'vendor'). Same conventions as margin_by.sql.
SELECT CAST(start_ts AS DATE) AS day,
       CASE $by WHEN 'customer' THEN coalesce(customer, '(none)')
                WHEN 'vendor' THEN coalesce(vendor, '(none)')
                ELSE coalesce(destination, '(unrated)') END AS key,
       CAST(coalesce(sum(revenue), 0) AS DECIMAL(18, 6)) AS revenue,
       CAST(coalesce(sum(cost), 0) AS DECIMAL(18, 6)) AS cost,
       CAST(coalesce(sum(revenue), 0) - coalesce(sum(cost), 0) AS DECIMAL(18, 6)) AS profit,
       CAST(coalesce(sum(revenue), 0) - coalesce(sum(cost), 0) AS DOUBLE)
           / NULLIF(CAST(coalesce(sum(revenue), 0) AS DOUBLE), 0) AS margin
FROM rated
WHERE start_ts >= $start AND start_ts < $end
GROUP BY ALL
ORDER BY day, key
