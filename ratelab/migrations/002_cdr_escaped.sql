-- ratelab warehouse schema, version 2: the CDR's `escaped` field (docs/cdr.md, "Text that is
-- not UTF-8"). It lists the fields whose text the switch escaped because the SIP headers held
-- bytes that are not UTF-8; NULL for every CDR that needed no escaping (and for older ones).
ALTER TABLE cdrs ADD COLUMN escaped VARCHAR[];
