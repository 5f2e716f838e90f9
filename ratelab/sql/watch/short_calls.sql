-- Short-call share rise: the share of answered calls shorter than 10 s in the hour is at least
-- $rise (absolute) above the same hours' share over the history weeks, with at least
-- $min_answered answered calls on both sides.
SELECT hour, customer, destination, answered, short_calls, base_answered, base_short_calls
FROM watch_window
WHERE answered >= $min_answered AND base_answered >= $min_answered
  AND short_calls / answered - base_short_calls / base_answered >= $rise
ORDER BY hour, customer, destination
