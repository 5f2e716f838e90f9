-- failure_causes: why calls failed, per vendor, customer or destination.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $by, a list of keys among 'vendor',
-- 'customer', 'destination'. The groups are vendor_key, customer_key and destination_key
-- (NULL for a key not in $by: the caller drops it).
-- Unanswered calls only (final sip_code other than 200), one row per key x final sip_code x
-- disconnect_reason. By vendor, the key is the call's final vendor ('(none)' when no vendor
-- was tried); failed attempts that a failover rescued are in traffic_quality, not here.
-- share: the row's calls over all the failed calls of its keys.
WITH failed AS (
    SELECT CASE WHEN list_contains($by, 'vendor') THEN coalesce(c.vendor, '(none)') END
               AS vendor_key,
           CASE WHEN list_contains($by, 'customer') THEN coalesce(c.customer, '(none)') END
               AS customer_key,
           CASE WHEN list_contains($by, 'destination')
                THEN coalesce(r.destination, '(unrated)') END AS destination_key,
           c.sip_code, c.disconnect_reason
    FROM cdrs c
    LEFT JOIN rated r ON r.cdr_seq = c.cdr_seq
    WHERE c.start_ts >= $start AND c.start_ts < $end
      AND coalesce(c.sip_code, 0) <> 200
)
SELECT vendor_key, customer_key, destination_key, sip_code, disconnect_reason,
       count(*) AS calls,
       CAST(count(*) AS DOUBLE)
           / sum(count(*)) OVER (PARTITION BY vendor_key, customer_key, destination_key)
           AS share
FROM failed
GROUP BY vendor_key, customer_key, destination_key, sip_code, disconnect_reason
