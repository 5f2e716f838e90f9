-- Reconciliation of a vendor's CDR file against ours (ratelab/reports/reconcile.py).
-- Four queries, each after a "-- name: NAME" line; reconcile.py runs them in this order.

-- name: ours
-- Our answered calls carried by $vendor starting in [$lo, $hi) (the period widened by the time
-- tolerance on each side, so calls across its edges still find their partner), with the
-- vendor-side cost we rated, in the currency of the vendor table that priced it (NULL when no
-- table did). rated is false when the call has no rated row yet.
SELECT c.cdr_seq, c.cdr_id, c.callee_e164 AS callee, c.start_ts AS our_start,
       CAST(CAST(c.duration_ms AS DECIMAL(18, 0)) * 0.001 AS DECIMAL(18, 3)) AS our_duration_s,
       r.cost AS our_amount, r.cdr_seq IS NOT NULL AS rated, t.currency AS our_currency
FROM cdrs c
LEFT JOIN rated r USING (cdr_seq)
LEFT JOIN rate_tables t ON t.name = r.vendor_table
WHERE c.vendor = $vendor AND c.duration_ms > 0 AND c.start_ts >= $lo AND c.start_ts < $hi;

-- name: candidates
-- Every (our call, their row) pair to the same number starting within the tolerance, nearest
-- first; reconcile.py pairs them greedily, one-to-one, in this order.
SELECT o.cdr_seq, t.line, abs(date_diff('microsecond', o.our_start, t.their_start)) AS gap_us
FROM ours o
JOIN theirs t
  ON t.callee = o.callee
 AND abs(date_diff('microsecond', o.our_start, t.their_start)) <= $tolerance_us
ORDER BY gap_us, o.our_start, o.cdr_seq, t.line;

-- name: result
-- Matched pairs, then the unmatched rows of each side; a row belongs to the period by our
-- start when we have the call, by theirs otherwise. Differences are theirs minus ours. Every
-- amount is in $currency: the vendor table's (reconcile.py refuses a period priced in two).
WITH joined AS (
    SELECT o.cdr_id, t.line AS their_line, coalesce(o.callee, t.callee) AS callee,
           o.our_start, t.their_start, o.our_duration_s, t.their_duration_s,
           t.their_duration_s - o.our_duration_s AS duration_diff_s,
           o.our_amount, t.their_amount,
           CAST(t.their_amount - o.our_amount AS DECIMAL(18, 6)) AS amount_diff,
           o.cdr_seq IS NOT NULL AS ours_present, t.line IS NOT NULL AS theirs_present
    FROM pairs p
    FULL JOIN ours o ON o.cdr_seq = p.cdr_seq
    FULL JOIN theirs t ON t.line = p.line
)
SELECT CASE WHEN NOT theirs_present THEN 'only_ours'
            WHEN NOT ours_present THEN 'only_theirs'
            WHEN abs(duration_diff_s) > $duration_tolerance_s
              OR amount_diff IS NULL
              OR amount_diff < $amount_lower OR amount_diff > $amount_upper THEN 'deviation'
            ELSE 'matched' END AS status,
       callee, our_start, their_start,
       CAST(our_duration_s AS DECIMAL(18, 3)) AS our_duration_s,
       CAST(their_duration_s AS DECIMAL(18, 3)) AS their_duration_s,
       CAST(duration_diff_s AS DECIMAL(18, 3)) AS duration_diff_s,
       CAST(our_amount AS DECIMAL(18, 6)) AS our_amount,
       CAST(their_amount AS DECIMAL(18, 6)) AS their_amount,
       amount_diff, cdr_id, their_line, $currency AS currency
FROM joined
WHERE (ours_present AND our_start >= $start AND our_start < $end)
   OR (NOT ours_present AND their_start >= $start AND their_start < $end)
ORDER BY coalesce(our_start, their_start), callee, cdr_id, their_line;

-- name: summary
-- Calls and money per status, every status listed; amount is theirs minus ours (a missing
-- side counts 0): what they billed beyond what we expect to pay.
SELECT s.status, count(f.status) AS calls,
       CAST(coalesce(sum(coalesce(f.their_amount, 0) - coalesce(f.our_amount, 0)), 0)
            AS DECIMAL(18, 6)) AS amount,
       CAST(coalesce(sum(f.our_amount), 0) AS DECIMAL(18, 6)) AS our_amount,
       CAST(coalesce(sum(f.their_amount), 0) AS DECIMAL(18, 6)) AS their_amount,
       (SELECT any_value(currency) FROM frame) AS currency
FROM (VALUES (1, 'matched'), (2, 'deviation'), (3, 'only_ours'), (4, 'only_theirs'))
     AS s(rank, status)
LEFT JOIN frame f ON f.status = s.status
GROUP BY s.rank, s.status
ORDER BY s.rank;
