-- Messages WeChat pushed to /api/v1/wechat/push, as the worker took them
-- (app/worker_jobs.c): every one is kept, those without a handler too.
-- dedup_key is the job's (MsgId, or sender, time and event), so that
-- WeChat's retries of one message are one row.
CREATE TABLE push_events (
	id		bigserial PRIMARY KEY,
	dedup_key	text NOT NULL UNIQUE,
	msg_type	text NOT NULL,
	event		text,
	payload		jsonb NOT NULL,
	handled		boolean NOT NULL,
	received_at	timestamptz NOT NULL DEFAULT now()
);
