-- Refresh tokens of the dual-token session.  Only a SHA-256 hash of each
-- token is stored.  Tokens issued by rotation share a family; presenting a
-- used token revokes the whole family (reuse detection, RFC 9700 4.14).
CREATE TABLE refresh_tokens (
	id		bigserial PRIMARY KEY,
	user_id		bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	family		text NOT NULL,
	token_hash	text NOT NULL UNIQUE,
	created_at	timestamptz NOT NULL DEFAULT now(),
	expires_at	timestamptz NOT NULL,
	used_at		timestamptz,
	revoked_at	timestamptz,
	replaced_by	bigint REFERENCES refresh_tokens (id) ON DELETE SET NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
