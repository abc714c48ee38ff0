"""Shared helpers for the wxapp end-to-end tests (Python 3 stdlib only).

Environment:
  WXAPP_TEST_URL   base URL of nginx (default https://127.0.0.1:8443); the
                   certificate is self-signed and is not verified.
  WXAPP_RUN_DIR    the stack's run directory (wxapp.conf, logs, pids).
  WXAPP_STACK      path to spawn/wxapp-stack (for `svc stop|start SERVICE`).
  WXAPP_TEST_TIMEOUT  per-request timeout in seconds (default 10).
  WXAPP_TEST_VERBOSE  set by run.py -v; diagnostics go to stderr.

Test modules import this as `import e2elib as e2e` and subclass
`e2e.TestCase`, which adds envelope assertions.
"""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest
import urllib.parse

TIMEOUT = float(os.environ.get("WXAPP_TEST_TIMEOUT", "10"))
BASE_URL = os.environ.get("WXAPP_TEST_URL") or "https://127.0.0.1:8443"
RUN_DIR = os.environ.get("WXAPP_RUN_DIR") or ""
STACK = os.environ.get("WXAPP_STACK") or ""
VERBOSE = bool(os.environ.get("WXAPP_TEST_VERBOSE"))

_url = urllib.parse.urlsplit(BASE_URL)
SCHEME = _url.scheme or "https"
HOST = _url.hostname or "127.0.0.1"
PORT = _url.port or (443 if SCHEME == "https" else 80)
PREFIX = _url.path.rstrip("/")
HOST_HEADER = "%s:%d" % (HOST, PORT) if ":" not in HOST else "[%s]:%d" % (HOST, PORT)

JSON_CT = "application/json; charset=utf-8"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ENVELOPE_KEYS = {"code", "data", "message"}

ANY = object()          # "don't check this" marker for assert_envelope(data=...)


def log(*args):
    if VERBOSE:
        print("    [e2e]", *args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def ssl_context(alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def connect(timeout=None):
    timeout = TIMEOUT if timeout is None else timeout
    if SCHEME == "https":
        return http.client.HTTPSConnection(HOST, PORT, timeout=timeout,
                                           context=ssl_context())
    return http.client.HTTPConnection(HOST, PORT, timeout=timeout)


class Response:
    """A received HTTP response: status, reason, headers, body (bytes)."""

    def __init__(self, method, target, status, reason, headers, body):
        self.method = method
        self.target = target
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value)
        self.body = body
        self._json = None
        self._json_err = None
        self._parsed = False

    def header(self, name):
        vals = self.header_all(name)
        return vals[0] if vals else None

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def json(self):
        """Parsed body, or raises AssertionError with a readable reason."""
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                self._json_err = e
        if self._json_err is not None:
            raise AssertionError("body is not valid UTF-8 JSON (%s): %s"
                                 % (self._json_err, self.describe()))
        return self._json

    def describe(self, limit=300):
        body = self.body[:limit]
        more = "..." if len(self.body) > limit else ""
        return ("%s %s -> HTTP %s; Content-Type=%r X-Request-Id=%r body=%r%s"
                % (self.method, _short(self.target), self.status,
                   self.header("Content-Type"), self.header("X-Request-Id"),
                   body, more))


def _short(s, n=80):
    s = s if isinstance(s, str) else repr(s)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def request(method, path, body=None, headers=None, content_length="auto",
            conn=None, timeout=None):
    """Send one request with http.client and read the response.

    body: bytes/str/None.  content_length: "auto" (len(body) when a body is
    given, no header otherwise), None (never send the header), or an explicit
    value sent verbatim.  headers: dict or list of (name, value).
    conn: reuse an open connection (kept open); else a fresh one is closed.
    """
    own = conn is None
    c = conn or connect(timeout)
    target = PREFIX + path
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    try:
        c.putrequest(method, target, skip_accept_encoding=True)
        if content_length == "auto":
            if body is not None:
                c.putheader("Content-Length", str(len(body)))
        elif content_length is not None:
            c.putheader("Content-Length", str(content_length))
        for k, v in hdrs:
            c.putheader(k, v)
        try:
            c.endheaders(message_body=body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
            # The server may answer early (e.g. 413) and stop reading.
            log("send interrupted (%s); reading the answer anyway" % e)
        r = c.getresponse()
        data = r.read()
        return Response(method, target, r.status, r.reason,
                        list(r.getheaders()), data)
    finally:
        if own:
            c.close()


def get(path, headers=None, **kw):
    return request("GET", path, headers=headers, **kw)


def post_json(path, body, headers=None, **kw):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return request("POST", path, body=body, headers=h, **kw)


def raw_exchange(data, timeout=None, half_close=False):
    """Send raw bytes over a fresh (TLS) connection; return all bytes read
    until the server closes or `timeout` passes (None -> TIMEOUT)."""
    timeout = TIMEOUT if timeout is None else timeout
    sock = socket.create_connection((HOST, PORT), timeout=timeout)
    if SCHEME == "https":
        sock = ssl_context().wrap_socket(sock, server_hostname=HOST)
    chunks = []
    try:
        sock.sendall(data)
        while True:
            b = sock.recv(65536)
            if not b:
                break
            chunks.append(b)
    except (socket.timeout, ConnectionResetError, BrokenPipeError, ssl.SSLError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass
    return b"".join(chunks)


def parse_raw_response(data, method="RAW", target="-"):
    """Parse the first HTTP/1.x response in `data`; None when there is none."""
    if not data:
        return None
    # Skip interim 1xx answers (e.g. "100 Continue").
    while re.match(rb"HTTP/\d\.\d 1\d\d", data) and b"\r\n\r\n" in data:
        data = data.partition(b"\r\n\r\n")[2]
    if not data:
        return None
    head, sep, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/\d\.\d (\d{3}) ?(.*)", lines[0])
    if not m:
        return Response(method, target, None, "unparseable status line", [], data)
    headers = []
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        headers.append((k.strip().decode("latin-1"), v.strip().decode("latin-1")))
    status = int(m.group(1))
    resp = Response(method, target, status, m.group(2).decode("latin-1"), headers, b"")
    cl = resp.header("Content-Length")
    te = (resp.header("Transfer-Encoding") or "").lower()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif cl is not None and cl.isdigit():
        body = rest[:int(cl)]
    elif "chunked" in te:
        body, buf = b"", rest
        while True:
            size_line, _, buf = buf.partition(b"\r\n")
            try:
                n = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if n == 0:
                break
            body += buf[:n]
            buf = buf[n + 2:]
    else:
        body = rest
    resp.body = body
    return resp


def raw_request(data, timeout=None, method="RAW", target="-"):
    return parse_raw_response(raw_exchange(data, timeout), method, target)


def reachable(timeout=5):
    try:
        s = socket.create_connection((HOST, PORT), timeout=timeout)
        s.close()
        return True, ""
    except OSError as e:
        return False, str(e)


# --------------------------------------------------------------------------
# The stack: config, logs, services, responders
# --------------------------------------------------------------------------

def need_run_dir():
    if not RUN_DIR:
        raise unittest.SkipTest("WXAPP_RUN_DIR not set")
    if not os.path.isdir(RUN_DIR):
        raise unittest.SkipTest("WXAPP_RUN_DIR %s is not a directory" % RUN_DIR)


def need_stack():
    need_run_dir()
    if not STACK:
        raise unittest.SkipTest("WXAPP_STACK not set")


def conf_path():
    return os.path.join(RUN_DIR, "wxapp.conf")


def read_conf():
    """The stack's wxapp.conf as a dict (key = value, # comments)."""
    conf = {}
    try:
        with open(conf_path(), encoding="utf-8", errors="replace") as f:
            for line in f:
                s = line.strip()
                if not s or s.startswith("#") or "=" not in s:
                    continue
                k, _, v = s.partition("=")
                v = v.strip()
                if " #" in v:
                    v = v.split(" #", 1)[0].rstrip()
                if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                    v = v[1:-1]
                conf[k.strip()] = v
    except OSError:
        pass
    return conf


def _responder_env():
    """Environment of one running responder (WXAPP_* overrides), if readable."""
    for pid in sorted(responder_pids()):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        env = {}
        for item in raw.split(b"\0"):
            k, sep, v = item.partition(b"=")
            if sep:
                env[k.decode("latin-1")] = v.decode("utf-8", "replace")
        return env
    return {}


def conf_value(key, default=None):
    """Effective config value: responder env WXAPP_<KEY>, else file, else default."""
    env = _responder_env()
    ek = "WXAPP_" + key.upper()
    if ek in env:
        return env[ek]
    return read_conf().get(key, default)


def log_file_path():
    p = conf_value("log_file", "")
    if not p:
        return None
    if not os.path.isabs(p):
        p = os.path.join(RUN_DIR, p)
    return p


def svc(action, service, timeout=120):
    """Run `$WXAPP_STACK svc ACTION SERVICE` with WXAPP_RUN_DIR set."""
    need_stack()
    env = dict(os.environ, WXAPP_RUN_DIR=RUN_DIR)
    t0 = time.monotonic()
    p = subprocess.run([STACK, "svc", action, service], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace").strip()
    log("svc %s %s -> rc %d in %.1fs %s" % (action, service, p.returncode,
                                            time.monotonic() - t0, out[-200:]))
    if p.returncode != 0:
        raise AssertionError("`%s svc %s %s` exited %d: %s"
                             % (STACK, action, service, p.returncode, out[-500:]))
    return out


def _proc_read(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read()
    except OSError:
        return None


def is_responder(pid):
    comm = _proc_read(pid, "comm")
    cmdline = _proc_read(pid, "cmdline")
    stat = _proc_read(pid, "stat")
    if comm is None or cmdline is None or stat is None:
        return False
    state = stat.rpartition(b")")[2].split()[:1]
    if state and state[0] in (b"Z", b"X"):
        return False
    comm = comm.decode("latin-1").strip()
    if comm in ("wxapp-supervise", "spawn-fcgi", "pgrep", "sh", "bash", "dash"):
        return False
    argv = [a.decode("latin-1") for a in cmdline.split(b"\0") if a]
    argv0 = os.path.basename(argv[0].split()[0]) if argv and argv[0].split() else ""
    return comm.startswith("wxapp-fcgi") or argv0.startswith("wxapp-fcgi")


def responder_pids():
    """Live wxapp-fcgi processes whose command line names $RUN/wxapp.conf."""
    need_run_dir()
    pats = {conf_path(), os.path.join(os.path.realpath(RUN_DIR), "wxapp.conf")}
    pids = set()
    for pat in pats:
        p = subprocess.run(["pgrep", "-f", pat], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        for tok in p.stdout.split():
            pid = int(tok)
            if pid != os.getpid() and is_responder(pid):
                pids.add(pid)
    return pids


def max_requests():
    try:
        return int(conf_value("max_requests", "1000000"))
    except ValueError:
        return 1000000


def recycling_possible(n_requests):
    """True when max_requests is low enough that a responder may legitimately
    exit (and be replaced) during n_requests requests."""
    mr = max_requests()
    return 0 < mr <= n_requests


def wait_for(pred, timeout, interval=0.1):
    """Poll pred() until truthy or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def wait_healthy(timeout, consecutive=8):
    """Poll GET /healthz until `consecutive` 200s in a row.
    Returns (ok, last_response_or_error_text, seconds)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    streak = 0
    last = None
    while time.monotonic() < deadline:
        try:
            last = get("/healthz")
            streak = streak + 1 if last.status == 200 else 0
        except (OSError, http.client.HTTPException) as e:
            last = "%s: %s" % (type(e).__name__, e)
            streak = 0
        if streak >= consecutive:
            return True, last, time.monotonic() - t0
        if streak == 0:
            time.sleep(0.2)
    return False, last, time.monotonic() - t0


def describe(last):
    return last.describe() if isinstance(last, Response) else str(last)


# --------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------

class TestCase(unittest.TestCase):
    """unittest.TestCase with wxapp envelope assertions."""

    maxDiff = 2000
    longMessage = False

    def assert_common_headers(self, r, content_type=True):
        """Exactly one Content-Type (the JSON one) and one well-formed X-Request-Id."""
        ctx = r.describe()
        if content_type:
            cts = r.header_all("Content-Type")
            self.assertEqual(cts, [JSON_CT],
                             "Content-Type must be exactly [%r], got %r: %s"
                             % (JSON_CT, cts, ctx))
        ids = r.header_all("X-Request-Id")
        self.assertEqual(len(ids), 1,
                         "want exactly one X-Request-Id header, got %r: %s" % (ids, ctx))
        self.assertRegex(ids[0], REQUEST_ID_RE,
                         "X-Request-Id %r is not well formed: %s" % (ids[0], ctx))
        return ids[0]

    def assert_envelope(self, r, status, code=None, data=ANY, message=ANY,
                        message_contains=None):
        """Assert status, headers and the exact {"code","data","message"} shape.
        code None -> 0 for 2xx, else must be status*100 + detail.
        data/message: exact value unless ANY.  Returns the parsed body."""
        ctx = r.describe()
        self.assertEqual(r.status, status, "want HTTP %s: %s" % (status, ctx))
        self.assert_common_headers(r)
        cl = r.header("Content-Length")
        if cl is not None and r.method != "HEAD":
            self.assertEqual(cl, str(len(r.body)),
                             "Content-Length %s != body length %d: %s"
                             % (cl, len(r.body), ctx))
        body = r.json()
        self.assertIsInstance(body, dict, "envelope must be an object: %s" % ctx)
        self.assertEqual(set(body), ENVELOPE_KEYS,
                         "envelope keys must be exactly code,data,message: %s" % ctx)
        self.assertTrue(isinstance(body["code"], int) and not isinstance(body["code"], bool),
                        "code must be an integer: %s" % ctx)
        self.assertIsInstance(body["message"], str, "message must be a string: %s" % ctx)
        if code is not None:
            self.assertEqual(body["code"], code, "want code %s: %s" % (code, ctx))
        elif status < 300:
            self.assertEqual(body["code"], 0, "want code 0: %s" % ctx)
        if body["code"] != 0:
            self.assertEqual(body["code"] // 100, status,
                             "code %s does not match HTTP %s: %s"
                             % (body["code"], status, ctx))
        if data is not ANY:
            self.assertEqual(body["data"], data, "data mismatch: %s" % ctx)
        if message is not ANY:
            self.assertEqual(body["message"], message, "message mismatch: %s" % ctx)
        if message_contains is not None:
            self.assertIn(message_contains, body["message"],
                          "message should mention %r: %s" % (message_contains, ctx))
        return body


def kill(pid, sig=signal.SIGKILL):
    os.kill(pid, sig)


# --------------------------------------------------------------------------
# Inside the stack: psql, redis-cli, wxappctl, the WeChat API stand-in, JWTs
# --------------------------------------------------------------------------

def stack_env():
    """RUN/stack.env (what `wxapp-stack up` decided) as a dict."""
    env = {}
    try:
        with open(os.path.join(RUN_DIR, "stack.env"), encoding="utf-8") as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep:
                    env[k] = v
    except OSError:
        pass
    return env


def svc_user():
    """The service user to run stack tools as (runuser) when we are root;
    None when we already are that user."""
    if os.geteuid() != 0:
        return None
    u = stack_env().get("SVC_USER") or "wxapp"
    return None if u == "root" else u


def system_tool(name):
    """Absolute path of a system program the service user can run."""
    for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return name


def as_svc(argv, input=None, timeout=30, check=True):
    """Run argv as the stack's service user (from /); returns stdout text.
    check: raise AssertionError on a non-zero exit."""
    need_run_dir()
    u = svc_user()
    cmd = (["runuser", "-u", u, "--"] if u else []) + list(argv)
    if isinstance(input, str):
        input = input.encode("utf-8")
    p = subprocess.run(cmd, cwd="/", input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s %s"
                             % (" ".join(cmd)[:200], p.returncode, out[-300:],
                                p.stderr.decode("utf-8", "replace")[-500:]))
    return out


def _pg_conninfo():
    """host (socket dir), dbname and user from the stack's pg_conninfo."""
    info = {"host": os.path.join(RUN_DIR, "pgsock"), "dbname": "wxapp",
            "user": "wxapp"}
    for tok in (read_conf().get("pg_conninfo") or "").split():
        k, sep, v = tok.partition("=")
        if sep and k in info:
            info[k] = v
    return info


PSQL_SEP = "\x1f"


def psql(sql, timeout=30):
    """Run one SQL statement in the stack's database over its unix socket
    (as the service user); the rows as lists of strings (NULL -> "")."""
    ci = _pg_conninfo()
    out = as_svc([system_tool("psql"), "-h", ci["host"], "-U", ci["user"],
                  "-d", ci["dbname"], "-X", "-A", "-t", "-q",
                  "-v", "ON_ERROR_STOP=1", "-F", PSQL_SEP, "-c", sql],
                 timeout=timeout)
    return [ln.split(PSQL_SEP) for ln in out.split("\n") if ln != ""]


def psql_value(sql, timeout=30):
    """The first column of the first row, or None."""
    rows = psql(sql, timeout)
    return rows[0][0] if rows else None


def sql_quote(s):
    return "'" + str(s).replace("'", "''") + "'"


def redis_socket():
    addr = read_conf().get("redis_addr") or ""
    return addr if addr.startswith("/") else os.path.join(RUN_DIR, "redis",
                                                          "redis.sock")


def redis_cli(*args, check=True, timeout=10):
    """redis-cli -s <the stack's socket> ARGS...; stdout stripped."""
    return as_svc([system_tool("redis-cli"), "-s", redis_socket()] +
                  [str(a) for a in args], timeout=timeout, check=check).strip()


_DEL_PATTERN_LUA = ("local n = 0 for _, k in ipairs(redis.call('KEYS', "
                    "ARGV[1])) do redis.call('DEL', k) n = n + 1 end return n")


def redis_del_pattern(pattern):
    """Delete every key matching pattern; quietly nothing when Redis is down."""
    try:
        return redis_cli("EVAL", _DEL_PATTERN_LUA, "0", pattern, check=False)
    except (subprocess.SubprocessError, OSError):
        return ""


def clear_rate_limits():
    """Forget the responders' rate-limit buckets (wx:rl:*), so a test that
    needs many logins or reads in a row is not throttled by earlier tests."""
    redis_del_pattern("wx:rl:*")


def wxappctl(*args, timeout=120):
    """$PREFIX/sbin/wxappctl -c RUN/wxapp.conf ARGS... as the service user."""
    prefix = stack_env().get("PREFIX") or os.path.join(RUN_DIR, "prefix")
    return as_svc([os.path.join(prefix, "sbin", "wxappctl"), "-c",
                   conf_path()] + [str(a) for a in args], timeout=timeout)


def ensure_seeded():
    """Seed the database (wxappctl seed, idempotent) when items is empty."""
    n = int(psql_value("SELECT count(*) FROM items") or "0")
    if n == 0:
        log("items is empty: wxappctl seed")
        wxappctl("seed", "--force")


def conf_int(key, default):
    try:
        return int(conf_value(key, str(default)))
    except (TypeError, ValueError):
        return default


# -- the WeChat API stand-in (tests/wechat/standin.py) ---------------------

def wechat_base():
    """The stand-in's base URL: the stack's wechat_api_base (skip when it
    is not a local http:// stand-in)."""
    need_run_dir()
    base = (conf_value("wechat_api_base") or
            os.environ.get("WXAPP_TEST_WECHAT_URL") or "")
    u = urllib.parse.urlsplit(base)
    if u.scheme != "http" or u.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise unittest.SkipTest("wechat_api_base %r is not the local WeChat "
                                "stand-in" % base)
    return base.rstrip("/")


def wechat_request(method, path, body=None, timeout=10):
    """A request to the stand-in; (status, parsed JSON or raw bytes)."""
    u = urllib.parse.urlsplit(wechat_base())
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode("utf-8")
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        c.request(method, (u.path or "") + path, body=data, headers=hdrs)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw.decode("utf-8"))
        except ValueError:
            return r.status, raw
    finally:
        c.close()


def wechat_control(**settings):
    st, body = wechat_request("POST", "/__control", settings)
    if st != 200:
        raise AssertionError("stand-in /__control %r -> %s %r" % (settings, st, body))
    return body


def wechat_reset():
    st, body = wechat_request("POST", "/__reset", {})
    if st != 200:
        raise AssertionError("stand-in /__reset -> %s %r" % (st, body))


def wechat_stats():
    """{path: calls} of the stand-in's WeChat endpoints."""
    st, body = wechat_request("GET", "/__stats")
    if st != 200 or not isinstance(body, dict):
        raise AssertionError("stand-in /__stats -> %s %r" % (st, body))
    return body.get("calls", {})


# -- JWT (HS256 by hand, for forged tokens) ---------------------------------

def b64url(raw):
    import base64
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def b64url_decode(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_encode(header, claims, secret):
    """A compact JWS: HS256-signed with secret (str/bytes), or with an
    empty signature when secret is None."""
    import hashlib
    import hmac
    h = b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
    c = b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    signing = (h + "." + c).encode("ascii")
    if secret is None:
        return h + "." + c + "."
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    return h + "." + c + "." + b64url(hmac.new(secret, signing,
                                               hashlib.sha256).digest())


def jwt_parts(token):
    """(header, claims) of a compact JWT, unverified."""
    h, c, _ = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c))


def bearer(token):
    return {"Authorization": "Bearer " + token}


# -- Sessions: users logged in through the stand-in ---------------------------

class Session:
    """A user logged in through the WeChat stand-in: its id and tokens."""

    def __init__(self, data, code):
        self.code = code
        self.uid = data["user"]["id"]
        self.access = data["access_token"]
        self.refresh = data["refresh_token"]
        self.user = data["user"]

    def auth(self, **extra):
        h = bearer(self.access)
        h.update(extra)
        return h


_login_seq = [0]
# Every wx.login code the suite used: what the stand-in derived a
# session_key from (test_zz_logs looks for those in the logs).
LOGIN_CODES = []
# Every phone number the stack answered with.
PHONE_NUMBERS = []


def login(name=None):
    """Log in a user (a new one unless name is given) through the stand-in."""
    import secrets as _secrets
    wechat_base()
    _login_seq[0] += 1
    name = name or "u%s%d" % (_secrets.token_hex(4), _login_seq[0])
    code = "user-%s-%s%d" % (name, _secrets.token_hex(4), _login_seq[0])
    clear_rate_limits()
    LOGIN_CODES.append(code)
    r = post_json("/api/v1/user/login", {"code": code})
    if r.status != 200:
        raise AssertionError("cannot log in as %s: %s" % (name, r.describe()))
    return Session(r.json()["data"], code)


def make_admin(session):
    """Give the session's user the admin role (wxappctl user grant)."""
    wxappctl("user", "grant", session.uid, "admin")
    return session


def call(method, path, session=None, body=None, headers=None):
    """A request as session (or anonymously), JSON body when given."""
    clear_rate_limits()
    h = dict(session.auth() if session else {})
    h.update(headers or {})
    if body is None:
        return request(method, path, headers=h)
    h.setdefault("Content-Type", "application/json")
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body, ensure_ascii=False)
    return request(method, path, body=body, headers=h)


def wxappctl_run(*args, timeout=120):
    """wxappctl ARGS as the service user: (exit status, stdout, stderr)."""
    need_run_dir()
    prefix = stack_env().get("PREFIX") or os.path.join(RUN_DIR, "prefix")
    u = svc_user()
    cmd = (["runuser", "-u", u, "--"] if u else []) + [
        os.path.join(prefix, "sbin", "wxappctl"), "-c", conf_path()] + \
        [str(a) for a in args]
    p = subprocess.run(cmd, cwd="/", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


# -- HTTP/2, through curl (Python's standard library speaks HTTP/1.1 only) ----

def h2_request(method, path, body=None, headers=None, timeout=None):
    """One request over HTTP/2 with curl --http2; a Response.  Raises
    AssertionError when curl did not speak HTTP/2 or got no answer."""
    import tempfile
    timeout = TIMEOUT if timeout is None else timeout
    with tempfile.TemporaryDirectory() as d:
        hfile, bfile = os.path.join(d, "h"), os.path.join(d, "b")
        cmd = ["curl", "-sk", "--http2", "-X", method, "-D", hfile,
               "-o", bfile, "-w", "%{http_version}", "--max-time",
               str(timeout)]
        hdrs = list(headers.items()) if isinstance(headers, dict) else \
            list(headers or [])
        for k, v in hdrs:
            cmd += ["-H", "%s: %s" % (k, v)]
        if body is not None:
            cmd += ["--data-binary", "@-"]
        cmd.append(BASE_URL + path)
        if isinstance(body, str):
            body = body.encode("utf-8")
        p = subprocess.run(cmd, input=body, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout + 5)
        version = p.stdout.decode("ascii", "replace").strip()
        if p.returncode != 0 or version != "2":
            raise AssertionError("curl --http2 %s %s: exit %d, HTTP version "
                                 "%r: %s" % (method, _short(path),
                                             p.returncode, version,
                                             p.stderr.decode()[-200:]))
        with open(hfile, "rb") as f:
            head = f.read().decode("latin-1")
        with open(bfile, "rb") as f:
            data = f.read()
    lines = [ln for ln in head.split("\r\n") if ln]
    status = int(lines[0].split()[1])
    hl = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:]
          if ":" in ln]
    return Response(method, path + " (HTTP/2)", status, "", hl, data)
