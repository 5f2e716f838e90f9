-- The rating query, part 1 of 3: each CDR of the chunk with the rate-table index group in
-- force on each side. rating.py joins calls.sql + one of match_merged.sql / match_sides.sql +
-- charge.sql into one statement (docs/rating.md; speed notes in docs/performance.md).
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
bands AS (   -- a calendar day (a holiday) overrides the weekly hours; no clock, band 'any'
    SELECT x.* EXCLUDE (ccal, clocal, vcal, vlocal),
           CASE WHEN x.clocal IS NULL THEN 'any' ELSE coalesce(cd.band, ch.band) END AS cband,
           CASE WHEN x.vlocal IS NULL THEN 'any' ELSE coalesce(vd.band, vh.band) END AS vband
    FROM tables x
    LEFT JOIN calendar_days cd ON cd.calendar = x.ccal AND cd.day = CAST(x.clocal AS DATE)
    LEFT JOIN calendar_hours ch
      ON ch.calendar = x.ccal AND ch.weekday = isodow(x.clocal)
     AND ch.start_time <= CAST(x.clocal AS TIME) AND CAST(x.clocal AS TIME) < ch.end_time
    LEFT JOIN calendar_days vd ON vd.calendar = x.vcal AND vd.day = CAST(x.vlocal AS DATE)
    LEFT JOIN calendar_hours vh
      ON vh.calendar = x.vcal AND vh.weekday = isodow(x.vlocal)
     AND vh.start_time <= CAST(x.vlocal AS TIME) AND CAST(x.vlocal AS TIME) < vh.end_time
),
groups AS (   -- a banded table's group: the band's, in force at the call's start
    SELECT b.rid, b.callee_key, b.billable_s, b.multi, b.kind_rank,
           b.start_ts, b.customer, b.vendor, b.synthetic,
           coalesce(b.cgrp0, gc.grp, -1) AS cgrp, coalesce(b.vgrp0, gv.grp, -1) AS vgrp
    FROM bands b
    LEFT JOIN rate_groups gc
      ON gc.table_name = b.ctable AND gc.band = b.cband
     AND gc.epoch_from <= b.start_ts AND (gc.epoch_to IS NULL OR b.start_ts < gc.epoch_to)
    LEFT JOIN rate_groups gv
      ON gv.table_name = b.vtable AND gv.band = b.vband
     AND gv.epoch_from <= b.start_ts AND (gv.epoch_to IS NULL OR b.start_ts < gv.epoch_to)
),
