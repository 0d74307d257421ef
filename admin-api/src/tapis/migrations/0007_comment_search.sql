-- Comments searched the same way on SQLite and PostgreSQL: `folded` is the text lower-cased
-- with the Latvian letters folded (`ē` → `e`), written by the server; `notified_at` is when
-- the author of a wholly answered comment was told (once).
ALTER TABLE tapis_comments ADD COLUMN folded TEXT
;
ALTER TABLE tapis_comments ADD COLUMN notified_at BIGINT
