"""The WeChat pool holds many WeChat calls at once (wxapp-fcgi -C): 400
logins at once are not limited to one call per process, 400 phone calls
at once on a cold access_token still fetch it once, and a rolling restart
of that pool loses no login in flight.

No timing is asserted: the stand-in counts how many WeChat calls it was
answering at the same moment (max_inflight), which a pool of one-call
processes could never raise above its number of processes."""

import hashlib
import json
import secrets
import subprocess
import threading
import unittest

import e2elib as e2e

LOGIN = "/api/v1/user/login"
PHONE = "/api/v1/user/phone"
NONCE = secrets.token_hex(3)
_seq = [0]
_lock = threading.Lock()


def code(prefix="cc"):
    with _lock:
        _seq[0] += 1
        return "%s%sn%d" % (prefix, NONCE, _seq[0])


def phone_of(c):
    """What the stand-in answers for phone code c (tests/wechat/standin.py)."""
    h = int.from_bytes(hashlib.sha256(("phone:" + c).encode()).digest()[:8], "big")
    return "1" + "3456789"[h % 7] + "%09d" % ((h // 7) % 10 ** 9)


def addr(i):
    """Client address i: its own rate-limit bucket (nginx takes
    X-Forwarded-For from loopback)."""
    return "127.%d.%d.%d" % (200 + (i >> 16) % 50, (i >> 8) & 255, i & 255)


def in_parallel(fn, n):
    """fn(i) for i in 0..n-1, each in its own thread, all released at once;
    the results (or the exceptions) in order."""
    out = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait(timeout=30)
            out[i] = fn(i)
        except Exception as exc:  # reported by the caller
            out[i] = exc
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def openid_of(c):
    """What the stand-in answers as the openid of code c (its
    identity_name and make_openid)."""
    return "o" + e2e.b64url(hashlib.sha256(("openid:" + c).encode())
                            .digest())[:27]


def login_statements():
    """How many times PostgreSQL ran the login statement (app/stmts.c
    STMT_LOGIN), from pg_stat_statements, which the stack loads."""
    e2e.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return int(e2e.psql_value(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN "
        "pg_database d ON d.oid = s.dbid WHERE d.datname = "
        "current_database() AND query LIKE 'WITH v AS (SELECT * FROM "
        "unnest(%INSERT INTO users%'") or 0)


def max_inflight():
    st, body = e2e.wechat_request("GET", "/__stats")
    if st != 200:
        raise AssertionError("stand-in /__stats -> %s %r" % (st, body))
    return body.get("max_inflight", 0)


class Flood(e2e.TestCase):

    def setUp(self):
        e2e.need_stack()
        e2e.wechat_base()
        self.addCleanup(e2e.wechat_control, latency_ms=0)
        e2e.clear_rate_limits()

    def login(self, i, c=None):
        c = c or code()
        e2e.LOGIN_CODES.append(c)
        return e2e.post_json(LOGIN, {"code": c},
                             headers={"X-Forwarded-For": addr(i)}, timeout=60)

    def test_400_logins_wait_for_wechat_at_once(self):
        e2e.wechat_reset()
        e2e.wechat_control(latency_ms=500)
        before = login_statements()
        codes = [code() for _ in range(400)]
        rs = in_parallel(lambda i: self.login(i, codes[i]), 400)
        users = {}
        for c, r in zip(codes, rs):
            self.assertIsInstance(r, e2e.Response, "request failed: %r" % (r,))
            b = self.assert_envelope(r, 200)
            users[b["data"]["user"]["id"]] = c
        self.assertEqual(len(users), 400, "400 codes, 400 users")
        most = max_inflight()
        # The WeChat pool has a few processes; one call each would cap this
        # at their number.
        self.assertGreaterEqual(most, 100, "the stand-in never answered more "
                                "than %d WeChat calls at once" % most)
        # Logins whose WeChat answers came back in the same turn of a
        # responder's loop shared a statement and a commit (lib/dbbatch);
        # how many did depends on the machine, that some did does not ...
        ran = login_statements() - before
        self.assertLess(ran, 400, "400 logins at once ran %d login "
                        "statements: none was run with another" % ran)
        # ... and each got its own row: the user of its own code's openid.
        rows = e2e.psql("SELECT id, openid FROM users WHERE id IN (%s)"
                        % ",".join(str(u) for u in users))
        self.assertEqual(len(rows), 400)
        for uid, openid in rows:
            self.assertEqual(openid, openid_of(users[int(uid)]),
                             "user %s answered the login of another code"
                             % uid)

    def test_concurrent_phone_calls_fetch_the_token_once(self):
        # Users first, then their phone calls at once on a cold token.
        logins = in_parallel(self.login, 400)
        auths = []
        for r in logins:
            self.assertIsInstance(r, e2e.Response, "login failed: %r" % (r,))
            auths.append(e2e.bearer(self.assert_envelope(r, 200)["data"]["access_token"]))
        e2e.redis_cli("DEL", "wx:access_token", "wx:access_token:lock")
        e2e.wechat_reset()
        # Long enough that a loaded machine's 400 client threads overlap.
        e2e.wechat_control(latency_ms=1000)
        e2e.clear_rate_limits()
        codes = [code("phone") for _ in auths]
        e2e.PHONE_NUMBERS.extend(phone_of(c) for c in codes)

        def one(i):
            return e2e.post_json(PHONE, {"code": codes[i]}, headers=dict(
                auths[i], **{"X-Forwarded-For": addr(1000 + i)}), timeout=60)
        rs = in_parallel(one, len(codes))
        for c, r in zip(codes, rs):
            self.assertIsInstance(r, e2e.Response, "request failed: %r" % (r,))
            b = self.assert_envelope(r, 200)
            self.assertEqual(b["data"]["phone_number"], "+86 " + phone_of(c))
        calls = e2e.wechat_stats()
        fetched = calls.get("/cgi-bin/stable_token", 0) + calls.get("/cgi-bin/token", 0)
        self.assertEqual(fetched, 1, "400 concurrent phone calls on a cold token "
                         "must fetch it once: %r" % calls)
        self.assertEqual(calls.get("/wxa/business/getuserphonenumber"), 400, calls)
        self.assertGreaterEqual(max_inflight(), 100, "the phone calls did not "
                                "wait for WeChat at once")

    def test_keyed_content_writes_wait_for_wechat_at_once(self):
        """A write with an Idempotency-Key asks content security before it
        claims its key and opens its transaction: the check waits for
        WeChat without holding the process, as a keyless one does.  A
        retry is answered from what was kept, asking WeChat nothing."""
        users = [e2e.login() for _ in range(40)]
        e2e.wechat_reset()
        # A check with the stand-in's new access_token first.
        self.assert_envelope(e2e.call("POST", "/api/v1/data", users[0], {
            "title": "keyed check warm %s" % NONCE, "category": "food"}), 201)
        checks0 = e2e.wechat_stats().get("/wxa/msg_sec_check", 0)
        e2e.wechat_control(latency_ms=1000)
        e2e.clear_rate_limits()
        titles = ["keyed check %s %d" % (NONCE, i) for i in range(len(users))]
        keys = ["kc-%s-%d" % (NONCE, i) for i in range(len(users))]

        def one(i):
            return e2e.request("POST", "/api/v1/data", body=json.dumps(
                {"title": titles[i], "category": "food"}), headers=dict(
                users[i].auth(), **{"Content-Type": "application/json",
                                    "Idempotency-Key": keys[i]}),
                timeout=60)
        rs = in_parallel(one, len(users))
        for r in rs:
            self.assertIsInstance(r, e2e.Response, "request failed: %r" % (r,))
            self.assert_envelope(r, 201)
        checks = e2e.wechat_stats().get("/wxa/msg_sec_check", 0)
        self.assertEqual(checks - checks0, len(users), "one check per "
                         "write: %r" % e2e.wechat_stats())
        most = max_inflight()
        # Checked inside its transaction, a write cannot yield: one check
        # at a time per process, of which the WeChat pool has a few.
        self.assertGreaterEqual(most, 20, "the stand-in never answered "
                                "more than %d checks at once" % most)
        # Retried: the first answers, and no check.
        e2e.wechat_control(latency_ms=0)
        e2e.clear_rate_limits()
        for i in (0, len(users) - 1):
            r = one(i)
            b = self.assert_envelope(r, 201)
            self.assertEqual(r.header("Idempotent-Replayed"), "true")
            self.assertEqual(b["data"]["id"], rs[i].json()["data"]["id"])
        self.assertEqual(e2e.wechat_stats().get("/wxa/msg_sec_check", 0),
                         checks, "a retry asked WeChat again")
        for t in titles:
            self.assertEqual(e2e.psql_value(
                "SELECT count(*) FROM items WHERE title = %s" %
                e2e.sql_quote(t)), "1", t)

    def test_rolling_restart_of_the_wechat_pool_loses_no_login(self):
        e2e.wechat_control(latency_ms=700)
        results = []

        def flood(i):
            return self.login(i)
        t = threading.Thread(target=lambda: results.extend(in_parallel(flood, 80)))
        t.start()
        # While they wait for WeChat: the WeChat pool, socket by socket.
        threading.Event().wait(0.3)
        restart_err = None
        try:
            e2e.svc("restart", "wechat-pool", timeout=120)
        except (AssertionError, subprocess.TimeoutExpired) as e:
            restart_err = e
        t.join(120)
        self.assertIsNone(restart_err, "svc restart wechat-pool: %s" % restart_err)
        self.assertEqual(len(results), 80)
        bad = [r if not isinstance(r, e2e.Response) else r.describe()
               for r in results
               if not isinstance(r, e2e.Response) or r.status != 200]
        self.assertFalse(bad, "%d of 80 logins failed across the restart: %s"
                         % (len(bad), bad[:5]))


if __name__ == "__main__":
    unittest.main()
