-- The rating query, part 1 continued (tables with time bands): the call's band in each banded
-- table's calendar at the call's local time, then the band's index group in force.
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
