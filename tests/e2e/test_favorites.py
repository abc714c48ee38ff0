"""End-to-end: favorites (docs/EXTENDING.md walks through how they were
added).  A user favorites an item it can see and takes it back, lists its
own favorites, and anyone reads how many users favorite a published item,
a shared, cached answer that every favorite invalidates."""

import secrets

import e2elib as e2e

DATA = "/api/v1/data"
MINE = "/api/v1/user/favorites"


def fav(i):
    return "%s/%d/favorite" % (DATA, i)


def count_path(i):
    return "%s/%d/favorites" % (DATA, i)


class Favorites(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()
        self.owner = e2e.login()
        self.item = self.make(self.owner, "published")

    def make(self, who, status):
        r = e2e.call("POST", DATA, who, {
            "title": "fav " + secrets.token_hex(4), "category": "food",
            "status": status})
        return self.assert_envelope(r, 201)["data"]["id"]

    def count(self, i):
        r = e2e.call("GET", count_path(i))
        return self.assert_envelope(r, 200)["data"]["count"], r

    def mine(self, who):
        r = e2e.call("GET", MINE, who)
        return [it["id"] for it in self.assert_envelope(r, 200)["data"][
            "items"]], r

    def test_strangers_are_refused(self):
        self.assert_envelope(e2e.call("PUT", fav(self.item)), 401, 40100)
        self.assert_envelope(e2e.call("DELETE", fav(self.item)), 401, 40100)
        self.assert_envelope(e2e.call("GET", MINE), 401, 40100)
        # The count is public.
        self.assertEqual(self.count(self.item)[0], 0)

    def test_favorite_count_and_take_back(self):
        a, b = e2e.login(), e2e.login()
        self.assertEqual(self.count(self.item)[0], 0)
        r = e2e.call("PUT", fav(self.item), a)
        self.assertEqual(self.assert_envelope(r, 200)["data"],
                         {"item_id": self.item, "favorite": True})
        # Again is the same.
        self.assert_envelope(e2e.call("PUT", fav(self.item), a), 200)
        n, r = self.count(self.item)
        self.assertEqual(n, 1)
        self.assertIn("public", r.header("Cache-Control"))
        self.assert_envelope(e2e.call("PUT", fav(self.item), b), 200)
        self.assertEqual(self.count(self.item)[0], 2)
        # A shared answer: the same again, and 304 on its ETag.
        _, r1 = self.count(self.item)
        r2 = e2e.call("GET", count_path(self.item), headers={
            "If-None-Match": r1.header("ETag")})
        self.assertEqual(r2.status, 304)
        r = e2e.call("DELETE", fav(self.item), a)
        self.assertEqual(self.assert_envelope(r, 200)["data"],
                         {"item_id": self.item, "favorite": False})
        self.assert_envelope(e2e.call("DELETE", fav(self.item), a), 404,
                             40400)
        self.assertEqual(self.count(self.item)[0], 1)

    def test_my_favorites_are_mine_alone(self):
        a, b = e2e.login(), e2e.login()
        other = self.make(self.owner, "published")
        self.assert_envelope(e2e.call("PUT", fav(self.item), a), 200)
        self.assert_envelope(e2e.call("PUT", fav(other), a), 200)
        ids, r = self.mine(a)
        self.assertEqual(ids, sorted([self.item, other], reverse=True))
        self.assertIn("private", r.header("Cache-Control"))
        self.assertEqual(self.mine(b)[0], [])
        r = e2e.call("GET", MINE + "?page_size=1&page=2", a)
        d = self.assert_envelope(r, 200)["data"]
        self.assertEqual(([it["id"] for it in d["items"]], d["total"]),
                         ([min(self.item, other)], 2))

    def test_what_a_user_cannot_see_cannot_be_favorited(self):
        a = e2e.login()
        draft = self.make(self.owner, "draft")
        self.assert_envelope(e2e.call("PUT", fav(draft), a), 404, 40400)
        self.assert_envelope(e2e.call("GET", count_path(draft)), 404, 40400)
        self.assert_envelope(e2e.call("PUT", fav(10 ** 12), a), 404, 40400)
        self.assert_envelope(e2e.call("PUT", "%s/x/favorite" % DATA, a),
                             400, 40002)
        # Its owner may keep its own draft; nobody sees a count of it.
        self.assert_envelope(e2e.call("PUT", fav(draft), self.owner), 200)
        self.assertIn(draft, self.mine(self.owner)[0])
        self.assert_envelope(e2e.call("GET", count_path(draft)), 404, 40400)

    def test_favorites_go_with_their_item_and_user(self):
        a, b = e2e.login(), e2e.login()
        for who in (a, b):
            self.assert_envelope(e2e.call("PUT", fav(self.item), who), 200)
        self.assertEqual(self.count(self.item)[0], 2)
        self.assertEqual(e2e.call("DELETE", "/api/v1/user/me", b).status,
                         204)
        self.assertEqual(self.count(self.item)[0], 1)
        # Hidden by its owner: no count, gone from the lists of others.
        self.assert_envelope(e2e.call("PATCH", "%s/%d" % (DATA, self.item),
                                      self.owner, {"status": "draft"}), 200)
        self.assert_envelope(e2e.call("GET", count_path(self.item)), 404)
        self.assertEqual(self.mine(a)[0], [])
        self.assertEqual(e2e.call("DELETE", "%s/%d" % (DATA, self.item),
                                  self.owner).status, 204)
        self.assertEqual(e2e.psql_value(
            "SELECT count(*) FROM favorites WHERE item_id = %d" %
            self.item), "0")
