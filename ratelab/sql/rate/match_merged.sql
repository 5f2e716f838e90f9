-- The rating query, part 2 of 3 (one lookup for both sides): each CDR's pair of index groups
-- (customer, vendor) -> one ASOF join on the number key against the pair's merged segments,
-- which carry both sides' price terms (merged_segments.sql) -> billed seconds and charges.
-- rate_pair_keys gives every CDR a pair, and masks a side the CDR has no group for (pairs.sql).
-- rating.py drops the pair condition when the run has one pair: DuckDB's ASOF join is
-- markedly slower with a partition, even a single one (docs/performance.md).
paired AS (
    SELECT g.* EXCLUDE (cgrp, vgrp), k.pair,
           -- no group on either side, no pair: both sides masked (with one pair the join
           -- below has no partition, so the key alone would find that pair's pieces)
           coalesce(k.mask_c, true) AS mask_c, coalesce(k.mask_v, true) AS mask_v
    FROM groups g LEFT JOIN rate_pair_keys k ON k.cgrp = g.cgrp AND k.vgrp = g.vgrp
),
looked_up AS (
    SELECT g.* EXCLUDE (pair, mask_c, mask_v),
           CASE WHEN g.callee_key < m.hi AND NOT g.mask_c THEN m.c_rate_id END AS c_rate_id,
           CASE WHEN g.callee_key < m.hi AND NOT g.mask_v THEN m.v_rate_id END AS v_rate_id,
           m.c_first_u, m.c_first, m.c_rate_u, m.c_fee_u,
           billed_seconds(g.billable_s, m.c_first, m.c_cycle) AS c_billed,
           m.v_first_u, m.v_first, m.v_rate_u, m.v_fee_u,
           billed_seconds(g.billable_s, m.v_first, m.v_cycle) AS v_billed
    FROM paired g
    ASOF LEFT JOIN merged_segments m ON g.pair = m.pair AND g.callee_key >= m.lo
),
matched AS (
    SELECT rid, multi, kind_rank, callee_key, billable_s > 0 AS answered,
           start_ts, customer, vendor, synthetic,
           c_rate_id, c_billed, charge_u(c_billed, c_rate_id, c_fee_u, c_first_u, c_first,
                                         c_rate_u) AS c_charge_u,
           v_rate_id, v_billed, charge_u(v_billed, v_rate_id, v_fee_u, v_first_u, v_first,
                                         v_rate_u) AS v_charge_u
    FROM looked_up
),
