-- ratelab warehouse schema, version 6: the watch's aggregates are brought up to date when the
-- watch reads them, not at rating time (issue 15).
--
-- Rating used to aggregate every hour it re-rated into watch_hourly before returning: a full
-- re-rate of 10M CDRs spent as long on that as on the rating. Rating now records the hours it
-- is about to change here, and the watch aggregates the stale hours it reads before its
-- detectors run (ratelab.watch.aggregates.refresh_stale). Hours older than anything the watch
-- reads stay listed until some run needs them.
CREATE TABLE watch_stale (
    lo  TIMESTAMP NOT NULL,   -- whole hours [lo, hi)
    hi  TIMESTAMP NOT NULL
);
