-- Traffic spike: an hour's calls of a customer to a destination reach
-- max($min_calls, $factor x its average at the same hour of the week over the history weeks).
-- Needs at least one week of history (a warehouse younger than a week has no baseline).
SELECT hour, customer, destination, calls, base_calls, base_weeks
FROM watch_window
WHERE base_weeks >= 1
  AND calls >= $min_calls
  AND calls * base_weeks >= $factor * base_calls
ORDER BY hour, customer, destination
