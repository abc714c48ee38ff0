-- Content that waits for a verdict (app/moderation.c): WeChat's content
-- security said "review", could not be asked (content_check_fail =
-- queue), or an image's asynchronous check has not answered yet.  While
-- an item has a pending row it stays a draft, seen by its owner and
-- admins only; a user's new name waits here, the old one in force.
CREATE TABLE moderation (
	id		bigserial PRIMARY KEY,
	item_id		bigint REFERENCES items (id) ON DELETE CASCADE,
	user_id		bigint REFERENCES users (id) ON DELETE CASCADE,
	author_id	bigint REFERENCES users (id) ON DELETE SET NULL,
	field		text NOT NULL,
	content		text NOT NULL,
	reason		text NOT NULL
			    CHECK (reason IN ('review', 'unchecked', 'media')),
	trace_id	text UNIQUE,
	publish		boolean NOT NULL DEFAULT true,
	status		text NOT NULL DEFAULT 'pending'
			    CHECK (status IN ('pending', 'approved', 'rejected')),
	decided_by	text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	decided_at	timestamptz,
	CHECK ((item_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX moderation_pending ON moderation (created_at)
	WHERE status = 'pending';
CREATE INDEX moderation_item ON moderation (item_id) WHERE status = 'pending';
