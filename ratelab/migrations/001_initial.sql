-- ratelab warehouse schema, version 1.
-- Money is DECIMAL(18,6) everywhere; timestamps are naive UTC unless a column says otherwise.

CREATE TABLE rate_tables (
    name        VARCHAR PRIMARY KEY,
    side        VARCHAR NOT NULL CHECK (side IN ('customer', 'vendor')),
    currency    VARCHAR NOT NULL DEFAULT 'USD',
    time_zone   VARCHAR NOT NULL DEFAULT 'UTC',   -- effective dates and time bands are local to it
    calendar    VARCHAR NOT NULL DEFAULT 'default',
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE deck_imports (
    import_id    INTEGER PRIMARY KEY,
    table_name   VARCHAR NOT NULL,
    file         VARCHAR NOT NULL,
    sha256       VARCHAR NOT NULL,
    row_count    INTEGER NOT NULL,
    mode         VARCHAR NOT NULL,
    imported_at  TIMESTAMP NOT NULL
);

-- One row per prefix, band and version. A version is in force on
-- [effective_from, effective_to); importing a newer version closes the older one.
CREATE TABLE rates (
    table_name      VARCHAR NOT NULL,
    prefix          VARCHAR NOT NULL,
    destination     VARCHAR NOT NULL DEFAULT '',
    band            VARCHAR NOT NULL DEFAULT 'any',
    first_rate      DECIMAL(18,6) NOT NULL,
    first_period    INTEGER NOT NULL,
    rate            DECIMAL(18,6) NOT NULL,
    cycle           INTEGER NOT NULL,
    connect_fee     DECIMAL(18,6) NOT NULL DEFAULT 0,
    effective_from  TIMESTAMP NOT NULL,
    effective_to    TIMESTAMP,
    import_id       INTEGER NOT NULL
);

-- The rating index, derived from `rates` (rebuilt after every import; never edited by hand).
-- A group is one rate table, one band and one epoch (a span in which the set of rows in force
-- does not change). Its segments are disjoint number-key ranges, each owned by the longest
-- prefix covering it, so longest-prefix match becomes one ASOF join (see ratelab/prefix.py).
CREATE TABLE rate_groups (
    grp         INTEGER PRIMARY KEY,
    table_name  VARCHAR NOT NULL,
    band        VARCHAR NOT NULL,
    epoch_from  TIMESTAMP NOT NULL,
    epoch_to    TIMESTAMP
);

-- Money here is in integer millionths (micro units) so a call's charge is int64 arithmetic.
CREATE TABLE rate_segments (
    sid             BIGINT NOT NULL,      -- a segment's id, unique across tables
    grp             INTEGER NOT NULL,
    lo              BIGINT NOT NULL,
    hi              BIGINT NOT NULL,
    prefix          VARCHAR NOT NULL,
    destination     VARCHAR NOT NULL,
    first_rate_u    BIGINT NOT NULL,
    first_period    INTEGER NOT NULL,
    rate_u          BIGINT NOT NULL,
    cycle           INTEGER NOT NULL,
    connect_fee_u   BIGINT NOT NULL
);

CREATE TABLE parties (
    name        VARCHAR NOT NULL,
    side        VARCHAR NOT NULL CHECK (side IN ('customer', 'vendor')),
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (name, side)
);

-- Which rate tables apply to whom. Customer kinds follow the VOS billing principle
-- (period, account, account_private, phone_private; the cheapest applicable charge wins).
CREATE TABLE assignments (
    table_name   VARCHAR NOT NULL,
    party        VARCHAR NOT NULL,
    side         VARCHAR NOT NULL CHECK (side IN ('customer', 'vendor')),
    kind         VARCHAR NOT NULL
                 CHECK (kind IN ('period', 'account', 'account_private', 'phone_private')),
    phone        VARCHAR,          -- phone_private only: the caller number it applies to
    valid_from   TIMESTAMP NOT NULL,
    valid_to     TIMESTAMP,
    assigned_at  TIMESTAMP NOT NULL
);

-- Work calendar for time bands: weekday 1 = Monday .. 7 = Sunday, [start_time, end_time).
CREATE TABLE calendar_hours (
    calendar    VARCHAR NOT NULL,
    weekday     INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time  TIME NOT NULL,
    end_time    TIME NOT NULL,      -- 24:00:00 allowed for the end of the day
    band        VARCHAR NOT NULL CHECK (band IN ('peak', 'offpeak', 'weekend'))
);

CREATE TABLE calendar_days (
    calendar  VARCHAR NOT NULL,
    day       DATE NOT NULL,
    band      VARCHAR NOT NULL CHECK (band IN ('peak', 'offpeak', 'weekend')),
    note      VARCHAR NOT NULL DEFAULT ''
);

INSERT INTO calendar_hours
SELECT 'default', d, h.s, h.e, h.b
FROM range(1, 6) AS r(d),
     (VALUES (TIME '00:00:00', TIME '08:00:00', 'offpeak'),
             (TIME '08:00:00', TIME '20:00:00', 'peak'),
             (TIME '20:00:00', TIME '24:00:00', 'offpeak')) AS h(s, e, b)
UNION ALL
SELECT 'default', d, TIME '00:00:00', TIME '24:00:00', 'weekend' FROM range(6, 8) AS r(d);

-- CDR contract v1, as ingested. callee_key is the number key of callee_e164 (NULL when it is
-- not 1-17 digits), computed once at ingest so rating never re-parses numbers.
CREATE TABLE cdrs (
    cdr_id             VARCHAR NOT NULL,
    cdr_seq            BIGINT NOT NULL,      -- dense key given at ingest; rated rows refer to it
    id_hash            UBIGINT NOT NULL,     -- hash(cdr_id): a cheap first test for re-ingest
    switch_id          VARCHAR,
    call_id            VARCHAR,
    caller             VARCHAR,
    callee             VARCHAR,
    callee_e164        VARCHAR,
    callee_key         BIGINT,
    customer           VARCHAR,
    vendor             VARCHAR,
    src_ip             VARCHAR,
    src_port           INTEGER,
    start_ts           TIMESTAMP NOT NULL,
    answer_ts          TIMESTAMP,
    end_ts             TIMESTAMP,
    duration_ms        BIGINT NOT NULL,
    pdd_ms             BIGINT,
    sip_code           INTEGER,
    disconnect_reason  VARCHAR,
    attempts           STRUCT(vendor VARCHAR, start_ts TIMESTAMP, sip_code INTEGER, pdd_ms BIGINT)[],
    codec              VARCHAR,
    rtp_encryption     INTEGER,
    rtp                JSON,
    source_file        VARCHAR NOT NULL,
    ingested_at        TIMESTAMP NOT NULL
);

CREATE TABLE cdr_quarantine (
    file            VARCHAR NOT NULL,
    line            BIGINT NOT NULL,
    reason          VARCHAR NOT NULL,
    content         VARCHAR,
    quarantined_at  TIMESTAMP NOT NULL
);

-- What ingest has read, so an unchanged spool file is not read again.
CREATE TABLE spool_files (
    file         VARCHAR PRIMARY KEY,
    size         BIGINT NOT NULL,
    mtime_ns     BIGINT NOT NULL,
    ingested_at  TIMESTAMP NOT NULL
);

-- One row per rated CDR. status: ok | no_customer_rate | no_vendor_rate | no_rates | bad_number
-- Keyed by cdr_seq rather than cdr_id: writing ten million unique strings again cost a third
-- of the rating time. start_ts, customer and vendor are repeated so reports need no join.
CREATE TABLE rated (
    cdr_seq            BIGINT NOT NULL,
    start_ts           TIMESTAMP NOT NULL,
    customer           VARCHAR,
    vendor             VARCHAR,
    synthetic          BOOLEAN NOT NULL,
    answered           BOOLEAN NOT NULL,     -- duration_ms > 0, whether or not a rate matched
    status             VARCHAR NOT NULL,
    customer_table     VARCHAR,
    customer_kind      VARCHAR,
    customer_prefix    VARCHAR,
    destination        VARCHAR,
    customer_rate      DECIMAL(18,6),
    billed_s_customer  INTEGER,
    revenue            DECIMAL(18,6),
    vendor_table       VARCHAR,
    vendor_prefix      VARCHAR,
    vendor_rate        DECIMAL(18,6),
    billed_s_vendor    INTEGER,
    cost               DECIMAL(18,6),
    rated_at           TIMESTAMP NOT NULL
);
