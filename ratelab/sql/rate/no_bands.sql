-- The rating query, part 1 continued when no rate table in force has bands: every group is
-- already known from the assignment join, so the four calendar joins and the two group joins
-- of bands.sql (a tenth of the rating's CPU for 10M CDRs) are left out.
groups AS (
    SELECT rid, callee_key, billable_s, multi, kind_rank, start_ts, customer, vendor, synthetic,
           coalesce(cgrp0, -1) AS cgrp, coalesce(vgrp0, -1) AS vgrp
    FROM tables
),
