-- Rate every CDR in the temp table `todo` on both sides.
--
-- todo(cdr_id, start_ts, customer, vendor, caller, callee_key, billable_s)
--   billable_s = ceil(duration_ms / 1000), 0 for unanswered calls.
-- table_meta(name, banded, time_zone, calendar): one row per rate table (see rating.py).
--
-- Steps: every rate table that prices a CDR (the customer's, possibly several by the VOS
-- billing principle, and the vendor's) -> the call's time band where the table has bands ->
-- the table's index group in force at start_ts -> longest prefix by ASOF join on the number key
-- -> X/Y increments and the charge in integer millionths, rounded half-up once -> the cheapest
-- customer charge.
WITH cand AS (
    SELECT t.cdr_id, 'customer' AS side, a.table_name, a.kind, t.start_ts, t.callee_key,
           t.billable_s
    FROM todo t
    JOIN assignments a
      ON a.side = 'customer' AND a.party = t.customer
     AND (a.phone IS NULL OR a.phone = t.caller)
     AND a.valid_from <= t.start_ts AND (a.valid_to IS NULL OR t.start_ts < a.valid_to)
    UNION ALL
    SELECT t.cdr_id, 'vendor', a.table_name, a.kind, t.start_ts, t.callee_key, t.billable_s
    FROM todo t
    JOIN assignments a
      ON a.side = 'vendor' AND a.party = t.vendor
     AND a.valid_from <= t.start_ts AND (a.valid_to IS NULL OR t.start_ts < a.valid_to)
),
flat AS (   -- tables without time bands: one band, 'any'
    SELECT c.*, 'any' AS band
    FROM cand c JOIN table_meta m ON m.name = c.table_name AND NOT m.banded
),
local_time AS (   -- tables with time bands: the start in the table's own time zone
    SELECT c.*, m.calendar, timezone(m.time_zone, c.start_ts AT TIME ZONE 'UTC') AS local_ts
    FROM cand c JOIN table_meta m ON m.name = c.table_name AND m.banded
),
in_band AS (   -- a calendar day (holiday) overrides the weekly hours
    SELECT l.cdr_id, l.side, l.table_name, l.kind, l.start_ts, l.callee_key, l.billable_s,
           coalesce(d.band, h.band) AS band
    FROM local_time l
    LEFT JOIN calendar_days d ON d.calendar = l.calendar AND d.day = CAST(l.local_ts AS DATE)
    LEFT JOIN calendar_hours h
      ON h.calendar = l.calendar AND h.weekday = isodow(l.local_ts)
     AND h.start_time <= CAST(l.local_ts AS TIME) AND CAST(l.local_ts AS TIME) < h.end_time
),
grouped AS (
    SELECT b.*, g.grp
    FROM (SELECT * FROM flat UNION ALL SELECT * FROM in_band) b
    LEFT JOIN rate_groups g
      ON g.table_name = b.table_name AND g.band = b.band
     AND g.epoch_from <= b.start_ts AND (g.epoch_to IS NULL OR b.start_ts < g.epoch_to)
),
matched AS (
    SELECT c.cdr_id, c.side, c.table_name, c.kind, c.billable_s,
           s.prefix, s.destination, s.first_rate_u, s.first_period, s.rate_u, s.cycle,
           s.connect_fee_u
    FROM grouped c
    ASOF JOIN rate_segments s ON c.grp = s.grp AND c.callee_key >= s.lo
    WHERE c.callee_key < s.hi
),
billed AS (
    SELECT *,
        CASE WHEN billable_s = 0 THEN 0
             WHEN billable_s <= first_period THEN first_period
             ELSE first_period + (billable_s - first_period + cycle - 1) // cycle * cycle
        END AS billed_s
    FROM matched
),
charged AS (
    SELECT *,
        CASE WHEN billed_s = 0 THEN 0
             -- 60 x charge in millionths, then / 60 rounded half-up: exact integer arithmetic
             ELSE (connect_fee_u * 60 + first_rate_u * first_period
                   + rate_u * (billed_s - first_period) + 30) // 60
        END AS charge_u,
        CASE kind WHEN 'phone_private' THEN 0 WHEN 'account_private' THEN 1
                  WHEN 'account' THEN 2 ELSE 3 END AS kind_rank
    FROM billed
),
customer_best AS (   -- VOS billing principle: the cheapest applicable charge wins
    SELECT cdr_id,
           arg_min(struct_pack(table_name, kind, prefix, destination, rate_u, billed_s, charge_u),
                   charge_u * 4 + kind_rank) AS c
    FROM charged WHERE side = 'customer'
    GROUP BY cdr_id
),
vendor_side AS (
    SELECT cdr_id, table_name, prefix, destination, rate_u, billed_s, charge_u
    FROM charged WHERE side = 'vendor'
)
SELECT
    t.cdr_id,
    t.start_ts,
    t.customer,
    t.vendor,
    CASE WHEN t.callee_key IS NULL THEN 'bad_number'
         WHEN cb.cdr_id IS NULL AND t.vendor IS NOT NULL AND v.cdr_id IS NULL THEN 'no_rates'
         WHEN cb.cdr_id IS NULL THEN 'no_customer_rate'
         WHEN t.vendor IS NOT NULL AND v.cdr_id IS NULL THEN 'no_vendor_rate'
         ELSE 'ok' END AS status,
    cb.c.table_name AS customer_table,
    cb.c.kind AS customer_kind,
    cb.c.prefix AS customer_prefix,
    coalesce(cb.c.destination, v.destination) AS destination,
    CAST(CAST(cb.c.rate_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS customer_rate,
    cb.c.billed_s AS billed_s_customer,
    CAST(CAST(cb.c.charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS revenue,
    v.table_name AS vendor_table,
    v.prefix AS vendor_prefix,
    v.destination AS vendor_destination,
    CAST(CAST(v.rate_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) AS vendor_rate,
    -- no vendor was tried (rejected, no route): nothing was bought
    CASE WHEN t.vendor IS NULL THEN 0 ELSE v.billed_s END AS billed_s_vendor,
    CASE WHEN t.vendor IS NULL THEN CAST(0 AS DECIMAL(18, 6))
         ELSE CAST(CAST(v.charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) END AS cost,
    $rated_at AS rated_at
FROM todo t
LEFT JOIN customer_best cb ON cb.cdr_id = t.cdr_id
LEFT JOIN vendor_side v ON v.cdr_id = t.cdr_id
