-- The rating query, part 2 of 3 (a lookup per side): the longest prefix on each side by an
-- ASOF join on the number key, partitioned by index group, the segment's price terms and
-- rate_id riding on the right side. rating.py uses this instead of match_merged.sql when the
-- pairs' merged segments would outgrow the calls. The customer side is charged before the
-- vendor ASOF, which then sorts three customer columns instead of seven.
customer_match AS (
    SELECT g.* EXCLUDE (cgrp),
           CASE WHEN g.callee_key < s.hi THEN s.rate_id END AS c_rate_id,
           s.first_rate_u AS c_first_u, s.first_period AS c_first, s.rate_u AS c_rate_u,
           s.connect_fee_u AS c_fee_u,
           billed_seconds(g.billable_s, s.first_period, s.cycle) AS c_billed
    FROM groups g
    ASOF LEFT JOIN (SELECT grp, lo, hi, rate_id, first_rate_u, first_period, rate_u, cycle,
                           connect_fee_u FROM rate_segments) s
      ON g.cgrp = s.grp AND g.callee_key >= s.lo
),
customer_charged AS (
    SELECT * EXCLUDE (c_first_u, c_first, c_rate_u, c_fee_u),
           charge_u(c_billed, c_rate_id, c_fee_u, c_first_u, c_first, c_rate_u) AS c_charge_u
    FROM customer_match
),
vendor_match AS (
    SELECT m.* EXCLUDE (vgrp),
           CASE WHEN m.callee_key < s.hi THEN s.rate_id END AS v_rate_id,
           s.first_rate_u AS v_first_u, s.first_period AS v_first, s.rate_u AS v_rate_u,
           s.connect_fee_u AS v_fee_u,
           billed_seconds(m.billable_s, s.first_period, s.cycle) AS v_billed
    FROM customer_charged m
    ASOF LEFT JOIN (SELECT grp, lo, hi, rate_id, first_rate_u, first_period, rate_u, cycle,
                           connect_fee_u FROM rate_segments) s
      ON m.vgrp = s.grp AND m.callee_key >= s.lo
),
matched AS (
    SELECT rid, multi, kind_rank, callee_key, billable_s > 0 AS answered,
           start_ts, customer, vendor, synthetic,
           c_rate_id, c_billed, c_charge_u,
           v_rate_id, v_billed, charge_u(v_billed, v_rate_id, v_fee_u, v_first_u, v_first,
                                         v_rate_u) AS v_charge_u
    FROM vendor_match
),
