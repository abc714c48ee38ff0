-- The business data of the Mini Program: user profiles (loaded only on
-- request) and the items its home page lists.
CREATE TABLE user_profiles (
	user_id		bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	city		text NOT NULL DEFAULT '',
	gender		smallint NOT NULL DEFAULT 0 CHECK (gender IN (0, 1, 2)),
	avatar_url	text NOT NULL DEFAULT '',
	bio		text NOT NULL DEFAULT '',
	updated_at	timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE items (
	id		bigserial PRIMARY KEY,
	title		text NOT NULL,
	summary		text NOT NULL DEFAULT '',
	cover_url	text NOT NULL DEFAULT '',
	category	text NOT NULL,
	status		text NOT NULL DEFAULT 'published'
			CHECK (status IN ('draft', 'published', 'archived')),
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now()
);
-- Newest first is id descending; the index serves both filters.
CREATE INDEX items_category_id ON items (category, id DESC);
