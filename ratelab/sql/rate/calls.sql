-- The rating query, part 1 of 3: each CDR of the chunk with the rate-table index group in
-- force on each side. rating.py joins calls.sql + bands.sql (or no_bands.sql when no table in
-- force has bands) + one of match_merged.sql / match_sides.sql + charge.sql into one statement
-- (docs/rating.md; speed notes in docs/performance.md).
--
-- plan_groups(party, is_customer, phone, kind_rank, multi, banded, valid_from, valid_to, grp,
--             table_name, time_zone, calendar): the rate-table assignments (rating.py builds
--             it), with the index group already known for tables without bands.
--
-- Per CDR: the customer's rate table (several when the party has several: the VOS billing
-- principle) and the vendor's, in force at start_ts -> for a table with bands, the call's time
-- band and then the band's group in force (tables without bands never touch the clock). A
-- missing group is -1, so the lookup can pair groups by equality.
WITH todo AS (   -- read straight from cdrs: a temp copy cost as much as the rest of this part
    SELECT cdr_seq AS rid, start_ts, customer, vendor, caller, callee_key,
           (duration_ms + 999) // 1000 AS billable_s, switch_id = 'synthetic' AS synthetic
    FROM cdrs WHERE {where}
),
tables AS (
    SELECT t.rid, t.callee_key, t.billable_s, t.start_ts, t.customer, t.vendor, t.synthetic,
           c.multi, c.kind_rank, c.grp AS cgrp0, c.table_name AS ctable, c.calendar AS ccal,
           CASE WHEN c.banded THEN timezone(c.time_zone, t.start_ts AT TIME ZONE 'UTC') END
               AS clocal,
           v.grp AS vgrp0, v.table_name AS vtable, v.calendar AS vcal,
           CASE WHEN v.banded THEN timezone(v.time_zone, t.start_ts AT TIME ZONE 'UTC') END
               AS vlocal
    FROM todo t
    LEFT JOIN plan_groups c
      ON c.is_customer AND c.party = t.customer AND (c.phone IS NULL OR c.phone = t.caller)
     AND c.valid_from <= t.start_ts AND (c.valid_to IS NULL OR t.start_ts < c.valid_to)
    LEFT JOIN plan_groups v
      ON NOT v.is_customer AND v.party = t.vendor
     AND v.valid_from <= t.start_ts AND (v.valid_to IS NULL OR t.start_ts < v.valid_to)
),
