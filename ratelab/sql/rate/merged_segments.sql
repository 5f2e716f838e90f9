-- The index segments of each pair's two groups merged into one: the number keys where either
-- side's segment starts or ends cut the key space into pieces, and each piece carries the
-- customer segment and the vendor segment that cover it (either may be missing). A CDR then
-- finds both sides' rate rows with one ASOF join (match_merged.sql). Pieces covered by
-- neither side are left out: a key there matches the piece before it and fails `key < hi`.
CREATE OR REPLACE TEMP TABLE merged_segments AS
WITH sides AS (
    SELECT p.pair, true AS is_customer, s.lo, s.hi, s.rate_id, s.first_rate_u, s.first_period,
           s.rate_u, s.cycle, s.connect_fee_u
    FROM rate_pairs p JOIN rate_segments s ON s.grp = p.cgrp
    UNION ALL
    SELECT p.pair, false, s.lo, s.hi, s.rate_id, s.first_rate_u, s.first_period, s.rate_u,
           s.cycle, s.connect_fee_u
    FROM rate_pairs p JOIN rate_segments s ON s.grp = p.vgrp
),
cuts AS (SELECT pair, lo AS cut FROM sides UNION SELECT pair, hi FROM sides),
pieces AS (
    SELECT pair, cut AS lo, lead(cut) OVER (PARTITION BY pair ORDER BY cut) AS hi FROM cuts
),
customer_side AS (
    SELECT x.pair, x.lo, x.hi,
           CASE WHEN x.lo < s.hi THEN s.rate_id END AS c_rate_id,
           s.first_rate_u AS c_first_u, s.first_period AS c_first, s.rate_u AS c_rate_u,
           s.cycle AS c_cycle, s.connect_fee_u AS c_fee_u
    FROM pieces x ASOF LEFT JOIN (SELECT * FROM sides WHERE is_customer) s
      ON x.pair = s.pair AND x.lo >= s.lo
    WHERE x.hi IS NOT NULL
),
both_sides AS (
    SELECT c.*, CASE WHEN c.lo < s.hi THEN s.rate_id END AS v_rate_id,
           s.first_rate_u AS v_first_u, s.first_period AS v_first, s.rate_u AS v_rate_u,
           s.cycle AS v_cycle, s.connect_fee_u AS v_fee_u
    FROM customer_side c ASOF LEFT JOIN (SELECT * FROM sides WHERE NOT is_customer) s
      ON c.pair = s.pair AND c.lo >= s.lo
)
SELECT * FROM both_sides WHERE c_rate_id IS NOT NULL OR v_rate_id IS NOT NULL
