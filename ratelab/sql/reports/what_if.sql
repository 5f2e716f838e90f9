-- What-if re-rating (ratelab/reports/whatif.py). Two parts, each after a "-- name: NAME" line.
-- They run on an in-memory scratch DuckDB (the default catalog) with the warehouse file
-- attached READ_ONLY as catalog {db}: unqualified names below are scratch tables.

-- name: copy
-- What rating needs, copied into the scratch database: every rate table, assignment and
-- calendar; the rows of the rate tables to change ($tables) and no import history (so a
-- candidate deck identical to the last import is still applied); the index segments in force
-- during the period; the period's CDRs of the parties to re-rate ($parties on side $side); an
-- empty `rated` for the new results; and the stored results of the period as `rated_before`.
CREATE TABLE rate_tables AS SELECT * FROM {db}.main.rate_tables;
CREATE TABLE deck_imports AS SELECT * FROM {db}.main.deck_imports WHERE false;
CREATE TABLE rates AS
SELECT * FROM {db}.main.rates WHERE list_contains($tables::VARCHAR[], table_name);
CREATE TABLE rate_groups AS SELECT * FROM {db}.main.rate_groups;
CREATE TABLE rate_segments AS
SELECT * FROM {db}.main.rate_segments
WHERE grp IN (SELECT grp FROM {db}.main.rate_groups
              WHERE epoch_from < $end AND (epoch_to IS NULL OR epoch_to > $start));
CREATE TABLE assignments AS SELECT * FROM {db}.main.assignments;
CREATE TABLE parties AS SELECT * FROM {db}.main.parties;
CREATE TABLE calendar_hours AS SELECT * FROM {db}.main.calendar_hours;
CREATE TABLE calendar_days AS SELECT * FROM {db}.main.calendar_days;
CREATE TABLE cdrs AS
SELECT cdr_id, cdr_seq, start_ts, customer, vendor, caller, callee_key, duration_ms, switch_id
FROM {db}.main.cdrs
WHERE start_ts >= $start AND start_ts < $end
  AND list_contains($parties::VARCHAR[], CASE $side WHEN 'vendor' THEN vendor ELSE customer END);
CREATE TABLE rated AS SELECT * FROM {db}.main.rated WHERE false;
CREATE TABLE rated_before AS
SELECT * FROM {db}.main.rated WHERE start_ts >= $start AND start_ts < $end;
CREATE TABLE settings AS SELECT * FROM {db}.main.settings;
CREATE TABLE fx_rates AS SELECT * FROM {db}.main.fx_rates;

-- name: result
-- Per destination (the stored one): the stored figures against the re-rated ones. A call that
-- was not re-rated keeps its stored figures on both sides. Margins are ratios of sums.
-- Every amount is converted to the base currency as rated_base does (migration 003): at the
-- exchange rate of the call's UTC day for its rate table's currency, half up to 6 places per
-- call and side. whatif.py checks first that no rate is missing.
WITH pairs AS (
    SELECT customer_table AS t, CAST(start_ts AS DATE) AS day FROM rated_before
    UNION SELECT vendor_table, CAST(start_ts AS DATE) FROM rated_before
    UNION SELECT customer_table, CAST(start_ts AS DATE) FROM rated
    UNION SELECT vendor_table, CAST(start_ts AS DATE) FROM rated
),
factors AS (
    SELECT p.t, p.day,
           CASE WHEN p.currency = (SELECT value FROM settings WHERE key = 'base_currency')
                THEN CAST(1 AS DECIMAL(18, 10)) ELSE f.rate END AS rate
    FROM (SELECT p.*, rt.currency FROM pairs p JOIN rate_tables rt ON rt.name = p.t) p
    ASOF LEFT JOIN fx_rates f ON f.currency = p.currency AND p.day >= f.day
),
converted AS (
    SELECT r.cdr_seq, r.status, r.destination,
           CAST(round(CAST(r.revenue AS DECIMAL(38, 6)) * coalesce(fr.rate, 1), 6)
                AS DECIMAL(18, 6)) AS revenue,
           CAST(round(CAST(r.cost AS DECIMAL(38, 6)) * coalesce(fc.rate, 1), 6)
                AS DECIMAL(18, 6)) AS cost,
           'before' AS which
    FROM rated_before r
    LEFT JOIN factors fr ON fr.t = r.customer_table AND fr.day = CAST(r.start_ts AS DATE)
    LEFT JOIN factors fc ON fc.t = r.vendor_table AND fc.day = CAST(r.start_ts AS DATE)
    UNION ALL
    SELECT r.cdr_seq, r.status, r.destination,
           CAST(round(CAST(r.revenue AS DECIMAL(38, 6)) * coalesce(fr.rate, 1), 6)
                AS DECIMAL(18, 6)),
           CAST(round(CAST(r.cost AS DECIMAL(38, 6)) * coalesce(fc.rate, 1), 6)
                AS DECIMAL(18, 6)),
           'after'
    FROM rated r
    LEFT JOIN factors fr ON fr.t = r.customer_table AND fr.day = CAST(r.start_ts AS DATE)
    LEFT JOIN factors fc ON fc.t = r.vendor_table AND fc.day = CAST(r.start_ts AS DATE)
),
calls AS (
    SELECT coalesce(b.destination, a.destination, '(unrated)') AS destination,
           b.revenue AS revenue_before, b.cost AS cost_before,
           CASE WHEN a.cdr_seq IS NULL THEN b.revenue ELSE a.revenue END AS revenue_after,
           CASE WHEN a.cdr_seq IS NULL THEN b.cost ELSE a.cost END AS cost_after,
           a.cdr_seq IS NOT NULL AND b.status = 'ok' AND a.status <> 'ok' AS lost_rate
    FROM (SELECT * FROM converted WHERE which = 'before') b
    LEFT JOIN (SELECT * FROM converted WHERE which = 'after') a USING (cdr_seq)
),
sums AS (
    SELECT destination, count(*) AS calls,
           CAST(coalesce(sum(revenue_before), 0) AS DECIMAL(18, 6)) AS revenue,
           CAST(coalesce(sum(revenue_after), 0) AS DECIMAL(18, 6)) AS revenue_after,
           CAST(coalesce(sum(cost_before), 0) AS DECIMAL(18, 6)) AS cost_before,
           CAST(coalesce(sum(cost_after), 0) AS DECIMAL(18, 6)) AS cost_after,
           count(*) FILTER (WHERE lost_rate) AS unpriced_after
    FROM calls
    GROUP BY destination
)
SELECT destination, revenue, cost_before, cost_after,
       CAST(revenue - cost_before AS DECIMAL(18, 6)) AS profit_before,
       CAST(revenue_after - cost_after AS DECIMAL(18, 6)) AS profit_after,
       CAST(revenue - cost_before AS DOUBLE) / NULLIF(CAST(revenue AS DOUBLE), 0)
           AS margin_before,
       CAST(revenue_after - cost_after AS DOUBLE) / NULLIF(CAST(revenue_after AS DOUBLE), 0)
           AS margin_after,
       CAST((revenue_after - cost_after) - (revenue - cost_before) AS DECIMAL(18, 6))
           AS profit_change,
       revenue_after, calls, unpriced_after
FROM sums
ORDER BY destination;
