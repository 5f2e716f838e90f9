-- The hourly aggregates of the rated calls starting in [$lo, $hi) (whole hours): the rows
-- of watch_hourly for those hours. Columns by name so `rated` may become a view.
SELECT date_trunc('hour', r.start_ts) AS hour,
       coalesce(r.customer, '') AS customer,
       coalesce(r.destination, '') AS destination,
       r.revenue_currency, r.cost_currency,
       count(*) AS calls,
       count(*) FILTER (WHERE r.answered) AS answered,
       coalesce(sum(c.duration_ms), 0) AS duration_ms,
       count(*) FILTER (WHERE r.answered AND c.duration_ms < 10000) AS short_calls,
       sum(r.revenue) AS revenue, sum(r.cost) AS cost,
       sum(r.revenue_base) AS revenue_base, sum(r.cost_base) AS cost_base,
       any_value(r.revenue_fx) AS revenue_fx, any_value(r.cost_fx) AS cost_fx,
       count(*) FILTER (WHERE r.revenue_fx_missing OR r.cost_fx_missing) AS fx_missing
FROM rated_base r
JOIN (SELECT cdr_seq, duration_ms FROM cdrs WHERE start_ts >= $lo AND start_ts < $hi) c
  USING (cdr_seq)
WHERE r.start_ts >= $lo AND r.start_ts < $hi
GROUP BY ALL
