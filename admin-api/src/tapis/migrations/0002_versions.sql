-- Versions of a document (summary and paragraphs with stable ids; immutable once made) and
-- its public consultations (docs/tapis.md).
CREATE TABLE tapis_versions (
    id {id},
    document BIGINT NOT NULL,
    label TEXT NOT NULL,
    summary TEXT NOT NULL,
    paragraphs TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    frozen_at BIGINT
)
;
CREATE INDEX tapis_versions_document ON tapis_versions (document, id)
;
-- status: scheduled, open, closed. The scheduler opens and closes them with conditional
-- updates (replica-safe) and moves the document's stage in the same transaction.
CREATE TABLE tapis_consultations (
    id {id},
    document BIGINT NOT NULL,
    version BIGINT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE INDEX tapis_consultations_due ON tapis_consultations (status, starts_at, ends_at)
;
CREATE INDEX tapis_consultations_document ON tapis_consultations (document, id)
