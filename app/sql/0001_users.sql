-- Users of the Mini Program: one row per WeChat openid, or created through
-- the users API with a name and e-mail address.
CREATE TABLE users (
	id		bigserial PRIMARY KEY,
	openid		text UNIQUE,
	unionid		text,
	name		text NOT NULL DEFAULT '',
	email		text UNIQUE,
	phone		text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	last_login_at	timestamptz
);
