-- failure_causes: why calls failed, per vendor, customer or destination.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $by ('vendor' | 'customer' |
-- 'destination').
-- Unanswered calls only (final sip_code other than 200), one row per key x final sip_code x
-- disconnect_reason. By vendor, the key is the call's final vendor ('(none)' when no vendor
-- was tried); failed attempts that a failover rescued are in traffic_quality, not here.
-- share: the row's calls over all the key's failed calls.
WITH failed AS (
    SELECT CASE $by WHEN 'vendor' THEN coalesce(c.vendor, '(none)')
                    WHEN 'customer' THEN coalesce(c.customer, '(none)')
                    ELSE coalesce(r.destination, '(unrated)') END AS key,
           c.sip_code, c.disconnect_reason
    FROM cdrs c
    LEFT JOIN rated r ON r.cdr_seq = c.cdr_seq
    WHERE c.start_ts >= $start AND c.start_ts < $end
      AND coalesce(c.sip_code, 0) <> 200
)
SELECT key, sip_code, disconnect_reason,
       count(*) AS calls,
       CAST(count(*) AS DOUBLE) / sum(count(*)) OVER (PARTITION BY key) AS share
FROM failed
GROUP BY key, sip_code, disconnect_reason
ORDER BY key, calls DESC, sip_code, disconnect_reason
