-- Loads: one row per attempt to load a dataset, whatever the channel (`http` uploads today,
-- `flight` later), with its state: receiving → validating → committed | refused.
-- `node` names the server that holds the upload's temporary file (an id kept in its upload
-- directory), so that a server starting up refuses only its own interrupted loads, not those
-- of a replica sharing the database. `reasons` is a JSON list of strings. Times are Unix
-- milliseconds.
CREATE TABLE loads (
    id {id},
    dataset TEXT NOT NULL REFERENCES datasets (name),
    channel TEXT NOT NULL,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    snapshot_version BIGINT,
    row_count BIGINT,
    bytes BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    node TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
)
;
CREATE INDEX loads_dataset ON loads (dataset, id)
;
CREATE INDEX loads_node_status ON loads (node, status)
