-- clearing_details: what each vendor will charge us, per destination, prefix and rate.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC; $vendor (NULL for every vendor).
-- One row per vendor x destination x vendor prefix x vendor rate, for calls that reached a
-- vendor (the final attempt's vendor: failed failover attempts are not charged). Calls the
-- vendor side could not rate keep their count with a NULL prefix and rate and no cost.
-- billed_minutes: vendor-side billed seconds in minutes to one decimal, half up.
-- currency: the vendor rate table's (NULL where the vendor side did not rate). Cost is as
-- rated, not converted: what the vendor charges, in its currency.
SELECT vendor,
       coalesce(destination, '(unrated)') AS destination,
       vendor_prefix,
       vendor_rate,
       cost_currency AS currency,
       count(*) AS calls,
       count(*) FILTER (WHERE answered) AS answered,
       CAST(CAST((coalesce(sum(billed_s_vendor), 0) + 3) // 6 AS DECIMAL(18, 0)) * 0.1
            AS DECIMAL(18, 1)) AS billed_minutes,
       CAST(coalesce(sum(cost), 0) AS DECIMAL(18, 6)) AS cost
FROM rated_base
WHERE start_ts >= $start AND start_ts < $end
  AND vendor IS NOT NULL
  AND ($vendor IS NULL OR vendor = $vendor)
GROUP BY ALL
ORDER BY vendor, destination, vendor_prefix, vendor_rate
