-- ASR drop: answered / calls in the hour is at least $drop (absolute) below the same hours'
-- ASR over the history weeks (sums, not an average of ratios), with at least $min_calls calls
-- in the hour and in the history.
SELECT hour, customer, destination, calls, answered, base_calls, base_answered
FROM watch_window
WHERE calls >= $min_calls AND base_calls >= $min_calls
  AND base_answered / base_calls - answered / calls >= $drop
ORDER BY hour, customer, destination
