-- The currencies and UTC days in the trailing $days days before $end whose money could not be
-- converted to the base currency (no rate on or before the day), with the customer x
-- destination pairs the loss-maker check had to leave out because of them.
WITH missing AS (
    SELECT CAST(hour AS DATE) AS day, customer, destination,
           CASE WHEN revenue_fx IS NULL THEN revenue_currency END AS c1,
           CASE WHEN cost_fx IS NULL THEN cost_currency END AS c2
    FROM watch_hourly
    WHERE hour >= $end - to_days($days) AND hour < $end AND fx_missing > 0
)
SELECT currency, list(DISTINCT day ORDER BY day) AS days,
       count(DISTINCT (customer, destination)) AS pairs
FROM (SELECT day, customer, destination, c1 AS currency FROM missing WHERE c1 IS NOT NULL
      UNION ALL
      SELECT day, customer, destination, c2 FROM missing WHERE c2 IS NOT NULL)
GROUP BY currency
ORDER BY currency
