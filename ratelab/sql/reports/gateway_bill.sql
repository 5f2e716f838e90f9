-- gateway_bill: one customer's (or vendor's) bill, day by day (UTC days).
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $side ('customer' | 'vendor');
-- $party (the customer or vendor name). amount is revenue on the customer side, cost on the
-- vendor side; billed_minutes uses that side's billed seconds (one decimal, half up).
-- currency: that side's rate table's; calls that side did not rate bill nothing and are counted
-- under the party's (latest) currency in the period; a party billed from tables of several
-- currencies gets a row per currency and day.
-- Amounts are as rated, not converted.
WITH calls AS (
    SELECT CAST(start_ts AS DATE) AS day, start_ts, answered,
           CASE WHEN $side = 'customer' THEN revenue_currency ELSE cost_currency END AS currency,
           CASE WHEN $side = 'customer' THEN billed_s_customer ELSE billed_s_vendor END
               AS billed_s,
           CASE WHEN $side = 'customer' THEN revenue ELSE cost END AS amount
    FROM rated_base
    WHERE start_ts >= $start AND start_ts < $end
      AND (CASE WHEN $side = 'customer' THEN customer ELSE vendor END) = $party
),
party AS (SELECT arg_max(currency, start_ts) AS latest FROM calls WHERE currency IS NOT NULL)
SELECT day,
       coalesce(currency, latest) AS currency,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       CAST(CAST((coalesce(sum(billed_s), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS billed_minutes,
       CAST(coalesce(sum(amount), 0) AS DECIMAL(18, 6)) AS amount
FROM calls CROSS JOIN party
GROUP BY ALL
ORDER BY day, currency NULLS FIRST
