"""End-to-end: a dependency that hangs must not take the pool down (issue
11).  The fault suite: Redis and PostgreSQL frozen with SIGSTOP under a
load of cached reads, responders killed with SIGKILL alternately on two
sockets, a slow WeChat, a request nginx gave up on, and writes retried
with an Idempotency-Key.  Each test reproduces a row of the issue's
table and asserts its goal; the figures go to the log (-v) and to
tests/e2e/FAULTS.md.

It can run alone:  tests/e2e/run.py -k test_faults
"""

import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import struct
import threading
import time

import e2elib as e2e
import fcgi

LIST = "/api/v1/data/list?page=1&page_size=10"
DATA = "/api/v1/data"
LOGIN = "/api/v1/user/login"


def addr(i):
    """Client addresses beyond loopback's edge exemption, many of them,
    so that neither nginx's per-address zone nor the app's read limit
    throttles the load."""
    return "10.77.%d.%d" % (i // 250 % 250, i % 250 + 1)


class Load:
    """Threads reading one URL over keep-alive connections; every answer
    is recorded as (monotonic end time, status, latency); an exception
    (a client timeout) as status None."""

    def __init__(self, path, threads=6, timeout=5.0):
        self.path = path
        self.threads = threads
        self.timeout = timeout
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results = []
        self.workers = []

    def run(self, k):
        n = 0
        conn = None
        while not self.stop.is_set():
            if conn is None:
                conn = e2e.connect(self.timeout)
            t0 = time.monotonic()
            try:
                conn.request("GET", e2e.PREFIX + self.path, headers={
                    "X-Forwarded-For": addr(k * 1000 + n % 1000)})
                r = conn.getresponse()
                r.read()
                st = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                st = None
                conn.close()
                conn = None
            n += 1
            with self.lock:
                self.results.append((time.monotonic(), st,
                                     time.monotonic() - t0))
        if conn is not None:
            conn.close()

    def __enter__(self):
        for k in range(self.threads):
            t = threading.Thread(target=self.run, args=(k,), daemon=True)
            t.start()
            self.workers.append(t)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.workers:
            t.join(self.timeout + 5)

    def between(self, t0, t1):
        with self.lock:
            return [r for r in self.results if t0 <= r[0] < t1]

    def rate(self, t0, t1):
        """Answers 200 per second between t0 and t1."""
        ok = [r for r in self.between(t0, t1) if r[1] == 200]
        return len(ok) / (t1 - t0)


def pids_of(pidfile):
    with open(pidfile) as f:
        return int(f.read().split()[0])


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                if int(f.read().rpartition(")")[2].split()[1]) == pid:
                    out.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    return out


def freeze(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGSTOP)
        except ProcessLookupError:      # a backend that ended meanwhile
            pass


def thaw(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGCONT)
        except ProcessLookupError:
            pass


def wait_until(pred, timeout, step=0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def stale_writes():
    """Writes the pool answered 2xx though Redis missed their
    invalidation (GET /status)."""
    from test_protection import status_doc
    return status_doc()["pool"]["stale_writes"]


def figure(text):
    """A line of the suite's figures: on stderr with -v, and kept in
    RUN/log/faults.txt for tests/e2e/FAULTS.md."""
    e2e.log("faults: " + text)
    try:
        with open(os.path.join(e2e.RUN_DIR, "log", "faults.txt"), "a") as f:
            f.write(text + "\n")
    except OSError:
        pass


class Base(e2e.TestCase):

    def setUp(self):
        e2e.need_stack()
        e2e.ensure_seeded()
        ok, last, _ = e2e.wait_healthy(20)
        self.assertTrue(ok, e2e.describe(last))
        self.assert_envelope(e2e.get(LIST), 200)

    def healthy_within(self, limit, what):
        """Seconds until /healthz is 200 again; at most limit."""
        took = wait_until(lambda: e2e.get("/healthz").status == 200, 10)
        self.assertIsNotNone(took, "%s: not healthy within 10 s" % what)
        figure("%s: healthy again %.2f s after it came back" % (what, took))
        self.assertLessEqual(took, limit, "%s: recovery took %.2f s"
                             % (what, took))
        return took


class FrozenRedis(Base):

    def frozen(self, seconds):
        pid = pids_of(os.path.join(e2e.RUN_DIR, "redis", "redis.pid"))
        s = e2e.login()
        stale0 = stale_writes()
        writes = []
        with Load(LIST) as load:
            time.sleep(2.0)
            t0 = time.monotonic()
            base = load.rate(t0 - 1.5, t0)
            freeze([pid])
            try:
                # Writes commit, and are answered 201, though Redis
                # cannot take their invalidation.
                while time.monotonic() - t0 < seconds:
                    title = "redis frozen " + secrets.token_hex(6)
                    r = e2e.call("POST", DATA, s, {"title": title,
                                                   "category": "food"})
                    writes.append((title, r.status))
                    time.sleep(0.25)
            finally:
                t1 = time.monotonic()
                thaw([pid])
            during = load.rate(t0, t1)
            self.healthy_within(1.0, "redis frozen %g s" % seconds)
            time.sleep(0.5)
        answers = load.between(t0, t1)
        bad = [r for r in answers if r[1] != 200]
        slow = max((r[2] for r in answers), default=0)
        figure("redis frozen %g s: %.0f reads/s before, %.0f during (%.0f "
               "%%), %d not 200, slowest %.2f s" % (
                   seconds, base, during, 100 * during / max(base, 1),
                   len(bad), slow))
        self.assertFalse([r for r in load.results if r[1] is None],
                         "client timeouts")
        self.assertEqual(bad, [], "answers other than 200 while frozen")
        self.assertGreaterEqual(during, base / 2,
                                "%.0f reads/s frozen against %.0f before"
                                % (during, base))
        self.assertEqual({st for _, st in writes}, {201}, writes)
        stored = {row[0] for row in e2e.psql(
            "SELECT title FROM items WHERE title LIKE 'redis frozen %'")}
        self.assertLessEqual({t for t, _ in writes}, stored)
        self.assertGreater(stale_writes(), stale0,
                           "writes Redis missed were not counted")

    def test_frozen_2s(self):
        self.frozen(2)

    def test_frozen_8s(self):
        self.frozen(8)


class FrozenPostgres(Base):

    def postgres_pids(self):
        pm = pids_of(os.path.join(e2e.RUN_DIR, "pg", "postmaster.pid"))
        return [pm] + children(pm)

    def write(self, session, title, key=None):
        # Not e2e.call: its clearing of every rate-limit bucket, on each
        # write, would load Redis with the read load's thousands of
        # buckets, and slow the reads this test measures.  One user's
        # writes stay far below ratelimit_write_rate.
        h = dict(session.auth())
        h["Content-Type"] = "application/json"
        if key:
            h["Idempotency-Key"] = key
        t0 = time.monotonic()
        r = e2e.request("POST", DATA, json.dumps({"title": title,
                                                  "category": "food"}),
                        headers=h)
        return r, time.monotonic() - t0

    def test_frozen_6s(self):
        """Three clients write (keyed and keyless) and one logs in, each
        10 times a second, from before the freeze to its end, so that the
        reads before it are measured under the same traffic and the ratio
        is the freeze's, not the test client's: each write and login is a
        TLS connection of its own, and the client shares the machine's
        CPUs with the stack.  Before the freeze the writes are refused
        (400, after their session is checked) before they write: one
        that commits would make the cached list stale, and the reads
        measured uncached ones."""
        s = e2e.login()
        self.write(s, "warm " + secrets.token_hex(4))   # a verdict kept
        limit = e2e.conf_int("pg_statement_timeout_ms", 2000) / 1000.0
        pids = self.postgres_pids()
        writes = []     # (title, key or None, status, code, seconds, start)
        login_results = []      # (status, code, seconds, start)
        refused = []            # (status, end) of the writes before it
        lock = threading.Lock()
        end = [time.monotonic() + 3600]

        def paced(op):
            nxt = time.monotonic()
            while time.monotonic() < end[0]:
                op()
                nxt += 0.1
                time.sleep(max(0.0, nxt - time.monotonic()))

        def writer(k):
            n = [k]

            def one():
                n[0] += 1
                if end[0] > time.monotonic() + 60:      # not frozen yet
                    r, _ = self.write(s, "")
                    with lock:
                        refused.append((r.status, time.monotonic()))
                    return
                title = "frozen " + secrets.token_hex(6)
                key = "fz-" + title[7:] if n[0] % 2 else None
                t = time.monotonic()
                r, el = self.write(s, title, key)
                with lock:
                    writes.append((title, key, r.status,
                                   r.json().get("code"), el, t))
            paced(one)

        def logins():
            n = [0]

            def one():
                n[0] += 1
                t = time.monotonic()
                r = e2e.post_json(LOGIN, {"code": "frozen-%d-%s" % (
                    n[0], secrets.token_hex(3))}, headers={
                    "X-Forwarded-For": addr(7200 + n[0])}, timeout=15)
                with lock:
                    login_results.append((r.status, r.json().get("code"),
                                          time.monotonic() - t, t))
            paced(one)

        threads = [threading.Thread(target=writer, args=(k,))
                   for k in range(3)]
        threads.append(threading.Thread(target=logins))
        with Load(LIST) as load:
            try:
                for t in threads:
                    t.start()
                time.sleep(2.5)
                t0 = time.monotonic()
                base = load.rate(t0 - 2.0, t0)
                freeze(pids)
                end[0] = t0 + 6
            finally:
                end[0] = min(end[0], time.monotonic() + 6)
                for t in threads:
                    t.join(30)
                t1 = time.monotonic()
                thaw(pids)
            during = load.rate(t0, t1)
            self.healthy_within(1.0, "postgres frozen 6 s")
        r, _ = self.write(s, "after " + secrets.token_hex(6))
        self.assert_envelope(r, 201)
        frozen_w = [w for w in writes if w[5] >= t0]
        frozen_l = [w for w in login_results if w[3] >= t0]
        figure("postgres frozen 6 s: %.0f cached reads/s before, %.0f during "
               "(%.0f %%); %d writes from 3 clients, %d answered 503 (%d in "
               "doubt), the slowest in %.2f s; %d logins, %d answered 503, "
               "the slowest in %.2f s" % (
                   base, during, 100 * during / max(base, 1), len(frozen_w),
                   sum(1 for w in frozen_w if w[2] == 503),
                   sum(1 for w in frozen_w if w[3] == 50304),
                   max(w[4] for w in frozen_w), len(frozen_l),
                   sum(1 for w in frozen_l if w[0] == 503),
                   max(w[2] for w in frozen_l)))
        self.assertFalse([r for r in load.results if r[1] is None],
                         "client timeouts")
        self.assertGreaterEqual(during, base / 2)
        # (One sent as the freeze began may find PostgreSQL gone.)
        refused = [st for st, t in refused if t < t0]
        self.assertTrue(refused)
        self.assertEqual(set(refused), {400})
        self.assertTrue([w for w in frozen_w if w[2] == 503],
                        "no write failed while frozen")
        for title, _, status, code, el, _ in writes:
            self.assertIn(status, (201, 503), title)
            # The responder's deadline is limit + 0.1 s; the rest is
            # the client's own: a TLS connection, nginx.
            self.assertLessEqual(el, limit + 0.1 + 0.2,
                                 "a write waited %.2f s" % el)
        for status, code, el, _ in login_results:
            self.assertIn(status, (200, 503), code)
            self.assertLessEqual(el, limit + 0.1 + 0.2,
                                 "a login waited %.2f s" % el)

        def stored():
            return {row[0] for row in e2e.psql(
                "SELECT title FROM items WHERE title LIKE 'frozen %'")}
        # Every write answered 2xx is there; none answered 503 is, but
        # for those answered 50304: their outcome is unknown.
        have = stored()
        for title, _, status, code, _, _ in writes:
            if status == 201:
                self.assertIn(title, have)
            elif code != 50304:
                self.assertNotIn(title, have, "%s answered %d" % (title,
                                                                  code))
        # A retry with the key of a write answered 503 makes it once, or
        # answers what was made.
        for title, key, status, _, _, _ in writes:
            if status == 503 and key is not None:
                r, _ = self.write(s, title, key)
                self.assert_envelope(r, 201)
        for title, key, status, _, _, _ in writes:
            if key is not None or status == 201:
                self.assertEqual(e2e.psql_value(
                    "SELECT count(*) FROM items WHERE title = %s" %
                    e2e.sql_quote(title)), "1", title)


class Kills(Base):

    def test_30_kills_alternating_sockets(self):
        sups = []
        for k in (0, 1):
            path = os.path.join(e2e.RUN_DIR, "sock", "wxapp-%d.pid" % k)
            if os.path.exists(path):
                sups.append(pids_of(path))
        self.assertEqual(len(sups), 2, "two sockets in the main pool")
        killed = 0
        with Load(LIST) as load:
            time.sleep(1.0)
            t0 = time.monotonic()
            for i in range(30):
                kids = [p for p in children(sups[i % 2])
                        if e2e.is_responder(p)]
                if kids:
                    os.kill(kids[0], signal.SIGKILL)
                    killed += 1
                time.sleep(0.3)
            t1 = time.monotonic() + 1.0
            time.sleep(1.0)
        answers = load.between(t0, t1)
        bad = [r for r in answers if r[1] != 200]
        figure("30 kill -9s over two sockets, 0.3 s apart: %d of %d reads "
               "failed (%d responders killed)" % (len(bad), len(answers),
                                                  killed))
        self.assertEqual(killed, 30)
        # At most the request each killed responder had in flight.
        self.assertLessEqual(len(bad), killed, bad[:5])


class SlowWeChat(Base):

    def slow(self, latency_ms, what):
        """Logins from four clients while WeChat answers after
        latency_ms: seconds until the breaker opened (at most 5), then
        seconds from WeChat's return until a login succeeds (at most
        1)."""
        e2e.wechat_base()
        from test_protection import breaker, ensure_breaker_closed
        e2e.wechat_reset()
        ensure_breaker_closed(self)
        self.addCleanup(ensure_breaker_closed, self)
        self.addCleanup(e2e.wechat_reset)
        e2e.wechat_control(latency_ms=latency_ms)
        stop = threading.Event()

        def logins(k):
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    e2e.post_json(LOGIN, {"code": "slow-%d-%d-%s" % (
                        k, n, secrets.token_hex(3))}, headers={
                        "X-Forwarded-For": addr(7000 + k)}, timeout=15)
                except (OSError, http.client.HTTPException):
                    pass
        threads = [threading.Thread(target=logins, args=(k,), daemon=True)
                   for k in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        took = wait_until(lambda: breaker()["state"] == "open", 10, 0.1)
        stop.set()
        # WeChat is back while logins it held still hang: the next
        # login that reaches it closes the breaker.
        e2e.wechat_control(latency_ms=0)
        back = time.monotonic()
        n = [0]

        def login_ok():
            n[0] += 1
            return e2e.post_json(LOGIN, {"code": "back-%d-%s" % (
                n[0], secrets.token_hex(3))}, headers={
                "X-Forwarded-For": addr(7100 + n[0])},
                timeout=15).status == 200
        recovered = wait_until(login_ok, 10, 0.02)
        for t in threads:
            t.join(20)
        figure("%s: breaker open after %s s; a login succeeded %s s after "
               "WeChat came back" % (
                   what, "%.2f" % took if took is not None else "never",
                   "%.2f" % recovered if recovered is not None else
                   "never"))
        self.assertIsNotNone(took, "the breaker did not open within 10 s")
        self.assertLessEqual(back - t0, 15)
        self.assertLessEqual(took, 5.0)
        self.assertIsNotNone(recovered, "no login within 10 s of WeChat's "
                             "return")
        self.assertLessEqual(recovered, 1.0)

    def test_breaker_opens_within_5s(self):
        self.slow(5000, "WeChat answering after 5 s")

    def test_slow_answers_open_it_too(self):
        """Answers within wechat_timeout_ms, but near it, count as
        timeouts (breaker_slow_pct)."""
        limit = e2e.conf_int("wechat_timeout_ms", 3000)
        self.slow(limit * 9 // 10, "WeChat answering after %d ms (timeout "
                  "%d ms)" % (limit * 9 // 10, limit))


def send_and_hang_up(path, params, body):
    """A FastCGI request to a socket, then the connection closed without
    waiting for the answer: what nginx does when its read timeout passes
    while the request waits for a responder."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    msg = [fcgi._record(fcgi.BEGIN_REQUEST, 1,
                        struct.pack(">HB5x", fcgi.RESPONDER, 0)),
           fcgi._record(fcgi.PARAMS, 1, fcgi.encode_params(params)),
           fcgi._record(fcgi.PARAMS, 1),
           fcgi._record(fcgi.STDIN, 1, body), fcgi._record(fcgi.STDIN, 1)]
    s.sendall(b"".join(msg))
    s.close()


class Abandoned(Base):

    def test_a_request_nginx_gave_up_on_calls_no_wechat(self):
        e2e.wechat_base()
        from test_protection import pool_sizes, ensure_breaker_closed
        _, n_wechat, sockets = pool_sizes()
        if sockets == 0:
            self.fail("the stack has no WeChat pool")
        e2e.wechat_reset()
        ensure_breaker_closed(self)
        self.addCleanup(e2e.wechat_reset)
        e2e.wechat_control(latency_ms=1500)
        before = e2e.wechat_stats().get("/sns/jscode2session", 0)
        # Every WeChat responder busy with a slow login.
        threads = [threading.Thread(target=e2e.post_json, args=(
            LOGIN, {"code": "busy-%d-%s" % (k, secrets.token_hex(3))}),
            kwargs={"headers": {"X-Forwarded-For": addr(8000 + k)}})
            for k in range(n_wechat * sockets)]
        for t in threads:
            t.start()
        time.sleep(0.4)
        body = b'{"code":"abandoned-%s"}' % secrets.token_hex(4).encode()
        send_and_hang_up(os.path.join(e2e.RUN_DIR, "sock",
                                      "wxapp-wechat-0.sock"), {
            "REQUEST_METHOD": "POST", "DOCUMENT_URI": LOGIN,
            "REQUEST_URI": LOGIN, "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "10.77.99.1"},
            body)
        for t in threads:
            t.join(20)
        time.sleep(1.0)
        calls = e2e.wechat_stats().get("/sns/jscode2session", 0) - before
        self.assertEqual(calls, len(threads),
                         "WeChat was called for the abandoned request")
        logs = b""
        for f in os.listdir(os.path.join(e2e.RUN_DIR, "log")):
            if f.startswith("wxapp"):
                with open(os.path.join(e2e.RUN_DIR, "log", f), "rb") as fh:
                    logs += fh.read()[-200000:]
        self.assertIn(b"dropped before calling WeChat", logs)

    def test_a_write_nginx_gave_up_on_asks_no_content_check(self):
        """An item write whose connection nginx closed (its read timeout
        passed) neither asks WeChat's content check nor is made."""
        e2e.wechat_base()
        from test_protection import ensure_breaker_closed
        ensure_breaker_closed(self)
        s = e2e.login()
        e2e.wechat_reset()
        self.addCleanup(e2e.wechat_reset)
        title = "abandoned " + secrets.token_hex(6)
        body = json.dumps({"title": title, "category": "food"}).encode()
        logf = e2e.log_file_path()
        mark = os.path.getsize(logf) if logf and os.path.exists(logf) else 0
        send_and_hang_up(os.path.join(e2e.RUN_DIR, "sock", "wxapp-0.sock"), {
            "REQUEST_METHOD": "POST", "DOCUMENT_URI": DATA,
            "REQUEST_URI": DATA, "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "10.77.99.2",
            "HTTP_AUTHORIZATION": "Bearer " + s.access}, body)
        deadline = time.monotonic() + 5
        seen = b""
        while time.monotonic() < deadline and \
                b"content security: nginx gave up" not in seen:
            time.sleep(0.1)
            if logf:
                with open(logf, "rb") as f:
                    f.seek(mark)
                    seen = f.read()
        self.assertIn(b"content security: nginx gave up on the request",
                      seen)
        self.assertNotIn("/wxa/msg_sec_check", e2e.wechat_stats())
        self.assertEqual(e2e.psql_value("SELECT count(*) FROM items WHERE "
                                        "title = '%s'" % title), "0")
        # Control: the same write, its client still there, is checked.
        r = e2e.call("POST", DATA, s, {"title": title, "category": "food"})
        self.assertIn(r.status, (201, 202), r.describe())
        self.assertIn("/wxa/msg_sec_check", e2e.wechat_stats())


class IdempotencyKey(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()
        self.s = e2e.login()

    def post(self, key, body):
        h = {"Idempotency-Key": key} if key is not None else {}
        return e2e.call("POST", DATA, self.s, body, headers=h)

    def test_a_retry_gets_the_first_answer(self):
        key = "k-" + secrets.token_hex(8)
        body = {"title": "once " + key, "category": "food"}
        r1 = self.post(key, body)
        d1 = self.assert_envelope(r1, 201)["data"]
        r2 = self.post(key, body)
        d2 = self.assert_envelope(r2, 201)["data"]
        self.assertEqual(d1, d2)
        self.assertEqual(r2.header("Location"), r1.header("Location"))
        self.assertEqual(r2.header("Idempotent-Replayed"), "true")
        self.assertIsNone(r1.header("Idempotent-Replayed"))
        self.assertEqual(e2e.psql_value("SELECT count(*) FROM items WHERE "
                                        "title = %s" % e2e.sql_quote(
                                            body["title"])), "1")
        # The same key for another request: refused, nothing made.
        r3 = self.post(key, dict(body, title="other"))
        self.assert_envelope(r3, 409, 40901)

    def test_a_key_is_kept_a_day(self):
        key = "d-" + secrets.token_hex(8)
        body = {"title": "day " + key, "category": "food"}
        d1 = self.assert_envelope(self.post(key, body), 201)["data"]
        e2e.psql("UPDATE idempotency SET created_at = now() - interval "
                 "'25 hours' WHERE key = %s" % e2e.sql_quote(key))
        # A day later the key is new again: the write is made anew.
        r = self.post(key, body)
        d2 = self.assert_envelope(r, 201)["data"]
        self.assertIsNone(r.header("Idempotent-Replayed"))
        self.assertNotEqual(d1["id"], d2["id"])
        r = self.post(key, body)
        self.assertEqual(r.header("Idempotent-Replayed"), "true")
        self.assertEqual(self.assert_envelope(r, 201)["data"]["id"],
                         d2["id"])

    def test_concurrent_retries_make_one(self):
        key = "c-" + secrets.token_hex(8)
        body = {"title": "conc " + key, "category": "food"}
        got = []

        def one():
            r = self.post(key, body)
            got.append((r.status, r.json()["data"]["id"]
                        if r.status == 201 else r.body))
        ts = [threading.Thread(target=one) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual({st for st, _ in got}, {201}, got)
        self.assertEqual(len({i for _, i in got}), 1, got)

    def test_a_failed_write_is_not_kept(self):
        key = "f-" + secrets.token_hex(8)
        self.assert_envelope(self.post(key, {"title": "x"}), 400, 40002)
        self.assert_envelope(self.post(key, {"title": "x"}), 400, 40002)
        self.assertEqual(e2e.psql_value("SELECT count(*) FROM idempotency "
                                        "WHERE key = %s" % e2e.sql_quote(
                                            key)), "0")

    def test_a_bad_key_is_refused(self):
        for key in ("", "a b", "x" * 256):
            with self.subTest(key=key[:10]):
                self.assert_envelope(self.post(key, {"title": "t",
                                                     "category": "food"}),
                                     400, 40002)

    def test_writes_without_a_key_are_unchanged(self):
        body = {"title": "nokey " + secrets.token_hex(4), "category": "food"}
        self.assert_envelope(self.post(None, body), 201)
        self.assert_envelope(self.post(None, body), 201)
        self.assertEqual(e2e.psql_value("SELECT count(*) FROM items WHERE "
                                        "title = %s" % e2e.sql_quote(
                                            body["title"])), "2")
