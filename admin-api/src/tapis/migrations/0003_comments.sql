-- Files of versions, public comments during a consultation, their receipts and answers,
-- and the standard answer blocks (docs/tapis.md).
--
-- A file's bytes are in the object store under `tapis/files/{sha256}` (content-addressed);
-- this row names it in a version. A version's files are fixed once it is frozen.
CREATE TABLE tapis_files (
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (version, name)
)
;
-- A comment: the citizen's original (subject, text, anchor, time, hash: never updated) and
-- the officers' working state on it (tags, group, answer). A split comment is answered
-- through its parts: rows with `parent` set, made by an officer from the original's text.
-- `receipt` is the original's receipt id (unguessable), `signature` DAGR's MAC of the
-- receipt (id, time, hash).
CREATE TABLE tapis_comments (
    id {id},
    consultation BIGINT NOT NULL,
    document BIGINT NOT NULL,
    parent BIGINT,
    subject TEXT,
    text TEXT NOT NULL,
    anchor TEXT NOT NULL,
    paragraph TEXT,
    receipt TEXT,
    hash TEXT,
    signature TEXT,
    created_at BIGINT NOT NULL,
    tags TEXT NOT NULL,
    group_name TEXT,
    split_at BIGINT,
    decision TEXT,
    answer TEXT,
    answered_by TEXT,
    answered_at BIGINT
)
;
CREATE INDEX tapis_comments_consultation ON tapis_comments (consultation, id)
;
CREATE INDEX tapis_comments_parent ON tapis_comments (parent)
;
CREATE UNIQUE INDEX tapis_comments_receipt ON tapis_comments (receipt)
;
CREATE INDEX tapis_comments_subject ON tapis_comments (subject, id)
;
CREATE INDEX tapis_comments_paragraph ON tapis_comments (consultation, paragraph, id)
;
-- Standard answer blocks of a municipality.
CREATE TABLE tapis_answer_blocks (
    organisation TEXT NOT NULL,
    code TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (organisation, code)
)
;
-- The owners of the properties in a consultation's territory are told when it opens: done
-- (`owners_notified_at`), or tried again after `owners_retry_at` with the reason in
-- `owners_note` (the registers unreadable, no agreement).
ALTER TABLE tapis_consultations ADD COLUMN owners_notified_at BIGINT
;
ALTER TABLE tapis_consultations ADD COLUMN owners_retry_at BIGINT
;
ALTER TABLE tapis_consultations ADD COLUMN owners_note TEXT
