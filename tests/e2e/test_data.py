"""End-to-end: the business data API, its Redis read-through cache and
conditional GET (issue 4 section 6), through nginx.

Writes need an access token: the module logs in once through the WeChat
stand-in, as a user made an admin (wxappctl user grant), since creating
users is for admins; who may do what is test_authz's.  Proofs that a request ran no PostgreSQL query read the `calls`
of the responder's prepared statements in pg_stat_statements; those tests
are skipped when the stack's PostgreSQL does not preload it.
"""

import gzip
import json
import os
import secrets
import threading
import time
from email.utils import formatdate, parsedate_to_datetime

import e2elib as e2e

NONCE = secrets.token_hex(4)
_seq = [0]


def uniq():
    _seq[0] += 1
    return "%s%d" % (NONCE, _seq[0])


USERS = "/api/v1/users"
DATA = "/api/v1/data"
LIST = "/api/v1/data/list"

# A user as anyone sees it, and in full (itself, admins).
USER_KEYS = {"id", "name", "avatar_url"}
USER_FULL_KEYS = USER_KEYS | {"email", "phone", "role", "created_at",
                              "updated_at"}
ITEM_KEYS = {"id", "title", "summary", "cover_url", "category", "status",
             "owner_id", "created_at", "updated_at"}

_token = {}


def access_token():
    """A Bearer token for writes: one login per module run (renewed when
    near expiry)."""
    if _token.get("exp", 0) > time.time() + 60:
        return _token["token"]
    e2e.wechat_base()       # skip without the stand-in
    e2e.clear_rate_limits()
    c = "user-editor%s-%s" % (NONCE, uniq())
    e2e.LOGIN_CODES.append(c)
    r = e2e.post_json("/api/v1/user/login", {"code": c})
    if r.status != 200:
        raise AssertionError("cannot log in for writes: " + r.describe())
    d = r.json()["data"]
    e2e.wxappctl("user", "grant", d["user"]["id"], "admin")
    _token.update(token=d["access_token"], exp=time.time() + d["expires_in"],
                  uid=d["user"]["id"])
    return _token["token"]


def auth():
    return e2e.bearer(access_token())


_seeded = []


def seeded():
    if not _seeded:
        e2e.ensure_seeded()
        _seeded.append(True)


# -- pg_stat_statements ------------------------------------------------------

_pgss = {}


def pgss_reason():
    """None when pg_stat_statements can be read, else why not."""
    if "reason" not in _pgss:
        libs = e2e.psql_value("SHOW shared_preload_libraries") or ""
        if "pg_stat_statements" not in [s.strip() for s in libs.split(",")]:
            _pgss["reason"] = (
                "pg_stat_statements is not loaded by the stack's PostgreSQL "
                "(shared_preload_libraries = %r): spawn/wxapp-stack must add "
                "shared_preload_libraries = 'pg_stat_statements' to "
                "postgresql.conf so tests can count the queries a request "
                "runs (cache hit: none; stampede: one)" % libs)
        else:
            e2e.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            _pgss["reason"] = None
    return _pgss["reason"]


# The responder's statements (app/stmts.c) as pg_stat_statements shows them
# (literals become $n, so match around them).
STMTS = {
    "items_page": "query LIKE 'SELECT %FROM items WHERE status = % ORDER BY "
                  "id DESC LIMIT $1 OFFSET $2' AND query NOT LIKE '%category =%'",
    "items_count": "query LIKE 'SELECT count(*) FROM items WHERE status = %' "
                   "AND query NOT LIKE '%category%'",
    "item_get": "query LIKE 'SELECT %FROM items WHERE id = $1'",
    "user_get": "query LIKE 'SELECT %FROM users WHERE id = $1'",
    "profile_get": "query LIKE 'SELECT %FROM user_profiles WHERE user_id = $1'",
}


def calls(stmt):
    v = e2e.psql_value(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
        "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = "
        "current_database() AND " + STMTS[stmt])
    return int(v or 0)


def get(path, token=False, **kw):
    """GET path, anonymously unless token is set (as the module's admin)."""
    e2e.clear_rate_limits()
    if token:
        kw["headers"] = dict(kw.get("headers") or {}, **auth())
    return e2e.get(path, **kw)


def write(method, path, body=None, token=True):
    e2e.clear_rate_limits()
    hdrs = auth() if token else {}
    if body is None:
        return e2e.request(method, path, headers=hdrs)
    hdrs = dict(hdrs, **{"Content-Type": "application/json"})
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body, ensure_ascii=False)
    return e2e.request(method, path, body=body, headers=hdrs)


class Base(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()
        seeded()
        e2e.clear_rate_limits()

    def create_user(self, name=None, email=None):
        r = write("POST", USERS, {"name": name or "User " + uniq(),
                                  "email": email or "u%s@example.com" % uniq()})
        return self.assert_envelope(r, 201)["data"]

    def create_item(self, **fields):
        body = {"title": "Item " + uniq(), "category": "food"}
        body.update(fields)
        r = write("POST", DATA, body)
        return self.assert_envelope(r, 201)["data"]

    def item_list(self, query="page=1&page_size=5"):
        r = get(LIST + "?" + query)
        return r, self.assert_envelope(r, 200)["data"]


# ---------------------------------------------------------------------------
# /api/v1/users
# ---------------------------------------------------------------------------

class Users(Base):

    def test_crud(self):
        email = "Alice.%s@Example.COM" % uniq()
        r = write("POST", USERS, {"name": "  Alice Wang\t", "email": email})
        d = self.assert_envelope(r, 201)["data"]
        self.assertEqual(set(d), USER_FULL_KEYS, r.describe())
        self.assertEqual(d["name"], "Alice Wang", "name is trimmed")
        self.assertEqual(d["email"], email.lower(), "email is lower-cased")
        self.assertEqual(d["role"], "user")
        self.assertEqual(r.header("Location"), "%s/%d" % (USERS, d["id"]))
        uid = d["id"]

        g = self.assert_envelope(get("%s/%d" % (USERS, uid), token=True),
                                 200)["data"]
        self.assertEqual(g, d, "an admin sees the whole user")
        g = self.assert_envelope(get("%s/%d" % (USERS, uid)), 200)["data"]
        self.assertEqual(g, {k: d[k] for k in USER_KEYS}, "others do not")

        r = write("PATCH", "%s/%d" % (USERS, uid), {"name": "爱丽丝"})
        p = self.assert_envelope(r, 200)["data"]
        self.assertEqual((p["name"], p["email"]), ("爱丽丝", email.lower()))
        g = self.assert_envelope(get("%s/%d" % (USERS, uid)), 200)["data"]
        self.assertEqual(g["name"], "爱丽丝")

        r = write("DELETE", "%s/%d" % (USERS, uid))
        self.assertEqual(r.status, 204, r.describe())
        self.assertEqual(r.body, b"", r.describe())
        self.assert_envelope(get("%s/%d" % (USERS, uid)), 404, 40400)
        self.assert_envelope(write("DELETE", "%s/%d" % (USERS, uid)), 404, 40400)
        self.assert_envelope(write("PATCH", "%s/%d" % (USERS, uid),
                                   {"name": "x"}), 404, 40400)

    def test_writes_need_a_token(self):
        for method, path, body in (("POST", USERS, {"name": "a",
                                                    "email": "a@b.cd"}),
                                   ("PATCH", USERS + "/1", {"name": "a"}),
                                   ("DELETE", USERS + "/1", None)):
            with self.subTest(method=method):
                self.assert_envelope(write(method, path, body, token=False),
                                     401, 40100)

    def test_name_rules(self):
        ok = [("64 characters", "名" * 64, "名" * 64),
              ("trimmed", " \t Bob \n", "Bob"),
              ("one character", "x", "x")]
        for what, name, want in ok:
            with self.subTest(what):
                d = self.create_user(name=name)
                self.assertEqual(d["name"], want)
        bad = [("missing", None), ("empty", ""), ("only blanks", "  \t "),
               ("65 characters", "名" * 65), ("control character", "a\x01b"),
               ("DEL", "a\x7fb"), ("inner newline", "a\nb"),
               ("not a string", 42), ("null", "null")]
        for what, name in bad:
            with self.subTest(what):
                body = {"email": "n%s@example.com" % uniq()}
                if name == "null":
                    body["name"] = None
                elif name is not None:
                    body["name"] = name
                self.assert_envelope(write("POST", USERS, body), 400, 40002,
                                     message_contains="name")
        with self.subTest("invalid UTF-8"):
            raw = (b'{"name":"a\xff\xfeb","email":"x%s@example.com"}'
                   % uniq().encode())
            r = write("POST", USERS, raw)
            self.assertEqual(r.status, 400, r.describe())
            self.assertIn(r.json()["code"], (40001, 40002), r.describe())

    def test_email_rules(self):
        domain = "b" * 61 + "." + "c" * 61 + "." + "d" * 61 + ".com"
        u = uniq()
        long_ok = ("a" * (64 - len(u))) + u + "@" + domain
        self.assertEqual(len(long_ok), 254)
        with self.subTest("254 characters ok"):
            d = self.create_user(email=long_ok)
            self.assertEqual(d["email"], long_ok)
        with self.subTest("lower-cased"):
            d = self.create_user(email="MiXeD.%s@ExAmPle.Org" % uniq())
            self.assertEqual(d["email"], d["email"].lower())
        bad = [("no @", "user.example.com"), ("two @", "a@b@example.com"),
               ("empty local part", "@example.com"),
               ("no dot in domain", "user@localhost"),
               ("empty domain", "user@"), ("empty label", "user@a..com"),
               ("leading hyphen", "user@-bad.com"),
               ("trailing hyphen", "user@bad-.com"),
               ("underscore", "user@exa_mple.com"),
               ("space", "us er@example.com"),
               ("local part of 65", "a" * 65 + "@example.com"),
               ("255 characters", "a" + long_ok),
               ("not a string", 7)]
        for what, email in bad:
            with self.subTest(what):
                r = write("POST", USERS, {"name": "n", "email": email})
                self.assert_envelope(r, 400, 40002, message_contains="email")
        with self.subTest("missing"):
            self.assert_envelope(write("POST", USERS, {"name": "n"}), 400, 40002,
                                 message_contains="email")

    def test_duplicate_email_and_unknown_fields(self):
        email = "dup%s@example.com" % uniq()
        a = self.create_user(email=email)
        with self.subTest("duplicate, other case"):
            r = write("POST", USERS, {"name": "b", "email": email.upper()})
            self.assert_envelope(r, 409, 40900, message_contains="email")
        b = self.create_user()
        with self.subTest("PATCH to a taken email"):
            r = write("PATCH", "%s/%d" % (USERS, b["id"]), {"email": email})
            self.assert_envelope(r, 409, 40900)
        with self.subTest("unknown field"):
            r = write("POST", USERS, {"name": "n", "email": "z%s@example.com"
                                      % uniq(), "age": 3})
            self.assert_envelope(r, 400, 40002, message_contains="age")
        with self.subTest("PATCH unknown field"):
            r = write("PATCH", "%s/%d" % (USERS, a["id"]), {"name": "n", "x": 1})
            self.assert_envelope(r, 400, 40002, message_contains="x")
        with self.subTest("PATCH nothing"):
            self.assert_envelope(write("PATCH", "%s/%d" % (USERS, a["id"]), {}),
                                 400, 40002)
        with self.subTest("PATCH invalid name"):
            r = write("PATCH", "%s/%d" % (USERS, a["id"]), {"name": "  "})
            self.assert_envelope(r, 400, 40002, message_contains="name")
        with self.subTest("PATCH email only"):
            e2 = "Other%s@Example.com" % uniq()
            r = write("PATCH", "%s/%d" % (USERS, a["id"]), {"email": e2})
            d = self.assert_envelope(r, 200)["data"]
            self.assertEqual((d["name"], d["email"]), (a["name"], e2.lower()))
        with self.subTest("body not an object"):
            self.assert_envelope(write("POST", USERS, "[1]"), 400, 40001)

    def test_ids(self):
        absent = int(e2e.psql_value("SELECT coalesce(max(id), 0) FROM users")) \
            + 1000000
        for bad in ("0", "-1", "abc", "1.5", "1e3", "99999999999999999999"):
            with self.subTest(id=bad):
                self.assert_envelope(get("%s/%s" % (USERS, bad)), 400, 40002,
                                     message_contains="id")
                self.assert_envelope(write("PATCH", "%s/%s" % (USERS, bad),
                                           {"name": "x"}), 400, 40002)
                self.assert_envelope(write("DELETE", "%s/%s" % (USERS, bad)),
                                     400, 40002)
        with self.subTest("absent"):
            b = self.assert_envelope(get("%s/%d" % (USERS, absent)), 404, 40400)
            self.assertIsNone(b["data"])
            self.assert_envelope(write("DELETE", "%s/%d" % (USERS, absent)),
                                 404, 40400)

    def test_pagination(self):
        r = get(USERS)
        d = self.assert_envelope(r, 200)["data"]
        self.assertEqual(set(d), {"items", "page", "page_size", "total"})
        self.assertEqual((d["page"], d["page_size"], len(d["items"])), (1, 20, 20))
        self.assertEqual(d["total"], int(e2e.psql_value("SELECT count(*) FROM users")))
        ids = [u["id"] for u in d["items"]]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(set(d["items"][0]), USER_KEYS)

        d100 = self.assert_envelope(get(USERS + "?page_size=100"), 200)["data"]
        self.assertEqual(len(d100["items"]), 100)
        p2 = self.assert_envelope(get(USERS + "?page=2&page_size=20"), 200)["data"]
        self.assertEqual([u["id"] for u in p2["items"]],
                         [u["id"] for u in d100["items"][20:40]])

        for q in ("page=0", "page=-1", "page=x", "page_size=0", "page_size=101",
                  "page_size=", "after=0", "after=x",
                  "page=1&after=%d" % ids[-1]):
            with self.subTest(query=q):
                self.assert_envelope(get(USERS + "?" + q), 400, 40002)

        # Keyset: after the last id of page 1 comes page 2.
        k = self.assert_envelope(get("%s?after=%d&page_size=20"
                                     % (USERS, ids[-1])), 200)["data"]
        self.assertEqual(set(k), {"items", "page_size", "next_after"})
        self.assertEqual([u["id"] for u in k["items"]],
                         [u["id"] for u in p2["items"]])
        self.assertEqual(k["next_after"], k["items"][-1]["id"])
        # The last page: next_after null.
        last = int(e2e.psql_value("SELECT max(id) FROM users"))
        k = self.assert_envelope(get("%s?after=%d" % (USERS, last - 1)), 200)["data"]
        self.assertEqual(([u["id"] for u in k["items"]], k["next_after"]),
                         ([last], None))

    def test_include_profile(self):
        row = e2e.psql("SELECT user_id, city, gender, avatar_url, bio FROM "
                       "user_profiles ORDER BY user_id LIMIT 1")
        self.assertTrue(row, "the seed gives some users a profile")
        uid, city, gender, avatar, bio = row[0]
        r = get("%s/%s?include=profile" % (USERS, uid))
        d = self.assert_envelope(r, 200)["data"]
        self.assertEqual(set(d), USER_KEYS | {"profile"})
        self.assertEqual(d["profile"], {"city": city, "gender": int(gender),
                                        "avatar_url": avatar, "bio": bio})
        d = self.assert_envelope(get("%s/%s" % (USERS, uid)), 200)["data"]
        self.assertNotIn("profile", d)
        self.assertEqual(set(d), USER_KEYS)

        nop = e2e.psql_value("SELECT id FROM users u WHERE NOT EXISTS (SELECT 1 "
                             "FROM user_profiles p WHERE p.user_id = u.id) "
                             "ORDER BY id LIMIT 1")
        d = self.assert_envelope(get("%s/%s?include=profile" % (USERS, nop)),
                                 200)["data"]
        self.assertIsNone(d["profile"])
        self.assert_envelope(get("%s/%s?include=friends" % (USERS, uid)), 400,
                             40002, message_contains="include")

    def test_no_profile_query_without_include(self):
        reason = pgss_reason()
        if reason:
            self.skipTest(reason)
        u = self.create_user()          # a fresh entry: a cache miss
        p0, g0 = calls("profile_get"), calls("user_get")
        self.assert_envelope(get("%s/%d" % (USERS, u["id"])), 200)
        self.assertEqual(calls("user_get"), g0 + 1)
        self.assertEqual(calls("profile_get"), p0,
                         "no profile query without ?include=profile")
        self.assert_envelope(get("%s/%d?include=profile" % (USERS, u["id"])), 200)
        self.assertEqual(calls("profile_get"), p0 + 1)


# ---------------------------------------------------------------------------
# /api/v1/data
# ---------------------------------------------------------------------------

class Items(Base):

    def test_crud(self):
        body = {"title": "  标题 %s " % uniq(), "summary": "line 1\nline 2\tend",
                "cover_url": "https://img.example.com/c.jpg",
                "category": "travel", "status": "draft"}
        r = write("POST", DATA, body)
        d = self.assert_envelope(r, 201)["data"]
        self.assertEqual(set(d), ITEM_KEYS)
        self.assertEqual(r.header("Location"), "%s/%d" % (DATA, d["id"]))
        self.assertEqual(d["title"], body["title"].strip())
        for k in ("summary", "cover_url", "category", "status"):
            self.assertEqual(d[k], body[k], k)
        self.assertEqual(d["owner_id"], _token["uid"], "the creator owns it")
        iid = d["id"]
        # A draft: its owner sees it.
        self.assertEqual(self.assert_envelope(get("%s/%d" % (DATA, iid),
                                                  token=True), 200)["data"], d)

        d2 = self.create_item()
        self.assertEqual((d2["status"], d2["summary"], d2["cover_url"]),
                         ("published", "", ""), "defaults")

        r = write("PATCH", "%s/%d" % (DATA, iid), {"status": "archived",
                                                   "cover_url": ""})
        p = self.assert_envelope(r, 200)["data"]
        self.assertEqual((p["status"], p["cover_url"], p["title"]),
                         ("archived", "", d["title"]))
        self.assertEqual(self.assert_envelope(get("%s/%d" % (DATA, iid),
                                                  token=True), 200)["data"], p)

        r = write("DELETE", "%s/%d" % (DATA, iid))
        self.assertEqual((r.status, r.body), (204, b""), r.describe())
        self.assert_envelope(get("%s/%d" % (DATA, iid)), 404, 40400)
        self.assert_envelope(write("DELETE", "%s/%d" % (DATA, iid)), 404, 40400)
        self.assert_envelope(write("PATCH", "%s/%d" % (DATA, iid),
                                   {"title": "x"}), 404, 40400)
        with self.subTest("writes need a token"):
            self.assert_envelope(write("POST", DATA, {"title": "t",
                                                      "category": "food"},
                                       token=False), 401, 40100)
            self.assert_envelope(write("DELETE", "%s/%d" % (DATA, d2["id"]),
                                       token=False), 401, 40100)

    def test_validation(self):
        cases = [
            ("title missing", {"category": "food"}, "title"),
            ("title empty", {"title": " ", "category": "food"}, "title"),
            ("title 129", {"title": "题" * 129, "category": "food"}, "title"),
            ("title control", {"title": "a\nb", "category": "food"}, "title"),
            ("title number", {"title": 1, "category": "food"}, "title"),
            ("summary 1001", {"title": "t", "category": "food",
                              "summary": "s" * 1001}, "summary"),
            ("summary control", {"title": "t", "category": "food",
                                 "summary": "a\x02b"}, "summary"),
            ("category missing", {"title": "t"}, "category"),
            ("category empty", {"title": "t", "category": ""}, "category"),
            ("category upper", {"title": "t", "category": "Food"}, "category"),
            ("category space", {"title": "t", "category": "fo od"}, "category"),
            ("category 33", {"title": "t", "category": "a" * 33}, "category"),
            ("cover http", {"title": "t", "category": "food",
                            "cover_url": "http://x.example/c.jpg"}, "cover_url"),
            ("cover space", {"title": "t", "category": "food",
                             "cover_url": "https://x.example/a b.jpg"}, "cover_url"),
            ("cover quote", {"title": "t", "category": "food",
                             "cover_url": "https://x.example/\"a"}, "cover_url"),
            ("cover 513", {"title": "t", "category": "food",
                           "cover_url": "https://" + "a" * 505}, "cover_url"),
            ("status", {"title": "t", "category": "food", "status": "deleted"},
             "status"),
            ("unknown field", {"title": "t", "category": "food", "price": 1},
             "price"),
        ]
        for what, body, field in cases:
            with self.subTest(what):
                self.assert_envelope(write("POST", DATA, body), 400, 40002,
                                     message_contains=field)
        ok = [("title 128", {"title": "题" * 128, "category": "a" * 32}),
              ("summary 1000", {"title": "t", "category": "food_2-x",
                                "summary": "s" * 1000}),
              ("cover 512", {"title": "t", "category": "food",
                             "cover_url": "https://" + "a" * 504})]
        for what, body in ok:
            with self.subTest(what):
                self.assert_envelope(write("POST", DATA, body), 201)
        it = self.create_item()
        with self.subTest("PATCH nothing"):
            self.assert_envelope(write("PATCH", "%s/%d" % (DATA, it["id"]), {}),
                                 400, 40002)
        with self.subTest("PATCH bad status"):
            self.assert_envelope(write("PATCH", "%s/%d" % (DATA, it["id"]),
                                       {"status": "gone"}), 400, 40002,
                                 message_contains="status")

    def test_ids(self):
        for bad in ("0", "-3", "abc", "2.0", "99999999999999999999"):
            with self.subTest(id=bad):
                self.assert_envelope(get("%s/%s" % (DATA, bad)), 400, 40002,
                                     message_contains="id")
                self.assert_envelope(write("DELETE", "%s/%s" % (DATA, bad)),
                                     400, 40002)
        absent = int(e2e.psql_value("SELECT coalesce(max(id), 0) FROM items")) \
            + 1000000
        b = self.assert_envelope(get("%s/%d" % (DATA, absent)), 404, 40400)
        self.assertIsNone(b["data"])

    def test_pagination_and_filter(self):
        r, d = self.item_list("")
        self.assertEqual(set(d), {"items", "page", "page_size", "total"})
        self.assertEqual((d["page"], d["page_size"], len(d["items"])), (1, 20, 20))
        self.assertEqual(d["total"], int(e2e.psql_value(
            "SELECT count(*) FROM items WHERE status = 'published'")))
        ids = [i["id"] for i in d["items"]]
        self.assertEqual(ids, sorted(ids, reverse=True), "newest first")
        self.assertTrue(all(i["status"] == "published" for i in d["items"]))

        for q in ("page=0", "page_size=0", "page_size=101", "page=1&after=5",
                  "after=-1", "category=Food", "category=", "category=a%20b"):
            with self.subTest(query=q):
                self.assert_envelope(get(LIST + "?" + q), 400, 40002)

        _, p2 = self.item_list("page=2&page_size=20")
        _, k = self.item_list("after=%d&page_size=20" % ids[-1])
        self.assertEqual(set(k), {"items", "page_size", "next_after"})
        self.assertEqual([i["id"] for i in k["items"]],
                         [i["id"] for i in p2["items"]])
        self.assertEqual(k["next_after"], k["items"][-1]["id"])
        _, k = self.item_list("after=%d" % min(ids))
        self.assertTrue(all(i["id"] < min(ids) for i in k["items"]))

        _, c = self.item_list("category=music&page_size=100")
        self.assertTrue(c["items"])
        self.assertTrue(all(i["category"] == "music" for i in c["items"]))
        self.assertEqual(c["total"], int(e2e.psql_value(
            "SELECT count(*) FROM items WHERE status = 'published' AND "
            "category = 'music'")))
        _, kc = self.item_list("category=music&after=%d&page_size=10"
                               % c["items"][9]["id"])
        self.assertEqual([i["id"] for i in kc["items"]],
                         [i["id"] for i in c["items"][10:20]])
        self.assertEqual(len(self.item_list("page_size=100")[1]["items"]), 100)


# ---------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------

class Cache(Base):

    def need_pgss(self):
        reason = pgss_reason()
        if reason:
            self.skipTest(reason)

    def test_hit_runs_no_query(self):
        self.need_pgss()
        url = LIST + "?page=1&page_size=7"
        it = self.create_item()         # a write: every items entry is gone
        c0 = calls("items_page")
        first = get(url)
        self.assert_envelope(first, 200)
        self.assertEqual(calls("items_page"), c0 + 1,
                         "control: a miss runs the page query")
        self.assertFalse(first.header("ETag").startswith("W/"),
                         "without gzip the ETag is strong: " + first.describe())
        get("%s/%d" % (DATA, it["id"]))
        before = {s: calls(s) for s in ("items_page", "items_count", "item_get")}
        bodies = set()
        for _ in range(3):
            r = get(url)
            self.assert_envelope(r, 200)
            bodies.add((r.body, r.header("ETag")))
            self.assert_envelope(get("%s/%d" % (DATA, it["id"])), 200)
        r = get(url, headers={"If-None-Match": r.header("ETag")})
        self.assertEqual(r.status, 304, r.describe())
        after = {s: calls(s) for s in before}
        self.assertEqual(after, before, "cache hits (and a 304) must not query "
                         "PostgreSQL")
        self.assertEqual(len(bodies), 1, "hits answer the same bytes and ETag")

    def test_invalidation_items(self):
        r1, d1 = self.item_list()
        it = self.create_item(title="Fresh " + uniq())
        r2, d2 = self.item_list()
        self.assertEqual(d2["items"][0]["id"], it["id"], "create shows at once")
        self.assertEqual(d2["total"], d1["total"] + 1)
        self.assertNotEqual(r2.header("ETag"), r1.header("ETag"))
        self.assertEqual(self.assert_envelope(get("%s/%d" % (DATA, it["id"])),
                                              200)["data"]["title"], it["title"])

        new_title = "Patched " + uniq()
        self.assert_envelope(write("PATCH", "%s/%d" % (DATA, it["id"]),
                                   {"title": new_title}), 200)
        r3, d3 = self.item_list()
        self.assertEqual(d3["items"][0]["title"], new_title, "patch shows at once")
        self.assertNotEqual(r3.header("ETag"), r2.header("ETag"))
        self.assertEqual(self.assert_envelope(get("%s/%d" % (DATA, it["id"])),
                                              200)["data"]["title"], new_title)

        self.assert_envelope(write("PATCH", "%s/%d" % (DATA, it["id"]),
                                   {"status": "draft"}), 200)
        _, d4 = self.item_list()
        self.assertNotIn(it["id"], [i["id"] for i in d4["items"]],
                         "a draft leaves the list")
        self.assert_envelope(write("PATCH", "%s/%d" % (DATA, it["id"]),
                                   {"status": "published"}), 200)
        r5, d5 = self.item_list()
        self.assertEqual(d5["items"][0]["id"], it["id"])

        r = write("DELETE", "%s/%d" % (DATA, it["id"]))
        self.assertEqual(r.status, 204, r.describe())
        r6, d6 = self.item_list()
        self.assertNotIn(it["id"], [i["id"] for i in d6["items"]],
                         "delete shows at once")
        self.assertNotEqual(r6.header("ETag"), r5.header("ETag"))
        self.assertEqual(d6["total"], d1["total"])
        self.assert_envelope(get("%s/%d" % (DATA, it["id"])), 404, 40400)

    def test_invalidation_users(self):
        u = self.create_user()
        path = "%s/%d" % (USERS, u["id"])
        lpath = "%s?after=%d&page_size=1" % (USERS, u["id"] - 1)
        r1 = get(path)
        self.assertEqual(self.assert_envelope(r1, 200)["data"]["name"], u["name"])
        self.assertEqual(self.assert_envelope(get(lpath), 200)["data"]["items"][0]
                         ["name"], u["name"])
        t1 = self.assert_envelope(get(USERS), 200)["data"]["total"]
        self.create_user()
        self.assertEqual(self.assert_envelope(get(USERS), 200)["data"]["total"],
                         t1 + 1)
        self.assert_envelope(write("PATCH", path, {"name": "Renamed"}), 200)
        r2 = get(path)
        self.assertEqual(self.assert_envelope(r2, 200)["data"]["name"], "Renamed")
        self.assertNotEqual(r2.header("ETag"), r1.header("ETag"))
        self.assertEqual(self.assert_envelope(get(lpath), 200)["data"]["items"][0]
                         ["name"], "Renamed")
        self.assertEqual(write("DELETE", path).status, 204)
        self.assert_envelope(get(path), 404, 40400)

    def test_stampede(self):
        self.need_pgss()
        url = LIST + "?page=1&page_size=13"
        self.assert_envelope(get(url), 200)
        e2e.wxappctl("cache", "flush", "--collection", "items")
        before = (calls("items_page"), calls("items_count"))
        n = 20
        barrier = threading.Barrier(n)
        results, lock = [], threading.Lock()

        def one():
            try:
                barrier.wait(timeout=10)
                r = e2e.get(url)
            except Exception as exc:        # reported below
                r = exc
            with lock:
                results.append(r)

        e2e.clear_rate_limits()
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        after = (calls("items_page"), calls("items_count"))
        self.assertEqual(len(results), n)
        for r in results:
            self.assertIsInstance(r, e2e.Response, "request failed: %r" % (r,))
            self.assert_envelope(r, 200)
        self.assertEqual(len({r.body for r in results}), 1)
        self.assertEqual((after[0] - before[0], after[1] - before[1]), (1, 1),
                         "%d concurrent misses must rebuild once (items_page, "
                         "items_count calls %r -> %r)" % (n, before, after))

    def test_pages_after_a_write_share_one_count(self):
        """A write makes every page unreachable; the pages rebuilt after it
        count the list once, not once each (a large table's count costs
        far more than a page)."""
        def published():
            # count(id): not the statement counted (count(*)).
            return int(e2e.psql_value(
                "SELECT count(id) FROM items WHERE status = 'published'"))
        self.need_pgss()
        self.create_item()
        c0, p0 = calls("items_count"), calls("items_page")
        totals = set()
        for page in range(1, 5):
            r = get(LIST + "?page=%d&page_size=3" % page)
            totals.add(self.assert_envelope(r, 200)["data"]["total"])
        self.assertEqual(calls("items_page"), p0 + 4, "control: four misses")
        self.assertEqual(calls("items_count"), c0 + 1,
                         "four pages of one version: one count")
        self.assertEqual(len(totals), 1, totals)
        self.assertEqual(totals.pop(), published())
        # The next write: counted again, and right.
        self.create_item()
        r = get(LIST + "?page=2&page_size=3")
        self.assertEqual(calls("items_count"), c0 + 2)
        self.assertEqual(self.assert_envelope(r, 200)["data"]["total"], published())

    def test_negative_cache(self):
        self.need_pgss()
        absent = int(e2e.psql_value("SELECT coalesce(max(id), 0) FROM items")) \
            + 1000 + _seq[0]
        c0 = calls("item_get")
        for _ in range(3):
            r = get("%s/%d" % (DATA, absent))
            self.assert_envelope(r, 404, 40400, data=None,
                                 message="item %d not found" % absent)
        self.assertEqual(calls("item_get"), c0 + 1,
                         "three GETs of an absent item: one query")

    def test_negative_entry_dropped_on_create(self):
        """A 404 cached for the next id does not hide the item created there."""
        nxt = int(e2e.psql_value(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END"
            " FROM items_id_seq"))
        self.assert_envelope(get("%s/%d" % (DATA, nxt)), 404, 40400)
        it = self.create_item()
        if it["id"] != nxt:
            self.skipTest("another writer took id %d" % nxt)
        self.assertEqual(self.assert_envelope(get("%s/%d" % (DATA, nxt)), 200)
                         ["data"]["title"], it["title"])


def local_hits():
    """Answers the pool's responders gave from their own copies (GET /status)."""
    r = e2e.get("/status")
    if r.status != 200:
        raise AssertionError("GET /status: " + r.describe())
    return sum(s.get("local_hits", 0) for s in r.json()["data"]["pool"]["responders"])


def local_hits_by_responder():
    """Each responder's answers from copies, by process id."""
    r = e2e.get("/status")
    if r.status != 200:
        raise AssertionError("GET /status: " + r.describe())
    return {s["pid"]: s.get("local_hits", 0)
            for s in r.json()["data"]["pool"]["responders"]}


def main_responders():
    env = e2e.stack_env()
    return int(env.get("SOCKETS") or 2) * int(env.get("RESPONDERS") or 2)


class LocalCopies(Base):
    """The host's copies of cached answers (lib/nearcache.h), one per host
    in shared memory: used while valid, dropped on a write on this host
    (shared memory), on a write elsewhere (Redis' invalidation message),
    and when the invalidation connection is lost."""

    def warm(self, *paths):
        """Read each path often enough that every responder holds a copy."""
        for _ in range(4 * main_responders()):
            for p in paths:
                self.assert_envelope(get(p), 200)

    def titles(self, path, n):
        """The item titles n reads of path answer (a list or one item)."""
        seen = set()
        for _ in range(n):
            d = self.assert_envelope(get(path), 200)["data"]
            seen.add(d["items"][0]["title"] if "items" in d else d["title"])
        return seen

    def silent_update(self, item_id, title):
        """Change an item in PostgreSQL the way another host's responder
        would, without this host's shared memory knowing."""
        e2e.psql("UPDATE items SET title = '%s', updated_at = now() "
                 "WHERE id = %d" % (title, item_id))

    def test_hits_are_answered_from_copies(self):
        url = LIST + "?page=1&page_size=11"
        self.warm(url)
        h0 = local_hits()
        n = 40
        for _ in range(n):
            self.assert_envelope(get(url), 200)
        got = local_hits() - h0
        self.assertGreaterEqual(got, n - main_responders(),
                                "%d warm reads, only %d answered from the "
                                "responders' copies" % (n, got))

    def test_one_copy_serves_every_responder(self):
        """A fresh item read once: every later read, whichever responder
        serves it, is answered from that one copy.  With a copy per
        responder, each would have read Redis first.  A write elsewhere in
        the suite may outdate the copy meanwhile: up to three items."""
        n = 8 * main_responders()
        tries = []
        for _ in range(3):
            it = self.create_item(title="Shared " + uniq())
            one = "%s/%d" % (DATA, it["id"])
            # The responders have all heard of the write from Redis by now.
            time.sleep(0.3)
            self.assert_envelope(get(one), 200)     # read once, copied once
            before = local_hits_by_responder()
            for _ in range(n):
                self.assert_envelope(get(one), 200)
            after = local_hits_by_responder()
            hit = {pid: after[pid] - before.get(pid, 0) for pid in after
                   if after[pid] > before.get(pid, 0)}
            tries.append(hit)
            if len(hit) >= 2 and sum(hit.values()) == n:
                return
        self.fail("%d reads each time; from the host's copy, by responder: "
                  "%r (want all, over two responders or more)" % (n, tries))

    def test_write_on_this_host_drops_every_copy(self):
        it = self.create_item(title="Local " + uniq())
        one = "%s/%d" % (DATA, it["id"])
        lst = LIST + "?page=1&page_size=4"
        self.warm(one, lst)
        new = "Written " + uniq()
        self.assert_envelope(write("PATCH", one, {"title": new}), 200)
        n = 4 * main_responders()
        self.assertEqual(self.titles(one, n), {new},
                         "a responder answered its copy from before the write")
        self.assertEqual(self.titles(lst, n), {new})

    def test_write_on_another_host_drops_every_copy(self):
        it = self.create_item(title="Remote " + uniq())
        one = "%s/%d" % (DATA, it["id"])
        lst = LIST + "?page=1&page_size=4"
        self.warm(one, lst)
        new = "Elsewhere " + uniq()
        self.silent_update(it["id"], new)
        # Control: the change is not visible before the invalidation.
        self.assertEqual(self.titles(one, 2), {it["title"]},
                         "control: the cache did not answer")
        # What another host's responder does after its write: bump the
        # version in Redis (wxappctl does the same).  Only Redis'
        # invalidation message can tell this host's responders.
        e2e.wxappctl("cache", "flush", "--collection", "items")
        n = 4 * main_responders()
        self.assertEqual(self.titles(one, n), {new},
                         "a responder answered a copy after Redis reported "
                         "the write")
        self.assertEqual(self.titles(lst, n), {new})

    def test_lost_invalidation_connection_drops_every_copy(self):
        it = self.create_item(title="Lost " + uniq())
        one = "%s/%d" % (DATA, it["id"])
        self.warm(one)
        logf = e2e.log_file_path()
        mark = os.path.getsize(logf) if logf and os.path.exists(logf) else 0
        killed = int(e2e.redis_cli("CLIENT", "KILL", "TYPE", "pubsub"))
        self.assertGreaterEqual(killed, 1, "no invalidation connection to kill")
        new = "Unheard " + uniq()
        self.silent_update(it["id"], new)
        # This bump reaches no responder: their connections are gone.
        e2e.wxappctl("cache", "flush", "--collection", "items")
        self.assertEqual(self.titles(one, 4 * main_responders()), {new},
                         "a responder kept using its copies after losing "
                         "its invalidation connection")
        if logf:
            with open(logf, "rb") as f:
                f.seek(mark)
                self.assertIn(b"invalidation connection closed by redis",
                              f.read(), "the lost connection is not logged")
        # They connect again and copy again.
        self.warm(one)
        h0 = local_hits()
        self.titles(one, 20)
        self.assertGreater(local_hits() - h0, 0, "no copies after reconnecting")


# ---------------------------------------------------------------------------
# Conditional GET through nginx with gzip
# ---------------------------------------------------------------------------

def opaque(etag):
    return etag[2:] if etag and etag.startswith("W/") else etag


class Conditional(Base):

    GZ = {"Accept-Encoding": "gzip"}

    def cget(self, url, **hdrs):
        h = dict(self.GZ)
        h.update(hdrs)
        return get(url, headers=h)

    def assert_full(self, r):
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.header("Content-Encoding"), "gzip", r.describe())
        body = json.loads(gzip.decompress(r.body))
        self.assertEqual(body["code"], 0)
        self.assertTrue(r.header("ETag"), r.describe())
        self.assertRegex(opaque(r.header("ETag")), r'^"[^"]+"$')
        self.assertTrue(r.header("Last-Modified"), r.describe())
        self.assertTrue(r.header("Cache-Control"), r.describe())
        return body

    def assert_304(self, r, etag):
        self.assertEqual(r.status, 304, r.describe())
        self.assertEqual(r.body, b"", r.describe())
        self.assertEqual(opaque(r.header("ETag")), opaque(etag), r.describe())

    def test_if_none_match_and_if_modified_since(self):
        url = LIST + "?page=1&page_size=20"
        r1 = self.cget(url)
        self.assert_full(r1)
        etag, lm = r1.header("ETag"), r1.header("Last-Modified")
        self.assert_304(self.cget(url, **{"If-None-Match": etag}), etag)
        self.assert_304(self.cget(url, **{"If-None-Match": opaque(etag)}), etag)
        self.assert_304(self.cget(url, **{"If-None-Match": '"nope", ' + etag}),
                        etag)
        self.assert_304(self.cget(url, **{"If-None-Match": "*"}), etag)
        self.assert_304(self.cget(url, **{"If-Modified-Since": lm}), etag)
        self.assert_full(self.cget(url, **{"If-None-Match": '"nope"'}))
        self.assert_full(self.cget(url, **{"If-None-Match": '"nope"',
                                           "If-Modified-Since": lm}))
        older = formatdate(parsedate_to_datetime(lm).timestamp() - 86400,
                           usegmt=True)
        self.assert_full(self.cget(url, **{"If-Modified-Since": older}))

        # A write: the old validators no longer match.
        if parsedate_to_datetime(lm).timestamp() >= time.time() - 1.5:
            time.sleep(1.5)     # Last-Modified has one-second resolution
        self.create_item()
        r2 = self.cget(url, **{"If-None-Match": etag})
        self.assert_full(r2)
        self.assertNotEqual(opaque(r2.header("ETag")), opaque(etag))
        r3 = self.cget(url, **{"If-Modified-Since": lm})
        self.assert_full(r3)
        self.assert_304(self.cget(url, **{"If-None-Match": r2.header("ETag")}),
                        r2.header("ETag"))

    def test_item_conditional(self):
        it = self.create_item(summary="s" * 400)    # big enough to gzip
        url = "%s/%d" % (DATA, it["id"])
        r1 = self.cget(url)
        self.assert_full(r1)
        self.assert_304(self.cget(url, **{"If-None-Match": r1.header("ETag")}),
                        r1.header("ETag"))
        # Write in the second half of a second (updated_at = S.6..S.9), and
        # in a later second than the first version's Last-Modified.
        time.sleep(1.0 - time.time() % 1.0 + 0.6)
        r = write("PATCH", url, {"title": "Changed " + uniq()})
        p = self.assert_envelope(r, 200)["data"]
        r2 = self.cget(url, **{"If-None-Match": r1.header("ETag")})
        self.assert_full(r2)
        self.assertNotEqual(opaque(r2.header("ETag")), opaque(r1.header("ETag")))
        self.assert_full(self.cget(url, **{"If-Modified-Since":
                                           r1.header("Last-Modified")}))
        # Last-Modified is the updated_at (to the second), never later than
        # the modification nor than the answer's Date (RFC 9110 8.8.2.1).
        lm = parsedate_to_datetime(r2.header("Last-Modified"))
        date = parsedate_to_datetime(r2.header("Date"))
        upd = e2e.psql_value("SELECT updated_at FROM items WHERE id = %d"
                             % it["id"])
        self.assertEqual(lm.strftime("%Y-%m-%dT%H:%M:%SZ"), p["updated_at"],
                         "Last-Modified %r for an item updated at %s (API "
                         "updated_at %s); the answer's Date is %r"
                         % (r2.header("Last-Modified"), upd, p["updated_at"],
                            r2.header("Date")))
        self.assertLessEqual(lm, date)

    def test_if_modified_since_after_delete(self):
        """Deleting the newest item changes page 1, but its newest
        updated_at (the Last-Modified) goes back in time: a client that
        revalidates with If-Modified-Since must still get the new page."""
        url = LIST + "?page=1&page_size=5"
        self.create_item()
        time.sleep(1.1)
        it = self.create_item()
        r1 = self.cget(url)
        d1 = self.assert_full(r1)
        self.assertEqual(d1["data"]["items"][0]["id"], it["id"])
        lm = r1.header("Last-Modified")
        self.assertEqual(write("DELETE", "%s/%d" % (DATA, it["id"])).status, 204)
        r2 = self.cget(url, **{"If-Modified-Since": lm})
        self.assertEqual(r2.status, 200,
                         "page 1 changed (item %d deleted) but If-Modified-Since"
                         " %r got: %s; new Last-Modified %r"
                         % (it["id"], lm, r2.describe(),
                            r2.header("Last-Modified")))


class RedisDown(Base):

    def outage(self):
        """Stop Redis after an item was read (and cached), then read and
        write through the outage: (the item, its path, the new title,
        the item created during it)."""
        e2e.need_stack()
        it = self.create_item(title="Before " + uniq())
        path = "%s/%d" % (DATA, it["id"])
        self.assert_envelope(get(path), 200)
        self.assertEqual(self.item_list()[1]["items"][0]["id"], it["id"])
        token = access_token()
        e2e.svc("stop", "redis")
        self.addCleanup(self._redis_back)
        self.assertEqual(self.assert_envelope(get(path), 200)["data"]["title"],
                         it["title"], "a read without Redis comes from PostgreSQL")
        new_title = "During " + uniq()
        r = e2e.request("PATCH", path, body=json.dumps({"title": new_title}),
                        headers=dict(e2e.bearer(token),
                                     **{"Content-Type": "application/json"}))
        self.assert_envelope(r, 200)
        r = e2e.request("POST", DATA, body=json.dumps({"title": "New " + uniq(),
                                                      "category": "tech"}),
                        headers=dict(e2e.bearer(token),
                                     **{"Content-Type": "application/json"}))
        created = self.assert_envelope(r, 201)["data"]
        return it, path, new_title, created

    def test_reads_and_writes_are_served_without_redis(self):
        it, path, new_title, _ = self.outage()
        self.assert_envelope(self.item_list()[0], 200)
        self.assert_envelope(get(USERS), 200)
        self.assertEqual(self.assert_envelope(get(path), 200)["data"]["title"],
                         new_title, "a write during the outage is read back")

    def test_no_stale_read_and_caching_resumes_after_redis(self):
        it, path, new_title, created = self.outage()
        e2e.svc("start", "redis")
        ok, last, _ = e2e.wait_healthy(30)
        self.assertTrue(ok, "not healthy after Redis came back: "
                        + e2e.describe(last))

        # No stale read of what was written during the outage.
        self.assertEqual(self.assert_envelope(get(path), 200)["data"]["title"],
                         new_title)
        _, d = self.item_list()
        self.assertEqual([i["id"] for i in d["items"][:2]],
                         [created["id"], it["id"]])
        self.assertEqual(d["items"][1]["title"], new_title)

        # Caching resumes: the entry is back in Redis, and (with
        # pg_stat_statements) a repeated GET runs no query.
        def cached():
            get(path)
            keys = e2e.redis_cli("--scan", "--pattern",
                                 "wx:hc:items:*:one:%d:" % it["id"], check=False)
            return keys.strip()
        self.assertTrue(e2e.wait_for(cached, 10, 0.3),
                        "no cache entry for %s after Redis came back" % path)
        if pgss_reason() is None:
            # A responder that lost Redis during the outage invalidates
            # every collection when it next reaches Redis (httpcache_
            # recover): with nginx's kept connections, maybe only now.
            # Caching has resumed once three GETs in a row run no query.
            def three_cached():
                get(path)
                c0 = calls("item_get")
                for _ in range(3):
                    self.assert_envelope(get(path), 200)
                return calls("item_get") == c0
            self.assertTrue(e2e.wait_for(three_cached, 10, 0.2),
                            "caching did not resume: GET %s still runs "
                            "item_get" % path)

    def _redis_back(self):
        e2e.svc("start", "redis")
        e2e.wait_healthy(30)
