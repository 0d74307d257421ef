-- MAP's settings (docs/map.md "Settings"): the Latvian specifics as data. Each value is
-- JSON text; `source` names where the default comes from, for checking. Every change is in
-- `map_rule_history`.
CREATE TABLE map_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
)
;
INSERT INTO map_settings (name, value, source, updated_by, updated_at)
VALUES ('document_number_format', '"MAP-{year}/{seq:6}"', 'DAGR default: a registration number per document, gapless per year', 'default', 0)
;
INSERT INTO map_settings (name, value, source, updated_by, updated_at)
VALUES ('retention_years', '10', 'Commission Regulation (EU) 2023/2831, Article 6(4): records of de minimis aid are kept 10 years from the last aid granted', 'default', 0)
;
INSERT INTO map_settings (name, value, source, updated_by, updated_at)
VALUES ('due_dates_on_working_days', '1', 'Administratīvā procesa likums, 42.-43. pants: a term ending on a non-working day ends on the next working day', 'default', 0)
;
INSERT INTO map_settings (name, value, source, updated_by, updated_at)
VALUES ('reminder_days', '14', 'DAGR default: a report reminder 14 days before it is due', 'default', 0)
