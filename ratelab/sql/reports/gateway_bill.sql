-- gateway_bill: one customer's (or vendor's) bill, day by day (UTC days).
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $side ('customer' | 'vendor');
-- $party (the customer or vendor name). amount is revenue on the customer side, cost on the
-- vendor side; billed_minutes uses that side's billed seconds (one decimal, half up).
SELECT CAST(start_ts AS DATE) AS day,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       CAST(CAST((coalesce(sum(CASE WHEN $side = 'customer' THEN billed_s_customer
                                    ELSE billed_s_vendor END), 0) + 3) // 6
                 AS DECIMAL(18, 0)) * 0.1 AS DECIMAL(18, 1)) AS billed_minutes,
       CAST(coalesce(sum(CASE WHEN $side = 'customer' THEN revenue ELSE cost END), 0)
            AS DECIMAL(18, 6)) AS amount
FROM rated
WHERE start_ts >= $start AND start_ts < $end
  AND (CASE WHEN $side = 'customer' THEN customer ELSE vendor END) = $party
GROUP BY ALL
ORDER BY day
