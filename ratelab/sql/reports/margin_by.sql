-- margin_by: calls, minutes, revenue, cost, profit, margin and markup per destination,
-- customer, vendor and/or UTC day. The one margin query: reports.margin_by,
-- reports.headline, Warehouse.margin_summary, `ratelab summary` and the margin explorer
-- (widgets.margin_view) all run this file (through ratelab.reports.margins.margin_table), so
-- they give the same numbers with the same columns.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC (an open end is passed as the
-- earliest / latest timestamp, so the predicate stays a plain range DuckDB can prune on);
-- $by, a list of keys among 'destination', 'customer', 'vendor', 'day' (empty: one row for
-- everything); $customer, $vendor, $destination (NULL: everyone; $destination is matched as
-- grouped, so '(unrated)' picks the unrated calls).
-- The groups are the columns destination_key, customer_key, vendor_key (VARCHAR) and day_key
-- (DATE, the UTC day); a key not in $by is NULL throughout and the caller drops it.
--
-- Money is in the base currency (`currency`): it reads the view rated_base (migration 003),
-- which converts each call's revenue and cost at the exchange rate in force on its UTC day.
-- The caller checks first that no rate is missing (reports.common.require_rates).
-- profit = revenue - cost (unrated sides count as 0); margin = profit / revenue and markup =
-- profit / cost, ratios of the exact sums, NULL when the divisor is 0, not rounded: rounding
-- is for display (the CLI shows one decimal of a percent), and rounding here first would round
-- twice.
-- Honest headline columns: margin_ok is the margin of the fully rated calls only (status
-- 'ok'); flagged_revenue is the revenue of the flagged calls (a no_vendor_rate call brings
-- revenue and no cost, which flatters `margin`).
-- minutes: customer-side billed minutes to one decimal, half up ((s + 3) // 6 tenths).
-- flagged: calls whose status is not 'ok' (a side without a rate, or a bad number);
-- synthetic: whether the group holds generated CDRs (the CLI's banner).
SELECT CASE WHEN list_contains($by, 'destination')
            THEN coalesce(destination, '(unrated)') END AS destination_key,
       CASE WHEN list_contains($by, 'customer') THEN coalesce(customer, '(none)') END
           AS customer_key,
       CASE WHEN list_contains($by, 'vendor') THEN coalesce(vendor, '(none)') END AS vendor_key,
       CASE WHEN list_contains($by, 'day') THEN day END AS day_key,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       CAST(CAST((coalesce(sum(billed_s_customer), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS minutes,
       any_value(base_currency) AS currency,
       CAST(coalesce(sum(revenue_base), 0) AS DECIMAL(18, 6)) AS revenue,
       CAST(coalesce(sum(cost_base), 0) AS DECIMAL(18, 6)) AS cost,
       CAST(coalesce(sum(revenue_base), 0) - coalesce(sum(cost_base), 0) AS DECIMAL(18, 6))
           AS profit,
       CAST(coalesce(sum(revenue_base), 0) - coalesce(sum(cost_base), 0) AS DOUBLE)
           / NULLIF(CAST(coalesce(sum(revenue_base), 0) AS DOUBLE), 0) AS margin,
       CAST(coalesce(sum(revenue_base) FILTER (WHERE status = 'ok'), 0)
            - coalesce(sum(cost_base) FILTER (WHERE status = 'ok'), 0) AS DOUBLE)
           / NULLIF(CAST(coalesce(sum(revenue_base) FILTER (WHERE status = 'ok'), 0)
                         AS DOUBLE), 0) AS margin_ok,
       CAST(coalesce(sum(revenue_base), 0) - coalesce(sum(cost_base), 0) AS DOUBLE)
           / NULLIF(CAST(coalesce(sum(cost_base), 0) AS DOUBLE), 0) AS markup,
       count(*) FILTER (WHERE status <> 'ok') AS flagged,
       CAST(coalesce(sum(revenue_base) FILTER (WHERE status <> 'ok'), 0) AS DECIMAL(18, 6))
           AS flagged_revenue,
       bool_or(synthetic) AS synthetic
FROM rated_base
WHERE start_ts >= $start AND start_ts < $end
  AND ($customer IS NULL OR customer = $customer)
  AND ($vendor IS NULL OR vendor = $vendor)
  AND ($destination IS NULL OR coalesce(destination, '(unrated)') = $destination)
GROUP BY destination_key, customer_key, vendor_key, day_key
ORDER BY day_key, profit DESC, destination_key, customer_key, vendor_key
