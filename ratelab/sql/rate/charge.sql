-- The rating query, part 3 of 3: from `matched` (both sides' rate rows, billed seconds and
-- charges in integer millionths) to one narrow row per CDR for rated_rows.
best AS (   -- the VOS billing principle: the cheapest applicable customer charge wins
    SELECT * EXCLUDE (multi) FROM matched WHERE NOT coalesce(multi, false)
    -- multi: begin (rating.py drops this part when no party has several tables: a second
    -- reader of `matched` makes DuckDB materialize it, a third of the query's time)
    UNION ALL BY NAME
    SELECT rid, c.kind_rank, c.c_rate_id, c.c_billed, c.c_charge_u,
           v_rate_id, v_billed, v_charge_u,
           callee_key, answered, start_ts, customer, vendor, synthetic
    FROM (SELECT rid,
                 arg_min(struct_pack(kind_rank, c_rate_id, c_billed, c_charge_u),
                         CASE WHEN c_rate_id IS NOT NULL THEN c_charge_u * 4 + kind_rank END) AS c,
                 -- the vendor side and the CDR's own columns are the same on every candidate
                 any_value(v_rate_id) AS v_rate_id,
                 any_value(v_billed) AS v_billed, any_value(v_charge_u) AS v_charge_u,
                 any_value(callee_key) AS callee_key, any_value(answered) AS answered,
                 any_value(start_ts) AS start_ts, any_value(customer) AS customer,
                 any_value(vendor) AS vendor, any_value(synthetic) AS synthetic
          FROM matched WHERE multi GROUP BY rid)
    -- multi: end
)
-- status: 0 ok, 1 no_customer_rate, 2 no_vendor_rate, 3 no_rates, 4 bad_number;
-- customer_kind is kind_rank (0 phone_private .. 3 period). The view `rated` names them.
SELECT
    b.rid AS cdr_seq, b.start_ts, b.customer, b.vendor, b.synthetic, b.answered,
    CAST(CASE WHEN b.callee_key IS NULL THEN 4
              WHEN b.c_rate_id IS NULL AND b.vendor IS NOT NULL AND b.v_rate_id IS NULL THEN 3
              WHEN b.c_rate_id IS NULL THEN 1
              WHEN b.vendor IS NOT NULL AND b.v_rate_id IS NULL THEN 2
              ELSE 0 END AS UTINYINT) AS status,
    CASE WHEN b.c_rate_id IS NOT NULL THEN CAST(b.kind_rank AS UTINYINT) END AS customer_kind,
    b.c_rate_id AS customer_rate_id,
    CASE WHEN b.c_rate_id IS NOT NULL THEN b.c_billed END AS billed_s_customer,
    CASE WHEN b.c_rate_id IS NOT NULL
         THEN CAST(CAST(b.c_charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) END
        AS revenue,
    b.v_rate_id AS vendor_rate_id,
    -- no vendor was tried (rejected, no route): nothing was bought
    CASE WHEN b.vendor IS NULL THEN 0 WHEN b.v_rate_id IS NOT NULL THEN b.v_billed END
        AS billed_s_vendor,
    CASE WHEN b.vendor IS NULL THEN CAST(0 AS DECIMAL(18, 6))
         WHEN b.v_rate_id IS NOT NULL
         THEN CAST(CAST(b.v_charge_u AS DECIMAL(18, 0)) * 0.000001 AS DECIMAL(18, 6)) END
        AS cost,
    $rated_at AS rated_at
FROM best b
