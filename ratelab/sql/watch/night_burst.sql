-- Night burst: in an hour that is night where the carrier watches ($night_hours, computed from
-- the configured local hours and time zone), a customer's calls to a destination reach
-- max($min_calls, $factor x its average at the same hour of the week). Unlike the traffic
-- spike this needs no week of history: night traffic with no baseline is itself the signal.
SELECT hour, customer, destination, calls, base_calls, base_weeks
FROM watch_window
WHERE list_contains($night_hours, hour)
  AND calls >= $min_calls
  AND calls * greatest(base_weeks, 1) >= $factor * base_calls
ORDER BY hour, customer, destination
