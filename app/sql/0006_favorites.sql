-- Favorites: a user keeps the items it likes.  A favorite goes with its
-- user and with its item.  Counts per item are read by item_id.
CREATE TABLE favorites (
	user_id		bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	item_id		bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, item_id)
);
CREATE INDEX favorites_item_id ON favorites (item_id);
