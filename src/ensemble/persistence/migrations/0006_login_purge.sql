-- The hourly purge of spent logins finds expired refresh tokens by index.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
