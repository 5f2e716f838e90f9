-- rate_deviation: where we sell below cost, per destination and vendor.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC.
-- Answered calls whose customer rate per minute is below the vendor rate per minute (both
-- rated). minutes_below_cost: their customer-side billed minutes (one decimal, half up).
-- loss: the sum of the negative profits among them, as a positive amount (increments can
-- still make such a call profitable; those add nothing). worst_deviation: the most negative
-- customer_rate - vendor_rate. Both are in the base currency (`currency`): amounts and rates
-- are converted at the exchange rate of the call's UTC day (rated_base), so a EUR customer rate
-- is compared with a USD vendor rate in USD, rounded half up to 6 places.
WITH calls AS (
    SELECT *,
           CAST(round(CAST(customer_rate AS DECIMAL(38, 6)) * revenue_fx, 6) AS DECIMAL(18, 6))
               AS customer_rate_base,
           CAST(round(CAST(vendor_rate AS DECIMAL(38, 6)) * cost_fx, 6) AS DECIMAL(18, 6))
               AS vendor_rate_base
    FROM rated_base
    WHERE start_ts >= $start AND start_ts < $end AND answered
)
SELECT coalesce(destination, '(unrated)') AS destination,
       vendor,
       any_value(base_currency) AS currency,
       count(*) AS calls_below_cost,
       CAST(CAST((coalesce(sum(billed_s_customer), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS minutes_below_cost,
       CAST(coalesce(sum(cost_base - revenue_base) FILTER (WHERE revenue_base < cost_base), 0)
            AS DECIMAL(18, 6)) AS loss,
       CAST(min(customer_rate_base - vendor_rate_base) AS DECIMAL(18, 6)) AS worst_deviation
FROM calls
WHERE customer_rate_base < vendor_rate_base
GROUP BY ALL
ORDER BY loss DESC, destination, vendor
