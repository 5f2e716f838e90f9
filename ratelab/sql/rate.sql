-- Rate every CDR in the temp table `todo` on both sides.
--
-- todo(rid, start_ts, customer, vendor, caller, callee_key, billable_s, synthetic)
--   rid is the CDR's cdr_seq; billable_s = ceil(duration_ms / 1000), 0 when unanswered.
-- plan(pid, table_name, party, is_customer, kind, kind_rank, multi, phone, valid_from, valid_to,
--      banded, time_zone, calendar): the rate-table assignments (see rating.py).
--
-- Steps: every rate table that prices a CDR (the customer's, possibly several by the VOS
-- billing principle, and the vendor's) -> the call's time band where the table has bands ->
-- the table's index group in force at start_ts -> longest prefix by ASOF join on the number key
-- -> X/Y increments and the charge in integer millionths, rounded half-up once -> the cheapest
-- customer charge.
--
-- Speed notes (measured, docs/performance.md): the ASOF join's cost grows with the width of
-- its left input, so it sees only (rid, pid, grp, key, billable_s); names are joined back at the
-- end. Tables without bands never touch the clock arithmetic.
WITH flat AS (   -- tables without time bands: band 'any', no clock arithmetic
    SELECT t.rid, p.pid, g.grp, t.callee_key, t.billable_s
    FROM todo t
    JOIN plan p
      ON NOT p.banded AND p.party = CASE WHEN p.is_customer THEN t.customer ELSE t.vendor END
     AND (p.phone IS NULL OR p.phone = t.caller)
     AND p.valid_from <= t.start_ts AND (p.valid_to IS NULL OR t.start_ts < p.valid_to)
    JOIN rate_groups g
      ON g.table_name = p.table_name AND g.band = 'any'
     AND g.epoch_from <= t.start_ts AND (g.epoch_to IS NULL OR t.start_ts < g.epoch_to)
),
banded_local AS (   -- tables with time bands: the start in the table's own time zone
    SELECT t.rid, p.pid, p.table_name, p.calendar, t.start_ts, t.callee_key, t.billable_s,
           timezone(p.time_zone, t.start_ts AT TIME ZONE 'UTC') AS local_ts
    FROM todo t
    JOIN plan p
      ON p.banded AND p.party = CASE WHEN p.is_customer THEN t.customer ELSE t.vendor END
     AND (p.phone IS NULL OR p.phone = t.caller)
     AND p.valid_from <= t.start_ts AND (p.valid_to IS NULL OR t.start_ts < p.valid_to)
),
banded AS (   -- a calendar day (holiday) overrides the weekly hours
    SELECT l.rid, l.pid, g.grp, l.callee_key, l.billable_s
    FROM banded_local l
    LEFT JOIN calendar_days d ON d.calendar = l.calendar AND d.day = CAST(l.local_ts AS DATE)
    LEFT JOIN calendar_hours h
      ON h.calendar = l.calendar AND h.weekday = isodow(l.local_ts)
     AND h.start_time <= CAST(l.local_ts AS TIME) AND CAST(l.local_ts AS TIME) < h.end_time
    JOIN rate_groups g
      ON g.table_name = l.table_name AND g.band = coalesce(d.band, h.band)
     AND g.epoch_from <= l.start_ts AND (g.epoch_to IS NULL OR l.start_ts < g.epoch_to)
),
grouped AS (SELECT * FROM flat UNION ALL SELECT * FROM banded),
charged AS (
    SELECT c.rid, c.pid, p.is_customer, p.multi, p.kind_rank, s.prefix, s.destination, s.rate_u,
        CASE WHEN c.billable_s = 0 THEN 0
             WHEN c.billable_s <= s.first_period THEN s.first_period
             ELSE s.first_period
                  + (c.billable_s - s.first_period + s.cycle - 1) // s.cycle * s.cycle
        END AS billed_s,
        CASE WHEN c.billable_s = 0 THEN 0
             ELSE (s.connect_fee_u * 60 + s.first_rate_u * s.first_period
                   + s.rate_u * (billed_s - s.first_period) + 30) // 60
        END AS charge_u
    FROM grouped c
    ASOF JOIN rate_segments s ON c.grp = s.grp AND c.callee_key >= s.lo
    JOIN plan p ON p.pid = c.pid
    WHERE c.callee_key < s.hi
),
customer_best AS (
    SELECT rid, pid, prefix, destination, rate_u, billed_s, charge_u
    FROM charged WHERE is_customer AND NOT multi
    UNION ALL
    SELECT rid, b.pid, b.prefix, b.destination, b.rate_u, b.billed_s, b.charge_u
    FROM (SELECT rid,
                 arg_min(struct_pack(pid, prefix, destination, rate_u, billed_s, charge_u),
                         charge_u * 4 + kind_rank) AS b
          FROM charged WHERE is_customer AND multi GROUP BY rid)
),
vendor_side AS (
    SELECT rid, pid, prefix, destination, rate_u, billed_s, charge_u
    FROM charged WHERE NOT is_customer
)
SELECT
    t.rid AS cdr_seq, t.start_ts, t.customer, t.vendor, t.synthetic,
    CASE WHEN t.callee_key IS NULL THEN 'bad_number'
         WHEN cb.rid IS NULL AND t.vendor IS NOT NULL AND v.rid IS NULL THEN 'no_rates'
         WHEN cb.rid IS NULL THEN 'no_customer_rate'
         WHEN t.vendor IS NOT NULL AND v.rid IS NULL THEN 'no_vendor_rate'
         ELSE 'ok' END AS status,
    pc.table_name AS customer_table, pc.kind AS customer_kind, cb.prefix AS customer_prefix,
    coalesce(cb.destination, v.destination) AS destination,
    CAST(CAST(cb.rate_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS customer_rate,
    cb.billed_s AS billed_s_customer,
    CAST(CAST(cb.charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS revenue,
    pv.table_name AS vendor_table, v.prefix AS vendor_prefix,
    CAST(CAST(v.rate_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS vendor_rate,
    CASE WHEN t.vendor IS NULL THEN 0 ELSE v.billed_s END AS billed_s_vendor,
    CASE WHEN t.vendor IS NULL THEN CAST(0 AS DECIMAL(18, 6))
         ELSE CAST(CAST(v.charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) END AS cost,
    $rated_at AS rated_at
FROM todo t
LEFT JOIN customer_best cb ON cb.rid = t.rid
LEFT JOIN vendor_side v ON v.rid = t.rid
LEFT JOIN plan pc ON pc.pid = cb.pid
LEFT JOIN plan pv ON pv.pid = v.pid
