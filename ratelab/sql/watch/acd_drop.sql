-- ACD drop: the average answered call's duration in the hour is at most (1 - $drop) x the same
-- hours' ACD over the history weeks, with at least $min_answered answered calls on both sides.
SELECT hour, customer, destination, answered, duration_ms, base_answered, base_duration_ms
FROM watch_window
WHERE answered >= $min_answered AND base_answered >= $min_answered
  AND duration_ms / answered <= (1 - $drop) * (base_duration_ms / base_answered)
ORDER BY hour, customer, destination
