-- break_even: the period's traffic and profit, the inputs of ratelab.finance.break_even.
--
-- Params: $start (inclusive), $end (exclusive), naive UTC.
-- calls: every call in the period (answered or not); billed_s: customer-side billed seconds;
-- profit = revenue - cost (unrated sides count as 0), in the base currency (rated_base converts
-- each call at its day's exchange rate; the caller checks no rate is missing first). One row,
-- zeros when there are no calls.
SELECT count(*) AS calls,
       CAST(coalesce(sum(billed_s_customer), 0) AS BIGINT) AS billed_s,
       CAST(coalesce(sum(revenue_base), 0) - coalesce(sum(cost_base), 0) AS DECIMAL(18, 6)) AS profit
FROM rated_base
WHERE start_ts >= $start AND start_ts < $end
