-- Tokens of persons (kind `user`): a person of an organisation calls the REST API as
-- themselves. `user_id` names the person; it is NULL for admin, system and subject tokens.
-- The person's role and organisation are read from `users` whenever the access policy is
-- built, so a change of role holds for their tokens at once.
ALTER TABLE tokens ADD COLUMN user_id BIGINT REFERENCES users (id)
;
CREATE INDEX tokens_user ON tokens (user_id)
