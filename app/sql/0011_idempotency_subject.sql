-- A kept answer may show a user's personal data (a PATCH of a user
-- answers the whole user, e-mail and phone included): subject is that
-- user, and the record goes with the account.  The caller's own records
-- (scope u:<id>) are deleted with the account too (STMT_USER_DELETE).
ALTER TABLE idempotency ADD COLUMN subject bigint
	REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX idempotency_subject ON idempotency (subject)
	WHERE subject IS NOT NULL;
