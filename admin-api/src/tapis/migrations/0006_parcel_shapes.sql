-- Shapes for the public map (docs/tapis.md, "Owners from the registers"): each property's
-- centroid (WGS 84 degrees) and, for land, its boundary (GeoJSON text, as the register has
-- it), written when the set is derived and as of its last derivation. Not personal: they
-- describe the land. `shape_hash` is a digest of both, so a derivation compares shapes
-- without reading them back. Null until a set derived before this migration is derived
-- again.
ALTER TABLE tapis_parcels ADD COLUMN centroid_lon DOUBLE PRECISION
;
ALTER TABLE tapis_parcels ADD COLUMN centroid_lat DOUBLE PRECISION
;
ALTER TABLE tapis_parcels ADD COLUMN boundary TEXT
;
ALTER TABLE tapis_parcels ADD COLUMN shape_hash BIGINT
