-- New destination: a customer calls a destination it has not called in the $days days before
-- that hour (its first hour in the window, with no call in the $days days before it), while
-- the customer did call something in those days (a customer with no history at all is new,
-- not its destinations). Unrated calls (no destination) are the high-risk detector's
-- business. The window is at most catch_up_hours long, far shorter than $days, so the history
-- is "the last hour before the window" plus the window's own earlier hours.
WITH before AS (
    SELECT customer, destination, max(hour) AS last_hour
    FROM watch_hourly
    WHERE hour < $win_lo AND hour >= $win_lo - to_days($days)
    GROUP BY ALL
),
customer_before AS (SELECT customer, max(last_hour) AS last_hour FROM before GROUP BY ALL),
pair_first AS (
    SELECT customer, destination, min(hour) AS first_hour FROM watch_window GROUP BY ALL
),
customer_first AS (SELECT customer, min(hour) AS first_hour FROM watch_window GROUP BY ALL)
SELECT w.hour, w.customer, w.destination, w.calls, w.answered
FROM watch_window w
JOIN pair_first pf ON pf.customer = w.customer AND pf.destination = w.destination
JOIN customer_first cf ON cf.customer = w.customer
LEFT JOIN before b ON b.customer = w.customer AND b.destination = w.destination
LEFT JOIN customer_before cb ON cb.customer = w.customer
WHERE w.destination <> ''
  AND w.calls >= $min_calls
  AND w.hour = pf.first_hour
  AND (b.last_hour IS NULL OR b.last_hour < w.hour - to_days($days))
  AND (cb.last_hour >= w.hour - to_days($days) OR cf.first_hour < w.hour)
ORDER BY w.hour, w.customer, w.destination
