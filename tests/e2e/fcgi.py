"""A minimal FastCGI client (Python 3 stdlib only) for talking to one
wxapp-fcgi responder directly, without nginx.

    import fcgi
    r = fcgi.request("/path/to/wxapp.sock", "GET", "/ping",
                     remote_addr="127.0.0.1")
    r.status, r.headers, r.body, r.json()

One request per connection (FCGI_KEEP_CONN is not set), or, with
fcgi.Conn, requests one after another on a kept connection (FCGI_KEEP_CONN,
as nginx's fastcgi_keep_conn on does it): BEGIN_REQUEST (role RESPONDER), the params as PARAMS records and an empty
PARAMS record, the body as STDIN records and an empty STDIN record; then
STDOUT/STDERR records are read until END_REQUEST.  The CGI answer in
STDOUT (`Status:` and the other headers, a blank line, the body) is split
into status, headers and body.  fcgi.Response is an e2elib.Response, so
e2elib.TestCase.assert_envelope works on it.
"""

import socket
import struct
import urllib.parse

import e2elib

VERSION = 1

BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
DATA = 8
GET_VALUES = 9
GET_VALUES_RESULT = 10
UNKNOWN_TYPE = 11

RESPONDER = 1
KEEP_CONN = 1

# protocolStatus of END_REQUEST
REQUEST_COMPLETE = 0
CANT_MPX_CONN = 1
OVERLOADED = 2
UNKNOWN_ROLE = 3

MAX_CONTENT = 65535
_HEADER = struct.Struct(">BBHHBx")


class ProtocolError(Exception):
    """The responder broke the FastCGI protocol or closed early."""


class Response(e2elib.Response):
    """A FastCGI answer: e2elib.Response (HTTP status, headers, body) plus
    the STDERR bytes and END_REQUEST's appStatus and protocolStatus."""

    def __init__(self, method, target, status, reason, headers, body,
                 stderr=b"", app_status=0, protocol_status=REQUEST_COMPLETE):
        super().__init__(method, target, status, reason, headers, body)
        self.stderr = stderr
        self.app_status = app_status
        self.protocol_status = protocol_status

    def describe(self, limit=300):
        return "fcgi " + super().describe(limit)


def _record(rtype, request_id, content=b""):
    out = []
    for i in range(0, max(len(content), 1), MAX_CONTENT):
        chunk = content[i:i + MAX_CONTENT]
        pad = -len(chunk) % 8
        out.append(_HEADER.pack(VERSION, rtype, request_id, len(chunk), pad))
        out.append(chunk)
        out.append(b"\0" * pad)
    return b"".join(out)


def _nv_len(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def encode_params(params):
    """FastCGI name-value pairs of a dict or list of (name, value)."""
    items = params.items() if isinstance(params, dict) else params
    out = []
    for k, v in items:
        k = k.encode("latin-1") if isinstance(k, str) else k
        v = v.encode("utf-8") if isinstance(v, str) else bytes(v)
        out.append(_nv_len(len(k)) + _nv_len(len(v)) + k + v)
    return b"".join(out)


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise ProtocolError("connection closed after %d of %d bytes"
                                % (len(buf), n))
        buf += b
    return bytes(buf)


def parse_cgi(stdout):
    """(status, reason, headers, body) of a CGI answer."""
    head, sep, body = stdout.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = stdout.partition(b"\n\n")
        if not sep:
            raise ProtocolError("no end of headers in STDOUT: %r" % stdout[:200])
    status, reason, headers = 200, "OK", []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            continue
        k, colon, v = line.partition(b":")
        if not colon:
            raise ProtocolError("malformed header line %r" % line[:200])
        k = k.strip().decode("latin-1")
        v = v.strip().decode("latin-1")
        if k.lower() == "status":
            code, _, reason = v.partition(" ")
            if not code.isdigit():
                raise ProtocolError("malformed Status header %r" % v)
            status = int(code)
        else:
            headers.append((k, v))
    return status, reason, headers, body


def _connect(address, timeout):
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def _exchange_on(sock, params, stdin, request_id, keep):
    """One request on a connected sock; (stdout, stderr, app_status,
    protocol_status)."""
    msg = [_record(BEGIN_REQUEST, request_id,
                   struct.pack(">HB5x", RESPONDER, KEEP_CONN if keep else 0))]
    p = encode_params(params)
    if p:
        msg.append(_record(PARAMS, request_id, p))
    msg.append(_record(PARAMS, request_id))
    if stdin:
        msg.append(_record(STDIN, request_id, stdin))
    msg.append(_record(STDIN, request_id))
    try:
        sock.sendall(b"".join(msg))
    except (BrokenPipeError, ConnectionResetError):
        pass        # it may answer before reading everything (e.g. 413)
    out, err = [], []
    while True:
        ver, rtype, rid, clen, plen = _HEADER.unpack(
            _recv_exact(sock, _HEADER.size))
        content = _recv_exact(sock, clen + plen)[:clen]
        if ver != VERSION:
            raise ProtocolError("record version %d" % ver)
        if rid != request_id:
            raise ProtocolError("record for request id %d, want %d"
                                % (rid, request_id))
        if rtype == STDOUT:
            out.append(content)
        elif rtype == STDERR:
            err.append(content)
        elif rtype == END_REQUEST:
            if clen < 8:
                raise ProtocolError("short END_REQUEST body")
            app_status, proto = struct.unpack(">IB3x", content[:8])
            return b"".join(out), b"".join(err), app_status, proto
        else:
            raise ProtocolError("unexpected record type %d" % rtype)


def exchange(address, params, stdin=b"", timeout=10.0, request_id=1):
    """Send one request; return (stdout, stderr, app_status, protocol_status).

    address: a unix socket path, or (host, port)."""
    sock = _connect(address, timeout)
    try:
        return _exchange_on(sock, params, stdin, request_id, False)
    finally:
        sock.close()


class Conn:
    """A kept connection, as nginx's with fastcgi_keep_conn on: requests
    one after another, each with FCGI_KEEP_CONN, the connection left open
    after each answer.  request() takes request()'s arguments but the
    address; closed() tells whether the responder closed it."""

    def __init__(self, address, timeout=10.0):
        self.sock = _connect(address, timeout)
        self.n = 0

    def request(self, method, path, **kw):
        self.n += 1
        return request(None, method, path, conn=self, **kw)

    def closed(self, wait=0.0):
        self.sock.settimeout(wait if wait > 0 else 0.001)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except (socket.timeout, BlockingIOError):
            return False
        except OSError:
            return True

    def close(self):
        self.sock.close()


def request(address, method, path, query="", body=None, content_type=None,
            headers=None, remote_addr="127.0.0.1", server_name="127.0.0.1",
            server_port="443", https=True, extra_params=None, timeout=10.0,
            conn=None):
    """One request with the params nginx's fastcgi_params would send.

    path: the decoded path (DOCUMENT_URI); query: the raw query string.
    body: bytes/str/None (CONTENT_LENGTH is sent for a body, else "").
    headers: dict or list of (name, value) -> HTTP_<NAME> params.
    extra_params: dict of params that override the defaults (None drops one).
    conn: a Conn to send it on (address is then unused).
    Returns a Response; raises ProtocolError or OSError."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    uri = path + ("?" + query if query else "")
    params = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "wxapp-e2e-fcgi",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": method,
        "REQUEST_URI": uri,
        "DOCUMENT_URI": path,
        "SCRIPT_NAME": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type or "",
        "CONTENT_LENGTH": str(len(body)) if body is not None else "",
        "REMOTE_ADDR": remote_addr,
        "REMOTE_PORT": "40000",
        "SERVER_ADDR": server_name,
        "SERVER_PORT": str(server_port),
        "SERVER_NAME": server_name,
        "HTTP_HOST": "%s:%s" % (server_name, server_port),
    }
    if https:
        params["HTTPS"] = "on"
        params["REQUEST_SCHEME"] = "https"
    hdrs = headers.items() if isinstance(headers, dict) else (headers or [])
    for k, v in hdrs:
        params["HTTP_" + k.upper().replace("-", "_")] = v
    for k, v in (extra_params or {}).items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = v
    if conn is not None:
        conn.sock.settimeout(timeout)
        stdout, stderr, app_status, proto = _exchange_on(
            conn.sock, params, body or b"", conn.n % 65535 + 1, True)
    else:
        stdout, stderr, app_status, proto = exchange(address, params,
                                                     body or b"", timeout=timeout)
    if proto != REQUEST_COMPLETE:
        raise ProtocolError("END_REQUEST protocolStatus %d" % proto)
    status, reason, hdr_list, rbody = parse_cgi(stdout)
    return Response(method, uri, status, reason, hdr_list, rbody, stderr,
                    app_status, proto)


def url_query(**kw):
    return urllib.parse.urlencode(kw)
