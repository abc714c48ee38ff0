"""Resilience (issue 2): /healthz with Redis or PostgreSQL stopped and
recovery without a responder restart, SIGKILLed responders respawned, and
garbage requests that must never crash a responder or produce a 5xx.

These tests disturb the stack and restore it before they return."""

import http.client
import json
import random
import signal
import ssl
import time

import e2elib as e2e

HEALTHY = {"postgres": "ok", "redis": "ok"}


class Outage(e2e.TestCase):

    def _outage(self, service, key, other, code, recover_s):
        e2e.need_stack()
        ok, last, _ = e2e.wait_healthy(10)
        self.assertTrue(ok, "precondition: stack not healthy: %s" % e2e.describe(last))
        pids_before = e2e.responder_pids()
        self.assertTrue(pids_before, "no wxapp-fcgi responders found")

        stopped = False

        def restore():
            if stopped:
                try:
                    e2e.svc("start", service)
                except Exception as e:  # noqa: BLE001 - best effort in cleanup
                    e2e.log("cleanup: svc start %s failed: %s" % (service, e))
                e2e.wait_healthy(20)
        self.addCleanup(restore)

        stopped = True          # even a failed stop may have stopped it
        e2e.svc("stop", service)

        # The first /healthz after the stop must notice (allow a short poll
        # in case `svc stop` returns before the process is quite gone).
        r = e2e.wait_for(lambda: (lambda x: x if x.status == 503 else None)(e2e.get("/healthz")),
                         5.0, 0.2)
        if r is None:
            r = e2e.get("/healthz")
        body = self.assert_envelope(r, 503, code)
        data = body["data"]
        self.assertIsInstance(data, dict, "503 data should name the failing backend: %s"
                              % r.describe())
        self.assertIn(key, data, r.describe())
        self.assertNotEqual(data[key], "ok", r.describe())
        self.assertEqual(data.get(other), "ok", r.describe())

        # Every responder must answer 503 (not hang, not crash, not 502).
        for _ in range(8):
            r = e2e.get("/healthz")
            self.assert_envelope(r, 503, code)
        # Endpoints that don't need the backend keep working.
        for _ in range(4):
            self.assert_envelope(e2e.get("/ping"), 200, 0, data={"message": "pong"})

        e2e.svc("start", service)
        stopped = False
        ok, last, took = e2e.wait_healthy(recover_s)
        self.assertTrue(ok, "/healthz did not recover within %ss after `svc start %s`; "
                            "last: %s" % (recover_s, service, e2e.describe(last)))
        e2e.log("%s recovered in %.1fs" % (service, took))
        self.assert_envelope(e2e.get("/healthz"), 200, 0, data=HEALTHY)

        pids_after = e2e.responder_pids()
        if not e2e.recycling_possible(200):
            self.assertEqual(pids_after, pids_before,
                             "responders were restarted (before %s, after %s): recovery "
                             "must not need a restart" % (sorted(pids_before), sorted(pids_after)))

    def test_redis_down_and_back(self):
        self._outage("redis", "redis", "postgres", 50302, recover_s=10)

    def test_postgres_down_and_back(self):
        self._outage("postgres", "postgres", "redis", 50301, recover_s=15)

    def test_postgres_restarted_while_idle(self):
        """PostgreSQL restarts while the responders wait for requests: the
        first request of each finds its connection closed by the server
        and connects again before sending anything -- no 503."""
        e2e.need_stack()
        ok, last, _ = e2e.wait_healthy(10)
        self.assertTrue(ok, "precondition: stack not healthy: %s" % e2e.describe(last))
        self.addCleanup(lambda: e2e.wait_healthy(20))
        e2e.svc("restart", "postgres")
        e2e.wait_for(lambda: e2e.psql("SELECT 1") == [["1"]], 15, 0.2)
        bad = []
        for i in range(24):
            r = e2e.get("/healthz")
            if r.status != 200:
                bad.append("#%d: %s" % (i, r.describe()))
        self.assertFalse(bad, "after a PostgreSQL restart, %d of 24 GET /healthz "
                         "failed: %s" % (len(bad), "; ".join(bad[:3])))


class Respawn(e2e.TestCase):

    def test_sigkill_responder(self):
        e2e.need_run_dir()
        before = e2e.responder_pids()
        self.assertGreaterEqual(len(before), 2,
                                "need at least 2 responders, found %s" % sorted(before))
        victim = sorted(before)[0]
        e2e.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()

        bad = []
        for i in range(50):
            try:
                r = e2e.get("/ping")
                if r.status != 200:
                    bad.append("#%d: %s" % (i, r.describe()))
                else:
                    self.assert_envelope(r, 200, 0, data={"message": "pong"})
            except (OSError, http.client.HTTPException) as e:
                bad.append("#%d: %s: %s" % (i, type(e).__name__, e))
        self.assertFalse(bad, "%d of 50 GET /ping after SIGKILL of %d failed: %s"
                         % (len(bad), victim, "; ".join(bad[:5])))

        def respawned():
            now = e2e.responder_pids()
            return now if victim not in now and len(now) >= len(before) else None
        now = e2e.wait_for(respawned, max(0.0, 8.0 - (time.monotonic() - t0)), 0.1)
        self.assertIsNotNone(now, "responder %d not replaced within 8s; before %s, now %s"
                             % (victim, sorted(before), sorted(e2e.responder_pids())))
        self.assertTrue(now - before, "no new responder pid appeared: %s" % sorted(now))
        self.assertEqual(len(now), len(before),
                         "responder count %d -> %d" % (len(before), len(now)))
        e2e.log("respawned in %.1fs: new %s" % (time.monotonic() - t0, sorted(now - before)))

        # The newcomer is fully working (connected to both backends).
        ok, last, _ = e2e.wait_healthy(10, consecutive=2 * len(now))
        self.assertTrue(ok, "after respawn /healthz not 200: %s" % e2e.describe(last))
        for _ in range(10):
            self.assert_envelope(e2e.get("/ping"), 200, 0, data={"message": "pong"})


# --------------------------------------------------------------------------
# Robustness: odd requests
# --------------------------------------------------------------------------

def _ascii_bad_paths():
    return [
        "/ping%00", "/%00", "/ping/%00", "/%zz", "/ping%zz", "/ping%", "/%", "/%%",
        "/ping%2", "/p%69ng", "/ping/", "//ping", "/./ping", "/ping/..", "/../ping",
        "/ping/../ping", "/..%2fping", "/PING", "/ping;a=b", "/ping%3Fa=b", "/ping%2F",
        "/api/v1/users/%ff", "/api/v1/users/" + "x" * 3000, "/" + "a/" * 1000,
        "/ping%20x", "/%E2%82%AC", "/%c0%af", "/healthz%00", "/healthz/", "/nope/" * 200,
        "/ping#frag", "/ping?#", "/%2e%2e/%2e%2e/etc/passwd", "/ping%0d%0aX-Injected:%201",
        "/\\ping", "/ping%5c", "/%u0070ing", "/ping\x7f".replace("\x7f", "%7f"),
    ]


def _queries():
    return [
        "/ping?" + "a" * 1000, "/ping?" + "a" * 4000, "/ping?" + "b" * 7000,
        "/ping?" + "&".join("k%d=v%d" % (i, i) for i in range(500)),
        "/ping?%", "/ping?%zz", "/ping?a=%", "/ping?a=%0", "/ping?a=%00", "/ping?%00=%00",
        "/ping?a=%ff%fe", "/ping?a=%c3%28", "/ping?=", "/ping?&&&", "/ping?a==b",
        "/ping?a=1;b=2", "/ping?a=+%2B+", "/ping?" + "%41" * 1500, "/ping?a[]=1&a[b]=2",
        "/ping?a=%E2%82", "/healthz?x=%zz", "/nope?%00", "/ping?" + "%" * 3000,
        "/ping?a=" + "%2525" * 500, "/ping?" + "=&" * 2000,
    ]


def _json_bodies():
    deep = 10000
    bodies = [
        b"[" * deep + b"]" * deep,
        b'{"a":' * 6000 + b"1" + b"}" * 6000,
        b'{"echo":' + b"[" * deep + b"]" * deep + b"}",
        b"[" * 30000,
        b"{" * 30000,
        b'{"echo":"' + b"a" * 60000 + b'"}',
        b'{"echo":"\xff"}', b'{"echo":"\xc3\x28"}', b'{"echo":"\xc0\xaf"}',
        b'{"echo":"\xed\xa0\x80"}', b'{"echo":"\xf8\x88\x80\x80\x80"}',
        b'{"echo":"\xf4\x90\x80\x80"}', b'{"echo":"abc\xe2\x82"}',
        b'\xff\xfe{"echo":"hi"}', b'\xef\xbb\xbf{"echo":"hi"}', b'{"\xff":"x","echo":"y"}',
        b'{"echo":"\\ud800"}', b'{"echo":"\\udc00\\ud800"}', b'{"echo":"\\u0000"}',
        b'{"echo":"a\\u0000b"}', b'{"echo":"\\x41"}', b'{"echo":"\\"}', b'{"echo":"\\uZZZZ"}',
        b'{"echo":"\\u12"}', b'{"echo":"a\x01\nb"}', b'{"echo":"a\x00b"}',
        b"null", b"true", b"1", b"-0", b"1e999", b'"str"', b"[]", b"{}",
        b'{"echo":null}', b'{"echo":true}', b'{"echo":{}}', b'{"echo":[]}',
        b'{"echo":1e999}', b'{"echo":-1e-999}', b'{"echo":123456789012345678901234567890}',
        b'{"echo":"a","echo":"b"}', b'{"echo":"a","echo":5}',
        b'{"echo":"hi"} trailing', b'{"echo":"hi"}{"echo":"x"}', b'{"echo":"hi",}',
        b"{'echo':'hi'}", b'{echo:"hi"}', b"", b" ", b"\x00", b'{"echo":"hi"}\x00garbage',
        b"NaN", b'{"echo":NaN}', b'{"echo":Infinity}', b'/* c */{"echo":"hi"}',
        b'{"echo":"' + b"\\u00e9" * 5000 + b'"}',
        b'{"echo":"' + b'\\"' * 20000 + b'"}',
        b'{"echo":"' + b"\\ud83d\\ude00" * 3000 + b'"}',
        ('{"echo":"' + "\U0001f600" * 1000 + '"}').encode(),
        b'{"' + b"k" * 10000 + b'":1,"echo":"x"}',
        ("{" + ",".join('"k%d":%d' % (i, i) for i in range(5000)) + "}").encode(),
        b'{"echo":"x","n":' + b"9" * 20000 + b"}",
        b"\t\r\n " * 1000 + b'{"echo":"ws"}',
    ]
    return bodies


def _content_types():
    return ["application/json; charset=utf-8", "APPLICATION/JSON",
            "application/json;charset=latin-1", "application/json ; foo=bar",
            "application/jsonx", "application/vnd.api+json", "text/json",
            "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
            "", ";;;", "application/json" * 100, "application/json; charset=\"utf-8\""]


def _odd_headers():
    return [
        {"X-Request-Id": "a" * 64}, {"X-Request-Id": "a" * 65}, {"X-Request-Id": "../../etc"},
        {"X-Request-Id": "%00"}, {"X-Request-Id": "\t"}, {"X-Request-Id": "x" * 4000},
        {"Cookie": "a=%zz; b=%00; ;;=;; =x; c"}, {"Cookie": "s=" + "%41" * 1500},
        {"Authorization": "Bearer " + "x" * 4000}, {"Authorization": "Basic %%%"},
        {"Authorization": ""}, {"traceparent": "garbage"},
        {"traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-00"},
        {"If-None-Match": '"*"' * 100}, {"If-Modified-Since": "yesterday"},
        dict(("X-H%d" % i, "v%d" % i) for i in range(80)),
        {"Accept-Encoding": "gzip, br, deflate, *"}, {"Accept": "*/*;q=foo"},
        {"X-Forwarded-For": "1.2.3.4, <script>"}, {"Range": "bytes=0-1,5-2"},
    ]


def _raw_requests():
    host = e2e.HOST_HEADER.encode()
    pfx = e2e.PREFIX.encode()

    def req(first, *hdrs, body=b""):
        lines = [first, b"Host: " + host] + list(hdrs) + [b"Connection: close"]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    ct = b"Content-Type: application/json"
    p = b"POST " + pfx + b"/ping HTTP/1.1"
    return [
        # (bytes, read timeout, response required)
        (req(p, ct, b"Content-Length: -1", body=b"{}"), None, False),
        (req(p, ct, b"Content-Length: abc", body=b"{}"), None, False),
        (req(p, ct, b"Content-Length: 2", b"Content-Length: 5", body=b"{}"), None, False),
        (req(p, ct, b"Content-Length: 99999999999999999999", body=b"{}"), None, False),
        (req(p, ct, b"Transfer-Encoding: chunked", b"Content-Length: 3",
             body=b"2\r\n{}\r\n0\r\n\r\n"), None, False),
        (req(p, ct, b"Transfer-Encoding: chunked", body=b"zz\r\n{}\r\n0\r\n\r\n"), None, False),
        (req(p, ct, b"Transfer-Encoding: chunked",
             body=b"d\r\n{\"echo\":\"ok\"}\r\n0\r\n\r\n"), None, True),
        (req(p, ct, b"Transfer-Encoding: gzip", body=b"{}"), None, False),
        (req(p, ct, b"Expect: 100-continue", b"Content-Length: 13",
             body=b'{"echo":"ok"}'), None, True),
        (b"POST " + pfx + b"/ping HTTP/1.0\r\n" + ct + b"\r\n\r\n", 2.0, False),
        (b"GARBAGE\r\n\r\n", None, False),
        (req(b"GET " + pfx + b"/\xff\xfe HTTP/1.1"), None, False),
        (req(b"GET " + pfx + b"/ping HTTP/1.1", b"NoColonHeader"), None, False),
        (req(b"GET " + pfx + b"/ping HTTP/9.9"), None, False),
        (b"GET " + pfx + b"/ping HTTP/1.1\r\nConnection: close\r\n\r\n", None, False),
        (req(b"get " + pfx + b"/ping HTTP/1.1"), None, False),
        (req(b"GET " + pfx + b"/ping HTTP/1.1", b"X-Request-Id: \xff\xfe\x00"), None, False),
        (req(b"GET " + pfx + b"/ping HTTP/1.1", b"X-Bin: \x01\x02\x7f\x80"), None, False),
        (req(b"GET " + pfx + b"/\xe4\xbd\xa0 HTTP/1.1"), None, False),
        # Content-Length larger than what is sent: nginx waits for the rest;
        # give up after a second (no response expected).
        (req(p, ct, b"Content-Length: 100", body=b'{"echo":"short"}'), 1.0, False),
        (req(p, ct, b"Content-Length: 65536", body=b'{"echo":'), 1.0, False),
    ]


class Robustness(e2e.TestCase):

    N = 200

    def _specs(self):
        rnd = random.Random(20240602)
        specs = []
        for path in _queries():
            specs.append(("http", "GET", path, None, {}, "auto"))
        for path in _ascii_bad_paths():
            specs.append(("http", "GET", path, None, {}, "auto"))
        for m in ("PUT", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL", "FOO",
                  "GETX", "X" * 20, "BREW", "PURGE", "LINK", "CONNECT"):
            for path in ("/ping", "/nope"):
                specs.append(("http", m, path, None, {}, "auto"))
        specs.append(("http", "PUT", "/healthz", b'{"echo":"x"}',
                      {"Content-Type": "application/json"}, "auto"))
        for body in _json_bodies():
            specs.append(("http", "POST", "/ping", body,
                          {"Content-Type": "application/json"}, "auto"))
        for ct in _content_types():
            specs.append(("http", "POST", "/ping", b'{"echo":"ct"}',
                          {"Content-Type": ct}, "auto"))
        for h in _odd_headers():
            specs.append(("http", "GET", "/ping", None, h, "auto"))
            specs.append(("http", "GET", "/healthz", None, h, "auto"))
        # Content-Length mismatches the server can answer.
        jh = {"Content-Type": "application/json"}
        specs += [
            ("http", "POST", "/ping", b'{"echo":"hi"}', jh, 5),
            ("http", "POST", "/ping", b'{"echo":"hi"}', jh, 0),
            ("http", "GET", "/ping", b'{"echo":"hi"}', jh, "auto"),
            ("http", "DELETE", "/ping", b'{"echo":"hi"}', jh, "auto"),
            ("http", "POST", "/healthz", b"x", jh, "auto"),
        ]
        for raw in _raw_requests():
            specs.append(("raw",) + raw)
        # Fill up to N with random byte bodies and random percent-encoded paths.
        while len(specs) < self.N:
            if rnd.random() < 0.5:
                n = rnd.choice([1, 7, 100, 1000, 30000])
                body = bytes(rnd.getrandbits(8) for _ in range(n))
                specs.append(("http", "POST", "/ping", body, jh, "auto"))
            else:
                path = "/" + "".join(rnd.choice(["%%%02x" % rnd.randrange(256), "a", "/",
                                                 "%", ".", "~", "ping"])
                                     for _ in range(rnd.randint(1, 60)))
                specs.append(("http", rnd.choice(["GET", "POST", "HEAD"]), path, None, {},
                              "auto"))
        return specs

    def _check(self, spec, problems, stats):
        kind = spec[0]
        if kind == "http":
            _, method, path, body, headers, cl = spec
            label = "%s %s body=%s" % (method, e2e._short(path, 60),
                                       "-" if body is None else "%dB" % len(body))
            try:
                r = e2e.request(method, path, body=body, headers=headers,
                                content_length=cl)
            except (http.client.HTTPException, OSError, ssl.SSLError) as e:
                # http.client refuses some inputs itself; nginx may drop the
                # connection on others. Neither is a server crash.
                stats["noresp"] += 1
                e2e.log("no response to %s: %s: %s" % (label, type(e).__name__, e))
                return
            require_response = False
        else:
            _, data, timeout, require_response = spec
            label = "raw %r" % data[:60]
            r = e2e.raw_request(data, timeout=timeout or 5.0, target=label)
            if r is None:
                stats["noresp"] += 1
                if require_response:
                    problems.append("%s: no response" % label)
                return
        stats[r.status] = stats.get(r.status, 0) + 1
        if r.status is None or r.status >= 500:
            problems.append("%s -> %s" % (label, r.describe(200)))
            return
        if require_response and r.status != 200:
            problems.append("%s -> want 200: %s" % (label, r.describe(200)))
        # Anything that claims to be the app's JSON must be a valid envelope.
        if (r.header("Content-Type") or "").startswith("application/json") and method_has_body(r):
            try:
                obj = r.json()
                if not (isinstance(obj, dict) and set(obj) == e2e.ENVELOPE_KEYS):
                    problems.append("%s -> not an envelope: %s" % (label, r.describe(200)))
            except AssertionError as e:
                problems.append("%s -> %s" % (label, e))

    def test_garbage_requests(self):
        e2e.need_run_dir()
        before = e2e.responder_pids()
        self.assertTrue(before, "no wxapp-fcgi responders found")
        specs = self._specs()
        self.assertGreaterEqual(len(specs), self.N)
        problems, stats = [], {"noresp": 0}
        t0 = time.monotonic()
        for spec in specs:
            self._check(spec, problems, stats)
        e2e.log("%d odd requests in %.1fs: %s" % (len(specs), time.monotonic() - t0,
                                                  json.dumps(stats, default=str)))
        after = e2e.responder_pids()
        self.assertFalse(problems, "%d of %d odd requests misbehaved: %s"
                         % (len(problems), len(specs), " || ".join(problems[:6])))
        if not e2e.recycling_possible(len(specs)):
            self.assertEqual(after, before,
                             "responders changed (crash?): before %s, after %s"
                             % (sorted(before), sorted(after)))
        ok, last, _ = e2e.wait_healthy(10, consecutive=2 * max(1, len(before)))
        self.assertTrue(ok, "after the odd requests /healthz is not 200: %s"
                        % e2e.describe(last))


def method_has_body(r):
    return r.method != "HEAD" and r.status not in (204, 304)
