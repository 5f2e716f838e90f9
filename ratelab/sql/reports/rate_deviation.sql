-- rate_deviation: where we sell below cost, per destination and vendor.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC.
-- Answered calls whose customer rate per minute is below the vendor rate per minute (both
-- rated). minutes_below_cost: their customer-side billed minutes (one decimal, half up).
-- loss: the sum of the negative profits among them, as a positive amount (increments can
-- still make such a call profitable; those add nothing). worst_deviation: the most negative
-- customer_rate - vendor_rate. Rates are compared as stored, without currency conversion.
SELECT coalesce(destination, '(unrated)') AS destination,
       vendor,
       count(*) AS calls_below_cost,
       CAST(CAST((coalesce(sum(billed_s_customer), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS minutes_below_cost,
       CAST(coalesce(sum(cost - revenue) FILTER (WHERE revenue < cost), 0)
            AS DECIMAL(18, 6)) AS loss,
       CAST(min(customer_rate - vendor_rate) AS DECIMAL(18, 6)) AS worst_deviation
FROM rated
WHERE start_ts >= $start AND start_ts < $end
  AND answered
  AND customer_rate < vendor_rate
GROUP BY ALL
ORDER BY loss DESC, destination, vendor
