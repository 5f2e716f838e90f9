-- The (customer group, vendor group) pairs whose segments are merged for this run, and how
-- each CDR reaches one. For each (customer, vendor) among the run's CDRs, every index group of
-- every table assigned to each party at some time in [$lo, $hi), all bands, -1 where a party
-- has none: a superset of what the CDRs meet (unused pairs only cost merged segments).
CREATE OR REPLACE TEMP TABLE rate_pairs AS
WITH parties AS (SELECT DISTINCT customer, vendor FROM cdrs WHERE {where}),
side_groups AS (
    SELECT DISTINCT p.is_customer, p.party, g.grp
    FROM plan p JOIN rate_groups g ON g.table_name = p.table_name
    WHERE p.valid_from < $hi AND (p.valid_to IS NULL OR p.valid_to > $lo)
      AND g.epoch_from < $hi AND (g.epoch_to IS NULL OR g.epoch_to > $lo)
),
combos AS (
    SELECT DISTINCT coalesce(c.grp, -1) AS cgrp, coalesce(v.grp, -1) AS vgrp
    FROM parties x
    LEFT JOIN side_groups c ON c.is_customer AND c.party = x.customer
    LEFT JOIN side_groups v ON NOT v.is_customer AND v.party = x.vendor
)
SELECT row_number() OVER (ORDER BY cgrp, vgrp) AS pair, cgrp, vgrp
FROM combos WHERE cgrp <> -1 OR vgrp <> -1;

-- A CDR finds its pair by its groups. A CDR may also miss a group its party usually has (no
-- table in force at that moment, a band the table lacks): it then borrows a pair with its other
-- group and masks the missing side, rather than every pair getting a one-sided twin (one pair
-- lets the lookup drop its partition). Every group of a pair's side appears in some pair, so a
-- CDR with one group always finds one; a CDR with none matches nothing, as it must.
CREATE OR REPLACE TEMP TABLE rate_pair_keys AS
SELECT cgrp, vgrp, pair, false AS mask_c, false AS mask_v FROM rate_pairs
UNION ALL
SELECT -1, vgrp, min(pair), true, false FROM rate_pairs
WHERE vgrp <> -1 AND vgrp NOT IN (SELECT vgrp FROM rate_pairs WHERE cgrp = -1)
GROUP BY vgrp
UNION ALL
SELECT cgrp, -1, min(pair), false, true FROM rate_pairs
WHERE cgrp <> -1 AND cgrp NOT IN (SELECT cgrp FROM rate_pairs WHERE vgrp = -1)
GROUP BY cgrp;
