-- Idempotency-Key: the first answer to a write, kept 24 hours, so that a
-- client retrying a POST whose answer it lost gets that answer back
-- instead of making a second resource.  scope is the caller (u:<user
-- id>, or a:<address>); request is a hash of method, path and body, so
-- a key used again for another request is told apart.
CREATE TABLE idempotency (
	scope		text NOT NULL,
	key		text NOT NULL,
	request		text NOT NULL,
	status		integer,
	headers		text,
	body		text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created_at ON idempotency (created_at);
