-- rate_leak_calls: what the leaks found by rate_leaks.sql cost, from rated CDRs.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC. Registered frames:
--   leak_segments(customer, lo, hi, prefix): each leaking customer's ranges as disjoint key
--     segments (ratelab.prefix.segments), so a call falls in its range by one ASOF join on
--     cdrs.callee_key, as rating finds prefixes;
--   leak_pairs(customer, prefix, vendor): the leaking (customer, range, vendor) rows.
-- Per leak row: calls (every CDR, answered or not, as in margin_by), minutes (customer billed
-- minutes, half up to 0.1), loss = cost - revenue in the base currency (rated_base; the caller
-- has checked no exchange rate is missing), summed over the calls of that customer in that
-- range whose final vendor was that vendor. An unrated side counts as 0.
WITH calls AS (
    SELECT r.customer, r.vendor, c.callee_key, r.billed_s_customer,
           coalesce(r.revenue_base, 0) AS revenue, coalesce(r.cost_base, 0) AS cost
    FROM rated_base r
    JOIN cdrs c ON c.cdr_seq = r.cdr_seq
    WHERE r.start_ts >= $start AND r.start_ts < $end AND c.callee_key IS NOT NULL
      AND r.customer IN (SELECT customer FROM leak_pairs)
      AND r.vendor IN (SELECT vendor FROM leak_pairs)
),
ranged AS (
    SELECT k.*, s.prefix, s.hi
    FROM calls k
    ASOF JOIN leak_segments s ON k.customer = s.customer AND k.callee_key >= s.lo
)
SELECT g.customer, g.prefix, g.vendor,
       count(*) AS calls,
       CAST(CAST((coalesce(sum(g.billed_s_customer), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS minutes,
       CAST(sum(g.cost) - sum(g.revenue) AS DECIMAL(18, 6)) AS loss
FROM ranged g
JOIN leak_pairs p ON p.customer = g.customer AND p.prefix = g.prefix AND p.vendor = g.vendor
WHERE g.callee_key < g.hi
GROUP BY g.customer, g.prefix, g.vendor
