-- compare: calls, answered calls, billed seconds and minutes, revenue, cost and profit per
-- destination, customer and/or vendor in two periods, side by side (reports.compare, which
-- adds the ratios, the changes and the volume / mix / price split of the profit change).
--
-- Params: $a_start, $a_end, $b_start, $b_end (start inclusive, end exclusive, naive UTC; the
-- periods may overlap: a call in both counts in both); $by, a list of keys among
-- 'destination', 'customer', 'vendor' (a key not in $by is NULL throughout and the caller
-- drops it). One scan of rated_base covers both periods; a key seen in only one period has
-- zeros (count 0, sums 0) in the other.
--
-- Money is in the base currency (rated_base converts each call at its UTC day's exchange
-- rate); the caller checks first that no rate is missing in either period
-- (reports.common.require_rates). profit = revenue - cost, an unrated side counting as 0, as
-- in margin_by.sql. minutes: customer-side billed minutes to one decimal, half up, as in
-- margin_by.sql; seconds_*: the exact billed seconds the decomposition weighs rows by.
WITH calls AS (
    SELECT CASE WHEN list_contains($by, 'destination')
                THEN coalesce(destination, '(unrated)') END AS destination_key,
           CASE WHEN list_contains($by, 'customer') THEN coalesce(customer, '(none)') END
               AS customer_key,
           CASE WHEN list_contains($by, 'vendor') THEN coalesce(vendor, '(none)') END
               AS vendor_key,
           start_ts >= $a_start AND start_ts < $a_end AS in_a,
           start_ts >= $b_start AND start_ts < $b_end AS in_b,
           answered, coalesce(billed_s_customer, 0) AS seconds,
           coalesce(revenue_base, 0) AS revenue, coalesce(cost_base, 0) AS cost,
           synthetic
    FROM rated_base
    WHERE (start_ts >= $a_start AND start_ts < $a_end)
       OR (start_ts >= $b_start AND start_ts < $b_end)
)
SELECT destination_key, customer_key, vendor_key,
       count(*) FILTER (WHERE in_a) AS calls_a,
       count(*) FILTER (WHERE in_a AND answered) AS answered_a,
       CAST(coalesce(sum(seconds) FILTER (WHERE in_a), 0) AS BIGINT) AS seconds_a,
       CAST(CAST((coalesce(sum(seconds) FILTER (WHERE in_a), 0) + 3) // 6 AS DECIMAL(18, 0))
            * 0.1 AS DECIMAL(18, 1)) AS minutes_a,
       CAST(coalesce(sum(revenue) FILTER (WHERE in_a), 0) AS DECIMAL(18, 6)) AS revenue_a,
       CAST(coalesce(sum(cost) FILTER (WHERE in_a), 0) AS DECIMAL(18, 6)) AS cost_a,
       count(*) FILTER (WHERE in_b) AS calls_b,
       count(*) FILTER (WHERE in_b AND answered) AS answered_b,
       CAST(coalesce(sum(seconds) FILTER (WHERE in_b), 0) AS BIGINT) AS seconds_b,
       CAST(CAST((coalesce(sum(seconds) FILTER (WHERE in_b), 0) + 3) // 6 AS DECIMAL(18, 0))
            * 0.1 AS DECIMAL(18, 1)) AS minutes_b,
       CAST(coalesce(sum(revenue) FILTER (WHERE in_b), 0) AS DECIMAL(18, 6)) AS revenue_b,
       CAST(coalesce(sum(cost) FILTER (WHERE in_b), 0) AS DECIMAL(18, 6)) AS cost_b,
       coalesce(bool_or(synthetic) FILTER (WHERE in_a), false) AS synthetic_a,
       coalesce(bool_or(synthetic) FILTER (WHERE in_b), false) AS synthetic_b
FROM calls
GROUP BY destination_key, customer_key, vendor_key
ORDER BY destination_key, customer_key, vendor_key
