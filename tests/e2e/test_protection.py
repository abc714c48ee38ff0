"""Traffic protection (issue 5), through nginx: rate limiting, the WeChat
circuit breaker, timeouts, the bulkhead and the edge limits of
nginx-fastcgi.conf.

The limits are read from the stack's effective configuration
($WXAPP_RUN_DIR/wxapp.conf and the responders' WXAPP_<KEY> overrides), so the
tests hold for the check stack's raised limits and for the defaults alike.
Distinct clients are played with X-Forwarded-For (the stack trusts it from
127.0.0.1, as from a load balancer): fresh random 127.x.y.z addresses for the
application's limiter (nginx's edge zones exempt loopback), random
198.18.0.0/15 addresses (the benchmarking range) for the edge zones.  Many
requests are sent quickly over pipelined HTTP/1.1 connections, so that the
bounds ("burst, plus what refilled meanwhile") stay tight.

  RateLimit   429 with Retry-After and RateLimit-*; per address (login class,
              unauthenticated), per identity (read class with a Bearer
              token); one budget over all responders; refill
  Fallback    Redis stopped: each responder limits with its own bucket
              (allowed <= burst x responders, > 0), never a 5xx
  Breaker     fail=busy opens the shared breaker: 503 + Retry-After at once,
              no more calls reach the stand-in, GET /status shows it open; a
              failed half-open trial reopens it, a good one closes it; user
              errors (40029) never open it
  Timeouts    WeChat (wechat_timeout_ms), PostgreSQL (statement timeout on a
              locked table), Redis (CLIENT PAUSE: command timeout)
  Bulkhead    GET /api/v1/data/list stays fast while logins wait 3 s on WeChat
  Edge        nginx's per-address limit_req zones (JSON 429), /status is
              loopback only

Every test restores what it changed (stand-in settings, Redis, locks) in
cleanups.
"""

import json
import math
import os
import random
import re
import secrets
import socket
import subprocess
import threading
import time
import unittest

import e2elib as e2e
from test_metrics import scrape, value

NONCE = secrets.token_hex(4)
LOGIN = "/api/v1/user/login"
PHONE = "/api/v1/user/phone"
REFRESH = "/api/v1/user/refresh"
LIST = "/api/v1/data/list"
CODE2SESSION = "/sns/jscode2session"

_rng = random.Random(int.from_bytes(os.urandom(8), "big"))
_seq = [0]
_seq_lock = threading.Lock()


def seq():
    with _seq_lock:
        _seq[0] += 1
        return _seq[0]


def code(prefix="prot"):
    """A fresh wx.login code the stand-in accepts (single use)."""
    return "%s%sn%d" % (prefix, NONCE, seq())


_used_addrs = set()


def fresh_addr():
    """A client address nobody used yet: 127.128-254.x.y (loopback: not
    limited by nginx's edge zones, only by the application)."""
    while True:
        a = "127.%d.%d.%d" % (_rng.randint(128, 254), _rng.randint(0, 255),
                              _rng.randint(1, 254))
        if a not in _used_addrs:
            _used_addrs.add(a)
            return a


def edge_addr():
    """A non-loopback client address (198.18.0.0/15): limited by nginx's
    edge zones too."""
    while True:
        a = "198.%d.%d.%d" % (_rng.randint(18, 19), _rng.randint(0, 255),
                              _rng.randint(1, 254))
        if a not in _used_addrs:
            _used_addrs.add(a)
            return a


def xff(addr, extra=None):
    h = {"X-Forwarded-For": addr}
    h.update(extra or {})
    return h


def json_body(obj):
    return json.dumps(obj).encode("utf-8")


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(math.ceil(p / 100.0 * len(v))) - 1))
    return v[k]


def int_header(r, name):
    v = r.header(name)
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------
# Pipelined HTTP/1.1 over TLS
# --------------------------------------------------------------------------

def tagged(spec):
    """spec with a unique X-Request-Id, also kept as spec.tag."""
    if spec.tag is None:
        spec.tag = "prot-%s-%d" % (NONCE, seq())
        spec.headers["X-Request-Id"] = spec.tag
    return spec


class Spec:
    """One request to send: method, path, headers (dict), body (bytes)."""

    __slots__ = ("method", "path", "headers", "body", "tag")

    def __init__(self, method, path, headers=None, body=None, tag=None):
        self.method, self.path = method, path
        self.headers = dict(headers or {})
        self.body = body
        self.tag = tag

    def encode(self):
        target = e2e.PREFIX + self.path
        lines = ["%s %s HTTP/1.1" % (self.method, target),
                 "Host: %s" % e2e.HOST_HEADER]
        for k, v in self.headers.items():
            lines.append("%s: %s" % (k, v))
        if self.body is not None:
            lines.append("Content-Type: application/json")
            lines.append("Content-Length: %d" % len(self.body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (self.body or b"")


class Pipe:
    """A kept-alive connection to nginx that pipelines requests: a window
    of requests is written at once, then their answers are read in order."""

    def __init__(self, timeout=None):
        self.timeout = e2e.TIMEOUT if timeout is None else timeout
        s = socket.create_connection((e2e.HOST, e2e.PORT), timeout=self.timeout)
        if e2e.SCHEME == "https":
            s = e2e.ssl_context(["http/1.1"]).wrap_socket(s, server_hostname=e2e.HOST)
        self.sock = s
        self.buf = b""
        self.closed = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed = True
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def _read_until(self, sep):
        while sep not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(sep)
        return head

    def _read_n(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, spec):
        head = self._read_until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
        if not m:
            raise AssertionError("unparseable status line %r" % lines[0][:100])
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            headers.append((k.strip().decode("latin-1"), v.strip().decode("latin-1")))
        status = int(m.group(1))
        r = e2e.Response(spec.method, e2e.PREFIX + spec.path, status,
                         m.group(2).decode("latin-1"), headers, b"")
        cl = r.header("Content-Length")
        te = (r.header("Transfer-Encoding") or "").lower()
        if spec.method == "HEAD" or status in (204, 304):
            body = b""
        elif cl is not None:
            body = self._read_n(int(cl))
        elif "chunked" in te:
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._read_until(b"\r\n")
                    break
                body += self._read_n(size)
                self._read_n(2)
        else:
            raise AssertionError("answer without a length: %r" % head[:300])
        r.body = body
        if (r.header("Connection") or "").lower() == "close":
            self.closed = True
        return r

    def exchange(self, specs):
        """Send specs at once, read their answers; [(spec, Response, t)]
        for the answers that came (the rest: the server closed first)."""
        self.sock.sendall(b"".join(s.encode() for s in specs))
        out = []
        for s in specs:
            try:
                r = self.read_response(s)
            except (EOFError, ConnectionResetError, OSError):
                self.closed = True
                break
            out.append((s, r, time.monotonic()))
            if self.closed:
                break
        return out


def run_pipelined(specs, conns=4, window=50, per_conn=400):
    """Send specs over `conns` parallel pipelined connections (spec i on
    connection i % conns, in order), `window` requests in flight on each.
    Returns (results in completion order [(spec, Response, t)], seconds
    from the first send to the last answer).  A connection the server
    closes is replaced, and the requests it did not answer are sent again
    (nginx answers pipelined requests in order: an unanswered one was not
    processed)."""
    lanes = [specs[i::conns] for i in range(conns)]
    results, errors = [], []
    lock = threading.Lock()
    t0 = time.monotonic()

    def lane(todo):
        pipe, used, i, retries = None, 0, 0, 0
        try:
            while i < len(todo):
                if pipe is None or pipe.closed or used >= per_conn:
                    if pipe is not None:
                        pipe.close()
                    pipe, used = Pipe(), 0
                chunk = todo[i:i + min(window, per_conn - used)]
                got = pipe.exchange(chunk)
                used += len(chunk)
                i += len(got)
                with lock:
                    results.extend(got)
                if len(got) < len(chunk):
                    retries += 1
                    if retries > 20:
                        raise AssertionError("the server keeps closing the "
                                             "connection without answering")
                    pipe.closed = True
        except Exception as exc:        # reported by the caller
            with lock:
                errors.append(exc)
        finally:
            if pipe is not None:
                pipe.close()

    threads = [threading.Thread(target=lane, args=(l,), daemon=True)
               for l in lanes if l]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - t0
    if errors:
        raise AssertionError("pipelined requests failed: %r" % (errors[0],))
    if len(results) != len(specs):
        raise AssertionError("%d of %d pipelined requests answered"
                             % (len(results), len(specs)))
    return results, elapsed


# --------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------

class RateClass:
    def __init__(self, name):
        self.name = name
        self.rate = e2e.conf_int("ratelimit_%s_rate" % name,
                                 {"login": 10, "read": 20, "write": 5}[name])
        self.period = e2e.conf_int("ratelimit_%s_period" % name,
                                   {"login": 60, "read": 1, "write": 1}[name])
        self.burst = e2e.conf_int("ratelimit_%s_burst" % name,
                                  {"login": 5, "read": 40, "write": 10}[name])
        self.T = float(self.period) / self.rate    # seconds per token

    def refill(self, seconds):
        """Tokens that come back in `seconds`."""
        return seconds / self.T

    def __repr__(self):
        return "%s %d/%ds burst %d" % (self.name, self.rate, self.period, self.burst)


def ratelimit_on():
    return (e2e.conf_value("ratelimit", "on") or "on").lower() in ("on", "yes", "true", "1")


def pool_sizes():
    """(main responders, WeChat responders, WeChat sockets) of the stack."""
    env = e2e.stack_env()

    def num(k, d):
        try:
            return int(env.get(k, d))
        except ValueError:
            return d
    return (num("SOCKETS", 2) * num("RESPONDERS", 2),
            num("WECHAT_SOCKETS", 1) * num("WECHAT_RESPONDERS", 2),
            num("WECHAT_SOCKETS", 1))


def log_scan(tags, wait=3.0):
    """What the app's log says about the requests with these ids (our
    X-Request-Id): {id: {"pid": the responder that answered (access line),
    "redis": True when Redis failed during it (a "redis: ..." line: the
    rate limiter used its local bucket)}}.  Waits up to `wait` s for access
    lines not written yet; {} when the log cannot be read."""
    deadline = time.monotonic() + wait
    while True:
        found = _log_scan(set(tags))
        done = sum(1 for v in found.values() if "pid" in v)
        if done >= len(set(tags)) or time.monotonic() >= deadline:
            return found
        time.sleep(0.1)


def _log_scan(want):
    path = e2e.log_file_path()
    found = {}
    if not path or not want:
        return found
    mark = NONCE.encode("ascii")    # every id we send contains it
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024 * 1024))
            for raw in f:
                if mark not in raw or b'"request_id"' not in raw:
                    continue
                try:
                    d = json.loads(raw)
                except ValueError:
                    continue
                rid = d.get("request_id")
                if rid not in want:
                    continue
                v = found.setdefault(rid, {"redis": False})
                if d.get("type") == "access":
                    v["pid"] = d.get("pid")
                elif (d.get("level") == "error" and
                      str(d.get("msg", "")).startswith("redis:")):
                    v["redis"] = True
    except OSError:
        pass
    return found


def log_pids(tags, wait=3.0):
    return {k: v["pid"] for k, v in log_scan(tags, wait).items() if "pid" in v}


def redis_fallbacks(tags):
    """How many of these requests met a Redis failure (and so were limited
    by the responder's local bucket).  After Redis restarted, each
    responder's first command fails on its stale connection, once."""
    return sum(1 for v in log_scan(tags).values() if v["redis"])


def status_doc():
    """GET /status from 127.0.0.1 (no X-Forwarded-For): the data."""
    r = e2e.get("/status")
    if r.status != 200:
        raise AssertionError("GET /status: %s" % r.describe())
    return r.json()["data"]


def breaker():
    return status_doc()["breakers"]["wechat"]


def stand_in_calls(path=CODE2SESSION):
    return e2e.wechat_stats().get(path, 0)


def timed_login(c, addr=None, timeout=None):
    t0 = time.monotonic()
    r = e2e.post_json(LOGIN, {"code": c}, headers=xff(addr or fresh_addr()),
                      timeout=timeout)
    return r, time.monotonic() - t0


def breaker_params():
    return {"window_s": e2e.conf_int("breaker_window_s", 10),
            "min_calls": e2e.conf_int("breaker_min_calls", 20),
            "error_pct": e2e.conf_int("breaker_error_pct", 50),
            "open_ms": e2e.conf_int("breaker_open_ms", 5000),
            "half_open_calls": e2e.conf_int("breaker_half_open_calls", 1)}


def ensure_breaker_closed(tc):
    """Bring the shared breaker back to closed (a good stand-in, then a
    successful trial once open_ms has passed)."""
    if breaker()["state"] == "closed":
        return
    e2e.wechat_control(fail="none", latency_ms=0)
    open_s = breaker_params()["open_ms"] / 1000.0
    deadline = time.monotonic() + open_s + 5
    last = None
    while time.monotonic() < deadline:
        last, _ = timed_login(code("close"))
        if last.status == 200 and breaker()["state"] == "closed":
            return
        time.sleep(0.2)
    tc.fail("the circuit breaker did not close within %.1f s after the "
            "stand-in recovered: %s; last login: %s"
            % (open_s + 5, breaker(), last.describe() if last else None))


def restore_standin():
    try:
        e2e.wechat_reset()
    except Exception as exc:        # never mask the test's own result
        e2e.log("cannot restore the stand-in: %s" % exc)


# --------------------------------------------------------------------------
# Rate limiting
# --------------------------------------------------------------------------

class RateLimitBase(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()
        if not ratelimit_on():
            self.skipTest("ratelimit is off in this stack's configuration")

    def assert_allowed_headers(self, r, cls):
        lim = int_header(r, "RateLimit-Limit")
        rem = int_header(r, "RateLimit-Remaining")
        self.assertEqual(lim, cls.burst, "RateLimit-Limit must be the %s burst: %s"
                         % (cls, r.describe()))
        self.assertIsNotNone(rem, "no RateLimit-Remaining: %s" % r.describe())
        self.assertTrue(0 <= rem < cls.burst, "RateLimit-Remaining %s: %s"
                        % (rem, r.describe()))
        return rem

    def assert_limited(self, r, cls):
        """The application's 429: envelope, Retry-After, RateLimit-*."""
        self.assert_envelope(r, 429, 42900)
        ra = int_header(r, "Retry-After")
        self.assertIsNotNone(ra, "429 without an integer Retry-After: %s" % r.describe())
        self.assertTrue(1 <= ra <= math.ceil(cls.T) + 1,
                        "Retry-After %s for a %s bucket (a token every %.3f s): %s"
                        % (ra, cls, cls.T, r.describe()))
        self.assertEqual(int_header(r, "RateLimit-Limit"), cls.burst, r.describe())
        self.assertEqual(int_header(r, "RateLimit-Remaining"), 0, r.describe())
        reset = int_header(r, "RateLimit-Reset")
        self.assertIsNotNone(reset, "429 without RateLimit-Reset: %s" % r.describe())
        self.assertTrue(1 <= reset <= math.ceil(cls.burst * cls.T) + 1,
                        "RateLimit-Reset %s for %s: %s" % (reset, cls, r.describe()))
        return ra

    def send_until_limited(self, make_spec, cls, want_429=3, conns=1):
        """Pipelined requests from make_spec(i) until want_429 answers were
        429 (or a cap); returns (results in order, elapsed seconds).  Each
        request gets an X-Request-Id (Spec.tag) unless it has one."""
        results, i = [], 0
        cap = 3 * cls.burst + 200
        t0 = time.monotonic()
        while i < cap:
            n = min(cap - i, max(20, cls.burst + want_429 - i))
            specs = [tagged(make_spec(i + k)) for k in range(n)]
            got, _ = run_pipelined(specs, conns=conns)
            if conns == 1:
                got.sort(key=lambda x: x[2])
            results.extend(got)
            i += n
            if sum(1 for _, r, _ in results if r.status == 429) >= want_429:
                break
        return results, time.monotonic() - t0


class RateLimit(RateLimitBase):

    def test_login_class_per_address(self):
        """Unauthenticated logins are limited per client address: after the
        burst, 429 with Retry-After and RateLimit-*; a valid code is refused
        too (WeChat is not called); another address has its own budget."""
        cls = RateClass("login")
        x = fresh_addr()
        try:
            calls0 = stand_in_calls()
        except unittest.SkipTest:
            calls0 = None
        # An empty code fails validation (400) after the limiter: no WeChat call.
        results, elapsed = self.send_until_limited(
            lambda i: Spec("POST", LOGIN, xff(x), json_body({"code": ""})), cls)
        rs = [r for _, r, _ in results]
        first = rs[0]
        self.assert_envelope(first, 400, 40002)
        self.assertEqual(self.assert_allowed_headers(first, cls), cls.burst - 1,
                         "the first request of a fresh bucket: %s" % first.describe())
        k = next((i for i, r in enumerate(rs) if r.status == 429), None)
        self.assertIsNotNone(k, "%d logins from %s in %.2f s, none limited (%s)"
                             % (len(rs), x, elapsed, cls))
        allowed = [r for r in rs if r.status != 429]
        # A request that met a Redis failure was judged by a local bucket.
        scan = log_scan([s.tag for s, _, _ in results])
        local = {t for t, v in scan.items() if v["redis"]}
        fb = len(local)
        bound = cls.burst + cls.refill(elapsed) + 1 + fb
        e2e.log("login class %s: %d allowed of %d in %.2fs (bound %.1f, %d local), "
                "first 429 at #%d" % (cls, len(allowed), len(rs), elapsed, bound, fb, k))
        self.assertGreaterEqual(k, cls.burst,
                                "limited after %d requests; the burst is %d" % (k, cls.burst))
        self.assertLessEqual(len(allowed), bound,
                             "%d allowed in %.2f s; burst %d + refill %.1f (+ %d "
                             "judged locally)" % (len(allowed), elapsed, cls.burst,
                                                  cls.refill(elapsed), fb))
        prev = cls.burst
        for s, r, _ in results[:k]:
            self.assert_envelope(r, 400, 40002)
            rem = self.assert_allowed_headers(r, cls)
            if s.tag not in local:
                self.assertLessEqual(rem, prev + 1, "Remaining went up: %s" % r.describe())
                prev = rem
        for r in rs:
            if r.status == 429:
                self.assert_limited(r, cls)
            else:
                self.assert_envelope(r, 400, 40002)
                self.assert_allowed_headers(r, cls)

        # Valid codes from the same address, right away: refused before
        # WeChat is called (one may pass if a token came back meanwhile).
        if calls0 is not None:
            t_last = results[-1][2]
            got, _ = run_pipelined([Spec("POST", LOGIN, xff(x), json_body({"code": code()}))
                                    for _ in range(3)], conns=1)
            since = time.monotonic() - t_last
            passed = [r for _, r, _ in got if r.status != 429]
            for _, r, _ in got:
                if r.status == 429:
                    self.assert_limited(r, cls)
                else:
                    self.assert_envelope(r, 200)
            self.assertLessEqual(len(passed), cls.refill(since) + 1,
                                 "%d valid logins passed %.2f s after the bucket ran "
                                 "dry" % (len(passed), since))
            self.assertEqual(stand_in_calls(), calls0 + len(passed),
                             "a rate-limited login must not call WeChat")

        # Another address: its own, full budget.
        r = e2e.post_json(LOGIN, {"code": ""}, headers=xff(fresh_addr()))
        self.assert_envelope(r, 400, 40002)
        self.assertEqual(self.assert_allowed_headers(r, cls), cls.burst - 1, r.describe())

    def test_one_budget_over_all_responders(self):
        """Concurrent requests of one client spread over the main pool's
        responders: together they get one burst, not one per responder."""
        cls = RateClass("login")        # POST /api/v1/user/refresh: login class, main pool
        n_main, _, _ = pool_sizes()
        x = fresh_addr()
        tag = "prot-share-%s-%d" % (NONCE, seq())
        n = 2 * cls.burst + 40
        specs = [Spec("POST", REFRESH, xff(x, {"X-Request-Id": "%s-%d" % (tag, i)}),
                      json_body({"refresh_token": "prot-unknown-%s-%d" % (NONCE, i)}),
                      tag="%s-%d" % (tag, i))
                 for i in range(n)]
        results, elapsed = run_pipelined(specs, conns=max(4, n_main))
        allowed = [(s, r) for s, r, _ in results if r.status != 429]
        limited = [r for _, r, _ in results if r.status == 429]
        for s, r in allowed:
            self.assert_envelope(r, 401, 40103)
            self.assert_allowed_headers(r, cls)
        for r in limited:
            self.assert_limited(r, cls)
        pids = log_pids([s.tag for s, _ in allowed])
        distinct = set(pids.values())
        fb = redis_fallbacks([s.tag for s in specs])
        bound = cls.burst + cls.refill(elapsed) + 2 + fb
        e2e.log("shared: %d allowed of %d in %.2fs (bound %.1f, %d local) by %d "
                "responders %s" % (len(allowed), n, elapsed, bound, fb, len(distinct),
                                   sorted(distinct)))
        self.assertGreaterEqual(len(allowed), cls.burst,
                                "only %d of %d allowed; the burst is %d"
                                % (len(allowed), n, cls.burst))
        self.assertLessEqual(len(allowed), bound,
                             "%d allowed from one client by %d responders in %.2f s: "
                             "more than one burst (%d) + refill (%.1f) -- buckets "
                             "per responder?" % (len(allowed), len(distinct), elapsed,
                                                 cls.burst, cls.refill(elapsed)))
        if pids:
            self.assertGreaterEqual(len(distinct), 2,
                                    "all allowed requests were served by one "
                                    "responder %s: the test shows nothing" % distinct)

    def test_busy_client_costs_a_round_trip_per_lease(self):
        """A client that keeps reading is paid for in Redis in batches
        (ratelimit_lease): far fewer script calls than requests, every
        answer still carrying the RateLimit headers."""
        cls = RateClass("read")
        lease = e2e.conf_int("ratelimit_lease", 32)
        if lease < 4 or cls.burst < 64:
            self.skipTest("ratelimit_lease %d / read burst %d: too small to "
                          "show batching" % (lease, cls.burst))
        path = LIST + "?page=1&page_size=3"
        # Every responder holds a copy of the answer: a read makes no
        # cache call, so the scripts Redis runs are the limiter's.
        for _ in range(8 * pool_sizes()[0]):
            self.assert_envelope(e2e.get(path, headers=xff(fresh_addr())), 200)
        x = fresh_addr()
        n = 64
        e2e.redis_cli("CONFIG", "RESETSTAT")
        remaining = []
        for _ in range(n):
            r = e2e.get(path, headers=xff(x))
            self.assert_envelope(r, 200)
            self.assert_allowed_headers(r, cls)
            remaining.append(int_header(r, "RateLimit-Remaining"))
        stats = e2e.redis_cli("INFO", "commandstats")
        scripts = sum(int(m) for m in re.findall(
            r"^cmdstat_eval(?:sha)?:calls=(\d+)", stats, re.M))
        e2e.log("leases: %d reads, %d script calls, remaining %s"
                % (n, scripts, remaining[:8]))
        self.assertGreaterEqual(scripts, 1, "control: the limiter never ran")
        self.assertLessEqual(scripts, n // 4,
                             "%d reads of one client cost %d calls to Redis: "
                             "no leases" % (n, scripts))
        self.assertLessEqual(max(remaining), cls.burst - 1, remaining)
        self.assertLess(remaining[1], remaining[0] + cls.rate,
                        "a leased request must not report the lease as "
                        "refill: %s" % remaining[:4])

    def test_refill(self):
        """After the Retry-After the client was given, the bucket has
        refilled at the configured rate."""
        cls = RateClass("login")
        x = fresh_addr()
        self.send_until_limited(
            lambda i: Spec("POST", REFRESH, xff(x), json_body({"refresh_token": "prot-x"})),
            cls, want_429=1)
        # The bucket's latest state: requests until one is limited.
        r429 = None
        for _ in range(cls.burst + 50):
            r = e2e.post_json(REFRESH, {"refresh_token": "prot-x"}, headers=xff(x))
            if r.status == 429:
                r429, t429 = r, time.monotonic()
                break
        self.assertIsNotNone(r429, "never limited")
        ra = self.assert_limited(r429, cls)
        time.sleep(max(0.0, t429 + ra - time.monotonic()) + 0.05)
        r = e2e.post_json(REFRESH, {"refresh_token": "prot-x"}, headers=xff(x))
        self.assert_envelope(r, 401, 40103)
        self.assert_allowed_headers(r, cls)
        # Then about (time since the 429) / T more; the next ones are limited.
        results, elapsed = run_pipelined(
            [Spec("POST", REFRESH, xff(x), json_body({"refresh_token": "prot-x"}))
             for _ in range(int(ra / cls.T) + 10)], conns=1)
        since = time.monotonic() - t429
        allowed = sum(1 for _, q, _ in results if q.status != 429) + 1
        e2e.log("refill: Retry-After %d, %d allowed after %.2fs (T %.3fs)"
                % (ra, allowed, since, cls.T))
        self.assertGreaterEqual(allowed, max(1, int(ra / cls.T) - 1),
                                "after %.2f s only %d requests allowed (a token every %.3f s)"
                                % (since, allowed, cls.T))
        self.assertLessEqual(allowed, since / cls.T + 2,
                             "after %.2f s %d requests allowed (a token every %.3f s)"
                             % (since, allowed, cls.T))
        self.assertTrue(any(q.status == 429 for _, q, _ in results),
                        "the refilled bucket never ran dry again")

    def test_read_class_per_identity(self):
        """With a Bearer token the identity is the user: two users at one
        address have a budget each; one user at two addresses has one."""
        e2e.wechat_base()           # the logins need the stand-in
        cls = RateClass("read")
        tokens = []
        for name in ("pa", "pb"):
            r = e2e.post_json(LOGIN, {"code": "user-%s%s%d-%s" % (name, NONCE, seq(), code())},
                              headers=xff(fresh_addr()))
            tokens.append(self.assert_envelope(r, 200)["data"]["access_token"])
        tok_a, tok_b = tokens
        x1, x2 = fresh_addr(), fresh_addr()
        path = LIST + "?page=1&page_size=1"
        # Warm the cache entry (from another address) so every read is a hit.
        self.assert_envelope(e2e.get(path, headers=xff(fresh_addr())), 200)

        b_cap = max(1, cls.burst // 2)      # user B never exhausts its budget
        res = {"A@x1": [], "A@x2": [], "B@x1": []}
        tags_a = []
        sent_b = 0
        t0 = time.monotonic()
        for _ in range(40):
            specs = []
            for i in range(512):
                who = "A@x1" if i % 2 == 0 else "A@x2"
                specs.append(Spec("GET", path, xff(x1 if who == "A@x1" else x2,
                                                   e2e.bearer(tok_a)), tag=who))
                if i % 8 == 7 and sent_b < b_cap:
                    sent_b += 1
                    specs.append(Spec("GET", path, xff(x1, e2e.bearer(tok_b)), tag="B@x1"))
            for sp in specs:
                sp.headers["X-Request-Id"] = "prot-%s-%d" % (NONCE, seq())
                if sp.tag != "B@x1":
                    tags_a.append(sp.headers["X-Request-Id"])
            got, _ = run_pipelined(specs, conns=4)
            for s, r, _ in got:
                res[s.tag].append(r)
            if all(sum(1 for r in res[w] if r.status == 429) >= 5 for w in ("A@x1", "A@x2")):
                break
        elapsed = time.monotonic() - t0
        a_all = res["A@x1"] + res["A@x2"]
        a_ok = [r for r in a_all if r.status != 429]
        e2e.log("per identity %s: A %d allowed of %d (x1 %d/%d limited, x2 %d/%d), "
                "B %d sent in %.2fs"
                % (cls, len(a_ok), len(a_all),
                   sum(1 for r in res["A@x1"] if r.status == 429), len(res["A@x1"]),
                   sum(1 for r in res["A@x2"] if r.status == 429), len(res["A@x2"]),
                   len(res["B@x1"]), elapsed))
        for w in ("A@x1", "A@x2"):
            self.assertTrue(any(r.status == 429 for r in res[w]),
                            "user A at %s was never limited (%d requests in %.2f s, %s)"
                            % (w, len(res[w]), elapsed, cls))
        fb = redis_fallbacks(tags_a)
        bound = cls.burst + cls.refill(elapsed) + 1 + fb
        self.assertLessEqual(len(a_ok), bound,
                             "user A got %d reads from two addresses in %.2f s: more "
                             "than one budget (burst %d + refill %.0f)"
                             % (len(a_ok), elapsed, cls.burst, cls.refill(elapsed)))
        self.assertGreaterEqual(len(a_ok), cls.burst, "user A: %d allowed" % len(a_ok))
        for r in a_all:
            if r.status == 429:
                self.assert_limited(r, cls)
            else:
                self.assert_envelope(r, 200)
                self.assert_allowed_headers(r, cls)
        # User B, at the very address where A is limited: never limited.
        self.assertEqual(len(res["B@x1"]), sent_b)
        for r in res["B@x1"]:
            self.assert_envelope(r, 200)
            self.assert_allowed_headers(r, cls)
        # And the address itself (no token) still has its own full budget.
        r = e2e.get(path, headers=xff(x1))
        self.assert_envelope(r, 200)
        self.assertEqual(self.assert_allowed_headers(r, cls), cls.burst - 1, r.describe())


class Fallback(RateLimitBase):

    def test_redis_down_local_buckets_still_limit(self):
        """Redis stopped: every responder limits with an in-process bucket
        of the same parameters -- never unlimited, never a 5xx."""
        e2e.need_stack()
        ok, last, _ = e2e.wait_healthy(10)
        self.assertTrue(ok, "precondition: stack not healthy: %s" % e2e.describe(last))
        cls = RateClass("login")
        n_main, _, _ = pool_sizes()
        stopped = [False]

        def restore():
            if stopped[0]:
                try:
                    e2e.svc("start", "redis")
                except Exception as exc:    # best effort
                    e2e.log("cleanup: svc start redis: %s" % exc)
                e2e.wait_healthy(20)
        self.addCleanup(restore)
        stopped[0] = True
        e2e.svc("stop", "redis")
        r = e2e.wait_for(lambda: (lambda q: q if q.status == 503 else None)(e2e.get("/healthz")),
                         5.0, 0.2)
        self.assertIsNotNone(r, "/healthz does not notice that Redis is down")

        x = fresh_addr()
        n = n_main * cls.burst + 2 * cls.burst + 50
        specs = [Spec("POST", REFRESH, xff(x),
                      json_body({"refresh_token": "prot-fallback-%d" % i}))
                 for i in range(n)]
        # A responder recycled by max_requests during the burst is replaced
        # by one with fresh in-process buckets: each new pid may allow a
        # burst of its own.
        before = e2e.responder_pids()
        t0 = time.monotonic()
        results, elapsed = run_pipelined(specs, conns=max(4, n_main))
        buckets = n_main + len(e2e.responder_pids() - before)
        counts = {}
        bad = []
        for _, r, _ in results:
            counts[r.status] = counts.get(r.status, 0) + 1
            if r.status == 429:
                try:
                    self.assert_limited(r, cls)
                except AssertionError as exc:
                    bad.append(str(exc))
            elif r.status == 401:
                try:
                    self.assert_envelope(r, 401, 40103)
                    self.assert_allowed_headers(r, cls)
                except AssertionError as exc:
                    bad.append(str(exc))
            else:
                bad.append(r.describe())
        allowed = counts.get(401, 0)
        bound = buckets * (cls.burst + cls.refill(elapsed) + 1)
        e2e.log("fallback: %s of %d in %.2fs (bound %.1f with %d responders)"
                % (counts, n, elapsed, bound, buckets))
        self.assertFalse(bad, "%d answers with Redis down are wrong (5xx? no "
                         "RateLimit headers?): %s" % (len(bad), " || ".join(bad[:3])))
        self.assertGreater(allowed, 0, "nothing allowed with Redis down: %s" % counts)
        self.assertGreater(counts.get(429, 0), 0,
                           "%d requests of one client with Redis down and none "
                           "limited: the fallback is unlimited" % n)
        self.assertLessEqual(allowed, bound,
                             "%d allowed with Redis down: more than burst %d x %d "
                             "responders (+ refill)" % (allowed, cls.burst, buckets))
        self.assertLess(time.monotonic() - t0, 30,
                        "requests with Redis down are slow (%.1f s for %d)"
                        % (time.monotonic() - t0, n))


# --------------------------------------------------------------------------
# The circuit breaker around WeChat
# --------------------------------------------------------------------------

class Breaker(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()
        e2e.wechat_base()
        self.addCleanup(restore_standin)
        e2e.wechat_reset()
        self.p = breaker_params()
        ensure_breaker_closed(self)

    def test_opens_fails_fast_half_open_closes(self):
        p = self.p
        before = breaker()
        m0, _ = scrape()
        latency = 200
        e2e.wechat_control(fail="busy", latency_ms=latency)

        # Failing calls until the breaker opens: a login that did not reach
        # the stand-in.
        cap = 2 * p["min_calls"] + 20
        failing, rejected, t_last_call = [], [], None
        for _ in range(cap):
            c0 = stand_in_calls()
            r, el = timed_login(code("busy"))
            called = stand_in_calls() - c0
            self.assert_envelope(r, 503, 50303)
            self.assertIsNotNone(int_header(r, "Retry-After"), "503 without Retry-After: "
                                 + r.describe())
            if called:
                failing.append(el)
                t_last_call = time.monotonic()
            else:
                rejected.append((r, el))
                break
        self.assertTrue(rejected, "%d logins failing with WeChat errcode -1 did not "
                        "open the breaker (min_calls %d, error_pct %d)"
                        % (len(failing), p["min_calls"], p["error_pct"]))
        e2e.log("breaker opened after %d failing calls" % len(failing))
        self.assertGreaterEqual(len(failing), 1)
        # Open: more logins fail at once, no call reaches the stand-in.
        c0 = stand_in_calls()
        for _ in range(10):
            r, el = timed_login(code("open"))
            rejected.append((r, el))
        self.assertEqual(stand_in_calls(), c0,
                         "calls reached the stand-in while the breaker was open")
        open_s = p["open_ms"] / 1000.0
        for r, el in rejected:
            self.assert_envelope(r, 503, 50303)
            ra = int_header(r, "Retry-After")
            self.assertTrue(ra is not None and 1 <= ra <= math.ceil(open_s),
                            "Retry-After %r while open (open_ms %d): %s"
                            % (ra, p["open_ms"], r.describe()))
            self.assertLess(el, latency / 1000.0,
                            "a rejected login took %.3f s: not failing fast "
                            "(a call takes at least %d ms)" % (el, latency))
        st = breaker()
        self.assertEqual(st["state"], "open", "GET /status: %s" % st)
        self.assertGreaterEqual(st["opened"], before["opened"] + 1, "%s -> %s" % (before, st))
        self.assertGreaterEqual(st["rejected"], before["rejected"] + len(rejected),
                                "%s -> %s" % (before, st))

        # Half-open with WeChat still failing: one trial call, which fails:
        # open again.
        time.sleep(max(0.0, t_last_call + open_s - time.monotonic()) + 0.2)
        c0 = stand_in_calls()
        r, _ = timed_login(code("trial"))
        self.assert_envelope(r, 503, 50303)
        self.assertEqual(stand_in_calls(), c0 + 1,
                         "after open_ms one trial call must reach the stand-in")
        t_trial = time.monotonic()
        st2 = breaker()
        self.assertEqual(st2["state"], "open", "a failed trial must reopen: %s" % st2)
        self.assertEqual(st2["opened"], st["opened"] + 1, "%s -> %s" % (st, st2))
        r, el = timed_login(code("reopened"))
        self.assert_envelope(r, 503, 50303)
        self.assertEqual(stand_in_calls(), c0 + 1, "reopened, yet a call went out")

        # WeChat recovers: still open until open_ms has passed ...
        e2e.wechat_control(fail="none", latency_ms=0)
        c0 = stand_in_calls()
        r, _ = timed_login(code("early"))
        self.assert_envelope(r, 503, 50303)
        self.assertEqual(stand_in_calls(), c0)
        # ... then a trial reaches the stand-in, succeeds and closes it.
        time.sleep(max(0.0, t_trial + open_s - time.monotonic()) + 0.2)
        r, _ = timed_login(code("good"))
        self.assert_envelope(r, 200)
        self.assertEqual(stand_in_calls(), c0 + 1)
        st3 = breaker()
        self.assertEqual(st3["state"], "closed", "a good trial must close it: %s" % st3)
        for _ in range(5):
            r, _ = timed_login(code("after"))
            self.assert_envelope(r, 200)
        self.assertEqual(stand_in_calls(), c0 + 6)

        # /metrics counted each change of state by the state entered:
        # opened twice (as /status says), half-open for each trial,
        # closed once.
        m1, _ = scrape()

        def moved(to):
            return (value(m1, "wxapp_breaker_transitions_total", dependency="wechat", to=to)
                    - value(m0, "wxapp_breaker_transitions_total", dependency="wechat", to=to))
        self.assertEqual(moved("open"), st3["opened"] - before["opened"], (before, st3))
        self.assertGreaterEqual(moved("open"), 2)
        self.assertGreaterEqual(moved("half_open"), 2)
        self.assertGreaterEqual(moved("closed"), 1)

    def test_user_errors_do_not_open(self):
        """40029 (an invalid code) is WeChat working: however many, the
        breaker stays closed."""
        before = breaker()
        c0 = stand_in_calls()
        n = self.p["min_calls"] + 10
        for _ in range(n):
            r, _ = timed_login(code("invalid"))
            self.assert_envelope(r, 400, 40010)
        self.assertEqual(stand_in_calls(), c0 + n)
        st = breaker()
        self.assertEqual(st["state"], "closed", "%d invalid codes: %s" % (n, st))
        self.assertEqual(st["opened"], before["opened"], "%s -> %s" % (before, st))
        r, _ = timed_login(code())
        self.assert_envelope(r, 200)


# --------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------

class Timeouts(e2e.TestCase):

    def test_wechat_timeout(self):
        """WeChat answering after 5 s: the login answers 503 after
        wechat_timeout_ms, not after 5 s."""
        e2e.need_run_dir()
        e2e.wechat_base()
        self.addCleanup(restore_standin)
        e2e.wechat_reset()
        ensure_breaker_closed(self)
        self.addCleanup(ensure_breaker_closed, self)
        limit = e2e.conf_int("wechat_timeout_ms", 3000) / 1000.0
        e2e.wechat_control(latency_ms=5000)
        c0 = stand_in_calls()
        r, el = timed_login(code("slow"), timeout=limit + 10)
        self.assert_envelope(r, 503, 50303)
        self.assertIsNotNone(int_header(r, "Retry-After"), r.describe())
        self.assertEqual(stand_in_calls(), c0 + 1)
        e2e.log("login with a 5 s WeChat: 503 after %.2fs (wechat_timeout_ms %d)"
                % (el, limit * 1000))
        self.assertGreaterEqual(el, limit - 0.2, "answered before the timeout: %.2fs" % el)
        self.assertLessEqual(el, limit + 1.0, "answered after %.2fs; wechat_timeout_ms "
                             "is %d" % (el, limit * 1000))

    def test_postgres_statement_timeout(self):
        """A query blocked on a lock is cancelled after pg_statement_timeout_ms:
        503 50301 with Retry-After, not a hanging responder."""
        e2e.need_run_dir()
        limit = e2e.conf_int("pg_statement_timeout_ms", 2000) / 1000.0
        hold = limit + 4
        ci = e2e._pg_conninfo()
        cmd = [e2e.system_tool("psql"), "-h", ci["host"], "-U", ci["user"],
               "-d", ci["dbname"], "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
               "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; "
               "SELECT pg_sleep(%.1f); COMMIT;" % hold]
        u = e2e.svc_user()
        proc = subprocess.Popen((["runuser", "-u", u, "--"] if u else []) + cmd, cwd="/",
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def release():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            e2e.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE query LIKE '%LOCK TABLE items%' AND pid <> pg_backend_pid()")
        self.addCleanup(release)
        held = e2e.wait_for(lambda: e2e.psql_value(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted")
            not in (None, "0"), 5.0, 0.05)
        self.assertTrue(held, "could not lock the items table")
        # A list no one asked for yet: a cache miss, so a query.
        t0 = time.monotonic()
        r = e2e.get(LIST + "?category=prot-%s-%d" % (NONCE, seq()),
                    headers=xff(fresh_addr()), timeout=limit + 10)
        el = time.monotonic() - t0
        e2e.log("query on a locked table: HTTP %s after %.2fs (statement timeout %.1fs)"
                % (r.status, el, limit))
        self.assert_envelope(r, 503, 50301)
        self.assertEqual(r.header("Retry-After"), "1", r.describe())
        self.assertGreaterEqual(el, limit - 0.2, "answered after %.2fs" % el)
        self.assertLessEqual(el, limit + 1.5, "answered after %.2fs; the statement "
                             "timeout is %.1f s" % (el, limit))
        release()
        r = e2e.get(LIST + "?category=prot-%s-%d" % (NONCE, seq()), headers=xff(fresh_addr()))
        self.assert_envelope(r, 200)

    def test_redis_command_timeout(self):
        """Redis accepting connections but not answering (CLIENT PAUSE): a
        read is answered from PostgreSQL within a few command timeouts."""
        e2e.need_run_dir()
        limit = e2e.conf_int("redis_command_timeout_ms", 250) / 1000.0
        pause_ms = 3000
        path = LIST + "?page=1&page_size=3"
        self.assert_envelope(e2e.get(path, headers=xff(fresh_addr())), 200)
        before = e2e.responder_pids()
        out = e2e.redis_cli("CLIENT", "PAUSE", pause_ms, "ALL", check=False)
        if out.strip() != "OK":
            self.skipTest("CLIENT PAUSE not available: %r" % out)
        t_pause = time.monotonic()

        def unpause():
            e2e.redis_cli("CLIENT", "UNPAUSE", check=False)
            e2e.wait_healthy(10)
        self.addCleanup(unpause)
        t0 = time.monotonic()
        r = e2e.get(path, headers=xff(fresh_addr()), timeout=10)
        el = time.monotonic() - t0
        e2e.log("read with Redis paused: HTTP %s after %.2fs (command timeout %.2fs)"
                % (r.status, el, limit))
        if not e2e.recycling_possible(1000):
            died = before - e2e.responder_pids()
            self.assertFalse(died, "responders %s died (crashed?) on one read while "
                             "Redis hung; the answer: %s" % (sorted(died), r.describe()))
        self.assertLess(time.monotonic() - t_pause, pause_ms / 1000.0,
                        "the read outlasted the pause: it waited for Redis")
        self.assert_envelope(r, 200)
        self.assertLessEqual(el, 6 * limit + 0.5,
                             "a read took %.2f s with Redis hanging (command timeout "
                             "%.2f s)" % (el, limit))
        e2e.redis_cli("CLIENT", "UNPAUSE", check=False)
        ok, last, _ = e2e.wait_healthy(10)
        self.assertTrue(ok, "not healthy after Redis resumed: %s" % e2e.describe(last))


# --------------------------------------------------------------------------
# The bulkhead
# --------------------------------------------------------------------------

class Bulkhead(e2e.TestCase):

    N = 100
    SPACING = 0.035     # N requests spread over 3.5 s: longer than a WeChat call

    def measure(self, addr, tag, probe=None, n=None, spacing=None):
        """n (N) sequential GETs of the (cached) list page over one kept-alive
        connection, one every `spacing` s; [(seconds, request id)]."""
        n = self.N if n is None else n
        spacing = self.SPACING if spacing is None else spacing
        c = e2e.connect()
        out = []
        try:
            t_next = time.monotonic()
            for i in range(n):
                time.sleep(max(0.0, t_next - time.monotonic()))
                t_next += spacing
                rid = "%s-%d" % (tag, i)
                t0 = time.monotonic()
                r = e2e.get(LIST + "?page=1", headers=xff(addr, {"X-Request-Id": rid}), conn=c)
                out.append((time.monotonic() - t0, rid))
                self.assert_envelope(r, 200)
                if probe is not None and i == n // 2:
                    probe()
        finally:
            c.close()
        return out

    def test_data_fast_while_logins_wait_on_wechat(self):
        e2e.need_run_dir()
        e2e.wechat_base()
        n_main, n_wechat, wechat_sockets = pool_sizes()
        if wechat_sockets == 0:
            self.skipTest("this stack has no WeChat pool (WXAPP_WECHAT_SOCKETS=0)")
        self.addCleanup(restore_standin)
        e2e.wechat_reset()
        ensure_breaker_closed(self)
        # A WeChat this slow opens the breaker (timeouts in a row): close
        # it again for the tests that follow.
        self.addCleanup(ensure_breaker_closed, self)
        addr = fresh_addr()
        self.measure(addr, "prot-warm-%s" % NONCE, n=10, spacing=0)
        base = [t for t, _ in self.measure(addr, "prot-base-%s" % NONCE)]

        # Logins arriving continuously, WeChat answering every call after 3 s.
        e2e.wechat_control(latency_ms=3000)
        stop = threading.Event()
        logins, lock = [], threading.Lock()

        def login_loop():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = e2e.post_json(LOGIN, {"code": code("bulk")},
                                      headers=xff(fresh_addr()), timeout=20)
                    res = r.status
                except Exception as exc:    # counted below
                    res = repr(exc)
                with lock:
                    logins.append((res, time.monotonic() - t0))
        n_threads = max(6, n_wechat + n_main)
        threads = [threading.Thread(target=login_loop, daemon=True) for _ in range(n_threads)]

        def stop_load():
            stop.set()
            try:
                e2e.wechat_control(latency_ms=0)   # queued logins finish fast
            except Exception:                       # noqa: BLE001 - cleanup
                pass
            for t in threads:
                t.join(25)
        self.addCleanup(stop_load)
        for t in threads:
            t.start()

        def busy_logins():
            return [s for s in status_doc()["pool"]["responders"]
                    if s["state"] == "busy" and s.get("path") in (LOGIN, PHONE)]

        def in_flight(busy):
            # A responder of the concurrent loop (WXAPP_WECHAT_CONCURRENT)
            # may hold several logins, and another none: count the logins.
            return sum(s["in_flight"] for s in busy)
        busy0 = e2e.wait_for(lambda: in_flight(busy_logins()) >= n_wechat, 3.0, 0.05)
        sample = {}

        def probe():
            sample["busy"] = busy_logins()
        loaded = self.measure(addr, "prot-load-%s" % NONCE, probe=probe)
        stop_load()
        load = [t for t, _ in loaded]

        b50, b95, l50, l95 = (pct(base, 50) * 1000, pct(base, 95) * 1000,
                              pct(load, 50) * 1000, pct(load, 95) * 1000)
        slow_logins = [el for res, el in logins if el >= 2.5]
        e2e.log("bulkhead: data/list p50 %.1f ms p95 %.1f ms alone; p50 %.1f ms "
                "p95 %.1f ms with %d login threads (%d logins, %d took >= 2.5 s; "
                "statuses %s); busy login responders mid-run (pid, in flight): %s"
                % (b50, b95, l50, l95, n_threads, len(logins), len(slow_logins),
                   sorted(set(str(res) for res, _ in logins)),
                   [(s["pid"], s["in_flight"]) for s in sample.get("busy", [])]))
        self.assertTrue(busy0, "the login load never had %d logins in flight in "
                        "the WeChat pool" % n_wechat)
        self.assertGreaterEqual(in_flight(sample.get("busy", [])), min(n_wechat, n_threads),
                                "mid-measurement, %s responders were busy with "
                                "logins: the load was not real" % sample.get("busy"))
        self.assertTrue(slow_logins, "no login waited on the slow WeChat: %r" % logins[:10])
        self.assertLess(l95, 100.0, "GET %s p95 %.1f ms under login load (%.1f ms "
                        "without): the data endpoints are starved" % (LIST, l95, b95))
        self.assertLessEqual(l95, 3 * b95 + 15.0,
                             "GET %s p95 %.1f ms under login load vs %.1f ms without"
                             % (LIST, l95, b95))
        self.assertLessEqual(l50, 3 * b50 + 10.0,
                             "GET %s p50 %.1f ms under login load vs %.1f ms without"
                             % (LIST, l50, b50))
        # The two pools are disjoint: no responder that was waiting for
        # WeChat answered a data request.
        pids = set(log_pids([rid for _, rid in loaded]).values())
        busy_pids = {s["pid"] for s in sample.get("busy", [])}
        if pids:
            self.assertFalse(pids & busy_pids,
                             "responders %s served data requests and logins"
                             % sorted(pids & busy_pids))


# --------------------------------------------------------------------------
# nginx: the edge limits and /status
# --------------------------------------------------------------------------

def nginx_conf_text():
    for p in (os.path.join(e2e.RUN_DIR, "nginx", "nginx-fastcgi.conf"),
              os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "nginx-fastcgi.conf")):
        try:
            with open(p, encoding="utf-8") as f:
                return f.read()
        except OSError:
            continue
    return ""


def edge_zone(zone):
    """(rate r/s, burst) of limit_req zone `zone` as configured, or None."""
    text = re.sub(r"#[^\n]*", "", nginx_conf_text())
    m = re.search(r"limit_req_zone\s+\S+\s+zone=%s:\S+\s+rate=(\d+)r/s" % zone, text)
    b = re.search(r"limit_req\s+zone=%s\s+burst=(\d+)" % zone, text)
    if not m or not b:
        return None
    return int(m.group(1)), int(b.group(1))


class Edge(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()

    def edge_run(self, zone, make_spec, extra):
        z = edge_zone(zone)
        if z is None:
            self.skipTest("no limit_req zone %s in nginx-fastcgi.conf" % zone)
        rate, burst = z
        results, elapsed = run_pipelined([make_spec(i) for i in range(burst + 1 + extra)],
                                         conns=1)
        results.sort(key=lambda x: x[2])
        rs = [r for _, r, _ in results]
        edge = [r for r in rs if r.status == 429]
        allowed = len(rs) - len(edge)
        e2e.log("edge %s (%d r/s burst %d): %d allowed of %d in %.2fs"
                % (zone, rate, burst, allowed, len(rs), elapsed))
        self.assertTrue(edge, "%d requests in %.2f s from one address, none limited "
                        "by nginx (%s: %d r/s, burst %d)" % (len(rs), elapsed, zone,
                                                             rate, burst))
        self.assertGreaterEqual(allowed, burst + 1, "nginx allowed only %d" % allowed)
        self.assertLessEqual(allowed, burst + 2 + rate * elapsed,
                             "nginx allowed %d in %.2f s (%d r/s, burst %d)"
                             % (allowed, elapsed, rate, burst))
        for r in edge:
            # nginx's own 429: the JSON envelope, Retry-After, no RateLimit-*.
            self.assert_envelope(r, 429, 42900)
            self.assertEqual(r.header("Retry-After"), "1", r.describe())
            self.assertIsNone(r.header("RateLimit-Limit"),
                              "a 429 of the application, not of nginx: %s" % r.describe())
            self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", r.describe())
        return rs

    def test_api_zone_per_client_address(self):
        x = edge_addr()
        self.edge_run("wxapp_api", lambda i: Spec("GET", "/ping", xff(x)), 40)
        # Keyed on the client address after realip: another one is not limited.
        r = e2e.get("/ping", headers=xff(edge_addr()))
        self.assert_envelope(r, 200)
        r = e2e.get("/ping", headers=xff(fresh_addr()))
        self.assert_envelope(r, 200)

    def test_login_zone_per_client_address(self):
        z = edge_zone("wxapp_login")
        cls = RateClass("login")
        if z is not None and ratelimit_on() and cls.burst <= z[1] + 10:
            self.skipTest("the application's login burst (%d) is below nginx's (%d): "
                          "its 429 comes first" % (cls.burst, z[1]))
        x = edge_addr()
        rs = self.edge_run("wxapp_login", lambda i: Spec("POST", LOGIN, xff(x),
                                                         json_body({"code": ""})), 15)
        for r in rs:
            if r.status != 429:
                self.assert_envelope(r, 400, 40002)
        r = e2e.post_json(LOGIN, {"code": ""}, headers=xff(edge_addr()))
        self.assert_envelope(r, 400, 40002)

    def test_status_loopback_only(self):
        # nginx's 403 page ("forbidden"), not the application's own refusal.
        r = e2e.get("/status", headers=xff("198.51.100.7"))
        self.assert_envelope(r, 403, 40300, message="forbidden")
        r = e2e.get("/status", headers=xff(fresh_addr()))
        self.assert_envelope(r, 403, 40300, message="forbidden")
        r = e2e.get("/status")
        body = self.assert_envelope(r, 200)
        self.assertEqual(set(body["data"]), {"pool", "breakers", "jobs"}, r.describe())
