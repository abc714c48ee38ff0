"""MessagePack through the stack: a cached read asked for with
Accept: application/msgpack (or application/x-msgpack) answers the same
data as its JSON, in MessagePack, decoded here by python3-msgpack (an
implementation other than ours).  Each representation has its own cached
entry and ETag, 304s are per representation, every answer says
Vary: Accept, and JSON stays the default."""

import json
import unittest

import msgpack

import e2elib as e2e
from test_data import DATA, LIST, USERS, seeded, uniq, write

MP = "application/msgpack"


def vary(r):
    """Every name the answer's Vary headers list."""
    return {v.strip() for k, val in r.headers if k.lower() == "vary"
            for v in val.split(",")}


def get(path, accept=None, **hdrs):
    h = dict(hdrs)
    if accept is not None:
        h["Accept"] = accept
    e2e.clear_rate_limits()
    return e2e.get(path, headers=h)


class MessagePack(unittest.TestCase):

    def setUp(self):
        seeded()

    def check_same(self, path):
        js = get(path)
        mp = get(path, MP)
        self.assertEqual(js.status, 200, js.describe())
        self.assertEqual(mp.status, 200, mp.describe())
        self.assertTrue(js.header("Content-Type").startswith("application/json"))
        self.assertEqual(mp.header("Content-Type"), MP)
        decoded = msgpack.unpackb(mp.body, raw=False)
        self.assertEqual(decoded, json.loads(js.body))
        self.assertLess(len(mp.body), len(js.body))
        for r in (js, mp):
            self.assertIn("Accept", vary(r), r.describe())
        self.assertNotEqual(js.header("ETag"), mp.header("ETag"))
        return js, mp

    def test_a_list_and_an_item_in_messagepack(self):
        _, mp = self.check_same(LIST + "?page=1&page_size=20")
        items = msgpack.unpackb(mp.body, raw=False)["data"]["items"]
        self.assertTrue(items, "the seeded list is empty")
        self.check_same("%s/%d" % (LIST.rsplit("/", 1)[0], items[0]["id"]))
        self.check_same(USERS + "?page=1")

    def test_b_a_hit_is_the_stored_bytes_and_304_is_per_representation(self):
        path = LIST + "?page=2&page_size=5"
        first = get(path, MP)
        again = get(path, MP)
        self.assertEqual(first.body, again.body)
        self.assertEqual(first.header("ETag"), again.header("ETag"))
        # Its ETag is a MessagePack validator only.
        r = get(path, MP, **{"If-None-Match": first.header("ETag")})
        self.assertEqual(r.status, 304, r.describe())
        self.assertIn("Accept", vary(r))
        r = get(path, None, **{"If-None-Match": first.header("ETag")})
        self.assertEqual(r.status, 200, r.describe())
        self.assertTrue(r.header("Content-Type").startswith("application/json"))

    def test_c_negotiation(self):
        path = LIST + "?page=1&page_size=3"
        for accept, want in (
                (None, "json"), ("*/*", "json"), ("application/json", "json"),
                ("application/x-msgpack", "msgpack"),
                ("application/msgpack;q=0, */*", "json"),
                ("application/json;q=0.5, application/msgpack", "msgpack"),
                ("application/msgpack, application/json", "json"),
                ("text/html", "json")):
            r = get(path, accept)
            self.assertEqual(r.status, 200, r.describe())
            ctype = r.header("Content-Type")
            self.assertEqual(ctype == MP, want == "msgpack", "%r -> %s" % (accept, ctype))

    def test_d_a_write_invalidates_both(self):
        path = LIST + "?page=1&page_size=50"
        before = msgpack.unpackb(get(path, MP).body, raw=False)
        title = "msgpack %s" % uniq()
        r = write("POST", DATA, {"title": title, "category": "food"})
        self.assertEqual(r.status, 201, r.describe())
        new_id = r.json()["data"]["id"]
        after = msgpack.unpackb(get(path, MP).body, raw=False)
        self.assertNotEqual(before, after)
        self.assertIn(new_id, [it["id"] for it in after["data"]["items"]])
        # Errors stay JSON, whatever the client accepts.
        r = get("/api/v1/data/list?page=0", MP)
        self.assertEqual(r.status, 400, r.describe())
        self.assertTrue(r.header("Content-Type").startswith("application/json"))
