"""End-to-end: WeChat login, the dual-token session, decryption, phone
number (issue 3 section 5), through nginx against the WeChat stand-in
(tests/wechat/standin.py) the stack runs at its wechat_api_base.

The stand-in picks its answer from the login code (see its docstring):
`invalid...`, `quota...`, `risky...`, `busy...`, `garbage...`,
`trunc...`, `http500...`, `slow<N>-...`, `user-<name>-...`, `...union...`.
Codes here carry a per-run nonce so they never collide with earlier runs.
"""

import base64
import glob
import hashlib
import json
import os
import secrets
import subprocess
import threading
import time

import e2elib as e2e
import fcgi
from test_ops import OwnResponder

NONCE = secrets.token_hex(4)
_seq = [0]


def code(prefix="c"):
    """A fresh wx.login code: PREFIX<nonce>n<seq> (no '-' after PREFIX)."""
    _seq[0] += 1
    return "%s%sn%d" % (prefix, NONCE, _seq[0])


# -- what the stand-in derives from a code (mirrors tests/wechat/standin.py) --

def _sha256(text):
    return hashlib.sha256(text.encode("utf-8")).digest()


def sa_openid(name):
    return "o" + e2e.b64url(_sha256("openid:" + name))[:27]


def sa_unionid(name):
    return "u" + e2e.b64url(_sha256("unionid:" + name))[:27]


def sa_session_key(c):
    return base64.b64encode(_sha256("session_key:" + c)[:16]).decode("ascii")


def sa_phone(c):
    h = int.from_bytes(_sha256("phone:" + c)[:8], "big")
    return "1" + "3456789"[h % 7] + "%09d" % ((h // 7) % 10 ** 9)


# -- helpers -----------------------------------------------------------------

LOGIN = "/api/v1/user/login"
REFRESH = "/api/v1/user/refresh"
LOGOUT = "/api/v1/user/logout"
ME = "/api/v1/user/me"
DECRYPT = "/api/v1/user/decrypt"
PHONE = "/api/v1/user/phone"


def appid():
    return e2e.conf_value("wechat_appid", "")


def aes_encrypt(key, iv, plaintext):
    """AES-128-CBC with PKCS#7 (openssl's default padding)."""
    if isinstance(plaintext, str):
        plaintext = plaintext.encode("utf-8")
    p = subprocess.run(["openssl", "enc", "-aes-128-cbc", "-K", key.hex(),
                        "-iv", iv.hex()], input=plaintext,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10)
    if p.returncode != 0:
        raise AssertionError("openssl enc failed: %r" % p.stderr[-300:])
    return p.stdout


def b64(raw):
    return base64.b64encode(raw).decode("ascii")


class Base(e2e.TestCase):
    """Each test starts with a fresh stand-in (codes, counters, settings)
    and leaves it with no latency and no failure injected."""

    def setUp(self):
        e2e.need_run_dir()
        e2e.wechat_base()           # skips without the local stand-in
        e2e.wechat_reset()
        self.addCleanup(self._restore_standin)
        e2e.clear_rate_limits()

    @staticmethod
    def _restore_standin():
        try:
            e2e.wechat_reset()
        except Exception as exc:    # never mask the test's own result
            e2e.log("cannot restore the stand-in: %s" % exc)

    def login(self, c, status=200, err=None):
        e2e.clear_rate_limits()
        e2e.LOGIN_CODES.append(c)
        r = e2e.post_json(LOGIN, {"code": c})
        body = self.assert_envelope(r, status, err)
        return r, body["data"]


# ---------------------------------------------------------------------------
# POST /api/v1/user/login
# ---------------------------------------------------------------------------

class LoginAnswer(Base):
    """What one successful login answers and keeps, one behaviour a test."""

    def setUp(self):
        super().setUp()
        self.name = "alice" + NONCE + secrets.token_hex(3)
        self.code = "user-%s-%s" % (self.name, code())
        self.r, self.d = self.login(self.code)
        self.uid = self.d["user"]["id"]

    def test_shape(self):
        d, r = self.d, self.r
        self.assertEqual(set(d), {"access_token", "token_type", "expires_in",
                                  "refresh_token", "refresh_expires_in", "user"},
                         r.describe())
        self.assertEqual(d["token_type"], "Bearer")
        self.assertEqual(d["expires_in"], e2e.conf_int("access_token_ttl", 900))
        self.assertEqual(d["refresh_expires_in"],
                         e2e.conf_int("refresh_token_ttl", 604800))
        self.assertTrue(isinstance(self.uid, int) and self.uid > 0,
                        r.describe())
        # 256 random bits after the time of issue (sortable: see
        # token_hash).
        self.assertRegex(d["refresh_token"], r"^[0-9a-f]{12}[A-Za-z0-9_-]{43}$",
                         "refresh token: ms in hex, 256 bits base64url")
        ms = int(d["refresh_token"][:12], 16)
        self.assertLess(abs(ms - time.time() * 1000), 60000,
                        "the token begins with its time of issue")
        self.assertIn("no-store", r.header("Cache-Control") or "", r.describe())

    def test_access_token_claims(self):
        # HS256, typ at+jwt (RFC 9068), kid, and iss/aud/client_id/sub/
        # iat/exp/jti, fam and gen.
        d = self.d
        hdr, cl = e2e.jwt_parts(d["access_token"])
        self.assertEqual(hdr.get("alg"), "HS256", hdr)
        self.assertEqual(hdr.get("typ"), "at+jwt", hdr)
        self.assertEqual(hdr.get("kid"), e2e.conf_value("jwt_kid", "k1"), hdr)
        self.assertEqual(cl.get("client_id"), appid(), cl)
        self.assertRegex(cl.get("fam", ""), r"^[0-9a-f]{12}[A-Za-z0-9_-]{16}$",
                         cl)
        self.assertEqual(cl.get("gen"), 0, cl)
        fam = e2e.psql_value("SELECT family FROM refresh_tokens WHERE "
                             "token_hash = %s" % e2e.sql_quote(
                                 token_hash(d["refresh_token"])))
        self.assertEqual(cl["fam"], fam, "fam is the refresh token's family")
        self.assertEqual(cl.get("iss"), e2e.conf_value("jwt_issuer", "wxapp"))
        self.assertEqual(cl.get("aud"),
                         e2e.conf_value("jwt_audience", "wxapp-miniprogram"))
        self.assertEqual(cl.get("sub"), str(self.uid))
        self.assertEqual(cl["exp"] - cl["iat"], d["expires_in"], cl)
        self.assertTrue(cl.get("jti"), cl)

    def test_refresh_cookie(self):
        # The refresh token also as a cookie for web clients.
        r = self.r
        cookies = r.header_all("Set-Cookie")
        self.assertEqual(len(cookies), 1, cookies)
        parts = [p.strip() for p in cookies[0].split(";")]
        self.assertEqual(parts[0], "refresh_token=" + self.d["refresh_token"],
                         cookies)
        attrs = {p.split("=")[0].lower(): p for p in parts[1:]}
        self.assertIn("httponly", attrs, cookies)
        self.assertIn("secure", attrs, cookies)
        self.assertEqual(attrs.get("samesite"), "SameSite=Strict", cookies)
        # Sent only to the refresh endpoint, not with every user call.
        self.assertEqual(attrs.get("path"), "Path=/api/v1/user/refresh",
                         cookies)

    def test_session_key_and_appsecret_stay_on_the_server(self):
        r = self.r
        sk = sa_session_key(self.code)
        secret = e2e.read_conf().get("wechat_secret", "")
        self.assertNotIn(sk.encode(), r.body)
        self.assertNotIn(sk, json.dumps(dict(r.headers)))
        if secret:
            self.assertNotIn(secret.encode(), r.body)
        logs = set(glob.glob(os.path.join(e2e.RUN_DIR, "log", "wxapp*.log")))
        if e2e.log_file_path():
            logs.add(e2e.log_file_path())
        for path in sorted(logs):
            try:
                with open(path, "rb") as f:
                    f.seek(max(0, os.path.getsize(path) - (4 << 20)))
                    text = f.read()
            except OSError:
                continue
            self.assertNotIn(sk.encode(), text, "session_key in " + path)
            if secret:
                self.assertNotIn(secret.encode(), text, "appsecret in " + path)

    def test_user_row_and_token_hash(self):
        # The user row: openid, last_login_at.
        rows = e2e.psql("SELECT id, last_login_at IS NOT NULL FROM users "
                        "WHERE openid = %s" % e2e.sql_quote(
                            sa_openid(self.name)))
        self.assertEqual(rows, [[str(self.uid), "t"]])
        # Only the SHA-256 of the refresh token is stored.
        rt = self.d["refresh_token"]
        rows = e2e.psql("SELECT user_id, expires_at > now() FROM refresh_tokens"
                        " WHERE token_hash = %s" % e2e.sql_quote(
                            token_hash(rt)))
        self.assertEqual(rows, [[str(self.uid), "t"]])
        self.assertEqual(e2e.psql_value(
            "SELECT count(*) FROM refresh_tokens WHERE token_hash = %s"
            % e2e.sql_quote(rt)), "0")

    def test_session_key_kept_in_redis(self):
        # Under the user, with its TTL.
        uid = self.uid
        self.assertEqual(e2e.redis_cli("GET", "wx:sk:%d" % uid),
                         sa_session_key(self.code))
        ttl = int(e2e.redis_cli("TTL", "wx:sk:%d" % uid))
        want = e2e.conf_int("session_key_ttl", 604800)
        self.assertTrue(want - 60 <= ttl <= want, "TTL %d, session_key_ttl %d"
                        % (ttl, want))


class Login(Base):

    def test_upsert_idempotent_and_unionid(self):
        name = "bob" + NONCE
        _, d1 = self.login("user-%s-1" % name)
        _, d2 = self.login("user-%s-2" % name)
        self.assertEqual(d1["user"]["id"], d2["user"]["id"],
                         "two codes of one openid must give one user")
        n = e2e.psql_value("SELECT count(*) FROM users WHERE openid = %s"
                           % e2e.sql_quote(sa_openid(name)))
        self.assertEqual(n, "1")

        carol = "carol" + NONCE
        _, d3 = self.login("user-%s-union-1" % carol)
        uid = d3["user"]["id"]
        self.assertNotEqual(uid, d1["user"]["id"])
        row = e2e.psql("SELECT openid, unionid FROM users WHERE id = %d" % uid)
        self.assertEqual(row, [[sa_openid(carol), sa_unionid(carol)]])
        # A later login whose answer has no unionid keeps the stored one.
        _, d4 = self.login("user-%s-2" % carol)
        self.assertEqual(d4["user"]["id"], uid)
        self.assertEqual(e2e.psql_value("SELECT unionid FROM users WHERE id = %d"
                                        % uid), sa_unionid(carol))

    def test_errcode_mapping(self):
        cases = [("invalid", 400, 40010), ("quota", 429, 42901),
                 ("risky", 403, 40301), ("busy", 503, 50303),
                 ("garbage", 503, 50303), ("trunc", 503, 50303),
                 ("http500", 503, 50303)]
        for prefix, status, err in cases:
            with self.subTest(code=prefix):
                r, _ = self.login(code(prefix), status, err)
                if status == 429:
                    ra = r.header("Retry-After") or ""
                    self.assertTrue(ra.isdigit() and int(ra) > 0,
                                    "429 needs Retry-After: " + r.describe())
        with self.subTest(code="reused"):
            c = code()
            self.login(c)
            self.login(c, 400, 40011)

    def _slow_login(self, c):
        limit_ms = e2e.conf_int("wechat_timeout_ms", 3000)
        e2e.clear_rate_limits()
        t0 = time.monotonic()
        r = e2e.post_json(LOGIN, {"code": c}, timeout=limit_ms / 1000.0 + 8)
        elapsed = time.monotonic() - t0
        self.assert_envelope(r, 503, 50303)
        self.assertLessEqual(elapsed, limit_ms / 1000.0 + 1.0,
                             "503 after %.2fs; wechat_timeout_ms is %d"
                             % (elapsed, limit_ms))
        self.assertGreaterEqual(elapsed, limit_ms / 1000.0 - 0.5,
                                "answered after %.2fs, before the %d ms timeout"
                                % (elapsed, limit_ms))
        return limit_ms

    def test_timeout_slow_code(self):
        limit_ms = e2e.conf_int("wechat_timeout_ms", 3000)
        self._slow_login("slow%d-%s" % (limit_ms + 2000, code()))

    def test_timeout_latency_control(self):
        limit_ms = e2e.conf_int("wechat_timeout_ms", 3000)
        e2e.wechat_control(latency_ms=limit_ms + 2000)
        self._slow_login(code())
        e2e.wechat_control(latency_ms=0)
        self.login(code())          # and it recovers at once

    def test_code_is_url_encoded(self):
        """A code with URL metacharacters reaches WeChat intact: the
        stand-in derives the openid from the whole code it received."""
        c = "x+y&z=1%%20#?/" + code()
        _, d = self.login(c)
        self.assertEqual(e2e.psql_value("SELECT openid FROM users WHERE id = %d"
                                        % d["user"]["id"]), sa_openid(c))

    def test_code_validation(self):
        bodies = [("missing", {}), ("empty", {"code": ""}),
                  ("number", {"code": 123}), ("null", {"code": None}),
                  ("array", {"code": ["x"]}), ("object", {"code": {}}),
                  ("too long", {"code": "a" * 129}),
                  ("space", {"code": "a b"}), ("control", {"code": "a\x01b"})]
        for what, body in bodies:
            with self.subTest(what):
                e2e.clear_rate_limits()
                r = e2e.post_json(LOGIN, body)
                self.assert_envelope(r, 400, 40002, message_contains="code")
        self.assertEqual(e2e.wechat_stats(), {},
                         "an invalid code must not reach WeChat")


# ---------------------------------------------------------------------------
# Access tokens on a protected route
# ---------------------------------------------------------------------------

class AccessToken(Base):

    def setUp(self):
        super().setUp()
        _, d = self.login(code())
        self.token = d["access_token"]
        self.uid = d["user"]["id"]
        self.fam = e2e.jwt_parts(self.token)[1]["fam"]
        self.secret = e2e.read_conf().get("jwt_secret", "")
        self.kid = e2e.conf_value("jwt_kid", "k1")
        self.iss = e2e.conf_value("jwt_issuer", "wxapp")
        self.aud = e2e.conf_value("jwt_audience", "wxapp-miniprogram")

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": self.iss, "aud": self.aud, "client_id": appid(),
             "sub": str(self.uid), "iat": now, "exp": now + 600,
             "jti": secrets.token_urlsafe(16), "fam": self.fam, "gen": 0}
        c.update(over)
        return c

    def header(self, **over):
        h = {"alg": "HS256", "kid": self.kid, "typ": "at+jwt"}
        h.update(over)
        return h

    def me(self, token):
        e2e.clear_rate_limits()
        return e2e.get(ME, headers=e2e.bearer(token))

    def assert_rejected(self, r, code_):
        self.assert_envelope(r, 401, code_)
        www = r.header("WWW-Authenticate") or ""
        self.assertTrue(www.startswith("Bearer") and
                        'error="invalid_token"' in www,
                        "want WWW-Authenticate: Bearer error=\"invalid_token\": "
                        "%r %s" % (www, r.describe()))

    def test_accepted(self):
        r = self.me(self.token)
        b = self.assert_envelope(r, 200)
        self.assertEqual(b["data"]["id"], self.uid)
        self.assertIn("private", r.header("Cache-Control") or "", r.describe())

    def test_no_token(self):
        for hdrs in ({}, {"Authorization": "Basic dXNlcjpwYXNz"},
                     {"Authorization": "Bearer "}):
            with self.subTest(headers=hdrs):
                e2e.clear_rate_limits()
                r = e2e.get(ME, headers=hdrs)
                self.assert_envelope(r, 401, 40100)
                self.assertTrue((r.header("WWW-Authenticate") or "")
                                .startswith("Bearer"), r.describe())

    def test_tampered(self):
        h, c, s = self.token.split(".")
        cl = json.loads(e2e.b64url_decode(c))
        cl["sub"] = str(self.uid + 1)
        forged_payload = h + "." + e2e.b64url(
            json.dumps(cl, separators=(",", ":")).encode()) + "." + s
        flip = "A" if s[5] != "A" else "B"
        forged_sig = h + "." + c + "." + s[:5] + flip + s[6:]
        for what, tok in (("payload", forged_payload), ("signature", forged_sig),
                          ("garbage", "not.a.jwt"), ("two parts", h + "." + c)):
            with self.subTest(what):
                self.assert_rejected(self.me(tok), 40102)

    def test_forgery_control(self):
        """A token forged here with the real secret and correct claims is
        accepted: the rejections below are about the one thing changed."""
        if not self.secret:
            self.skipTest("jwt_secret not readable in wxapp.conf")
        r = self.me(e2e.jwt_encode(self.header(), self.claims(), self.secret))
        self.assert_envelope(r, 200)

    def test_other_key(self):
        tok = e2e.jwt_encode(self.header(), self.claims(),
                             "another-secret-of-at-least-32-bytes!!")
        self.assert_rejected(self.me(tok), 40102)

    def test_alg_none_and_others(self):
        if not self.secret:
            self.skipTest("jwt_secret not readable in wxapp.conf")
        real = e2e.jwt_encode(self.header(), self.claims(), self.secret)
        cases = {
            "none, no signature": e2e.jwt_encode(self.header(alg="none"),
                                                 self.claims(), None),
            "none, real signature": e2e.jwt_encode(self.header(alg="none"),
                                                   self.claims(), None)
            + real.split(".")[2],
            "HS512 header": e2e.jwt_encode(self.header(alg="HS512"),
                                           self.claims(), self.secret),
            "RS256 header": e2e.jwt_encode(self.header(alg="RS256"),
                                           self.claims(), self.secret),
            "unknown kid": e2e.jwt_encode(self.header(kid="nope"),
                                          self.claims(), self.secret),
        }
        for what, tok in cases.items():
            with self.subTest(what):
                self.assert_rejected(self.me(tok), 40102)

    def test_wrong_aud_iss(self):
        if not self.secret:
            self.skipTest("jwt_secret not readable in wxapp.conf")
        for what, over in (("aud", {"aud": "someone-else"}),
                           ("iss", {"iss": "evil-issuer"})):
            with self.subTest(what):
                tok = e2e.jwt_encode(self.header(), self.claims(**over),
                                     self.secret)
                self.assert_rejected(self.me(tok), 40102)

    def test_expired(self):
        if not self.secret:
            self.skipTest("jwt_secret not readable in wxapp.conf")
        leeway = e2e.conf_int("jwt_leeway", 30)
        now = int(time.time())
        tok = e2e.jwt_encode(self.header(), self.claims(
            iat=now - 660, exp=now - leeway - 60), self.secret)
        r = self.me(tok)
        self.assert_rejected(r, 40101)
        with self.subTest("within the leeway"):
            if leeway >= 10:
                tok = e2e.jwt_encode(self.header(), self.claims(
                    iat=now - 600, exp=now - leeway // 2), self.secret)
                self.assert_envelope(self.me(tok), 200)


# ---------------------------------------------------------------------------
# Refresh and logout
# ---------------------------------------------------------------------------

def token_hash(tok):
    """What the database keeps of a refresh token: its SHA-256 in hex,
    after the token's 12 hex digits of time when it has them (an index
    that takes new tokens in time order); a token of the older format, 43
    base64url characters, is kept under the bare hash."""
    h = hashlib.sha256(tok.encode("ascii")).hexdigest()
    if len(tok) == 55 and all(c in "0123456789abcdef" for c in tok[:12]):
        return tok[:12] + h
    return h


class Refresh(Base):

    def refresh(self, tok=None, cookie=None):
        e2e.clear_rate_limits()
        if cookie is not None:
            return e2e.request("POST", REFRESH, body=b"",
                               headers={"Cookie": "refresh_token=" + cookie})
        return e2e.post_json(REFRESH, {"refresh_token": tok})

    def assert_pair(self, r, uid):
        d = self.assert_envelope(r, 200)["data"]
        self.assertEqual(d["user"]["id"], uid, r.describe())
        self.assertEqual(d["token_type"], "Bearer")
        cookie = r.header("Set-Cookie") or ""
        self.assertTrue(cookie.startswith("refresh_token=" + d["refresh_token"]
                                          + ";"), cookie)
        return d

    def test_rotation_grace_and_reuse(self):
        _, d0 = self.login(code())
        uid, r0 = d0["user"]["id"], d0["refresh_token"]

        d1 = self.assert_pair(self.refresh(r0), uid)
        r1 = d1["refresh_token"]
        self.assertNotEqual(r1, r0, "rotation must issue a new refresh token")
        self.assertNotEqual(d1["access_token"], d0["access_token"])
        self.assert_envelope(e2e.get(ME, headers=e2e.bearer(d1["access_token"])),
                             200)

        # The answer was "lost": the same token again, within the grace,
        # gets the very same successor back (the session does not fork).
        d2 = self.assert_pair(self.refresh(r0), uid)
        self.assertEqual(d2["refresh_token"], r1)
        # The successor is kept only sealed, never as the token itself.
        sealed = e2e.psql_value("SELECT successor FROM refresh_tokens WHERE "
                                "token_hash = %s"
                                % e2e.sql_quote(token_hash(r0)))
        self.assertTrue(sealed and r1 not in sealed, sealed)

        # After the grace period a reuse revokes the family.  Rather than
        # wait refresh_grace seconds, move the first use back in time.
        grace = e2e.conf_int("refresh_grace", 10)
        e2e.psql("UPDATE refresh_tokens SET used_at = used_at - "
                 "make_interval(secs => %d) WHERE token_hash = %s"
                 % (grace + 5, e2e.sql_quote(token_hash(r0))))
        self.assert_envelope(self.refresh(r0), 401, 40104)
        with self.subTest("the successor"):
            self.assert_envelope(self.refresh(r1), 401, 40103)
        with self.subTest("its access tokens"):
            for d in (d0, d1, d2):
                self.assert_envelope(e2e.get(ME, headers=e2e.bearer(
                    d["access_token"])), 401, 40102)
        fam = e2e.psql("SELECT count(*), count(revoked_at) FROM refresh_tokens "
                       "WHERE family = (SELECT family FROM refresh_tokens "
                       "WHERE token_hash = %s)" % e2e.sql_quote(token_hash(r0)))
        self.assertEqual(fam[0][0], fam[0][1], "the whole family is revoked")
        self.assertEqual(fam[0][0], "2")

    def test_token_of_the_older_format(self):
        """A refresh token issued before tokens carried their time (43
        base64url characters, stored under its bare hash) still rotates,
        into one of the new format."""
        _, d0 = self.login(code())
        uid = d0["user"]["id"]
        old = e2e.b64url(secrets.token_bytes(32))
        self.assertEqual(len(old), 43)
        e2e.psql("INSERT INTO refresh_tokens (user_id, family, token_hash, "
                 "expires_at) VALUES (%d, %s, %s, now() + interval '1 hour')"
                 % (uid, e2e.sql_quote(e2e.b64url(secrets.token_bytes(16))),
                    e2e.sql_quote(hashlib.sha256(old.encode()).hexdigest())))
        d1 = self.assert_pair(self.refresh(old), uid)
        self.assertRegex(d1["refresh_token"], r"^[0-9a-f]{12}[A-Za-z0-9_-]{43}$")
        self.assert_pair(self.refresh(d1["refresh_token"]), uid)
        # Used once: the older token is now reuse like any other.
        e2e.psql("UPDATE refresh_tokens SET used_at = now() - interval "
                 "'1 hour' WHERE token_hash = %s" % e2e.sql_quote(
                     hashlib.sha256(old.encode()).hexdigest()))
        self.assert_envelope(self.refresh(old), 401, 40104)

    def test_predecessor_after_its_successor_was_used(self):
        """D0 -> D1 -> D2, then D0 within the grace period: reuse."""
        _, d0 = self.login(code())
        uid, r0 = d0["user"]["id"], d0["refresh_token"]
        r1 = self.assert_pair(self.refresh(r0), uid)["refresh_token"]
        d2 = self.assert_pair(self.refresh(r1), uid)
        self.assert_envelope(self.refresh(r0), 401, 40104)
        self.assert_envelope(self.refresh(d2["refresh_token"]), 401, 40103)
        self.assert_envelope(e2e.get(ME, headers=e2e.bearer(
            d2["access_token"])), 401, 40102)

    def test_concurrent_retries_get_one_successor(self):
        _, d0 = self.login(code())
        r0 = d0["refresh_token"]
        got = []

        def one():
            r = e2e.post_json(REFRESH, {"refresh_token": r0})
            got.append((r.status, r.json()["data"]["refresh_token"]
                        if r.status == 200 else r.body))
        e2e.clear_rate_limits()
        ts = [threading.Thread(target=one) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual({st for st, _ in got}, {200}, got)
        self.assertEqual(len({tok for _, tok in got}), 1, got)

    def test_cookie(self):
        _, d0 = self.login(code())
        d1 = self.assert_pair(self.refresh(cookie=d0["refresh_token"]),
                              d0["user"]["id"])
        self.assertNotEqual(d1["refresh_token"], d0["refresh_token"])

    def test_unknown_missing_expired(self):
        self.assert_envelope(self.refresh("x" * 43), 401, 40103)
        self.assert_envelope(self.refresh("nonsense"), 401, 40103)
        e2e.clear_rate_limits()
        r = e2e.request("POST", REFRESH, body=b"")
        self.assert_envelope(r, 400, 40002)
        _, d = self.login(code())
        e2e.psql("UPDATE refresh_tokens SET expires_at = now() - interval '1 s'"
                 " WHERE token_hash = %s"
                 % e2e.sql_quote(token_hash(d["refresh_token"])))
        self.assert_envelope(self.refresh(d["refresh_token"]), 401, 40103)


    def test_expired_tokens_are_deleted(self):
        """wxapp-worker deletes expired refresh tokens, but keeps a revoked
        family's rows while an access token of theirs may be alive."""
        _, d0 = self.login(code())
        uid, r0 = d0["user"]["id"], d0["refresh_token"]
        r1 = self.assert_pair(self.refresh(r0), uid)["refresh_token"]
        _, dr = self.login(code())
        e2e.clear_rate_limits()
        self.assert_envelope(e2e.request(
            "POST", LOGOUT, body=None,
            headers=e2e.bearer(dr["access_token"])), 200)
        ttl = e2e.conf_int("access_token_ttl", 900)
        # In one statement, so that a pruning sees both: the used D0
        # long expired; the revoked family expired within access_token_ttl.
        e2e.psql("UPDATE refresh_tokens SET expires_at = CASE token_hash"
                 " WHEN %s THEN now() - make_interval(secs => %d)"
                 " ELSE now() - interval '1 s' END"
                 " WHERE token_hash IN (%s, %s)"
                 % (e2e.sql_quote(token_hash(r0)), ttl + 60,
                    e2e.sql_quote(token_hash(r0)),
                    e2e.sql_quote(token_hash(dr["refresh_token"]))))

        def count(tok):
            return int(e2e.psql_value(
                "SELECT count(*) FROM refresh_tokens WHERE token_hash = %s"
                % e2e.sql_quote(token_hash(tok))))
        self.assertEqual(e2e.wait_for(lambda: count(r0) == 0, 10), True,
                         "the expired token was not deleted")
        self.assertEqual(count(dr["refresh_token"]), 1,
                         "a revoked family's row went while its access "
                         "tokens may live")
        e2e.clear_rate_limits()
        self.assert_envelope(e2e.get(ME, headers=e2e.bearer(
            dr["access_token"])), 401, 40102)
        # The successor of the deleted token lives on.
        self.assertEqual(count(r1), 1)
        self.assert_pair(self.refresh(r1), uid)


class Logout(Base):

    def logout(self, d, query=""):
        e2e.clear_rate_limits()
        # No body at all, as curl without -d or wx.request without data.
        return e2e.request("POST", LOGOUT + query, body=None,
                           headers=e2e.bearer(d["access_token"]))

    def assert_live(self, d, live):
        e2e.clear_rate_limits()
        r = e2e.get(ME, headers=e2e.bearer(d["access_token"]))
        if live:
            self.assert_envelope(r, 200)
        else:
            self.assert_envelope(r, 401, 40102)
            self.assertIn('error="invalid_token"',
                          r.header("WWW-Authenticate") or "")
        e2e.clear_rate_limits()
        r = e2e.post_json(REFRESH, {"refresh_token": d["refresh_token"]})
        if live:
            d.update(self.assert_envelope(r, 200)["data"])
        else:
            self.assert_envelope(r, 401, 40103)

    def test_logout(self):
        _, d = self.login(code())
        r = self.logout(d)
        self.assert_envelope(r, 200, data=None, message="logged out")
        cookies = r.header_all("Set-Cookie")
        self.assertTrue(cookies and all(c.startswith("refresh_token=;") and
                                        "Max-Age=0" in c for c in cookies),
                        "logout clears the cookie: %r" % cookies)
        self.assertIn("Path=/api/v1/user/refresh", " ".join(cookies))
        # The access token is refused at once, not when it expires.
        self.assert_live(d, False)

    def test_logout_ends_this_device_only(self):
        name = "erin" + NONCE
        _, a = self.login("user-%s-1" % name)
        _, b = self.login("user-%s-2" % name)
        self.assertEqual(a["user"]["id"], b["user"]["id"])
        self.assert_envelope(self.logout(a), 200)
        self.assert_live(a, False)
        self.assert_live(b, True)

    def test_logout_all_devices(self):
        name = "fay" + NONCE
        _, a = self.login("user-%s-1" % name)
        _, b = self.login("user-%s-2" % name)
        self.assert_envelope(self.logout(a, "?all=1"), 200,
                             message="logged out everywhere")
        self.assert_live(a, False)
        self.assert_live(b, False)
        # A login a moment later (the same second, even) works.
        _, c = self.login("user-%s-3" % name)
        self.assert_live(c, True)

    def test_an_old_token_sent_along_does_not_stop_a_new_session(self):
        """A client that sends its access token with every request, a
        revoked or a garbled one included, can log in and refresh."""
        _, d = self.login(code())
        self.assert_envelope(self.logout(d), 200)
        self.assert_live(d, False)
        old = {"Authorization": "Bearer " + d["access_token"]}
        e2e.clear_rate_limits()
        c = code()
        e2e.LOGIN_CODES.append(c)
        r = e2e.post_json(LOGIN, {"code": c}, headers=old)
        fresh = self.assert_envelope(r, 200)["data"]
        e2e.clear_rate_limits()
        r = e2e.post_json(REFRESH, {"refresh_token": fresh["refresh_token"]},
                          headers={"Authorization": "Bearer garbled"})
        self.assert_envelope(r, 200)
        # Control: a route that reads the token still refuses the old one.
        self.assert_envelope(e2e.request("GET", "/api/v1/user/me",
                                         headers=old), 401, 40102)

    def test_logout_query_checked(self):
        _, d = self.login(code())
        self.assert_envelope(self.logout(d, "?all=yes"), 400, 40002)
        self.assert_live(d, True)

    def test_logout_needs_token(self):
        e2e.clear_rate_limits()
        self.assert_envelope(e2e.request("POST", LOGOUT, body=b""), 401, 40100)
        self.assert_envelope(e2e.request("POST", LOGOUT + "?all=1",
                                         body=None), 401, 40100)


# ---------------------------------------------------------------------------
# POST /api/v1/user/decrypt
# ---------------------------------------------------------------------------

class Decrypt(Base):

    def setUp(self):
        super().setUp()
        self.code = "user-dave%s-%s" % (NONCE, code())
        _, d = self.login(self.code)
        self.uid = d["user"]["id"]
        self.auth = e2e.bearer(d["access_token"])
        self.sk = sa_session_key(self.code)
        self.key = base64.b64decode(self.sk)
        self.appid = appid()

    def payload(self, obj, key=None, iv=None):
        iv = iv or os.urandom(16)
        if not isinstance(obj, (bytes, str)):
            obj = json.dumps(obj, ensure_ascii=False)
        return {"encryptedData": b64(aes_encrypt(key or self.key, iv, obj)),
                "iv": b64(iv)}

    def decrypt(self, body):
        e2e.clear_rate_limits()
        return e2e.post_json(DECRYPT, body, headers=self.auth)

    def user_info(self, appid_=None):
        return {"openId": sa_openid("dave" + NONCE), "nickName": "小明",
                "gender": 1, "city": "Guangzhou",
                "watermark": {"appid": appid_ or self.appid,
                              "timestamp": int(time.time())}}

    def test_round_trip(self):
        obj = self.user_info()
        r = self.decrypt(self.payload(obj))
        b = self.assert_envelope(r, 200)
        want = dict(obj)
        del want["watermark"]
        self.assertEqual(b["data"], want)
        self.assertIn("no-store", r.header("Cache-Control") or "")

    def test_signature(self):
        obj = self.user_info()
        raw = json.dumps({"nickName": "小明", "gender": 1}, ensure_ascii=False)
        body = self.payload(obj)
        body["rawData"] = raw
        body["signature"] = hashlib.sha1((raw + self.sk).encode("utf-8")).hexdigest()
        self.assert_envelope(self.decrypt(body), 200)
        for what, sig in (("other key", hashlib.sha1(
                              (raw + "x" + self.sk).encode()).hexdigest()),
                          ("zeros", "0" * 40),
                          ("short", body["signature"][:20])):
            with self.subTest(what):
                bad = dict(body, signature=sig)
                self.assert_envelope(self.decrypt(bad), 400, 40023)
        with self.subTest("rawData without signature"):
            bad = dict(body)
            del bad["signature"]
            self.assert_envelope(self.decrypt(bad), 400, 40002)

    def test_failures(self):
        good = self.payload(self.user_info())
        other_key = os.urandom(16)
        cases = [
            ("bad base64 data", dict(good, encryptedData="!!not base64!!"),
             40020),
            ("bad base64 iv", dict(good, iv="%%%%"), 40020),
            ("iv of 12 bytes", dict(good, iv=b64(os.urandom(12))), 40020),
            ("iv of 24 bytes", dict(good, iv=b64(os.urandom(24))), 40020),
            ("data not a block multiple",
             dict(good, encryptedData=b64(os.urandom(20))), 40020),
            ("another appid", self.payload(self.user_info("wx00000000000000ff")),
             40022),
        ]
        for what, body, err in cases:
            with self.subTest(what):
                self.assert_envelope(self.decrypt(body), 400, err)
        with self.subTest("field missing"):
            self.assert_envelope(self.decrypt({"iv": good["iv"]}), 400, 40002)
        with self.subTest("unknown field"):
            self.assert_envelope(self.decrypt(dict(good, extra="x")), 400,
                                 40002, message_contains="extra")

    def test_no_padding_oracle(self):
        """Whatever makes the data not open -- another key, bad padding,
        not JSON, no watermark, a NUL in it -- the answer is the same."""
        good = self.payload(self.user_info())
        raw = base64.b64decode(good["encryptedData"])
        flipped = raw[:-1] + bytes([raw[-1] ^ 1])
        cases = {
            "another key": self.payload(self.user_info(), key=os.urandom(16)),
            "bad padding": dict(good, encryptedData=b64(flipped)),
            "not JSON": self.payload(b"this is not JSON at all"),
            "JSON array": self.payload([1, 2, 3]),
            "no watermark": self.payload({"openId": "x"}),
            "watermark not an object": self.payload({"watermark": "x"}),
            "a NUL in a string": self.payload(
                '{"a":"b\\u0000","watermark":{"appid":"%s"}}' % self.appid),
        }
        bodies = set()
        for what, body in cases.items():
            with self.subTest(what):
                r = self.decrypt(body)
                self.assert_envelope(r, 400, 40021)
                bodies.add(r.json()["message"])
        self.assertEqual(len(bodies), 1, bodies)

    def test_watermark_age(self):
        """decrypt_max_age 0 (the default) takes any age (the sample WeChat
        documents is years old); else older data is 40024."""
        obj = self.user_info()
        obj["watermark"]["timestamp"] = 1477314187
        r = self.decrypt(self.payload(obj))
        if e2e.conf_int("decrypt_max_age", 0) == 0:
            self.assert_envelope(r, 200)
        else:
            self.assert_envelope(r, 400, 40024)

    def test_new_login_replaces_session_key(self):
        old = self.payload(self.user_info())
        c2 = "user-dave%s-%s" % (NONCE, code())
        _, d2 = self.login(c2)
        self.assertEqual(d2["user"]["id"], self.uid)
        self.assert_envelope(self.decrypt(old), 400, 40021)
        new = self.payload(self.user_info(), key=base64.b64decode(sa_session_key(c2)))
        self.assert_envelope(self.decrypt(new), 200)

    def test_session_key_gone(self):
        e2e.redis_cli("DEL", "wx:sk:%d" % self.uid)
        r = self.decrypt(self.payload(self.user_info()))
        self.assert_envelope(r, 401, 40105)
        # The access token itself is still good.
        e2e.clear_rate_limits()
        self.assert_envelope(e2e.get(ME, headers=self.auth), 200)


# ---------------------------------------------------------------------------
# POST /api/v1/user/phone and the shared access_token
# ---------------------------------------------------------------------------

class Phone(Base):

    def setUp(self):
        super().setUp()
        # No server access_token cached: the first phone call fetches one.
        e2e.redis_cli("DEL", "wx:access_token", "wx:access_token:lock")
        _, d = self.login(code())
        self.uid = d["user"]["id"]
        self.auth = e2e.bearer(d["access_token"])
        api = e2e.conf_value("wechat_token_api", "stable_token")
        self.token_path = ("/cgi-bin/token" if api == "token"
                           else "/cgi-bin/stable_token")

    def phone(self, c):
        e2e.clear_rate_limits()
        e2e.PHONE_NUMBERS.append(sa_phone(c))
        return e2e.post_json(PHONE, {"code": c}, headers=self.auth)

    def token_calls(self):
        s = e2e.wechat_stats()
        return s.get("/cgi-bin/token", 0) + s.get("/cgi-bin/stable_token", 0)

    def test_phone_number_stored(self):
        c = code("phone")
        r = self.phone(c)
        b = self.assert_envelope(r, 200)
        want = "+86 " + sa_phone(c)
        self.assertEqual(b["data"]["phone_number"], want)
        e2e.clear_rate_limits()
        me = self.assert_envelope(e2e.get(ME, headers=self.auth), 200)
        self.assertEqual(me["data"]["phone"], want)
        self.assertEqual(e2e.psql_value("SELECT phone FROM users WHERE id = %d"
                                        % self.uid), want)

    def test_phone_errors(self):
        self.assert_envelope(self.phone(code("invalid")), 400, 40010)
        c = code("phone")
        self.assert_envelope(self.phone(c), 200)
        self.assert_envelope(self.phone(c), 400, 40010)     # single use
        e2e.clear_rate_limits()
        self.assert_envelope(e2e.post_json(PHONE, {"code": ""},
                                           headers=self.auth), 400, 40002)
        e2e.clear_rate_limits()
        self.assert_envelope(e2e.post_json(PHONE, {"code": "x"}), 401, 40100)

    def test_expired_token_refreshed(self):
        """WeChat says 42001 (token expired before the cached lifetime):
        the responder refreshes once and retries."""
        e2e.wechat_control(token_ttl_s=0.5)
        self.assert_envelope(self.phone(code("phone")), 200)
        self.assertEqual(self.token_calls(), 1)
        time.sleep(0.7)
        self.assert_envelope(self.phone(code("phone")), 200)
        stats = e2e.wechat_stats()
        self.assertEqual(self.token_calls(), 2, stats)
        self.assertEqual(stats.get("/wxa/business/getuserphonenumber"), 3, stats)

    def test_expired_token_retried_once(self):
        """Every token is dead by the time it is used (each WeChat answer
        takes 300 ms, tokens live 100 ms): one refresh, one retry, then
        503 -- no loop."""
        e2e.wechat_control(token_ttl_s=0.1, latency_ms=300)
        r = self.phone(code("phone"))
        self.assert_envelope(r, 503, 50303)
        stats = e2e.wechat_stats()
        self.assertEqual(self.token_calls(), 2, stats)
        self.assertEqual(stats.get("/wxa/business/getuserphonenumber"), 2, stats)

    def test_shared_access_token(self):
        # Concurrent first calls on a cold cache, spread over the pool:
        # one responder refreshes, the others wait for its token.
        # Three users, two calls each (within any per-user rate limit).
        auths = [self.auth] + [e2e.bearer(self.login(code())[1]["access_token"])
                               for _ in range(2)]
        e2e.clear_rate_limits()
        results = []
        lock = threading.Lock()
        barrier = threading.Barrier(6)

        def one(auth, c):
            try:
                barrier.wait(timeout=10)
                r = e2e.post_json(PHONE, {"code": c}, headers=auth)
            except Exception as exc:        # reported below
                r = exc
            with lock:
                results.append((c, r))

        threads = [threading.Thread(target=one, args=(auths[i % 3],
                                                      code("phone")))
                   for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 6)
        for c, r in results:
            self.assertIsInstance(r, e2e.Response, "request failed: %r" % (r,))
            b = self.assert_envelope(r, 200)
            self.assertEqual(b["data"]["phone_number"], "+86 " + sa_phone(c))
        for _ in range(4):
            self.assert_envelope(self.phone(code("phone")), 200)
        stats = e2e.wechat_stats()
        self.assertEqual(self.token_calls(), 1,
                         "10 phone calls over the pool must fetch the server "
                         "access_token once: %r" % stats)
        self.assertEqual(stats.get(self.token_path), 1, stats)
        phone_calls = stats.get("/wxa/business/getuserphonenumber")
        self.assertEqual(phone_calls, 10, stats)
        # Cached to be refreshed before WeChat's expiry (7200 s).
        ttl = int(e2e.redis_cli("TTL", "wx:access_token"))
        self.assertTrue(0 < ttl < 7200, "wx:access_token TTL %d" % ttl)

        # WeChat kills every token: the next call refreshes once and retries.
        e2e.wechat_control(invalidate_tokens=True)
        self.assert_envelope(self.phone(code("phone")), 200)
        stats = e2e.wechat_stats()
        self.assertEqual(self.token_calls(), 2, stats)
        self.assertEqual(stats.get("/wxa/business/getuserphonenumber"),
                         phone_calls + 2, "one rejected call, one retry: %r"
                         % stats)
        # And the new token is shared again.
        for _ in range(3):
            self.assert_envelope(self.phone(code("phone")), 200)
        self.assertEqual(self.token_calls(), 2, e2e.wechat_stats())


class DecryptMaxAge(OwnResponder):
    """decrypt_max_age above 0, on a responder of the test's own (the
    stack's is 0, the default): data whose watermark is older is 40024."""

    def test_older_data_is_refused(self):
        e2e.wechat_base()
        self.start(WXAPP_DECRYPT_MAX_AGE="60")
        c = "user-dave%s-%s" % (NONCE, code())
        e2e.clear_rate_limits()
        e2e.LOGIN_CODES.append(c)
        r = e2e.post_json(LOGIN, {"code": c})
        d = self.assert_envelope(r, 200)["data"]
        key = base64.b64decode(sa_session_key(c))
        for age, status, err in ((3600, 400, 40024), (5, 200, None)):
            obj = {"openId": sa_openid("dave" + NONCE),
                   "watermark": {"appid": appid(),
                                 "timestamp": int(time.time()) - age}}
            iv = os.urandom(16)
            body = {"encryptedData": b64(aes_encrypt(key, iv,
                                                     json.dumps(obj))),
                    "iv": b64(iv)}
            r = fcgi.request(self.sock, "POST", DECRYPT,
                             body=json.dumps(body),
                             content_type="application/json",
                             headers={"Authorization": "Bearer " +
                                      d["access_token"]})
            with self.subTest(age=age):
                self.assert_envelope(r, status, err)
