"""Memory (issue 2, "arena"): one responder under valgrind memcheck answers
10,000 requests of a realistic mix straight over FastCGI (no nginx, to keep
it fast), without a leak, without a memory error and without RSS growth;
once in libfcgi's loop and once in the concurrent loop (-C 8) the pools run.

The responder is the stack's installed $RUN/prefix/sbin/wxapp-fcgi with the
stack's $RUN/wxapp.conf (its PostgreSQL, Redis and WeChat API stand-in),
started with --listen on a socket of its own under $RUN/log/memcheck/ (as
the service user when we are root) and WXAPP_MAX_REQUESTS=0 so it does not
recycle itself mid-run.  Every answer must be the envelope with the status
its request class calls for.  VmRSS is sampled every 1,000 requests; the
growth from request 2,000 (every code path warm) to the end must stay under
RSS_GROWTH_LIMIT (memcheck runs with a 2 MB freed-block queue, see
VALGRIND_ARGS, so RSS measures the responder rather than that queue).
Then SIGTERM while idle: the responder must exit 0 and valgrind must report
no definitely/indirectly lost bytes and no memory errors (the log's error
blocks, with their stack traces, are in the failure message).

Environment (optional): WXAPP_MEMTEST_REQUESTS (default 10000),
WXAPP_MEMTEST_VALGRIND_ARGS (extra valgrind options, e.g.
"--track-origins=yes" when chasing an uninitialised value).  The valgrind
log, the responder's own log and stderr stay in $RUN/log/memcheck/.
"""

import json
import os
import pwd
import random
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import e2elib as e2e
import fcgi

N_REQUESTS = int(os.environ.get("WXAPP_MEMTEST_REQUESTS") or "10000")
WARM_AT = 2000                  # RSS baseline: every request class seen many times
SAMPLE_EVERY = 1000
# Allowed VmRSS growth from request WARM_AT to the end.  Measured on this
# stack (Debian 12, valgrind 3.19, --freelist-vol=2000000): +20..+88 KiB
# over those 8,000 requests (natively: +56 KiB), i.e. flat; what grows is
# memcheck's own translation cache for code paths first taken late.  With
# one still-reachable (so not reported as a leak) 16-byte block kept per
# request, injected with an LD_PRELOAD shim, it grew +1,320 KiB (~170 bytes
# per block under memcheck).  512 KiB is ~6x the noise and catches that.
RSS_GROWTH_LIMIT = 512 * 1024
# The concurrent loop grew more, +196..+516 KiB from WARM_AT in five runs,
# in steps that level off.  Its own memory is not what grows: between the
# /proc/PID/smaps of request ~2,000 and of the end, +252 of +332 KiB were
# in memcheck's translation cache (its rwx mapping), which that loop, with
# more code paths (coroutines, probes between requests), fills for longer.
# It gets 512 KiB more; the 16-byte-per-request leak above would still
# exceed the sum.
CONCURRENT_ALLOWANCE = 512 * 1024
START_TIMEOUT = 90              # valgrind start-up + db/redis connect
SIGTERM_GRACE = 20              # idle responder: exits at once (~0.2 s)
STOP_TIMEOUT = 90               # leak check at exit
REQ_TIMEOUT = 30                # per request; first ones are slow (JIT)

VALGRIND_ARGS = [
    "--leak-check=full",
    "--show-leak-kinds=definite,indirect",
    "--errors-for-leak-kinds=definite,indirect",
    "--error-exitcode=99",
    "--num-callers=40",
    "--trace-children=no",
    # memcheck keeps freed blocks out of circulation (to catch use after
    # free) until --freelist-vol bytes are queued, 20 MB by default.  With
    # ~26 KB malloc'ed per request (libfcgi, hiredis, json-c, libpq, curl),
    # that queue and the fragmentation it causes make VmRSS creep up for
    # the whole run (+3.8 MiB from request 2,000 to 10,000, logarithmically
    # slowing) although the responder's own heap is flat.  2 MB (~80
    # requests of frees) still catches a use after free across requests and
    # is full after the first hundred requests, so VmRSS measures the
    # responder, not the quarantine.
    "--freelist-vol=2000000",
]

JSON_CT = "application/json"

# Valgrind error headlines (the first line of an error block).
ERROR_KIND_RE = re.compile(
    r"(Invalid (read|write|free)|uninitialised|Uninitialised|"
    r"Mismatched free|Source and destination overlap|"
    r"definitely lost in|indirectly lost in|"
    r"Argument '.*' of function .* has a fishy|Syscall param|"
    r"Conditional jump or move|Use of uninitialised|Process terminating)")


def read_rss_kib(pid):
    """VmRSS of pid in KiB, or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid, encoding="ascii",
                  errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def valgrind_blocks(text):
    """The error blocks of a valgrind log: lists of lines (without the
    ==PID== prefix) separated by blank lines."""
    blocks, cur = [], []
    for raw in text.splitlines():
        line = re.sub(r"^==\d+== ?", "", raw)
        if line.strip() == "":
            if cur:
                blocks.append(cur)
            cur = []
        else:
            cur.append(line)
    if cur:
        blocks.append(cur)
    return blocks


def valgrind_excerpt(text, limit=6000):
    """The error blocks with stack traces, then the summaries."""
    errs, summary = [], []
    for b in valgrind_blocks(text):
        head = b[0]
        if ERROR_KIND_RE.search(head):
            errs.append("\n".join(b))
        elif head.startswith(("LEAK SUMMARY", "HEAP SUMMARY", "ERROR SUMMARY")):
            summary.append("\n".join(b))
        elif any(ln.startswith("ERROR SUMMARY") for ln in b):
            summary.append("\n".join(ln for ln in b if ln.startswith("ERROR SUMMARY")))
    out = "\n\n".join(errs + summary)
    if not out:
        out = "\n".join(text.splitlines()[-40:])
    return out if len(out) <= limit else out[:limit] + "\n...(truncated)"


class Plan:
    """The request mix.  Each kind builds one request and says which
    (status, code) answers are right for it."""

    def __init__(self, rng, item_ids, max_item, n_users, etags):
        self.rng = rng
        self.item_ids = item_ids
        self.max_item = max_item
        self.n_users = n_users
        self.etags = etags              # [(query, etag)] of cached list pages
        self.tokens = []                # access tokens from successful logins
        self.refresh = []               # refresh tokens (each used once)
        self.login_seq = 0
        # WeChat codes are single use and the stand-in remembers them across
        # runs: make this run's codes unique even though rng is seeded.
        self.run_id = "%x" % random.SystemRandom().getrandbits(48)
        self.kinds = [
            # (weight, name, builder)
            (10, "ping", self.ping),
            (7, "ping-echo", self.ping_echo),
            (5, "malformed-json", self.malformed_json),
            (5, "healthz", self.healthz),
            (11, "list-cached", self.list_cached),
            (9, "list-uncached", self.list_uncached),
            (3, "list-304", self.list_304),
            (10, "item", self.item),
            (2, "item-missing", self.item_missing),
            (8, "user-profile", self.user_profile),
            (2, "user-missing", self.user_missing),
            (2, "users-list", self.users_list),
            (4, "unknown-path", self.unknown_path),
            (4, "wrong-method", self.wrong_method),
            (5, "login-invalid", self.login_invalid),
            (1, "login-broken-wechat", self.login_broken),
            (1, "login-ok", self.login_ok),
            (2, "me", self.me),
            (1, "refresh", self.refresh_token),
            (2, "no-or-bad-token", self.bad_token),
            (2, "bad-query", self.bad_query),
            (2, "body-limits", self.body_limits),
            (1, "head", self.head),
        ]
        self.total_weight = sum(w for w, _, _ in self.kinds)

    # A request: dict(method, path, query, body, ctype, headers, extra,
    # expect={status: codes or None (any code)}, envelope=True)

    @staticmethod
    def req(method, path, expect, query="", body=None, ctype=None,
            headers=None, extra=None, envelope=True):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            ctype = ctype or JSON_CT
        return dict(method=method, path=path, query=query, body=body,
                    ctype=ctype, headers=headers or {}, extra=extra,
                    expect=expect, envelope=envelope)

    def pick(self):
        x = self.rng.uniform(0, self.total_weight)
        for w, name, fn in self.kinds:
            x -= w
            if x <= 0:
                return name, fn()
        w, name, fn = self.kinds[-1]
        return name, fn()

    def ping(self):
        return self.req("GET", "/ping", {200: {0}})

    def ping_echo(self):
        s = "echo-%d-%s" % (self.rng.randrange(10**6),
                            "\u4f60\u597d" * self.rng.randrange(0, 50))
        return self.req("POST", "/ping", {200: {0}}, body={"echo": s})

    def malformed_json(self):
        bad = self.rng.choice(['{"echo":', '{bad', '[1,2', '{"echo":"x"}}',
                               '\xff\xfe', '{"echo":"\\ud800"', 'nul',
                               '{"a":' * 40])
        return self.req("POST", "/ping", {400: {40001, 40002}}, body=bad,
                        ctype=JSON_CT)

    def healthz(self):
        return self.req("GET", "/healthz", {200: {0}})

    def list_cached(self):
        # The pages `wxappctl preload` warms (and ones earlier requests cached).
        q = self.rng.choice([("page=1&page_size=20"), ("page=2&page_size=20"),
                             ("page=3&page_size=20"), (""),
                             ("category=food"), ("category=tech&page=1")])
        return self.req("GET", "/api/v1/data/list", {200: {0}}, query=q)

    def list_uncached(self):
        r = self.rng.random()
        if r < 0.6:
            q = "page=%d&page_size=20" % self.rng.randint(4, 80)
        elif r < 0.85:
            q = "page=%d&page_size=%d" % (self.rng.randint(1, 30),
                                          self.rng.randint(1, 100))
        else:
            q = "after=%d&page_size=%d" % (self.rng.randint(1, self.max_item + 5),
                                           self.rng.randint(1, 50))
        return self.req("GET", "/api/v1/data/list", {200: {0}}, query=q)

    def list_304(self):
        q, etag = self.rng.choice(self.etags)
        return self.req("GET", "/api/v1/data/list", {304: None}, query=q,
                        headers={"If-None-Match": etag}, envelope=False)

    def item(self):
        return self.req("GET", "/api/v1/data/%d" % self.rng.choice(self.item_ids),
                        {200: {0}})

    def item_missing(self):
        return self.req("GET", "/api/v1/data/%d" % self.rng.randint(10**6, 10**7),
                        {404: {40400}})

    def user_profile(self):
        return self.req("GET", "/api/v1/users/%d" % self.rng.randint(1, self.n_users),
                        {200: {0}}, query="include=profile")

    def user_missing(self):
        return self.req("GET", "/api/v1/users/%d" % self.rng.randint(10**8, 10**9),
                        {404: {40400}}, query="include=profile")

    def users_list(self):
        return self.req("GET", "/api/v1/users", {200: {0}},
                        query="page=%d&page_size=%d" % (self.rng.randint(1, 50),
                                                        self.rng.randint(1, 20)))

    def unknown_path(self):
        p = self.rng.choice(["/", "/nope", "/api/v1", "/api/v1/dat",
                             "/api/v2/data/list", "/api/v1/users/1/x",
                             "/ping/", "/%s" % ("a" * self.rng.randint(1, 300))])
        return self.req("GET", p, {404: {40400}})

    def wrong_method(self):
        m, p = self.rng.choice([("DELETE", "/ping"), ("PUT", "/healthz"),
                                ("PUT", "/api/v1/data/list"),
                                ("GET", "/api/v1/user/login"),
                                ("PUT", "/api/v1/users/3"),
                                ("GET", "/api/v1/data"),
                                ("OPTIONS", "/api/v1/users")])
        return self.req(m, p, {405: {40500}})

    def login_invalid(self):
        return self.req("POST", "/api/v1/user/login", {400: {40010}},
                        body={"code": "invalid-mem-%d" % self.rng.randrange(10**9)})

    def login_broken(self):
        # WeChat answering garbage or a truncated body: by design a 503
        # (50303, "WeChat unavailable") envelope -- the only 5xx allowed.
        code = self.rng.choice(["garbage", "trunc"]) + "-mem-%d" % self.rng.randrange(10**9)
        return self.req("POST", "/api/v1/user/login", {503: {50303}},
                        body={"code": code})

    def login_ok(self):
        self.login_seq += 1
        code = "user-memtest%d-%s-%d" % (self.login_seq % 40, self.run_id,
                                         self.login_seq)
        return self.req("POST", "/api/v1/user/login", {200: {0}},
                        body={"code": code})

    def me(self):
        if not self.tokens:
            return self.bad_token()
        return self.req("GET", "/api/v1/user/me", {200: {0}},
                        headers={"Authorization": "Bearer " + self.rng.choice(self.tokens)})

    def refresh_token(self):
        if not self.refresh:
            return self.login_invalid()
        tok = self.refresh.pop(self.rng.randrange(len(self.refresh)))
        return self.req("POST", "/api/v1/user/refresh", {200: {0}},
                        body={"refresh_token": tok})

    def bad_token(self):
        h = self.rng.choice([{}, {"Authorization": "Bearer abc.def.ghi"},
                             {"Authorization": "Bearer " + "x" * 900},
                             {"Authorization": "Basic dXNlcjpwdw=="}])
        return self.req("GET", "/api/v1/user/me", {401: {40100, 40102}}, headers=h)

    def bad_query(self):
        q = self.rng.choice(["page=0", "page=abc", "page_size=1000", "page=%zz",
                             "page=1&page=2&page_size=-1", "after=x"])
        return self.req("GET", "/api/v1/data/list",
                        {400: {40000, 40002}}, query=q)

    def body_limits(self):
        r = self.rng.random()
        if r < 0.4:
            return self.req("POST", "/ping", {415: {41500}}, body='{"echo":"x"}',
                            ctype="text/plain")
        if r < 0.7:
            return self.req("POST", "/ping", {400: {40001}},
                            extra={"CONTENT_LENGTH": None}, ctype=JSON_CT)
        return self.req("POST", "/ping", {413: {41300}},
                        body='{"echo":"%s"}' % ("y" * 70000), ctype=JSON_CT)

    def head(self):
        return self.req("HEAD", "/ping", {200: None}, envelope=False)


class ValgrindResponder(e2e.TestCase):

    def setUp(self):
        e2e.need_run_dir()
        self.valgrind = shutil.which("valgrind")
        if not self.valgrind:
            raise unittest.SkipTest("valgrind is not installed "
                                    "(apt-get install valgrind)")
        run = os.path.realpath(e2e.RUN_DIR)
        prefix = e2e.stack_env().get("PREFIX") or os.path.join(run, "prefix")
        self.binary = os.path.join(prefix, "sbin", "wxapp-fcgi")
        self.conf = os.path.join(run, "wxapp.conf")
        if not os.access(self.binary, os.X_OK):
            raise unittest.SkipTest("no installed responder %s" % self.binary)
        if not os.path.isfile(self.conf):
            raise unittest.SkipTest("no %s" % self.conf)
        self.user = e2e.svc_user()      # None unless we are root
        self.dir = self._work_dir(run)
        self.sock = os.path.join(self.dir, "wxapp-memcheck.sock")
        self.vglog = os.path.join(self.dir, "valgrind.log")
        self.applog = os.path.join(self.dir, "wxapp.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.addCleanup(self._kill)

    def _work_dir(self, run):
        d = os.path.join(run, "log", "memcheck")
        try:
            if len(d) > 80:             # sun_path is 108 bytes
                raise OSError("%s: too long for a socket path" % d)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d, mode=0o755, exist_ok=True)
        except OSError as e:
            d = tempfile.mkdtemp(prefix="wxapp-memcheck-")
            os.chmod(d, 0o755)
            e2e.log("cannot use $RUN/log/memcheck (%s): using %s" % (e, d))
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        return d

    def _responder_env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": "/"}
        # The pool's WXAPP_<KEY> overrides (given to `wxapp-stack up`), so
        # this responder is configured like the others.
        pool_env = getattr(e2e, "_responder_env", lambda: {})
        try:
            for k, v in pool_env().items():
                if k.startswith("WXAPP_"):
                    env[k] = v
        except Exception as e:  # noqa: BLE001 - best effort
            e2e.log("cannot read the pool's environment: %s" % e)
        env["WXAPP_MAX_REQUESTS"] = "0"
        # The responder's copies of cached answers are bounded: small
        # enough here to be full long before WARM_AT, so that from then on
        # they are replaced (freed and allocated) and must not grow.
        env["WXAPP_CACHE_LOCAL_BYTES"] = "65536"
        env["WXAPP_LOG_FILE"] = self.applog
        return env

    def _start(self, loop_args=()):
        extra = shlex.split(os.environ.get("WXAPP_MEMTEST_VALGRIND_ARGS", ""))
        argv = ([self.valgrind] + VALGRIND_ARGS + extra +
                ["--log-file=" + self.vglog, self.binary, "-c", self.conf,
                 "--listen", self.sock] + list(loop_args))
        kw = {}
        if self.user:
            pw = pwd.getpwnam(self.user)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid,
                      extra_groups=os.getgrouplist(self.user, pw.pw_gid))
        e2e.log("starting: %s" % " ".join(shlex.quote(a) for a in argv))
        self.stderr_f = open(self.stderr_path, "wb")
        self.addCleanup(self.stderr_f.close)
        self.proc = subprocess.Popen(argv, env=self._responder_env(), cwd="/",
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.stderr_f, stderr=self.stderr_f,
                                     **kw)

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def _read(self, path, tail=None):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            return "(cannot read %s: %s)" % (path, e)
        return text if tail is None else "\n".join(text.splitlines()[-tail:])

    def _died(self, what):
        self.fail("%s: the responder under valgrind exited %s.\nvalgrind log "
                  "(%s):\n%s\nstderr: %s\nresponder log tail: %s"
                  % (what, self.proc.poll(), self.vglog,
                     valgrind_excerpt(self._read(self.vglog)),
                     self._read(self.stderr_path, 20),
                     self._read(self.applog, 10)))

    def _wait_listening(self):
        """Until GET /ping answers.  A real request, not a bare connect: a
        connection that closes without a request is exactly what makes an
        immediately following SIGTERM go unnoticed (see _stop)."""
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._died("start-up")
            if os.path.exists(self.sock):
                try:
                    r = fcgi.request(self.sock, "GET", "/ping",
                                     timeout=REQ_TIMEOUT)
                    if r.status == 200:
                        return
                    last = r.describe()
                except (OSError, fcgi.ProtocolError) as e:
                    last = e
            time.sleep(0.2)
        self.fail("the responder under valgrind did not answer GET /ping on "
                  "%s within %ds (%s); valgrind log tail:\n%s"
                  % (self.sock, START_TIMEOUT, last, self._read(self.vglog, 30)))

    def _stop(self):
        """SIGTERM while idle; returns (exit status, note).  When the
        signal is not acted on within SIGTERM_GRACE seconds, one more
        request is sent (it should then finish and exit) so valgrind still
        gets to write its leak report; the note says so."""
        time.sleep(0.5)                 # idle in accept(2) by now
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(SIGTERM_GRACE), None
        except subprocess.TimeoutExpired:
            pass
        note = ("SIGTERM sent while the responder was idle was not acted on "
                "within %ds" % SIGTERM_GRACE)
        try:
            r = fcgi.request(self.sock, "GET", "/ping", timeout=REQ_TIMEOUT)
            note += "; one more request (HTTP %s) made it exit" % r.status
        except (OSError, fcgi.ProtocolError) as e:
            note += "; one more request failed too (%s)" % e
        try:
            return self.proc.wait(STOP_TIMEOUT), note
        except subprocess.TimeoutExpired:
            self.fail(note + "; still running %ds later; valgrind log tail:"
                      "\n%s" % (STOP_TIMEOUT, self._read(self.vglog, 30)))

    def _send(self, rq, addr):
        return fcgi.request(self.sock, rq["method"], rq["path"], rq["query"],
                            body=rq["body"], content_type=rq["ctype"],
                            headers=rq["headers"], remote_addr=addr,
                            extra_params=rq["extra"], timeout=REQ_TIMEOUT)

    def _check(self, name, rq, r):
        """None when r is right for rq, else a one-line reason."""
        exp = rq["expect"]
        try:
            if r.status not in exp:
                return "%s: want HTTP %s: %s" % (name, sorted(exp), r.describe())
            codes = exp[r.status]
            if rq["envelope"]:
                body = self.assert_envelope(r, r.status)
                if codes is not None and body["code"] not in codes:
                    return "%s: want code in %s: %s" % (name, sorted(codes),
                                                        r.describe())
                return None
            # 304 / HEAD: headers only, no body.
            self.assert_common_headers(r, content_type=(r.method == "HEAD"))
            if r.body:
                return "%s: want an empty body: %s" % (name, r.describe())
            return None
        except AssertionError as e:
            return "%s: %s" % (name, e)

    def _discover(self, addr):
        """Item ids, the number of users and the ETags of cached list pages,
        asked of the responder under test (warming it up as well)."""
        ids, etags = [], []
        for page in range(1, 11):
            r = self._send(Plan.req("GET", "/api/v1/data/list", {200: {0}},
                                    query="page=%d&page_size=100" % page),
                           addr(page))
            self.assert_envelope(r, 200)
            items = r.json()["data"]["items"]
            ids += [it["id"] for it in items]
            if not items:
                break
        if not ids:
            e2e.wxappctl("seed", "--force")
            return self._discover(addr)
        for q in ("page=1&page_size=20", "page=2&page_size=20", ""):
            r = self._send(Plan.req("GET", "/api/v1/data/list", {200: {0}},
                                    query=q), addr(100))
            self.assert_envelope(r, 200)
            etags.append((q, r.header("ETag")))
        r = self._send(Plan.req("GET", "/api/v1/users", {200: {0}},
                                query="page_size=1"), addr(101))
        n_users = self.assert_envelope(r, 200)["data"]["total"]
        return ids, max(ids), max(1, min(n_users, 10000)), etags

    def test_10000_requests_no_leak_no_growth(self):
        """libfcgi's loop (wxapp-fcgi without -C)."""
        self._memcheck(())

    def test_concurrent_loop_10000_requests_no_leak_no_growth(self):
        """The concurrent loop the pools run (-C): each request on a
        coroutine's stack, switched to and from by lib/coro."""
        self._memcheck(("-C", "8"), CONCURRENT_ALLOWANCE)

    def _memcheck(self, loop_args, allowance=0):
        t_start = time.monotonic()
        self._start(loop_args)
        self._wait_listening()
        t_listening = time.monotonic()
        rng = random.Random(20260502)
        # A fresh client address per request: rate limiting (per address,
        # in Redis, shared with every other test) must not turn answers
        # into 429s.  The base is random so reruns get fresh buckets.
        base = random.randrange(1 << 20)

        def addr(i):
            n = (base + i) % (1 << 22)
            return "127.%d.%d.%d" % (64 + (n >> 16), (n >> 8) & 255, n & 255)

        ids, max_item, n_users, etags = self._discover(addr)
        plan = Plan(rng, ids, max_item, n_users, etags)
        e2e.log("%d items (max id %d), %d users, pid %d"
                % (len(ids), max_item, n_users, self.proc.pid))

        problems, counts, statuses, rss = [], {}, {}, {}
        t0 = time.monotonic()
        for i in range(1, N_REQUESTS + 1):
            name, rq = plan.pick()
            counts[name] = counts.get(name, 0) + 1
            try:
                r = self._send(rq, addr(1000 + i))
            except (OSError, fcgi.ProtocolError) as e:
                if self.proc.poll() is not None:
                    self._died("request %d (%s %s)" % (i, rq["method"], rq["path"]))
                problems.append("%s: request %d %s %s: %s: %s"
                                % (name, i, rq["method"], rq["path"],
                                   type(e).__name__, e))
                if len(problems) > 50:
                    break
                continue
            statuses[r.status] = statuses.get(r.status, 0) + 1
            why = self._check(name, rq, r)
            if why:
                problems.append("request %d %s" % (i, why))
            elif r.status == 200 and name == "login-ok":
                d = r.json()["data"]
                plan.tokens.append(d["access_token"])
                plan.refresh.append(d["refresh_token"])
                plan.tokens = plan.tokens[-20:]
            elif r.status == 200 and name == "refresh":
                plan.refresh.append(r.json()["data"]["refresh_token"])
            if i % SAMPLE_EVERY == 0 or i == WARM_AT:
                rss[i] = read_rss_kib(self.proc.pid)
        elapsed = time.monotonic() - t0
        sent = sum(counts.values())
        e2e.log("%d requests in %.1fs (%.0f/s) after %.1fs start-up; statuses %s"
                % (sent, elapsed, sent / elapsed, t_listening - t_start,
                   dict(sorted(statuses.items()))))
        e2e.log("mix: %s" % dict(sorted(counts.items())))
        e2e.log("VmRSS KiB by request: %s" % rss)

        self.assertIsNone(self.proc.poll(), "the responder exited during the run")
        # Graceful stop: exit 0; valgrind then does its leak check.
        t1 = time.monotonic()
        rc, stop_note = self._stop()
        e2e.log("exit %d, %.1fs after SIGTERM; total %.1fs%s"
                % (rc, time.monotonic() - t1, time.monotonic() - t_start,
                   "; " + stop_note if stop_note else ""))
        vg = self._read(self.vglog)
        excerpt = valgrind_excerpt(vg)
        e2e.log("valgrind:\n" + excerpt)

        # 1. Every answer right.
        self.assertFalse(problems, "%d of %d answers wrong (first 10):\n%s"
                         % (len(problems), sent, "\n".join(problems[:10])))
        self.assertEqual(sent, N_REQUESTS)

        # 2. No memory error, no leak.
        self.assertNotEqual(rc, 99, "valgrind found errors (exit 99); log %s:\n%s"
                            % (self.vglog, excerpt))
        self.assertEqual(rc, 0, "the responder did not exit 0 on SIGTERM (exit %s);"
                         " stderr: %s\nvalgrind log %s:\n%s"
                         % (rc, self._read(self.stderr_path, 20), self.vglog, excerpt))
        for pat in (r"Invalid (read|write|free)", r"[Uu]ninitialised",
                    r"Mismatched free", r"Source and destination overlap"):
            self.assertNotRegex(vg, pat, "valgrind reported %r; log %s:\n%s"
                                % (pat, self.vglog, excerpt))
        if "All heap blocks were freed" not in vg:
            for kind in ("definitely", "indirectly"):
                m = re.search(r"%s lost: ([\d,]+) bytes" % kind, vg)
                self.assertIsNotNone(m, "no '%s lost' line in the valgrind "
                                     "log %s:\n%s" % (kind, self.vglog, excerpt))
                self.assertEqual(m.group(1), "0", "%s lost: %s bytes; log %s:\n%s"
                                 % (kind, m.group(1), self.vglog, excerpt))
        m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", vg)
        self.assertIsNotNone(m, "no ERROR SUMMARY in %s" % self.vglog)
        self.assertEqual(m.group(1), "0", "valgrind: %s errors; log %s:\n%s"
                         % (m.group(1), self.vglog, excerpt))

        # 3. No growth once warm.
        warm, end = rss.get(WARM_AT), rss.get(N_REQUESTS)
        self.assertTrue(warm and end, "could not read VmRSS of pid %d: %s"
                        % (self.proc.pid, rss))
        self.assertLess((end - warm) * 1024, RSS_GROWTH_LIMIT + allowance,
                        "VmRSS grew %d KiB from request %d to %d (limit %d KiB); "
                        "samples (KiB by request): %s"
                        % (end - warm, WARM_AT, N_REQUESTS,
                           (RSS_GROWTH_LIMIT + allowance) // 1024, rss))

        # 4. SIGTERM honoured (checked last: the memory verdict matters more).
        self.assertIsNone(stop_note, stop_note)


if __name__ == "__main__":
    unittest.main()
