-- The charging rules, one definition each, used by both lookups (temp macros: DuckDB expands
-- them in place, so they cost nothing at run time).

-- X/Y increments: an answered call bills the first period X whole, then whole cycles of Y.
CREATE OR REPLACE TEMP MACRO billed_seconds(s, first_period, cycle) AS
    CASE WHEN s = 0 THEN 0
         WHEN s <= first_period THEN first_period
         ELSE first_period + (s - first_period + cycle - 1) // cycle * cycle END;

-- The charge in integer millionths: 60 x the exact amount, then / 60 rounded half up, once.
-- Nothing is charged without a rate row or billed seconds.
CREATE OR REPLACE TEMP MACRO charge_u(billed, rate_id, fee_u, first_u, first_period, rate_u) AS
    CASE WHEN billed = 0 OR rate_id IS NULL THEN 0
         ELSE (fee_u * 60 + first_u * first_period + rate_u * (billed - first_period) + 30)
              // 60 END;
