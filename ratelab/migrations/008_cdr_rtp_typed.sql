-- ratelab warehouse schema, version 8: a CDR's `rtp` is stored typed (issue 15).
--
-- `rtp` was kept as JSON text: ingest re-serialised every object and stored a long string per
-- CDR, a tenth of the ingest's time. The contract fixes its keys (switch.contract.RTP_FIELDS:
-- per leg, four counters and the encryption mode), so it is now a STRUCT of them, typed once
-- at the read; keys the contract does not list are ignored, as a v1 reader may.
--
-- Stored values that the STRUCT cannot hold as they are (keys outside the contract, a counter
-- that is not an integer, an object in another order) keep their text here, so the migration
-- loses nothing.
CREATE TABLE cdr_rtp_original (
    cdr_seq  BIGINT NOT NULL,   -- cdrs.cdr_seq
    rtp      JSON NOT NULL      -- the value as it was stored before this migration
);

-- The conversion, one definition for the check and the ALTER below.
CREATE OR REPLACE TEMP MACRO rtp_struct(j) AS
    json_transform(j, '{"customer": {"packets_in": "BIGINT", "packets_out": "BIGINT",
                                     "bytes_in": "BIGINT", "bytes_out": "BIGINT",
                                     "encryption": "BIGINT"},
                        "vendor": {"packets_in": "BIGINT", "packets_out": "BIGINT",
                                   "bytes_in": "BIGINT", "bytes_out": "BIGINT",
                                   "encryption": "BIGINT"}}');

-- A value converts losslessly when, nulls dropped (a merge patch onto {} drops them), the typed
-- value written back as JSON is the value.
INSERT INTO cdr_rtp_original
SELECT cdr_seq, rtp FROM cdrs
WHERE rtp IS NOT NULL
  AND json_merge_patch('{}', to_json(rtp_struct(rtp)))
      IS DISTINCT FROM json_merge_patch('{}', rtp);

ALTER TABLE cdrs ALTER rtp TYPE
    STRUCT(customer STRUCT(packets_in BIGINT, packets_out BIGINT, bytes_in BIGINT,
                           bytes_out BIGINT, encryption BIGINT),
           vendor STRUCT(packets_in BIGINT, packets_out BIGINT, bytes_in BIGINT,
                         bytes_out BIGINT, encryption BIGINT))
    USING rtp_struct(rtp);

DROP MACRO rtp_struct;
