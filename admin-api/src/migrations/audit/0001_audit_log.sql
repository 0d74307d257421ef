-- The usage audit log (docs/audit.md). A migration set of its own, tracked in
-- `dagr_audit_migrations`: with SQLite the log is a file of its own (`audit.db`), with
-- PostgreSQL it shares the governance database. Placeholders: `{seq}` is a BIGINT primary key
-- (a rowid alias in SQLite), `{blob}` each backend's byte-string type, `{without_rowid}`
-- SQLite's clustered-table clause. Times are Unix milliseconds; lists are JSON text.
-- Statements are separated by a line holding only `;`.

-- The chain head (one row): the last entry's seq and hash, its recording time (recording
-- times never go backwards), and the retention anchor: the last entry removed by expiry — its
-- seq, hash, prev_hash and body, so that verification can recompute its hash and read when it
-- was recorded (none: seq 0, the genesis hash, empty prev_hash and body).
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    anchor_seq BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL,
    anchor_prev_hash TEXT NOT NULL,
    anchor_body TEXT NOT NULL
)
;
INSERT INTO audit_head (id, seq, hash, recorded_at, anchor_seq, anchor_hash, anchor_prev_hash,
    anchor_body) VALUES
    (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0,
     0, '0000000000000000000000000000000000000000000000000000000000000000', '', '')
;
-- Access records and usage events, one hash chain. `body` is the canonical JSON of the entry
-- (what the hash covers); every other column but `prev_hash` and `hash` repeats a field of it
-- for queries.
CREATE TABLE audit_log (
    seq {seq},
    event_time BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    organisation TEXT,
    system_id TEXT,
    token TEXT,
    purpose TEXT,
    channel TEXT,
    dataset TEXT,
    version BIGINT,
    attributes TEXT NOT NULL,
    agreements TEXT NOT NULL,
    request_id TEXT,
    query_hash TEXT,
    row_count BIGINT NOT NULL,
    subject_count BIGINT NOT NULL,
    bulk BIGINT NOT NULL,
    reporter TEXT,
    transaction_id TEXT,
    access_ref BIGINT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    body TEXT NOT NULL
)
;
CREATE INDEX audit_log_time ON audit_log (event_time, seq)
;
CREATE INDEX audit_log_dataset ON audit_log (dataset, event_time, seq)
;
CREATE UNIQUE INDEX audit_log_transaction ON audit_log (reporter, transaction_id)
    WHERE transaction_id IS NOT NULL
;
-- Subjects of records that list them (at most `list_limit`): one row per subject.
CREATE TABLE audit_subjects (
    subject TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (subject, seq)
){without_rowid}
;
CREATE INDEX audit_subjects_seq ON audit_subjects (seq)
;
-- The subject dictionary of bulk records: personal code <-> a dense 32-bit id (1, 2, ...),
-- append-only and hash-chained: hash = SHA-256(previous row's hash || id || ':' || code), the
-- first row's previous hash being 64 zeros. Its head (the last id and its hash) is
-- `audit_dict_head`, written in the transaction that assigns the ids; a table of its own so
-- that assigning ids does not wait for the log's writer (PostgreSQL row locks).
CREATE TABLE audit_subject_ids (
    id {seq},
    code TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL
)
;
CREATE TABLE audit_dict_head (
    id BIGINT PRIMARY KEY,
    last_id BIGINT NOT NULL,
    hash TEXT NOT NULL
)
;
INSERT INTO audit_dict_head (id, last_id, hash) VALUES
    (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')
;
-- Subjects of bulk records: a roaring bitmap of dictionary ids, one row per 2^16-id
-- container (`hi` = id >> 16), so that the citizen view reads one small blob per record.
CREATE TABLE audit_bulk (
    hi BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    bits {blob} NOT NULL,
    PRIMARY KEY (hi, seq)
)
;
CREATE INDEX audit_bulk_seq ON audit_bulk (seq)
;
-- Usage per UTC day, dataset, organisation, system, attribute and kind, maintained in the
-- transaction that writes the entries; kept when entries expire. `''` stands for none.
CREATE TABLE audit_daily (
    day BIGINT NOT NULL,
    dataset TEXT NOT NULL,
    organisation TEXT NOT NULL,
    system_id TEXT NOT NULL,
    attribute TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_count BIGINT NOT NULL,
    row_total BIGINT NOT NULL,
    PRIMARY KEY (day, dataset, organisation, system_id, attribute, kind)
){without_rowid}
