-- Each customer and destination with calls in the window hours [$win_lo, $win_hi), per hour,
-- beside its own history at the same hour of the week over the last $weeks weeks (the hours
-- 7, 14, ... days earlier). base_weeks: how many of those weeks the warehouse holds (its
-- first aggregated hour on or before them), so a young warehouse averages over what it has.
-- The history is found by equality on those few hours (at most 24 x $weeks): a range join on
-- customer and destination would pair every aggregate row with every window hour.
CREATE OR REPLACE TEMP TABLE watch_window AS
WITH win AS (
    SELECT hour, customer, destination,
           sum(calls) AS calls, sum(answered) AS answered,
           sum(duration_ms) AS duration_ms, sum(short_calls) AS short_calls
    FROM watch_hourly WHERE hour >= $win_lo AND hour < $win_hi
    GROUP BY ALL
),
slots AS (
    SELECT w.hour, w.hour - to_days(CAST(7 * r.k AS INTEGER)) AS past
    FROM (SELECT DISTINCT hour FROM win) w, range(1, $weeks + 1) AS r(k)
),
hist AS (
    SELECT s.hour, h.customer, h.destination,
           sum(h.calls) AS base_calls, sum(h.answered) AS base_answered,
           sum(h.duration_ms) AS base_duration_ms, sum(h.short_calls) AS base_short_calls
    FROM watch_hourly h
    JOIN slots s ON h.hour = s.past
    WHERE h.hour >= $win_lo - to_days(7 * $weeks) AND h.hour < $win_hi - to_days(7)
    GROUP BY ALL
),
first AS (SELECT min(hour) AS first_hour FROM watch_hourly)
SELECT w.*,
       coalesce(h.base_calls, 0) AS base_calls,
       coalesce(h.base_answered, 0) AS base_answered,
       coalesce(h.base_duration_ms, 0) AS base_duration_ms,
       coalesce(h.base_short_calls, 0) AS base_short_calls,
       CAST(least($weeks, greatest(0, floor((epoch(w.hour) - epoch(f.first_hour)) / 604800)))
            AS INTEGER) AS base_weeks
FROM win w CROSS JOIN first f
LEFT JOIN hist h USING (hour, customer, destination)
