-- traffic_quality: ASR, ACD, PDD and short calls per hour or day and per vendor, customer or
-- destination.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $by ('vendor' | 'customer' |
-- 'destination'); $grain ('hour' | 'day').
-- By vendor, every vendor attempt counts (cdrs.attempts, unnested): a call that failed over
-- from one vendor (503) to another (200) is one failed attempt for the first vendor and one
-- answered attempt for the second. By customer or destination, each call is one attempt.
-- A call belongs to the bucket of its start (cdrs.start_ts, UTC), attempts included.
-- answered: sip_code 200. acd_s: mean duration of answered attempts, in seconds.
-- pdd_ms: mean post-dial delay of answered attempts. short_calls: answered, under 6 s.
WITH calls AS (
    SELECT cdr_seq, start_ts, customer, duration_ms, pdd_ms, sip_code, attempts
    FROM cdrs
    WHERE start_ts >= $start AND start_ts < $end
),
tries AS (
    SELECT start_ts, coalesce(a.vendor, '(none)') AS key, a.sip_code, a.pdd_ms, duration_ms
    FROM (SELECT start_ts, duration_ms, unnest(attempts) AS a FROM calls WHERE $by = 'vendor')
    UNION ALL
    SELECT c.start_ts,
           CASE WHEN $by = 'customer' THEN coalesce(c.customer, '(none)')
                ELSE coalesce(r.destination, '(unrated)') END AS key,
           c.sip_code, c.pdd_ms, c.duration_ms
    FROM calls c
    LEFT JOIN rated r ON r.cdr_seq = c.cdr_seq
    WHERE $by <> 'vendor'
)
SELECT date_trunc($grain, start_ts) AS bucket,
       key,
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
ORDER BY bucket, key
