-- The definition a schema change was filed against: an admin can accept it only while that
-- is still the dataset's definition.
ALTER TABLE change_requests ADD COLUMN base_definition TEXT
