-- State aid rules as data (docs/map.md "Money"): the regimes with their ceilings, and which
-- companies form one undertaking. Changes are forward only: a decision is checked against
-- the rules current when it is taken; every change is in `map_rule_history`.
--
-- A regime: aid granted under it is recorded per company (`map_aid.regime`); a ceiling, when
-- set, caps per undertaking the aid of the regimes listed in `counts` (a JSON list of codes,
-- the regime's cumulation rule) over any `window_days`. A grant under regime R is checked
-- against the ceiling of every regime whose `counts` names R.
CREATE TABLE map_regimes (
    code TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    ceiling BIGINT,
    window_days BIGINT NOT NULL,
    counts TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
)
;
-- The defaults name their source, for checking. `none`: not state aid, nothing recorded.
INSERT INTO map_regimes (code, title, legal_basis, ceiling, window_days, counts, updated_by, updated_at)
VALUES ('none', 'Not state aid', 'Not State aid within the meaning of Article 107(1) TFEU', NULL, 1096, '[]', 'default', 0)
;
-- General de minimis: EUR 300 000 over any three years (Article 3(2)); cumulated with
-- agricultural de minimis up to this ceiling (Article 5(2)).
INSERT INTO map_regimes (code, title, legal_basis, ceiling, window_days, counts, updated_by, updated_at)
VALUES ('de_minimis', 'De minimis aid', 'Commission Regulation (EU) 2023/2831, Article 3(2) and Article 5(2)', 30000000, 1096, '["de_minimis","de_minimis_agriculture"]', 'default', 0)
;
-- De minimis for services of general economic interest: EUR 750 000 over any three years,
-- cumulated with general de minimis up to this ceiling (Article 3(2), Article 5(1)).
INSERT INTO map_regimes (code, title, legal_basis, ceiling, window_days, counts, updated_by, updated_at)
VALUES ('de_minimis_sgei', 'De minimis aid for services of general economic interest', 'Commission Regulation (EU) 2023/2832, Article 3(2) and Article 5(1)', 75000000, 1096, '["de_minimis","de_minimis_sgei"]', 'default', 0)
;
-- Agricultural primary production: EUR 50 000 over any three years (Regulation (EU) No
-- 1408/2013 as amended by Regulation (EU) 2024/3118, Article 3(2)).
INSERT INTO map_regimes (code, title, legal_basis, ceiling, window_days, counts, updated_by, updated_at)
VALUES ('de_minimis_agriculture', 'De minimis aid in agriculture', 'Commission Regulation (EU) No 1408/2013 as amended by Regulation (EU) 2024/3118, Article 3(2)', 5000000, 1096, '["de_minimis_agriculture"]', 'default', 0)
;
-- One undertaking (Regulation (EU) 2023/2831, Article 2(2)): companies linked by control
-- are one. A link names the group's parent (a registration number); the undertaking of a
-- company is its parent and every company linked to that parent. Unlinked: itself alone.
CREATE TABLE map_undertaking_links (
    member TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE INDEX map_undertaking_links_parent ON map_undertaking_links (parent)
;
CREATE INDEX map_aid_regime ON map_aid (undertaking, regime, granted_at)
;
-- Every change of a rule: a regime as it became, a link made or removed.
CREATE TABLE map_rule_history (
    id {id},
    what TEXT NOT NULL,
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL
)
