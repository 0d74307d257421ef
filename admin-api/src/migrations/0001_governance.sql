-- Governance core. Portable between SQLite and PostgreSQL: `{id}` is replaced by each
-- backend's auto-increment primary key; times are Unix milliseconds (BIGINT); lists are
-- JSON text. Statements are separated by a line holding only `;`.
CREATE TABLE dagr_meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
)
;
INSERT INTO dagr_meta (key, value) VALUES ('generation', 1)
;
CREATE TABLE organisations (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE TABLE users (
    id {id},
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    organisation TEXT REFERENCES organisations (code),
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL
)
;
CREATE TABLE systems (
    id {id},
    organisation TEXT NOT NULL REFERENCES organisations (code),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (organisation, name)
)
;
CREATE TABLE tokens (
    id {id},
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    kind TEXT NOT NULL,
    system_id BIGINT REFERENCES systems (id),
    subject TEXT,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
)
;
CREATE TABLE datasets (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL REFERENCES organisations (code),
    sla_days BIGINT NOT NULL,
    provider_systems TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE TABLE access_requests (
    id {id},
    dataset TEXT NOT NULL REFERENCES datasets (name),
    owner_organisation TEXT NOT NULL,
    consumer_organisation TEXT NOT NULL REFERENCES organisations (code),
    attributes TEXT NOT NULL,
    row_scope TEXT,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    systems TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    decided_at BIGINT,
    decided_by TEXT,
    reason TEXT,
    agreement_id BIGINT
)
;
CREATE INDEX access_requests_status ON access_requests (status, due_at)
;
CREATE TABLE agreements (
    id {id},
    request_id BIGINT NOT NULL REFERENCES access_requests (id),
    dataset TEXT NOT NULL REFERENCES datasets (name),
    owner_organisation TEXT NOT NULL,
    consumer_organisation TEXT NOT NULL REFERENCES organisations (code),
    attributes TEXT NOT NULL,
    row_scope TEXT,
    purpose TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    systems TEXT NOT NULL,
    valid_from BIGINT NOT NULL,
    valid_to BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    approved_by TEXT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT,
    revoke_reason TEXT
)
;
CREATE INDEX agreements_status ON agreements (status)
;
CREATE TABLE change_requests (
    id {id},
    dataset TEXT NOT NULL REFERENCES datasets (name),
    definition TEXT NOT NULL,
    changes TEXT NOT NULL,
    affected TEXT NOT NULL,
    status TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    filed_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    reason TEXT
)
;
CREATE TABLE history (
    id {id},
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT,
    actor TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL,
    details TEXT
)
;
CREATE INDEX history_entity ON history (entity, entity_id)
