-- TAPIS, territorial development planning (docs/tapis.md). Times are Unix milliseconds,
-- dates `YYYY-MM-DD` (Europe/Riga), lists and objects JSON text. `{id}` is each backend's
-- auto-increment key.
--
-- The planners: persons of a municipality (an organisation) who lead its planning
-- documents.
CREATE TABLE tapis_planners (
    login TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
-- The institutions a document's drafts are coordinated with: no accounts, an e-mail
-- address each.
CREATE TABLE tapis_institutions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
-- The rules as data, versioned, forward only: the current rules are the highest version.
CREATE TABLE tapis_rules (
    version BIGINT PRIMARY KEY,
    rules TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE TABLE tapis_documents (
    id {id},
    organisation TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    title TEXT NOT NULL,
    stage TEXT NOT NULL,
    territory TEXT,
    area_m2 DOUBLE PRECISION,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
)
;
CREATE INDEX tapis_documents_organisation ON tapis_documents (organisation, id)
;
-- Every change of a document: stage moves (from, to), the territory, requests.
CREATE TABLE tapis_history (
    id {id},
    document BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL
)
;
CREATE INDEX tapis_history_document ON tapis_history (document, id)
;
-- Coordination requests: one institution, one kind (conditions or opinion). The link is
-- signed (admin-api/src/tapis/coordination.rs), not stored; the answer is written once
-- (status `answered`).
CREATE TABLE tapis_requests (
    id {id},
    document BIGINT NOT NULL,
    institution TEXT NOT NULL,
    kind TEXT NOT NULL,
    note TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    due_on TEXT NOT NULL,
    link_expires_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT,
    answer TEXT,
    responder TEXT,
    answered_at BIGINT,
    extensions TEXT NOT NULL,
    created_by TEXT NOT NULL
)
;
CREATE INDEX tapis_requests_document ON tapis_requests (document, id)
;
CREATE INDEX tapis_requests_open ON tapis_requests (status, due_on)
;
-- Reminders sent, one row each, so that every replica sends each once.
CREATE TABLE tapis_reminders (
    key TEXT PRIMARY KEY,
    at BIGINT NOT NULL
)
;
-- Secrets of the module (the key that signs coordination links), made at first use and
-- shared by every replica.
CREATE TABLE tapis_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
