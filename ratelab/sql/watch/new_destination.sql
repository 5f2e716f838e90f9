-- New destination: a customer calls a destination it has not called in the $days days before
-- that hour, while it did call others then (a customer with no history at all is new, not
-- its destinations). Unrated calls (no destination) are the high-risk detector's business.
SELECT w.hour, w.customer, w.destination, w.calls, w.answered
FROM watch_window w
WHERE w.destination <> ''
  AND w.calls >= $min_calls
  AND EXISTS (SELECT 1 FROM watch_hourly h
              WHERE h.customer = w.customer
                AND h.hour < w.hour AND h.hour >= w.hour - to_days($days))
  AND NOT EXISTS (SELECT 1 FROM watch_hourly h
                  WHERE h.customer = w.customer AND h.destination = w.destination
                    AND h.hour < w.hour AND h.hour >= w.hour - to_days($days))
ORDER BY w.hour, w.customer, w.destination
