-- rate_leaks: what each customer would be charged, and what each vendor would charge, for every
-- number range, at one moment. reports.leaks.rate_leaks ranks the vendors in routing order and
-- keeps the rows where the customer is priced below the vendor (docs/reports.md, "Rate-plan
-- leaks").
--
-- Params: $at (naive UTC: rows and assignments in force then); $customer (NULL: everyone);
-- $fx_currencies / $fx_rates (what one unit of each currency involved is worth in the base
-- currency on $at's day, rates as text; the caller has checked none is missing);
-- $extra_prefixes (the switch gateways' `prefixes`, so a range never straddles a gateway's).
--
-- Ranges: the distinct prefixes of the customer's own tables, of every vendor table and
-- $extra_prefixes. Every number of a range has the same longest prefix in every table (any
-- longer listed prefix would be a range of its own), so each range is evaluated once, by its
-- prefix: per table, the longest listed prefix it starts with (its heads are joined by
-- equality: at most 17 per range, never a scan of every prefix).
--
-- Rates are per minute (`rate`; first-period rates and connect fees are not compared). A table
-- with time bands gives the customer its lowest band rate and the vendor its highest (the
-- worst case, as the routing snapshot does). phone_private tables price single callers and are
-- left out, as in the routing snapshot. Each rate is converted to the base currency at its
-- table's exchange rate, half up to 6 places (ratelab.fx.convert), before any comparison.
--
-- One row per (customer, range, vendor with a rate for it); a range no vendor prices gets one
-- row with vendor NULL. Columns: customer, prefix, destination, customer_table,
-- customer_prefix, customer_rate, undercut, vendor, vendor_table, vendor_prefix, vendor_rate.
WITH fx AS (
    SELECT unnest($fx_currencies) AS currency,
           CAST(unnest($fx_rates) AS DECIMAL(18, 10)) AS rate
),
plan AS (   -- the assignments in force at $at; kinds ranked most specific first (the tie-break)
    SELECT a.side, a.party, a.table_name, t.currency,
           CASE a.kind WHEN 'account_private' THEN 1 WHEN 'account' THEN 2 ELSE 3 END
               AS kind_rank
    FROM assignments a
    JOIN rate_tables t ON t.name = a.table_name
    WHERE a.kind <> 'phone_private'
      AND a.valid_from <= $at AND (a.valid_to IS NULL OR a.valid_to > $at)
      AND (a.side = 'vendor' OR $customer IS NULL OR a.party = $customer)
),
priced AS (   -- each table's prefixes in force at $at, its bands' worst case, in base money
    SELECT p.side, p.party, p.table_name, p.kind_rank, r.prefix,
           min(r.destination) AS destination,
           CAST(round(CAST(CASE WHEN p.side = 'customer' THEN min(r.rate) ELSE max(r.rate) END
                           AS DECIMAL(38, 6)) * CAST(any_value(x.rate) AS DECIMAL(38, 10)), 6)
                AS DECIMAL(18, 6)) AS rate
    FROM plan p
    JOIN rates r ON r.table_name = p.table_name
    JOIN fx x ON x.currency = p.currency
    WHERE r.effective_from <= $at AND (r.effective_to IS NULL OR r.effective_to > $at)
    GROUP BY p.side, p.party, p.table_name, p.kind_rank, r.prefix
),
customers AS (SELECT DISTINCT party AS customer FROM priced WHERE side = 'customer'),
shared AS (   -- the prefixes that split every customer's ranges
    SELECT prefix FROM priced WHERE side = 'vendor'
    UNION SELECT unnest($extra_prefixes)
),
ranges AS (
    SELECT party AS customer, prefix FROM priced WHERE side = 'customer'
    UNION SELECT c.customer, s.prefix FROM customers c CROSS JOIN shared s
),
heads AS (   -- every range prefix with each of its own prefixes (n digits long)
    SELECT prefix, n, left(prefix, n) AS head
    FROM (SELECT prefix, unnest(generate_series(1, length(prefix))) AS n
          FROM (SELECT DISTINCT prefix FROM ranges))
),
customer_hits AS (   -- per range and customer table: the longest prefix of the range it lists
    SELECT g.customer, g.prefix, p.table_name,
           arg_max(p.prefix, h.n) AS table_prefix,
           arg_max(p.rate, h.n) AS rate,
           arg_max(p.destination, h.n) AS destination,
           max(h.n) AS depth,
           any_value(p.kind_rank) AS kind_rank
    FROM ranges g
    JOIN heads h ON h.prefix = g.prefix
    JOIN priced p ON p.side = 'customer' AND p.party = g.customer AND p.prefix = h.head
    GROUP BY g.customer, g.prefix, p.table_name
),
customer_price AS (   -- the cheapest-of rule (ties: the most specific kind, then the name)
    SELECT customer, prefix,
           arg_min(table_name, (rate, kind_rank, table_name)) AS customer_table,
           arg_min(table_prefix, (rate, kind_rank, table_name)) AS customer_prefix,
           min(rate) AS customer_rate,
           arg_max(destination, (depth, -kind_rank, table_name)) AS destination,
           max(depth) AS depth
    FROM customer_hits
    GROUP BY customer, prefix
),
undercuts AS (   -- the price comes from a shorter prefix than another table's, dearer one
    SELECT DISTINCT c.customer, c.prefix
    FROM customer_price c
    JOIN customer_hits h ON h.customer = c.customer AND h.prefix = c.prefix
    WHERE h.table_name <> c.customer_table
      AND h.depth > length(c.customer_prefix) AND h.rate > c.customer_rate
),
vendor_hits AS (   -- per range and vendor: the longest prefix of the range its table lists
    SELECT h.prefix, p.party AS vendor, p.table_name AS vendor_table,
           arg_max(p.prefix, h.n) AS vendor_prefix,
           arg_max(p.rate, h.n) AS vendor_rate,
           arg_max(p.destination, h.n) AS destination,
           max(h.n) AS depth
    FROM heads h
    JOIN priced p ON p.side = 'vendor' AND p.prefix = h.head
    GROUP BY h.prefix, p.party, p.table_name
),
vendor_names AS (   -- the description of the range's deepest vendor prefix (ties: by name)
    SELECT prefix, arg_min(destination, (-depth, vendor)) AS destination, max(depth) AS depth
    FROM vendor_hits GROUP BY prefix
)
SELECT c.customer, c.prefix,
       -- the description of the deepest prefix that priced the range, the customer's first
       CASE WHEN n.depth > c.depth THEN n.destination ELSE c.destination END AS destination,
       c.customer_table, c.customer_prefix, c.customer_rate,
       u.customer IS NOT NULL AS undercut,
       v.vendor, v.vendor_table, v.vendor_prefix, v.vendor_rate
FROM customer_price c
LEFT JOIN undercuts u ON u.customer = c.customer AND u.prefix = c.prefix
LEFT JOIN vendor_hits v ON v.prefix = c.prefix
LEFT JOIN vendor_names n ON n.prefix = c.prefix
ORDER BY c.customer, c.prefix, v.vendor
