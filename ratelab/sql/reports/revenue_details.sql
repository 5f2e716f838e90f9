-- revenue_details: what each customer was billed, per destination, prefix and rate.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $customer (NULL for every customer).
-- One row per customer x destination x customer prefix x customer rate. Calls the customer
-- side could not rate keep their count with a NULL prefix and rate and no revenue (destination
-- '(unrated)' when neither side matched). billed_minutes: customer-side billed seconds in
-- minutes to one decimal, rounded half up in integers ((s + 3) // 6 tenths of a minute).
-- currency: the customer rate table's (NULL where the customer side did not rate). Revenue is
-- as rated, not converted: what the customer is billed, in the currency it is billed in.
SELECT coalesce(customer, '(none)') AS customer,
       coalesce(destination, '(unrated)') AS destination,
       customer_prefix,
       customer_rate,
       revenue_currency AS currency,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       CAST(CAST((coalesce(sum(billed_s_customer), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS billed_minutes,
       CAST(coalesce(sum(revenue), 0) AS DECIMAL(18, 6)) AS revenue
FROM rated_base
WHERE start_ts >= $start AND start_ts < $end
  AND ($customer IS NULL OR customer = $customer)
GROUP BY ALL
ORDER BY customer, destination, customer_prefix, customer_rate
