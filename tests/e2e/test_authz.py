"""End-to-end: who may read and change what (issue 9), through nginx.

Roles and ownership, the privacy of e-mail addresses and phone numbers
(in answers, in the shared cache, through 304s), account deletion, the
wxappctl subcommands that change accounts, and the envelope of every
error nginx produces itself, over HTTP/2 too.  Users log in through the
WeChat stand-in; admins are made with `wxappctl user grant`.
"""

import base64
import json
import os
import re
import secrets
import subprocess
import time

import e2elib as e2e

USERS = "/api/v1/users"
DATA = "/api/v1/data"
LIST = "/api/v1/data/list"
ME = "/api/v1/user/me"
PUBLIC_USER_KEYS = {"id", "name", "avatar_url"}


def uniq():
    return secrets.token_hex(5)


class Base(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()
        e2e.wechat_base()
        e2e.ensure_seeded()

    def item(self, owner, status="published", title=None):
        r = e2e.call("POST", DATA, owner, {"title": title or "It " + uniq(),
                                           "category": "food",
                                           "status": status})
        return self.assert_envelope(r, 201)["data"]

    def assert_refused(self, r, code=40300, contains=None):
        status = code // 100
        return self.assert_envelope(r, status, code, data=None,
                                    message_contains=contains)


# ---------------------------------------------------------------------------
# 1. Roles and ownership
# ---------------------------------------------------------------------------

class Roles(Base):

    def test_a_new_user_is_a_user(self):
        s = e2e.login()
        d = self.assert_envelope(e2e.call("GET", ME, s), 200)["data"]
        self.assertEqual(d["role"], "user")
        self.assertEqual(e2e.psql_value("SELECT role FROM users WHERE id = %d"
                                        % s.uid), "user")

    def warm(self, s, n=12):
        """Read with s until every responder holds its verdict on s's
        session (app/auth.c), which a grant must outdate."""
        for _ in range(n):
            self.assert_envelope(e2e.call("GET", ME, s), 200)

    def test_grant_applies_on_the_next_request(self):
        s = e2e.login()
        body = {"name": "N" + uniq(), "email": "g%s@example.com" % uniq()}
        self.assert_refused(e2e.call("POST", USERS, s, body), 40300,
                            "administrators")
        self.warm(s)
        rc, out, err = e2e.wxappctl_run("user", "grant", s.uid, "admin")
        self.assertEqual(rc, 0, err)
        self.assertIn("admin", out)
        # The same access token, at once: no refresh, no new login.
        self.assert_envelope(e2e.call("POST", USERS, s, body), 201)
        self.assertEqual(self.assert_envelope(e2e.call("GET", ME, s), 200)
                         ["data"]["role"], "admin")
        rc, out, _ = e2e.wxappctl_run("user", "show", s.uid)
        self.assertEqual(rc, 0)
        self.assertIn("role: admin", out)
        self.warm(s)
        rc, _, err = e2e.wxappctl_run("user", "grant", s.uid, "user")
        self.assertEqual(rc, 0, err)
        for _ in range(12):     # on whichever responder answers
            body["email"] = "h%s@example.com" % uniq()
            self.assert_refused(e2e.call("POST", USERS, s, body), 40300)

    def test_grant_checks_its_arguments(self):
        s = e2e.login()
        rc, _, err = e2e.wxappctl_run("user", "grant", s.uid, "root")
        self.assertEqual(rc, 2, err)
        rc, _, err = e2e.wxappctl_run("user", "grant", s.uid)
        self.assertEqual(rc, 2, err)


class UserWrites(Base):

    def test_a_user_changes_only_itself(self):
        alice, bob = e2e.login(), e2e.login()
        path = "%s/%d" % (USERS, alice.uid)
        self.assert_refused(e2e.call("PATCH", path, bob, {"name": "Mallory"}),
                            40300, "own account")
        self.assert_refused(e2e.call("DELETE", path, bob), 40300, "own account")
        self.assert_refused(e2e.call("PATCH", path, None, {"name": "x"}), 40100)
        # Allowed: the user itself, and an admin.
        d = self.assert_envelope(e2e.call("PATCH", path, alice,
                                          {"name": "Alice"}), 200)["data"]
        self.assertEqual(d["name"], "Alice")
        admin = e2e.make_admin(e2e.login())
        d = self.assert_envelope(e2e.call("PATCH", path, admin,
                                          {"name": "Alice A"}), 200)["data"]
        self.assertEqual(d["name"], "Alice A")

    def test_a_write_to_nobody_is_404(self):
        bob = e2e.login()
        absent = int(e2e.psql_value("SELECT max(id) FROM users")) + 100000
        path = "%s/%d" % (USERS, absent)
        self.assert_refused(e2e.call("PATCH", path, bob, {"name": "x"}), 40400)
        self.assert_refused(e2e.call("DELETE", path, bob), 40400)

    def test_creating_users_is_for_admins(self):
        body = {"name": "New", "email": "new%s@example.com" % uniq()}
        self.assert_refused(e2e.call("POST", USERS, None, body), 40100)
        self.assert_refused(e2e.call("POST", USERS, e2e.login(), body), 40300,
                            "administrators")
        admin = e2e.make_admin(e2e.login())
        self.assert_envelope(e2e.call("POST", USERS, admin, body), 201)

    def test_no_route_tells_whether_an_address_is_taken(self):
        """Users cannot set their own e-mail: free or taken, the same 403."""
        admin = e2e.make_admin(e2e.login())
        taken = "taken%s@example.com" % uniq()
        self.assert_envelope(e2e.call("POST", USERS, admin,
                                      {"name": "T", "email": taken}), 201)
        bob = e2e.login()
        path = "%s/%d" % (USERS, bob.uid)
        answers = []
        for email in (taken, "free%s@example.com" % uniq()):
            r = e2e.call("PATCH", path, bob, {"email": email})
            self.assert_refused(r, 40300, "email")
            answers.append(r.body)
        self.assertEqual(answers[0], answers[1])


class ItemWrites(Base):

    def test_only_the_owner_changes_an_item(self):
        alice, bob = e2e.login(), e2e.login()
        it = self.item(alice)
        self.assertEqual(it["owner_id"], alice.uid)
        path = "%s/%d" % (DATA, it["id"])
        self.assert_refused(e2e.call("PATCH", path, bob, {"title": "Mine"}),
                            40300, "owner")
        self.assert_refused(e2e.call("DELETE", path, bob), 40300, "owner")
        self.assertEqual(e2e.psql_value("SELECT title FROM items WHERE id = %d"
                                        % it["id"]), it["title"])
        d = self.assert_envelope(e2e.call("PATCH", path, alice,
                                          {"title": "Renamed"}), 200)["data"]
        self.assertEqual(d["title"], "Renamed")
        admin = e2e.make_admin(e2e.login())
        self.assert_envelope(e2e.call("PATCH", path, admin,
                                      {"title": "By admin"}), 200)
        r = e2e.call("DELETE", path, alice)
        self.assertEqual(r.status, 204, r.describe())
        # An admin deletes what another owns.
        other = "%s/%d" % (DATA, self.item(alice)["id"])
        self.assert_refused(e2e.call("DELETE", other, bob), 40300, "owner")
        r = e2e.call("DELETE", other, admin)
        self.assertEqual(r.status, 204, r.describe())
        self.assert_envelope(e2e.call("GET", other, alice), 404, 40400)

    def test_items_of_no_one_are_for_admins(self):
        iid = int(e2e.psql_value("SELECT id FROM items WHERE owner_id IS NULL"
                                 " AND status = 'published' ORDER BY id"
                                 " LIMIT 1"))
        title = e2e.psql_value("SELECT title FROM items WHERE id = %d" % iid)
        path = "%s/%d" % (DATA, iid)
        self.assert_refused(e2e.call("PATCH", path, e2e.login(),
                                     {"title": "x"}), 40300)
        self.assert_refused(e2e.call("DELETE", path, e2e.login()), 40300)
        admin = e2e.make_admin(e2e.login())
        self.assert_envelope(e2e.call("PATCH", path, admin,
                                      {"title": title + " "}), 200)
        # And deletes one (made here: the seeded ones are other tests').
        orphan = int(e2e.psql_value("INSERT INTO items (title, category) "
                                      "VALUES ('No one''s %s', 'music') "
                                      "RETURNING id" % uniq()))
        gone = "%s/%d" % (DATA, orphan)
        self.assert_refused(e2e.call("DELETE", gone, e2e.login()), 40300)
        r = e2e.call("DELETE", gone, admin)
        self.assertEqual(r.status, 204, r.describe())
        self.assertEqual(e2e.psql_value("SELECT count(*) FROM items WHERE "
                                        "id = %d" % orphan), "0")

    def test_a_write_to_no_item_is_404(self):
        absent = int(e2e.psql_value("SELECT max(id) FROM items")) + 100000
        path = "%s/%d" % (DATA, absent)
        bob = e2e.login()
        self.assert_refused(e2e.call("PATCH", path, bob, {"title": "x"}),
                            40400)
        self.assert_refused(e2e.call("DELETE", path, bob), 40400)


class Drafts(Base):
    """A draft or archived item exists only for its owner and admins."""

    def test_by_id(self):
        alice, bob = e2e.login(), e2e.login()
        admin = e2e.make_admin(e2e.login())
        for status in ("draft", "archived"):
            with self.subTest(status):
                it = self.item(alice, status)
                path = "%s/%d" % (DATA, it["id"])
                gone = "item %d not found" % it["id"]
                for who in (None, bob):
                    # Twice: the second may come from a cached 404.
                    for _ in range(2):
                        self.assert_envelope(e2e.call("GET", path, who), 404,
                                             40400, data=None, message=gone)
                # The existence does not leak through a write either.
                self.assert_envelope(e2e.call("PATCH", path, bob,
                                              {"title": "x"}), 404, 40400,
                                     message=gone)
                self.assert_envelope(e2e.call("DELETE", path, bob), 404, 40400,
                                     message=gone)
                for who in (alice, admin):
                    r = e2e.call("GET", path, who)
                    self.assertEqual(self.assert_envelope(r, 200)["data"], it)
                    self.assertIn("private", r.header("Cache-Control"))
                # Published, it is everyone's.
                self.assert_envelope(e2e.call("PATCH", path, alice,
                                              {"status": "published"}), 200)
                self.assert_envelope(e2e.call("GET", path, None), 200)

    def test_in_lists(self):
        alice, bob = e2e.login(), e2e.login()
        admin = e2e.make_admin(e2e.login())
        draft = self.item(alice, "draft")
        pub = self.item(alice)

        def ids(r):
            return [i["id"] for i in self.assert_envelope(r, 200)["data"]
                    ["items"]]
        for who in (None, bob, alice, admin):
            self.assertNotIn(draft["id"], ids(e2e.call(
                "GET", LIST + "?page_size=100", who)))
        mine = e2e.call("GET", LIST + "?owner=me", alice)
        self.assertEqual(ids(mine), [pub["id"], draft["id"]])
        self.assertIn("private", mine.header("Cache-Control"))
        self.assertEqual(ids(e2e.call("GET", LIST + "?owner=me&status=draft",
                                      alice)), [draft["id"]])
        self.assertEqual(ids(e2e.call("GET", LIST + "?owner=me", bob)), [])
        self.assert_refused(e2e.call("GET", LIST + "?owner=me", None), 40100)
        self.assert_refused(e2e.call("GET", LIST + "?status=draft", bob),
                            40300, "owner=me")
        self.assert_refused(e2e.call("GET", LIST + "?status=all", None), 40300)
        self.assertIn(draft["id"], ids(e2e.call(
            "GET", LIST + "?status=draft&page_size=100", admin)))
        self.assert_refused(e2e.call("GET", LIST + "?owner=you", alice), 40002)
        self.assert_refused(e2e.call("GET", LIST + "?status=gone", alice),
                            40002)


# ---------------------------------------------------------------------------
# 2. Privacy of personal data
# ---------------------------------------------------------------------------

def user_with_email_and_phone():
    """A user with an e-mail address (set by an admin) and a phone number
    (through getPhoneNumber); (session, email, phone)."""
    s = e2e.login()
    admin = e2e.make_admin(e2e.login())
    email = "priv%s@example.com" % uniq()
    r = e2e.call("PATCH", "%s/%d" % (USERS, s.uid), admin, {"email": email})
    if r.status != 200:
        raise AssertionError(r.describe())
    r = e2e.call("POST", "/api/v1/user/phone", s, {"code": "phone-" + uniq()})
    if r.status != 200:
        raise AssertionError(r.describe())
    e2e.PHONE_NUMBERS.append(r.json()["data"]["phone_number"])
    return s, email, r.json()["data"]["phone_number"]


class Privacy(Base):

    def test_others_see_public_fields(self):
        s, email, phone = user_with_email_and_phone()
        path = "%s/%d" % (USERS, s.uid)
        for who in (None, e2e.login()):
            r = e2e.call("GET", path, who)
            d = self.assert_envelope(r, 200)["data"]
            self.assertEqual(set(d), PUBLIC_USER_KEYS, r.describe())
            self.assertIn("public", r.header("Cache-Control"))
        for who in (s, e2e.make_admin(e2e.login())):
            r = e2e.call("GET", path, who)
            d = self.assert_envelope(r, 200)["data"]
            self.assertEqual((d["email"], d["phone"]), (email, phone))
            self.assertIn("private", r.header("Cache-Control"))
        d = self.assert_envelope(e2e.call("GET", ME, s), 200)["data"]
        self.assertEqual((d["email"], d["phone"]), (email, phone))

    def test_lists_show_no_one_s_address(self):
        s, email, phone = user_with_email_and_phone()
        q = "%s?after=%d&page_size=5" % (USERS, s.uid - 1)
        admin = e2e.make_admin(e2e.login())
        # An admin's read first: what it is answered is not what the
        # next caller finds cached.
        self.assertIn(email.encode(), e2e.call("GET", q, admin).body)
        self.assertIn(email.encode(), e2e.call("GET", "%s/%d" % (USERS, s.uid),
                                               admin).body)
        for who in (None, e2e.login()):
            self.assertNotIn(email.encode(),
                             e2e.call("GET", "%s/%d" % (USERS, s.uid),
                                      who).body)
            r = e2e.call("GET", q, who)
            self.assert_envelope(r, 200)
            for it in r.json()["data"]["items"]:
                self.assertEqual(set(it), PUBLIC_USER_KEYS)
            self.assertNotIn(email.encode(), r.body)
            self.assertNotIn(phone.encode(), r.body)
        r = e2e.call("GET", q, admin)
        self.assertIn(email.encode(), r.body)
        self.assertIn("private", r.header("Cache-Control"))

    def test_an_address_never_reaches_another_caller(self):
        """Not in an answer, not through a 304, not from a cached copy, and
        not in a shared cache entry in Redis."""
        s, email, phone = user_with_email_and_phone()
        path = "%s/%d" % (USERS, s.uid)
        mine = e2e.call("GET", path, s)
        self.assertIn(email.encode(), mine.body)
        etag = mine.header("ETag")
        lm = mine.header("Last-Modified")
        # Others read many times (every responder's copy, Redis' entry),
        # then revalidate with what the owner holds.
        for who in (None, e2e.login()):
            for _ in range(12):
                r = e2e.call("GET", path, who)
                self.assert_envelope(r, 200)
                self.assertNotIn(email.encode(), r.body)
            r = e2e.call("GET", path, who, headers={"If-None-Match": etag})
            self.assertEqual(r.status, 200, "the owner's ETag must not "
                             "validate another caller's copy: " + r.describe())
            self.assertNotIn(email.encode(), r.body)
            self.assertNotEqual(r.header("ETag"), etag)
        # The owner revalidates its own answer.
        r = e2e.call("GET", path, s, headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304, r.describe())
        self.assertIn("private", r.header("Cache-Control"))
        self.assertTrue(lm)
        # No shared entry holds it.
        script = ("local n = 0 for _, k in ipairs(redis.call('KEYS', "
                  "'wx:hc:*')) do local v = redis.call('GET', k) if v and "
                  "(string.find(v, ARGV[1], 1, true) or string.find(v, "
                  "ARGV[2], 1, true)) then n = n + 1 end end return n")
        self.assertEqual(e2e.redis_cli("EVAL", script, "0", email, phone), "0")


class DeleteAccount(Base):

    def assert_gone(self, s, item_id):
        uid = s.uid
        for table, col in (("users", "id"), ("user_profiles", "user_id"),
                           ("refresh_tokens", "user_id"),
                           ("items", "owner_id")):
            self.assertEqual(e2e.psql_value("SELECT count(*) FROM %s WHERE "
                                            "%s = %d" % (table, col, uid)),
                             "0", table)
        self.assertEqual(e2e.redis_cli("EXISTS", "wx:sk:%d" % uid), "0")
        self.assert_refused(e2e.call("GET", ME, s), 40102)
        e2e.clear_rate_limits()
        self.assert_refused(e2e.post_json("/api/v1/user/refresh",
                                          {"refresh_token": s.refresh}), 40103)
        self.assert_envelope(e2e.call("GET", "%s/%d" % (USERS, uid)), 404,
                             40400)
        self.assert_envelope(e2e.call("GET", "%s/%d" % (DATA, item_id)), 404,
                             40400)

    def test_delete_me(self):
        s, email, phone = user_with_email_and_phone()
        e2e.psql("INSERT INTO user_profiles (user_id, city) VALUES (%d, "
                 "'Hangzhou')" % s.uid)
        it = self.item(s)
        self.assertNotEqual(e2e.redis_cli("EXISTS", "wx:sk:%d" % s.uid), "0")
        # Cached answers that show the user, before.
        for p in ("%s/%d" % (USERS, s.uid), "%s/%d" % (DATA, it["id"])):
            for _ in range(6):
                self.assert_envelope(e2e.call("GET", p), 200)
        r = e2e.call("DELETE", ME, s)
        self.assertEqual((r.status, r.body), (204, b""), r.describe())
        self.assert_gone(s, it["id"])

    def test_kept_answers_go_with_the_account(self):
        """A PATCH of a user with an Idempotency-Key keeps its answer (the
        whole user) for a day: it goes with the account, whoever sent it."""
        s, email, phone = user_with_email_and_phone()
        admin = e2e.make_admin(e2e.login())
        other = e2e.login()
        for who, key in ((s, "own-" + uniq()), (admin, "admin-" + uniq())):
            r = e2e.call("PATCH", "%s/%d" % (USERS, s.uid), who,
                         {"name": "Kept " + uniq()},
                         headers={"Idempotency-Key": key})
            self.assertIn(email, self.assert_envelope(r, 200)["data"]["email"])
        # The admin's kept answer about someone else stays.
        r = e2e.call("PATCH", "%s/%d" % (USERS, other.uid), admin,
                     {"name": "Other " + uniq()},
                     headers={"Idempotency-Key": "other-" + uniq()})
        self.assert_envelope(r, 200)
        showing = ("SELECT count(*) FROM idempotency WHERE body LIKE '%%%s%%' "
                   "OR body LIKE '%%%s%%'" % (email, phone[-11:]))
        self.assertEqual(e2e.psql_value(showing), "2", "control")
        kept = e2e.psql_value("SELECT count(*) FROM idempotency")
        r = e2e.call("DELETE", ME, s)
        self.assertEqual(r.status, 204, r.describe())
        self.assertEqual(e2e.psql_value(showing), "0",
                         "a deleted user's e-mail or phone is still kept")
        self.assertEqual(int(e2e.psql_value("SELECT count(*) FROM "
                                            "idempotency")), int(kept) - 2)

    def test_delete_through_users_and_wxappctl(self):
        admin = e2e.make_admin(e2e.login())
        a, b = e2e.login(), e2e.login()
        ia, ib = self.item(a), self.item(b)
        self.assert_refused(e2e.call("DELETE", "%s/%d" % (USERS, a.uid), b),
                            40300)
        r = e2e.call("DELETE", "%s/%d" % (USERS, a.uid), admin)
        self.assertEqual(r.status, 204, r.describe())
        self.assert_gone(a, ia["id"])
        rc, out, err = e2e.wxappctl_run("user", "delete", b.uid)
        self.assertEqual(rc, 0, err)
        self.assertIn("deleted", out)
        self.assert_gone(b, ib["id"])
        rc, _, err = e2e.wxappctl_run("user", "delete", b.uid)
        self.assertEqual(rc, 1)
        self.assertIn("no user", err)


# ---------------------------------------------------------------------------
# 3. Small things a first user tripped over
# ---------------------------------------------------------------------------

class Tripped(Base):

    def test_a_post_without_a_body_is_not_411(self):
        s = e2e.login()
        r = e2e.request("POST", DATA, body=None, content_length=None,
                        headers=s.auth(**{"Content-Type": "application/json"}))
        self.assert_envelope(r, 400, 40001, message_contains="empty")

    def test_wxappctl_on_a_user_that_does_not_exist(self):
        absent = int(e2e.psql_value("SELECT max(id) FROM users")) + 100000
        for args in (("token", "issue", absent), ("user", "revoke", absent),
                     ("user", "grant", absent, "admin"),
                     ("user", "delete", absent), ("user", "show", absent)):
            with self.subTest(args=args):
                rc, out, err = e2e.wxappctl_run(*args)
                self.assertEqual(rc, 1, "%r: %s %s" % (args, out, err))
                self.assertIn("no user", err)
                self.assertEqual(out, "")

    def test_token_issue_and_revoke(self):
        s = e2e.login()
        rc, out, err = e2e.wxappctl_run("token", "issue", s.uid)
        self.assertEqual(rc, 0, err)
        tok = out.strip()
        self.assert_envelope(e2e.call("GET", ME, None, headers=e2e.bearer(
            tok)), 200)
        rc, _, err = e2e.wxappctl_run("user", "revoke", s.uid)
        self.assertEqual(rc, 0, err)
        for t in (tok, s.access):
            self.assert_refused(e2e.call("GET", ME, None,
                                         headers=e2e.bearer(t)), 40102)
        # A login right after works, within the same second too.
        s2 = e2e.login(s.code.split("-")[1])
        self.assertEqual(s2.uid, s.uid)
        self.assert_envelope(e2e.call("GET", ME, s2), 200)

    def test_seed_refuses_a_real_database(self):
        e2e.login()             # a WeChat user exists
        rc, out, err = e2e.wxappctl_run("seed", "--users", "10")
        self.assertEqual(rc, 1, out)
        self.assertIn("--force", err)
        # Forced, it still gives no profile to a real user.
        real = e2e.psql("SELECT id FROM users WHERE openid IS NOT NULL AND "
                        "id % 3 = 0 AND id NOT IN (SELECT user_id FROM "
                        "user_profiles)")
        while not real:
            e2e.login()
            real = e2e.psql("SELECT id FROM users WHERE openid IS NOT NULL "
                            "AND id % 3 = 0 AND id NOT IN (SELECT user_id "
                            "FROM user_profiles)")
        rc, out, err = e2e.wxappctl_run("seed", "--force")
        self.assertEqual(rc, 0, err)
        ids = ",".join(r[0] for r in real)
        self.assertEqual(e2e.psql_value("SELECT count(*) FROM user_profiles "
                                        "WHERE user_id IN (%s)" % ids), "0")


# ---------------------------------------------------------------------------
# 4. Every error nginx produces is the envelope, over HTTP/2 too
# ---------------------------------------------------------------------------

class NginxErrorsOverH2(e2e.TestCase):

    def h2(self, *a, **kw):
        return e2e.h2_request(*a, **kw)

    def test_400(self):
        r = self.h2("GET", "/ping", headers={"Host": "bad/host"})
        self.assert_envelope(r, 400, 40000)

    def test_413(self):
        r = self.h2("POST", "/ping", body=b"x" * 70000,
                    headers={"Content-Type": "application/json"})
        self.assert_envelope(r, 413, 41300)

    def test_414(self):
        for proto in ("h2", "http/1.1"):
            with self.subTest(proto):
                path = "/ping?q=" + "a" * 20000
                r = self.h2("GET", path) if proto == "h2" else e2e.get(path)
                self.assert_envelope(r, 414, 41400)

    def test_431_header_too_large(self):
        # HTTP/1.1: a header line beyond large_client_header_buffers.
        host = e2e.HOST_HEADER.encode()
        r = e2e.raw_request(b"GET " + e2e.PREFIX.encode() + b"/ping HTTP/1.1"
                            b"\r\nHost: " + host + b"\r\nX-Big: " +
                            b"b" * 40000 + b"\r\nConnection: close\r\n\r\n")
        self.assert_envelope(r, 431, 43100)

    def test_header_too_large_over_http2_is_a_connection_error(self):
        # The limit README states: nginx 1.22 refuses a header field beyond
        # large_client_header_buffers while it decodes HPACK, for the whole
        # connection (GOAWAY, ENHANCE_YOUR_CALM), before any location could
        # answer.  Random bytes, so that HPACK cannot shrink them below it.
        big = base64.b64encode(os.urandom(45000)).decode()[:60000]
        cmd = ["curl", "-sk", "--http2", "-v", "-o", "/dev/null",
               "-H", "X-Big: " + big, e2e.BASE_URL + "/ping"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertIn(b"GOAWAY", p.stderr, p.stderr[-300:])
        # The next connection is served as ever.
        self.assert_envelope(self.h2("GET", "/ping"), 200)

    def test_429_edge_limit(self):
        # One HTTP/2 connection, one client address beyond loopback's
        # exemption, more requests than the zone's burst.
        url = e2e.BASE_URL + "/ping"
        cmd = ["curl", "-sk", "--http2", "-H", "X-Forwarded-For: 198.51.100.%d"
               % secrets.randbelow(250), "-w", "\n%{http_version} "
               "%{http_code} %{content_type}\n"] + [url] * 180
        p = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=60)
        out = p.stdout.decode()
        tails = re.findall(r"^(\S+) (\d{3}) (.*)$", out, re.M)
        self.assertEqual(len(tails), 180, out[-300:])
        limited = [t for t in tails if t[1] == "429"]
        self.assertTrue(limited, "no 429 in 180 quick requests")
        for version, _, ctype in limited:
            self.assertEqual((version, ctype), ("2", e2e.JSON_CT))
        bodies = re.findall(r'\{"code":42900,"data":null,"message":"[^"]*"\}',
                            out)
        self.assertEqual(len(bodies), len(limited), out[-300:])

    def test_502_503_no_responder(self):
        e2e.need_stack()
        if e2e.stack_env().get("WECHAT_SOCKETS", "1") == "0":
            self.skipTest("no WeChat pool of its own to stop")
        e2e.svc("stop", "wechat-pool")
        self.addCleanup(e2e.svc, "start", "wechat-pool")
        r = self.h2("POST", "/api/v1/user/login", body=b'{"code":"x"}',
                    headers={"Content-Type": "application/json"})
        self.assert_envelope(r, 503, 50300)

    def test_504_responders_too_slow(self):
        """Every main responder stopped (SIGSTOP): nginx times out on each
        socket (fastcgi_read_timeout) and answers 504, as the envelope."""
        pids = main_pool_pids()
        if not pids:
            self.skipTest("no responder of the main pool found")
        for pid in pids:
            e2e.kill(pid, 19)
        try:
            r = self.h2("GET", "/ping", timeout=30)
        finally:
            for pid in pids:
                e2e.kill(pid, 18)
        self.assert_envelope(r, 503, 50300)


def main_pool_pids():
    """Responders of the main pool: children of the supervisors whose pid
    files are sock/wxapp-K.pid."""
    import glob
    import os
    sups = set()
    for f in glob.glob(os.path.join(e2e.RUN_DIR, "sock", "wxapp-[0-9]*.pid")):
        try:
            with open(f) as fh:
                sups.add(int(fh.read().strip()))
        except (OSError, ValueError):
            continue
    out = []
    for pid in e2e.responder_pids():
        try:
            with open("/proc/%d/stat" % pid) as fh:
                ppid = int(fh.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in sups:
            out.append(pid)
    return out
