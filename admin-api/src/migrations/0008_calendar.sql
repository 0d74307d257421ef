-- The working-day calendar (docs/calendar.md): the public holidays of the law are computed
-- (admin-api/src/calendar); this table holds what a year adds by a separate act: a moved
-- working day (a Saturday worked, kind `working`), an extra holiday (kind `holiday`: the
-- Song and Dance Festival's closing day, a day off by a Cabinet order). A row overrides the
-- computed rule for its day.
CREATE TABLE calendar_days (
    day TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
-- Every change: the day as it became, or removed.
CREATE TABLE calendar_history (
    id {id},
    day TEXT NOT NULL,
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL
)
