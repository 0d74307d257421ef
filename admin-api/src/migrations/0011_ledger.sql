-- The ledger (docs/operations.md, "Replicas"): the commit record of every dataset when
-- several nodes share one PostgreSQL database and one snapshot store. A load locks its
-- dataset's row (`FOR UPDATE`) for its whole write, so loads of one dataset on two nodes are
-- serialised; the new version becomes current when the row and the version's manifest
-- commit in one transaction, which also notifies the other nodes (`NOTIFY dagr_catalog`).
-- Unused on SQLite: a single node commits with `catalog.json` in the snapshot store.
CREATE TABLE dataset_catalogs (
    name TEXT PRIMARY KEY,
    current_version BIGINT NOT NULL,
    kept TEXT NOT NULL,
    next_version BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    committed_at BIGINT NOT NULL,
    node TEXT NOT NULL
)
;

-- Every committed version: its manifest (the parts to read), who committed it, and when it
-- left the versions kept for rollback (`expired_at`, NULL while kept): the version history of
-- a dataset, kept after the version's files are deleted. The garbage collection deletes an
-- expired version's files a grace period after `expired_at`.
CREATE TABLE dataset_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    manifest TEXT NOT NULL,
    node TEXT NOT NULL,
    committed_at BIGINT NOT NULL,
    expired_at BIGINT,
    PRIMARY KEY (name, version)
)
