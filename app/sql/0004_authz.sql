-- Authorization and the hardened session.
--
-- A role per user (existing rows become `user`), and an owner per item:
-- whoever creates an item owns it; items from before have none and only an
-- admin may change them.  Deleting a user deletes the items it owns.
--
-- token_gen: the generation of the user's access tokens.  Each token
-- carries the generation it was issued at; ending every session of a user
-- increments it, so every token issued before is refused at once, and a
-- token issued a moment later (even within the same second) is not.
--
-- successor: the refresh token that replaced this one, sealed with a key
-- derived from this token itself (AES-256-GCM, base64url), so that a retry within
-- refresh_grace gets the very same successor back, and the database never
-- holds a usable refresh token.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'user'
	CHECK (role IN ('user', 'admin'));
ALTER TABLE users ADD COLUMN token_gen bigint NOT NULL DEFAULT 0;

ALTER TABLE items ADD COLUMN owner_id bigint
	REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX items_owner_id ON items (owner_id, id DESC)
	WHERE owner_id IS NOT NULL;

ALTER TABLE refresh_tokens ADD COLUMN successor text;
