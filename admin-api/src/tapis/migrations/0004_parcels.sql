-- Owners from the registers (docs/tapis.md, "Owners from the registers"). Times are Unix
-- milliseconds.
--
-- The consumer system each municipality's TAPIS reads the registers under (its agreements
-- with the register owners apply, nothing else).
CREATE TABLE tapis_systems (
    organisation TEXT PRIMARY KEY,
    system_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
)
;
-- The properties in a document's territory as last derived from the registers. `owner_key`
-- is the owner's code in the register (a person's personal code or a company's
-- registration number): it addresses the notices and is never shown by the public API.
-- `present` = 0 keeps a property that left the set since the last cadastre comparison until
-- the next one reports it gone; `listed` = 1 marks the properties of the set at the last
-- comparison (before the first one, the set first derived), with their owner then in
-- `listed_owner`. `notified_at` is when the current owner was told (null: not yet).
CREATE TABLE tapis_parcels (
    document BIGINT NOT NULL,
    cadastre_number TEXT NOT NULL,
    property_type TEXT NOT NULL,
    owner_kind TEXT NOT NULL,
    owner_key TEXT NOT NULL,
    address TEXT,
    present BIGINT NOT NULL,
    listed BIGINT NOT NULL,
    listed_owner TEXT,
    notified_at BIGINT,
    PRIMARY KEY (document, cadastre_number)
)
;
-- One row per document once its set was first derived: when, and when last compared.
CREATE TABLE tapis_parcel_sets (
    document BIGINT PRIMARY KEY,
    derived_at BIGINT NOT NULL,
    access_records TEXT NOT NULL,
    compared_at BIGINT
)
;
-- The notices to owners, the in-app inbox of a person (`subject:CODE`) or a company
-- (`company:NUMBER`): one per owner, document and cause.
CREATE TABLE tapis_owner_notices (
    id {id},
    document BIGINT NOT NULL,
    recipient TEXT NOT NULL,
    cause TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE UNIQUE INDEX tapis_owner_notices_once ON tapis_owner_notices (document, recipient, cause)
;
CREATE INDEX tapis_owner_notices_recipient ON tapis_owner_notices (recipient, id)
;
-- The plan against the cadastre: each comparison's result (JSON lists of cadastre numbers).
CREATE TABLE tapis_cadastre_checks (
    id {id},
    document BIGINT NOT NULL,
    at_stage TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    gone TEXT NOT NULL,
    added TEXT NOT NULL,
    new_owner TEXT NOT NULL,
    notified BIGINT NOT NULL,
    access_records TEXT NOT NULL
)
;
CREATE INDEX tapis_cadastre_checks_document ON tapis_cadastre_checks (document, id)
