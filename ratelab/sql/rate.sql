-- Rate every CDR in the temp table `todo` on both sides.
--
-- todo(rid, start_ts, customer, vendor, caller, callee_key, billable_s, synthetic)
--   rid is the CDR's cdr_seq; billable_s = ceil(duration_ms / 1000), 0 when unanswered.
-- plan(pid, table_name, party, is_customer, kind, kind_rank, multi, phone, valid_from, valid_to,
--      banded, time_zone, calendar): the rate-table assignments (see rating.py).
--
-- Per CDR, in one stream: the customer's rate table (several when the party has several: the
-- VOS billing principle) and the vendor's -> the call's time band where a table has bands ->
-- each table's index group in force at start_ts -> the longest prefix on each side by an ASOF
-- join on the number key -> X/Y increments and charges in integer millionths, rounded half-up
-- once -> the cheapest customer charge where there was a choice -> one narrow row for
-- `rated_rows` (rate-row ids, codes and amounts; the view `rated` names them, migration 005).
--
-- Speed notes (docs/performance.md): the ASOF joins sort their left input, so it carries only
-- what the charge needs; the segment's price terms and rate_id ride on the ASOF's right side
-- (no join by segment id afterwards); the CDR's own columns (start_ts, customer, vendor,
-- synthetic) are joined back from `todo` at the end; tables without bands never touch the
-- clock; and the cheapest-of branch is dropped when nobody needs it.
WITH tables AS (
    SELECT t.rid, t.callee_key, t.billable_s, t.start_ts, t.customer, t.vendor, t.synthetic,
           c.pid AS cpid, c.multi, c.kind_rank, c.table_name AS ctable, c.calendar AS ccal,
           CASE WHEN c.banded THEN timezone(c.time_zone, t.start_ts AT TIME ZONE 'UTC') END
               AS clocal,
           v.pid AS vpid, v.table_name AS vtable, v.calendar AS vcal,
           CASE WHEN v.banded THEN timezone(v.time_zone, t.start_ts AT TIME ZONE 'UTC') END
               AS vlocal
    FROM todo t
    LEFT JOIN plan c
      ON c.is_customer AND c.party = t.customer AND (c.phone IS NULL OR c.phone = t.caller)
     AND c.valid_from <= t.start_ts AND (c.valid_to IS NULL OR t.start_ts < c.valid_to)
    LEFT JOIN plan v
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
groups AS (   -- each table's index group in force at the call's start
    SELECT b.rid, b.callee_key, b.billable_s, b.multi, b.kind_rank,
           gc.grp AS cgrp, gv.grp AS vgrp
    FROM bands b
    LEFT JOIN rate_groups gc
      ON gc.table_name = b.ctable AND gc.band = b.cband
     AND gc.epoch_from <= b.start_ts AND (gc.epoch_to IS NULL OR b.start_ts < gc.epoch_to)
    LEFT JOIN rate_groups gv
      ON gv.table_name = b.vtable AND gv.band = b.vband
     AND gv.epoch_from <= b.start_ts AND (gv.epoch_to IS NULL OR b.start_ts < gv.epoch_to)
),
customer_match AS (   -- the segment's price terms ride along: no join by id afterwards
    SELECT g.*, g.callee_key < s.hi AS c_hit, s.rate_id AS c_rate_id0,
           s.first_rate_u AS c_first_u, s.first_period AS c_first, s.rate_u AS c_rate_u,
           s.cycle AS c_cycle, s.connect_fee_u AS c_fee_u
    FROM groups g
    ASOF LEFT JOIN (SELECT grp, lo, hi, rate_id, first_rate_u, first_period, rate_u, cycle,
                           connect_fee_u FROM rate_segments) s
      ON g.cgrp = s.grp AND g.callee_key >= s.lo
),
matched AS (
    SELECT m.*, m.callee_key < s.hi AS v_hit, s.rate_id AS v_rate_id0,
           s.first_rate_u AS v_first_u, s.first_period AS v_first, s.rate_u AS v_rate_u,
           s.cycle AS v_cycle, s.connect_fee_u AS v_fee_u
    FROM customer_match m
    ASOF LEFT JOIN (SELECT grp, lo, hi, rate_id, first_rate_u, first_period, rate_u, cycle,
                           connect_fee_u FROM rate_segments) s
      ON m.vgrp = s.grp AND m.callee_key >= s.lo
),
billed AS (
    SELECT m.rid, m.multi, m.kind_rank,
           CASE WHEN m.c_hit THEN m.c_rate_id0 END AS c_rate_id,
           CASE WHEN m.v_hit THEN m.v_rate_id0 END AS v_rate_id,
           m.callee_key, m.billable_s > 0 AS answered,
           c_first_u, c_first, c_rate_u, c_fee_u, v_first_u, v_first, v_rate_u, v_fee_u,
           CASE WHEN m.billable_s = 0 THEN 0
                WHEN m.billable_s <= c_first THEN c_first
                ELSE c_first + (m.billable_s - c_first + c_cycle - 1) // c_cycle * c_cycle
           END AS c_billed,
           CASE WHEN m.billable_s = 0 THEN 0
                WHEN m.billable_s <= v_first THEN v_first
                ELSE v_first + (m.billable_s - v_first + v_cycle - 1) // v_cycle * v_cycle
           END AS v_billed
    FROM matched m
),
charged AS (   -- 60 x the charge in millionths, then / 60 rounded half-up: exact integers
    SELECT rid, multi, kind_rank, c_rate_id, v_rate_id, c_billed, v_billed,
           callee_key, answered,
           CASE WHEN c_billed = 0 OR c_rate_id IS NULL THEN 0
                ELSE (c_fee_u * 60 + c_first_u * c_first + c_rate_u * (c_billed - c_first) + 30)
                     // 60 END AS c_charge_u,
           CASE WHEN v_billed = 0 OR v_rate_id IS NULL THEN 0
                ELSE (v_fee_u * 60 + v_first_u * v_first + v_rate_u * (v_billed - v_first) + 30)
                     // 60 END AS v_charge_u
    FROM billed
),
best AS (   -- the VOS billing principle: the cheapest applicable customer charge wins
    SELECT * EXCLUDE (multi) FROM charged WHERE NOT coalesce(multi, false)
    -- multi: begin (rating.py drops this part when no party has several tables: a second
    -- reader of `charged` makes DuckDB materialize it, a third of the query's time)
    UNION ALL BY NAME
    SELECT rid, c.kind_rank, c.c_rate_id, c.c_billed, c.c_charge_u,
           v_rate_id, v_billed, v_charge_u,
           callee_key, answered
    FROM (SELECT rid,
                 arg_min(struct_pack(kind_rank, c_rate_id, c_billed, c_charge_u),
                         CASE WHEN c_rate_id IS NOT NULL THEN c_charge_u * 4 + kind_rank END) AS c,
                 -- the vendor side is the same on every candidate row of a call
                 any_value(v_rate_id) AS v_rate_id,
                 any_value(v_billed) AS v_billed, any_value(v_charge_u) AS v_charge_u,
                 any_value(callee_key) AS callee_key, any_value(answered) AS answered
          FROM charged WHERE multi GROUP BY rid)
    -- multi: end
)
-- One narrow row per CDR (the table rated_rows; the view `rated` names the codes and joins
-- the strings back). status: 0 ok, 1 no_customer_rate, 2 no_vendor_rate, 3 no_rates,
-- 4 bad_number; customer_kind is kind_rank (0 phone_private .. 3 period).
SELECT
    b.rid AS cdr_seq, t.start_ts, t.customer, t.vendor, t.synthetic, b.answered,
    CAST(CASE WHEN b.callee_key IS NULL THEN 4
              WHEN b.c_rate_id IS NULL AND t.vendor IS NOT NULL AND b.v_rate_id IS NULL THEN 3
              WHEN b.c_rate_id IS NULL THEN 1
              WHEN t.vendor IS NOT NULL AND b.v_rate_id IS NULL THEN 2
              ELSE 0 END AS UTINYINT) AS status,
    CASE WHEN b.c_rate_id IS NOT NULL THEN CAST(b.kind_rank AS UTINYINT) END AS customer_kind,
    b.c_rate_id AS customer_rate_id,
    CASE WHEN b.c_rate_id IS NOT NULL THEN b.c_billed END AS billed_s_customer,
    CASE WHEN b.c_rate_id IS NOT NULL
         THEN CAST(CAST(b.c_charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) END
        AS revenue,
    b.v_rate_id AS vendor_rate_id,
    -- no vendor was tried (rejected, no route): nothing was bought
    CASE WHEN t.vendor IS NULL THEN 0 WHEN b.v_rate_id IS NOT NULL THEN b.v_billed END
        AS billed_s_vendor,
    CASE WHEN t.vendor IS NULL THEN CAST(0 AS DECIMAL(18, 6))
         WHEN b.v_rate_id IS NOT NULL
         THEN CAST(CAST(b.v_charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) END
        AS cost,
    $rated_at AS rated_at
FROM best b
JOIN todo t ON t.rid = b.rid   -- the CDR's own columns, joined back: the ASOFs sort less
