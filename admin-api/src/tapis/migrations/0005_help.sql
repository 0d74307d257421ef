-- Help and FAQ (docs/tapis.md, "Help and FAQ"): articles per language, stage and role, kept
-- by an admin (the demo seeds them), and anonymous "was this helpful" votes.
--
-- `stage` is NULL for an article of every stage, `role` is `any` for every role.
-- `search_title` and `search_body` are the title and body folded (lower case, Latvian
-- letters to their base letters), so that search is a LIKE on them on both databases.
-- `deleted_at` keeps a deleted article's id, so that seeding never brings back what an
-- admin removed; `updated_by` is `seed` until an admin edits the article.
CREATE TABLE tapis_help (
    id TEXT PRIMARY KEY,
    lang TEXT NOT NULL,
    stage TEXT,
    role TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    search_title TEXT NOT NULL,
    search_body TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
)
;
CREATE INDEX tapis_help_lang ON tapis_help (lang, stage, role)
;
-- One vote per article and voter (a keyed hash of the portal's browser cookie, or of the
-- caller's network source and the day for the REST API): voting again changes the vote.
-- `helpful` is 1 or 0.
CREATE TABLE tapis_help_feedback (
    article TEXT NOT NULL,
    voter TEXT NOT NULL,
    helpful BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (article, voter)
)
