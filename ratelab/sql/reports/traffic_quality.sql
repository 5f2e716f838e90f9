-- traffic_quality: ASR, ACD, PDD and short calls per hour or day and per vendor, customer or
-- destination.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $by, a list of keys among 'vendor',
-- 'customer', 'destination'; $grain ('hour' | 'day'). The groups are vendor_key, customer_key
-- and destination_key (NULL for a key not in $by: the caller drops it).
-- With vendor among the keys, every vendor attempt counts (cdrs.attempts, unnested): a call that failed over
-- from one vendor (503) to another (200) is one failed attempt for the first vendor and one
-- answered attempt for the second (by vendor and customer: the attempt's vendor and the call's
-- customer). By customer and/or destination only, each call is one attempt.
-- A call belongs to the bucket of its start (cdrs.start_ts, UTC), attempts included.
-- answered: sip_code 200. acd_s: mean duration of answered attempts, in seconds.
-- pdd_ms: mean post-dial delay of answered attempts. short_calls: answered, under 6 s.
WITH calls AS (
    SELECT c.cdr_seq, c.start_ts, c.customer, c.duration_ms, c.pdd_ms, c.sip_code, c.attempts,
           r.destination
    FROM cdrs c
    LEFT JOIN rated r ON r.cdr_seq = c.cdr_seq
    WHERE c.start_ts >= $start AND c.start_ts < $end
),
tries AS (
    SELECT start_ts, customer, destination, coalesce(a.vendor, '(none)') AS vendor,
           a.sip_code, a.pdd_ms, duration_ms
    FROM (SELECT start_ts, customer, destination, duration_ms, unnest(attempts) AS a
          FROM calls WHERE list_contains($by, 'vendor'))
    UNION ALL
    SELECT start_ts, customer, destination, NULL, sip_code, pdd_ms, duration_ms
    FROM calls
    WHERE NOT list_contains($by, 'vendor')
)
SELECT date_trunc($grain, start_ts) AS bucket,
       CASE WHEN list_contains($by, 'vendor') THEN vendor END AS vendor_key,
       CASE WHEN list_contains($by, 'customer') THEN coalesce(customer, '(none)') END
           AS customer_key,
       CASE WHEN list_contains($by, 'destination') THEN coalesce(destination, '(unrated)') END
           AS destination_key,
       count(*) AS attempts,
       count(*) FILTER (WHERE sip_code = 200) AS answered,
       CAST(count(*) FILTER (WHERE sip_code = 200) AS DOUBLE) / count(*) AS asr,
       avg(duration_ms) FILTER (WHERE sip_code = 200) / 1000.0 AS acd_s,
       CAST(avg(pdd_ms) FILTER (WHERE sip_code = 200) AS DOUBLE) AS pdd_ms,
       count(*) FILTER (WHERE sip_code = 200 AND duration_ms < 6000) AS short_calls,
       CAST(count(*) FILTER (WHERE sip_code = 200 AND duration_ms < 6000) AS DOUBLE)
           / NULLIF(count(*) FILTER (WHERE sip_code = 200), 0) AS short_ratio
FROM tries
GROUP BY ALL
ORDER BY bucket, vendor_key, customer_key, destination_key
