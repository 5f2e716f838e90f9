-- High-risk ranges: calls in [$win_lo, $win_hi) whose callee lies in a range of the high-risk
-- list (temp table watch_risk: disjoint key segments from ratelab.prefix, each owned by its
-- longest listed prefix), per hour, customer, destination and listed prefix.
WITH calls AS (
    SELECT r.start_ts, coalesce(r.customer, '') AS customer,
           coalesce(r.destination, '') AS destination, r.answered, c.callee_key, c.duration_ms
    FROM rated r
    JOIN (SELECT cdr_seq, callee_key, duration_ms FROM cdrs
          WHERE start_ts >= $win_lo AND start_ts < $win_hi AND callee_key IS NOT NULL) c
      USING (cdr_seq)
    WHERE r.start_ts >= $win_lo AND r.start_ts < $win_hi
),
matched AS (
    SELECT c.*, s.prefix, s.label
    FROM calls c
    ASOF JOIN watch_risk s ON c.callee_key >= s.lo
    WHERE c.callee_key < s.hi
)
SELECT date_trunc('hour', start_ts) AS hour, customer, destination, prefix, label,
       count(*) AS calls, count(*) FILTER (WHERE answered) AS answered,
       sum(duration_ms) AS duration_ms
FROM matched
GROUP BY ALL
ORDER BY hour, customer, prefix, destination
