-- MAP, grant management (see docs/map.md). Amounts are integer euro cents (BIGINT), times
-- Unix milliseconds, lists and objects JSON text, flags 0/1. `{id}` is each backend's
-- auto-increment key.
--
-- A grantor: an organisation running programmes, and the consumer system of that
-- organisation under whose agreements MAP reads the registers for it.
CREATE TABLE map_grantors (
    organisation TEXT PRIMARY KEY,
    system_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL
)
;
-- The MAP roles of people (users of a grantor organisation): programme_manager, evaluator,
-- approver, accountant. A person may hold several roles. The personal code is what conflict
-- detection compares against the applicant's officials.
CREATE TABLE map_staff (
    login TEXT NOT NULL,
    role TEXT NOT NULL,
    organisation TEXT NOT NULL,
    personal_code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (login, role)
)
;
CREATE TABLE map_programmes (
    id {id},
    organisation TEXT NOT NULL,
    title TEXT NOT NULL,
    budget BIGINT NOT NULL,
    max_grant BIGINT NOT NULL,
    co_financing_bp BIGINT NOT NULL,
    opens_at BIGINT NOT NULL,
    closes_at BIGINT NOT NULL,
    aid_regime TEXT NOT NULL,
    eligibility TEXT NOT NULL,
    cost_categories TEXT NOT NULL,
    approval_levels TEXT NOT NULL,
    report_schedule TEXT NOT NULL,
    evaluators_per_application BIGINT NOT NULL,
    scoresheet_version BIGINT NOT NULL,
    committed BIGINT NOT NULL,
    paid BIGINT NOT NULL,
    recovered BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
-- Versions of a programme's scoresheet: a change after the first score makes a new one;
-- each application is scored on the version current when its evaluation began.
CREATE TABLE map_scoresheets (
    programme BIGINT NOT NULL,
    version BIGINT NOT NULL,
    criteria TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (programme, version)
)
;
CREATE TABLE map_applications (
    id {id},
    programme BIGINT NOT NULL,
    status TEXT NOT NULL,
    title TEXT NOT NULL,
    requested BIGINT NOT NULL,
    granted BIGINT,
    registration_number TEXT NOT NULL,
    applicant_code TEXT NOT NULL,
    applicant TEXT NOT NULL,
    scoresheet_version BIGINT,
    score DOUBLE PRECISION,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
)
;
CREATE INDEX map_applications_programme ON map_applications (programme, status, id)
;
CREATE INDEX map_applications_status ON map_applications (status, id)
;
CREATE INDEX map_applications_applicant ON map_applications (applicant_code, id)
;
-- Every transition, with the application as it was after it (the as-of replay reads it).
CREATE TABLE map_history (
    id {id},
    application BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL,
    state TEXT NOT NULL
)
;
CREATE INDEX map_history_application ON map_history (application, id)
;
-- The register reads behind each check: what was read, from which snapshot, with the ids
-- of the access records in the usage audit.
CREATE TABLE map_evidence (
    id {id},
    application BIGINT NOT NULL,
    step TEXT NOT NULL,
    dataset TEXT NOT NULL,
    version BIGINT NOT NULL,
    read_at BIGINT NOT NULL,
    access_records TEXT NOT NULL,
    record_values TEXT NOT NULL,
    passed BIGINT NOT NULL,
    detail TEXT
)
;
CREATE INDEX map_evidence_application ON map_evidence (application, id)
;
CREATE TABLE map_assignments (
    application BIGINT NOT NULL,
    evaluator TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    assigned_at BIGINT NOT NULL,
    declared_at BIGINT,
    PRIMARY KEY (application, evaluator)
)
;
CREATE TABLE map_scores (
    application BIGINT NOT NULL,
    evaluator TEXT NOT NULL,
    points TEXT NOT NULL,
    justification TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (application, evaluator)
)
;
CREATE TABLE map_payments (
    id {id},
    application BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    level BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    paid_at BIGINT
)
;
CREATE INDEX map_payments_application ON map_payments (application, id)
;
-- One approval per level; one person approves at most one level of a payment.
CREATE TABLE map_payment_approvals (
    payment BIGINT NOT NULL,
    level BIGINT NOT NULL,
    login TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (payment, level),
    UNIQUE (payment, login)
)
;
CREATE TABLE map_reports (
    id {id},
    application BIGINT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    eligible_costs BIGINT NOT NULL,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE INDEX map_reports_application ON map_reports (application, id)
;
-- Costs claimed in reports: one invoice (supplier, number) is claimed in one project only.
CREATE TABLE map_costs (
    supplier TEXT NOT NULL,
    invoice TEXT NOT NULL,
    application BIGINT NOT NULL,
    report BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (supplier, invoice)
)
;
-- State aid granted to an undertaking (de minimis): by MAP decisions, or outside MAP.
CREATE TABLE map_aid (
    id {id},
    undertaking TEXT NOT NULL,
    regime TEXT NOT NULL,
    amount BIGINT NOT NULL,
    granted_at BIGINT NOT NULL,
    application BIGINT,
    source TEXT NOT NULL
)
;
CREATE INDEX map_aid_undertaking ON map_aid (undertaking, granted_at)
;
-- One row per undertaking, updated first in every transaction that grants it aid: the
-- decisions about one undertaking run one after the other on both backends.
CREATE TABLE map_undertakings (
    registration_number TEXT PRIMARY KEY,
    decisions BIGINT NOT NULL
)
;
-- Registration numbers of documents: gapless per year (the counter row is taken in the same
-- transaction as the document).
CREATE TABLE map_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
)
;
CREATE TABLE map_documents (
    number TEXT PRIMARY KEY,
    application BIGINT NOT NULL,
    direction TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL
)
;
CREATE INDEX map_documents_application ON map_documents (application, at)
;
-- Who opened an application (shown to the applicant).
CREATE TABLE map_access_log (
    id {id},
    application BIGINT NOT NULL,
    at BIGINT NOT NULL,
    role TEXT NOT NULL,
    organisation TEXT,
    login TEXT,
    what TEXT NOT NULL
)
;
CREATE INDEX map_access_log_application ON map_access_log (application, id)
;
-- In-app inbox: a recipient is `user:LOGIN` or `subject:PERSONAL_CODE`.
CREATE TABLE map_inbox (
    id {id},
    recipient TEXT NOT NULL,
    application BIGINT,
    text TEXT NOT NULL,
    at BIGINT NOT NULL
)
;
CREATE INDEX map_inbox_recipient ON map_inbox (recipient, id)
