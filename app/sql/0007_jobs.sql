-- Subscribe messages: one row per message asked for, keyed by the id of
-- the job that sends it.  The worker looks here before sending (a message
-- already sent is not sent again) and records the outcome.  Readable
-- through GET /api/v1/messages/{job id} by its sender and admins.
CREATE TABLE messages (
	job_id		text PRIMARY KEY,
	sender_id	bigint REFERENCES users (id) ON DELETE SET NULL,
	user_id		bigint REFERENCES users (id) ON DELETE CASCADE,
	openid		text NOT NULL,
	template_id	text NOT NULL,
	status		text NOT NULL DEFAULT 'queued' CHECK (status IN
			    ('queued', 'sending', 'retrying', 'sent', 'failed')),
	attempts	integer NOT NULL DEFAULT 0,
	msgid		bigint,
	errcode		integer,
	error		text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now()
);
-- The hourly limits count by recipient and by template.
CREATE INDEX messages_openid_created ON messages (openid, created_at);
CREATE INDEX messages_template_created ON messages (template_id, created_at);

-- Jobs that could not reach Redis when they were made, written in the
-- transaction of the change that made them; the worker moves them into
-- the stream when Redis is back.
CREATE TABLE job_outbox (
	id		bigserial PRIMARY KEY,
	job_id		text NOT NULL,
	type		text NOT NULL,
	payload		text NOT NULL,
	idem_key	text NOT NULL DEFAULT '',
	created_at	timestamptz NOT NULL DEFAULT now()
);
