-- Expired refresh tokens are deleted (wxapp-worker, a batch a second),
-- oldest first: found through expires_at, which grows with time, so that
-- the index costs a login an insert at its right edge.
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);
-- replaced_by's foreign key (ON DELETE SET NULL) looks for the rows that
-- name a deleted token: without an index, a scan of the whole table for
-- each token deleted, by the pruning and by an account's deletion alike.
-- Only a used token names one, hence partial.
CREATE INDEX refresh_tokens_replaced_by ON refresh_tokens (replaced_by)
	WHERE replaced_by IS NOT NULL;
