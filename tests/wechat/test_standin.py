#!/usr/bin/env python3
"""Self-test for the WeChat API stand-in (tests/wechat/standin.py).

    python3 tests/wechat/test_standin.py [-v]

Starts the stand-in on a free port as a subprocess, exercises every rule with
urllib/http.client, stops it with SIGTERM, and prints `N passed, N failed` as
its last line.  Exit status 0 only when nothing failed.  The message push
functions are imported (`import standin`) and checked directly too; the
callbacks go to a small recording HTTP(S) server run here.  Needs the
`openssl` command (AES, and a self-signed certificate for the HTTPS case).
"""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import standin  # noqa: E402  (the push functions; the server runs apart)

STANDIN = os.path.join(HERE, "standin.py")
APPID = "wx0123456789abcdef"
SECRET = "s3cr3t-0123456789abcdef0123456789"
VERBOSE = "-v" in sys.argv[1:]

BASE = None             # http://127.0.0.1:PORT, set in main()
PASSED = 0
FAILED = 0


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def check(cond, what):
    """Record one assertion."""
    global PASSED, FAILED
    if cond:
        PASSED += 1
        if VERBOSE:
            print("ok   " + what)
    else:
        FAILED += 1
        print("FAIL " + what)


def request(method, path, query=None, body=None, timeout=10, headers=None):
    """(status, headers, raw body bytes)."""
    url = BASE + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def jreq(method, path, query=None, body=None):
    """(status, parsed JSON body)."""
    status, _, raw = request(method, path, query, body)
    return status, json.loads(raw)


def login(code, **over):
    q = {"appid": APPID, "secret": SECRET, "js_code": code,
         "grant_type": "authorization_code"}
    q.update(over)
    q = {k: v for k, v in q.items() if v is not None}
    return jreq("GET", "/sns/jscode2session", q)


def token(**over):
    q = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    q.update(over)
    return jreq("GET", "/cgi-bin/token", q)


def stable(force=False, **over):
    b = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET,
         "force_refresh": force}
    b.update(over)
    return jreq("POST", "/cgi-bin/stable_token", body=b)


def phone(tok, code):
    body = {} if code is None else {"code": code}
    return jreq("POST", "/wxa/business/getuserphonenumber",
                {"access_token": tok}, body)


SEND_PATH = "/cgi-bin/message/subscribe/send"
TEMPLATE = "tpl-order-shipped-0001"
DATA = {"thing1": {"value": "Order 42"}, "time2": {"value": "2024-05-01 12:00"}}
FIRST_MSGID = 3000000000000000000


def send_body(**over):
    """A valid subscribeMessage.send body; a None value drops the key."""
    b = {"touser": "oTestUser0000000000000000000", "template_id": TEMPLATE,
         "data": DATA}
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def send_raw(tok, body, job=None, timeout=10):
    """(status, headers, raw body) of a subscribe/send; job -> X-Wxapp-Job."""
    q = {"access_token": tok} if tok is not None else None
    h = {"X-Wxapp-Job": job} if job is not None else None
    return request("POST", SEND_PATH, q, body, timeout=timeout, headers=h)


def send(tok, body=None, job=None):
    """(status, parsed JSON) of a subscribe/send (a valid body by default)."""
    status, _, raw = send_raw(tok, send_body() if body is None else body, job)
    return status, json.loads(raw)


def sends():
    return jreq("GET", "/__sends")[1]


def control(**kw):
    return jreq("POST", "/__control", body=kw)


def reset():
    return jreq("POST", "/__reset", body={})


def errcode(answer):
    return answer.get("errcode")


SEC_PATH = "/wxa/msg_sec_check"
MEDIA_PATH = "/wxa/media_check_async"
OPENID = "oTestUser0000000000000000000"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"     # 43 characters
PUSH_TOKEN = "pushTok3n"


def sec_body(**over):
    """A valid msgSecCheck v2 body; a None value drops the key."""
    b = {"version": 2, "openid": OPENID, "scene": 2, "content": "hello there"}
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def sec(tok, body=None):
    return jreq("POST", SEC_PATH, {"access_token": tok},
                sec_body() if body is None else body)


def media_body(**over):
    b = {"media_url": "https://cdn.example.com/img/1.jpg", "media_type": 2,
         "version": 2, "openid": OPENID, "scene": 1}
    b.update(over)
    return {k: v for k, v in b.items() if v is not None}


def media(tok, body=None):
    return jreq("POST", MEDIA_PATH, {"access_token": tok},
                media_body() if body is None else body)


def pushes():
    return jreq("GET", "/__pushes")[1]


def wait_until(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def sha1_sorted(*parts):
    """Independent of standin.push_signature."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def openssl_decrypt(key, ciphertext):
    """AES-256-CBC decryption, iv = key[:16], no unpadding, by openssl."""
    r = subprocess.run(["openssl", "enc", "-d", "-aes-256-cbc", "-K", key.hex(),
                        "-iv", key[:16].hex(), "-nopad"], input=ciphertext,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return r.stdout


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1: (certfile, keyfile)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return cert, key


class Recorder:
    """A backend push URL: records every POST, answers status/answer."""

    def __init__(self, cert=None):
        self.got = []
        self.lock = threading.Lock()
        self.status = 200
        self.answer = b"success"
        rec = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                u = urllib.parse.urlsplit(self.path)
                with rec.lock:
                    rec.got.append({
                        "path": u.path,
                        "query": dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True)),
                        "ctype": self.headers.get("Content-Type"),
                        "body": body, "at": time.time()})
                    status, answer = rec.status, rec.answer
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, fmt, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        scheme = "http"
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*cert)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d/wx/push" % (scheme, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, args=(0.05,),
                         daemon=True).start()

    def requests(self):
        with self.lock:
            return list(self.got)

    def clear(self):
        with self.lock:
            self.got = []

    def wait(self, n=1, timeout=5.0):
        """The first n requests, or None when they did not all come."""
        if wait_until(lambda: len(self.requests()) >= n, timeout):
            return self.requests()[:n]
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def push_checks(got, token, safe, what):
    """Check a received push's signatures; the message text (decrypted in
    safe mode) and the appid (None in plain mode)."""
    q = got["query"]
    check(q.get("signature") == sha1_sorted(token, q.get("timestamp", ""),
                                            q.get("nonce", "")),
          what + ": signature = sha1(sorted token, timestamp, nonce)")
    check(q.get("timestamp", "").isdigit() and q.get("nonce", "").isdigit(),
          what + ": timestamp and nonce are digits")
    if not safe:
        check("encrypt_type" not in q and "msg_signature" not in q,
              what + ": plain mode has no encrypt_type/msg_signature")
        return got["body"], None
    check(q.get("encrypt_type") == "aes", what + ": encrypt_type=aes")
    if got["ctype"].startswith("application/json"):
        outer = json.loads(got["body"])
        check(set(outer) == {"ToUserName", "Encrypt"}, what + ": safe JSON keys %s" % sorted(outer))
        enc = outer["Encrypt"]
    else:
        root = ET.fromstring(got["body"])
        check(root.tag == "xml" and [c.tag for c in root] == ["ToUserName", "Encrypt"],
              what + ": safe XML elements")
        check(b"<Encrypt><![CDATA[" in got["body"], what + ": Encrypt in CDATA")
        enc = root.find("Encrypt").text
    check(q.get("msg_signature") == sha1_sorted(token, q["timestamp"], q["nonce"], enc),
          what + ": msg_signature = sha1(sorted token, timestamp, nonce, Encrypt)")
    return standin.push_decrypt(AES_KEY, enc)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------

def test_code2session():
    reset()
    s, a = login("abc123")
    check(s == 200 and "errcode" not in a, "login success has no errcode")
    check(set(a) == {"openid", "session_key"}, "login success keys: %s" % sorted(a))
    check(len(a["openid"]) == 28 and a["openid"][0] == "o"
          and re.fullmatch(r"[A-Za-z0-9_-]+", a["openid"]), "openid shape: %s" % a["openid"])
    check(len(a["session_key"]) == 24 and len(base64.b64decode(a["session_key"])) == 16,
          "session_key is 24 base64 chars of 16 bytes")

    # Single use.
    s, a = login("abc123")
    check(errcode(a) == 40163 and a["errmsg"] == "code been used", "reused code -> 40163")

    # Determinism: user-<name>-... depends on name only; session_key per code.
    _, a1 = login("user-alice-1")
    _, a2 = login("user-alice-2")
    _, b1 = login("user-bob-1")
    check(a1["openid"] == a2["openid"], "same user, two codes -> same openid")
    check(a1["session_key"] != a2["session_key"], "fresh session_key per code")
    check(a1["openid"] != b1["openid"], "different users -> different openids")
    _, c1 = login("plain-1")
    _, c2 = login("plain-2")
    check(c1["openid"] != c2["openid"], "other codes derive openid from whole code")
    reset()
    _, a3 = login("user-alice-1")
    check(a3 == a1, "answers reproducible after reset")

    # unionid when "union" appears anywhere.
    _, u1 = login("user-carol-union-1")
    _, u2 = login("x-union-user-carol-2")
    check("unionid" in u1 and len(u1["unionid"]) == 28 and u1["unionid"][0] == "u",
          "union code -> unionid")
    check(u1.get("unionid") == u2.get("unionid") and u1["openid"] == u2["openid"],
          "unionid derived from user name")
    check("unionid" not in a3, "no unionid otherwise")

    # Parameter errors.
    check(errcode(login("p1", appid="wxnope")[1]) == 40013, "bad appid -> 40013")
    check(errcode(login("p2", secret="nope")[1]) == 40125, "bad secret -> 40125")
    check(errcode(login("p3", grant_type="client_credential")[1]) == 40002,
          "bad grant_type -> 40002")
    check(errcode(login("p4", grant_type=None)[1]) == 40002, "missing grant_type -> 40002")
    _, a = login(None)
    check(errcode(a) == 41008 and a["errmsg"] == "missing code", "missing js_code -> 41008")
    check(errcode(login("")[1]) == 41008, "empty js_code -> 41008")
    _, a = login("p5")
    check("openid" in a, "parameter errors did not consume the code")

    # Case-sensitive path.
    s, a = jreq("GET", "/sns/jsCode2Session",
                {"appid": APPID, "secret": SECRET, "js_code": "x",
                 "grant_type": "authorization_code"})
    check(s == 404 and a == {"errcode": 40066, "errmsg": "invalid url"},
          "jsCode2Session -> 404 40066")


def test_prefixes():
    reset()
    for code, want, msg in [("invalid-1", 40029, "invalid code"),
                            ("risky-1", 40226, "code blocked"),
                            ("busy-1", -1, "system error"),
                            ("quota-1", 45011, "api minute-quota reach limit")]:
        s, a = login(code)
        check(s == 200 and a == {"errcode": want, "errmsg": msg},
              "%s -> %d %s (%s)" % (code, want, msg, a))
        s, a = login(code)
        check(errcode(a) == want, "%s again -> same error (errors don't consume)" % code)

    s, h, raw = request("GET", "/sns/jscode2session",
                        {"appid": APPID, "secret": SECRET, "js_code": "garbage-1",
                         "grant_type": "authorization_code"})
    try:
        json.loads(raw)
        ok = False
    except ValueError:
        ok = True
    check(s == 200 and ok and len(raw) > 0, "garbage -> 200 non-JSON")

    s, h, raw = request("GET", "/sns/jscode2session",
                        {"appid": APPID, "secret": SECRET, "js_code": "trunc-1",
                         "grant_type": "authorization_code"})
    try:
        json.loads(raw)
        ok = False
    except ValueError:
        ok = True
    check(s == 200 and ok and raw.startswith(b"{"), "trunc -> 200 truncated JSON: %r" % raw)
    check(int(h["Content-Length"]) == len(raw), "trunc Content-Length matches body")

    s, h, raw = request("GET", "/sns/jscode2session",
                        {"appid": APPID, "secret": SECRET, "js_code": "http500-1",
                         "grant_type": "authorization_code"})
    check(s == 500 and b"<html>" in raw and h["Content-Type"].startswith("text/html"),
          "http500 -> 500 HTML")

    t0 = time.monotonic()
    _, a = login("slow400-x")
    dt = time.monotonic() - t0
    check("openid" in a and 0.4 <= dt < 3, "slow400- -> succeeds after ~0.4 s (%.2f s)" % dt)
    _, a = login("slow400-x")
    check(errcode(a) == 40163, "slow code is single use too")

    _, a = login("slow50-user-dave-1")
    _, b = login("user-dave-2")
    check(a["openid"] == b["openid"], "prefixes combine with user-<name>-")


def test_token():
    reset()
    s, a = token()
    check(s == 200 and set(a) == {"access_token", "expires_in"} and a["expires_in"] == 7200,
          "token answer shape")
    check(len(a["access_token"]) >= 100, "token is 100+ chars")
    t1 = a["access_token"]
    check(phone(t1, "ph-0")[1].get("errcode") == 0, "fresh token works")

    check(errcode(token(appid="wxnope")[1]) == 40013, "token bad appid -> 40013")
    check(errcode(token(secret="nope")[1]) == 40001, "token bad secret -> 40001")
    check(errcode(token(grant_type="authorization_code")[1]) == 40002,
          "token bad grant_type -> 40002")

    # Overlap: the previous stays valid, the one before is dead.
    _, a = token()
    t2 = a["access_token"]
    check(t2 != t1, "each call issues a new token")
    check(phone(t1, "ph-1")[1].get("errcode") == 0, "previous token valid during overlap")
    check(phone(t2, "ph-2")[1].get("errcode") == 0, "new token valid")
    _, a = token()
    t3 = a["access_token"]
    _, a = phone(t1, "ph-3")
    check(errcode(a) == 40001 and "not latest" in a["errmsg"],
          "token two generations back -> 40001")
    check(phone(t2, "ph-4")[1].get("errcode") == 0, "previous token still in overlap")

    # Overlap 0: replaced at once.
    control(overlap_s=0)
    _, a = token()
    t4 = a["access_token"]
    check(errcode(phone(t3, "ph-5")[1]) == 40001, "overlap_s=0: previous dies at once")
    check(phone(t4, "ph-6")[1].get("errcode") == 0, "overlap_s=0: new works")

    # Short overlap, waited out.
    control(overlap_s=0.3)
    _, a = token()
    t5 = a["access_token"]
    check(phone(t4, "ph-7")[1].get("errcode") == 0, "overlap_s=0.3: previous valid at first")
    time.sleep(0.5)
    check(errcode(phone(t4, "ph-8")[1]) == 40001, "overlap_s=0.3: previous dead after")
    check(phone(t5, "ph-9")[1].get("errcode") == 0, "current still valid")

    # invalidate_tokens.
    s, a = control(invalidate_tokens=True)
    check(s == 200 and a.get("ok") is True, "control invalidate_tokens accepted")
    check(errcode(phone(t5, "ph-10")[1]) == 40001, "invalidate_tokens -> 40001")

    # token_ttl_s: expiry -> 42001 (applies to tokens already issued).
    _, a = token()
    t6 = a["access_token"]
    control(token_ttl_s=0.3)
    time.sleep(0.5)
    _, a = phone(t6, "ph-11")
    check(errcode(a) == 42001 and a["errmsg"] == "access_token expired",
          "expired token -> 42001")
    _, a = token()
    check(a["expires_in"] == 7200, "expires_in stays 7200 (reported lifetime)")
    control(expires_in_s=60)
    _, a = token()
    check(a["expires_in"] == 60, "expires_in_s changes the reported lifetime")


def test_stable_token():
    reset()
    s, a = stable()
    check(s == 200 and set(a) == {"access_token", "expires_in"} and len(a["access_token"]) >= 100,
          "stable_token answer shape")
    check(0 < a["expires_in"] <= 7200, "stable expires_in is what is left")
    s1 = a["access_token"]
    _, a = stable()
    check(a["access_token"] == s1, "stable_token: same token on repeated calls")
    # Independent of /cgi-bin/token.
    token()
    token()
    _, a = stable()
    check(a["access_token"] == s1, "cgi-bin/token calls don't touch the stable token")
    check(phone(s1, "sp-1")[1].get("errcode") == 0, "stable token usable")

    _, a = stable(force=True)
    s2 = a["access_token"]
    check(s2 != s1, "force_refresh -> new token")
    check(errcode(phone(s1, "sp-2")[1]) == 40001, "force_refresh kills the previous")
    check(phone(s2, "sp-3")[1].get("errcode") == 0, "refreshed stable token usable")

    control(token_ttl_s=0.3)
    time.sleep(0.5)
    _, a = stable()
    check(a["access_token"] != s2, "expired stable token -> a new one")
    control(token_ttl_s=7200)

    control(invalidate_tokens=True)
    _, b = stable()
    check(b["access_token"] != a["access_token"], "after invalidate_tokens -> a new one")

    check(errcode(stable(appid="wxnope")[1]) == 40013, "stable bad appid -> 40013")
    check(errcode(stable(secret="nope")[1]) == 40001, "stable bad secret -> 40001")
    check(errcode(stable(grant_type="x")[1]) == 40002, "stable bad grant_type -> 40002")
    _, a = jreq("POST", "/cgi-bin/stable_token", body=b"{not json")
    check(errcode(a) == 47001, "stable non-JSON body -> 47001")
    _, a = jreq("GET", "/cgi-bin/stable_token")
    check(errcode(a) == 43002, "stable_token by GET -> 43002 require POST")


def test_phone():
    reset()
    _, a = token()
    t = a["access_token"]
    before = int(time.time())
    s, a = phone(t, "phone-code-1")
    info = a.get("phone_info", {})
    check(s == 200 and a.get("errcode") == 0 and a.get("errmsg") == "ok", "phone success")
    pure = info.get("purePhoneNumber", "")
    check(re.fullmatch(r"1[3-9]\d{9}", pure) is not None, "11-digit number: %s" % pure)
    check(info.get("phoneNumber") == "+86 " + pure and info.get("countryCode") == "86",
          "phoneNumber/countryCode")
    wm = info.get("watermark", {})
    check(wm.get("appid") == APPID and before <= wm.get("timestamp", 0) <= time.time() + 1,
          "watermark appid/timestamp")
    check(errcode(phone(t, "phone-code-1")[1]) == 40029, "phone code reuse -> 40029")
    _, b = phone(t, "phone-code-2")
    reset()
    _, t2 = token()
    _, a2 = phone(t2["access_token"], "phone-code-1")
    check(a2["phone_info"]["purePhoneNumber"] == pure, "number derived deterministically")
    check(b["phone_info"]["purePhoneNumber"] != pure, "different codes, different numbers")
    t = t2["access_token"]

    check(errcode(phone(t, "invalid-ph")[1]) == 40029, "phone invalid prefix -> 40029")
    _, a = phone(t, None)
    check(errcode(a) == 41008, "phone missing code -> 41008")
    check(errcode(phone("bogus", "ph-x")[1]) == 40001, "unknown token -> 40001")
    _, a = jreq("POST", "/wxa/business/getuserphonenumber", body={"code": "ph-y"})
    check(errcode(a) == 41001, "missing access_token -> 41001")
    check(phone(t, "ph-x")[1].get("errcode") == 0, "failed attempts did not consume ph-x")


def test_failures():
    reset()
    s, a = control(fail="busy")
    check(s == 200 and a["settings"]["fail"] == "busy", "control fail=busy")
    check(login("f-1")[1] == {"errcode": -1, "errmsg": "system error"}, "fail=busy on login")
    check(errcode(token()[1]) == -1, "fail=busy on token")
    check(errcode(stable()[1]) == -1, "fail=busy on stable_token")
    check(errcode(phone("x", "y")[1]) == -1, "fail=busy on phone")

    control(fail="http500")
    s, h, raw = request("GET", "/cgi-bin/token", {"grant_type": "client_credential",
                                                  "appid": APPID, "secret": SECRET})
    check(s == 500 and b"<html>" in raw, "fail=http500")

    control(fail="garbage")
    s, h, raw = request("GET", "/sns/jscode2session", {"js_code": "f-2"})
    try:
        json.loads(raw)
        ok = False
    except ValueError:
        ok = True
    check(s == 200 and ok, "fail=garbage")

    control(fail="timeout")
    t0 = time.monotonic()
    try:
        request("GET", "/cgi-bin/token", timeout=1)
        timed_out = False
    except (socket.timeout, TimeoutError, urllib.error.URLError):
        timed_out = True
    check(timed_out and time.monotonic() - t0 < 5, "fail=timeout -> no answer in 1 s")

    control(fail="none", latency_ms=300)
    t0 = time.monotonic()
    _, a = login("f-3")
    dt = time.monotonic() - t0
    check("openid" in a and dt >= 0.3, "latency_ms=300 (%.2f s)" % dt)
    t0 = time.monotonic()
    jreq("GET", "/__stats")
    check(time.monotonic() - t0 < 0.25, "latency doesn't apply to /__ paths")

    s, a = control(fail="nope")
    check(s == 400, "control rejects a bad fail mode")
    s, a = control(bogus=1)
    check(s == 400, "control rejects unknown keys")
    s, a = control(latency_ms=-5)
    check(s == 400, "control rejects negative latency")
    s, a = jreq("GET", "/__control")
    check(a["settings"]["latency_ms"] == 300 and a["settings"]["fail"] == "none",
          "bad control requests changed nothing")


def test_stats_and_reset():
    reset()
    _, a = jreq("GET", "/__stats")
    check(a["calls"] == {} and a["total"] == 0, "stats empty after reset: %s" % a)
    login("st-1")
    login("st-1")
    token()
    stable()
    jreq("GET", "/nope")
    jreq("GET", "/__control")
    _, a = jreq("GET", "/__stats")
    check(a["calls"].get("/sns/jscode2session") == 2, "stats counts code2session calls")
    check(a["calls"].get("/cgi-bin/token") == 1 and a["calls"].get("/cgi-bin/stable_token") == 1,
          "stats counts token calls")
    check(not any(p.startswith("/__") for p in a["calls"]), "stats ignores /__ paths")
    check(a["total"] == sum(a["calls"].values()) == 5, "stats total: %s" % a)

    s, a = jreq("GET", "/nope")
    check(s == 404 and a == {"errcode": 40066, "errmsg": "invalid url"}, "unknown path -> 404 40066")

    control(latency_ms=10, fail="busy", overlap_s=1, token_ttl_s=5)
    s, a = reset()
    check(s == 200, "reset answers 200")
    _, a = jreq("GET", "/__control")
    check(a["settings"] == {"latency_ms": 0, "fail": "none", "overlap_s": 300,
                            "token_ttl_s": 7200, "expires_in_s": 7200,
                            "send_fail": "none", "send_fail_count": 0,
                            "send_slow_ms": 5000, "sec_fail": "none",
                            "sec_fail_count": 0, "media_delay_ms": 200,
                            "push_url": "", "push_token": "",
                            "push_aes_key": "", "push_mode": "safe",
                            "push_format": "json"},
          "reset restores default settings")
    _, a = jreq("GET", "/__stats")
    check(a["total"] == 0, "reset zeroes counters")
    check("openid" in login("st-1")[1], "reset forgets used codes")


def test_traces():
    reset()
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    request("GET", "/cgi-bin/token", {"grant_type": "client_credential",
                                       "appid": APPID, "secret": SECRET},
            headers={"traceparent": tp, "tracestate": "rojo=1,congo=2"})
    login("tr-1")
    jreq("GET", "/__stats")
    _, a = jreq("GET", "/__traces")
    check(a["calls"] == [{"path": "/cgi-bin/token", "traceparent": tp,
                          "tracestate": "rojo=1,congo=2"},
                         {"path": "/sns/jscode2session", "traceparent": None}],
          "traces: each WeChat call's traceparent (and tracestate when "
          "sent), none for /__ paths: %s" % a)
    reset()
    _, a = jreq("GET", "/__traces")
    check(a["calls"] == [], "traces empty after reset")


def test_http():
    reset()
    # Keep-alive: several requests over one connection (as libcurl reuses).
    host, port = urllib.parse.urlsplit(BASE).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.connect()
    sock = conn.sock
    ok = True
    for i in range(5):
        conn.request("GET", "/sns/jscode2session?" + urllib.parse.urlencode(
            {"appid": APPID, "secret": SECRET, "js_code": "ka-%d" % i,
             "grant_type": "authorization_code"}))
        r = conn.getresponse()
        body = r.read()
        ok = ok and r.status == 200 and r.getheader("Content-Length") == str(len(body))
        ok = ok and r.getheader("Content-Type") == "application/json; charset=utf-8"
        ok = ok and r.version == 11 and not r.will_close
    # Errors keep the connection too, and a POST body is consumed in full.
    conn.request("POST", "/cgi-bin/stable_token", body=json.dumps(
        {"grant_type": "client_credential", "appid": APPID, "secret": "bad"}),
        headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    ok = ok and json.loads(r.read())["errcode"] == 40001
    conn.request("GET", "/nope")
    r = conn.getresponse()
    r.read()
    conn.request("GET", "/__stats")
    r = conn.getresponse()
    ok = ok and json.loads(r.read())["total"] == 7
    check(ok and conn.sock is sock, "keep-alive: 8 requests on one connection")
    conn.close()

    # Chunked request body.
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    body = json.dumps({"grant_type": "client_credential", "appid": APPID,
                       "secret": SECRET}).encode()
    conn.request("POST", "/cgi-bin/stable_token", body=iter([body[:10], body[10:]]),
                 headers={"Content-Type": "application/json"}, encode_chunked=True)
    r = conn.getresponse()
    check("access_token" in json.loads(r.read()), "chunked request body")
    conn.close()

    # Wrong method on a GET endpoint.
    _, a = jreq("POST", "/sns/jscode2session", body={})
    check(errcode(a) == 43001, "POST to jscode2session -> 43001 require GET")


def test_subscribe_send():
    reset()
    _, a = token()
    t = a["access_token"]
    s, h, raw = send_raw(t, send_body())
    a = json.loads(raw)
    check(s == 200 and a == {"errcode": 0, "errmsg": "ok", "msgid": FIRST_MSGID},
          "send success shape: %s" % a)
    check(type(a["msgid"]) is int and b'"msgid":3000000000000000000' in raw,
          "msgid is a JSON number (not a string): %r" % raw)
    _, b = send(t)
    check(b.get("msgid") == FIRST_MSGID + 1, "msgid increases per delivered send")

    # An openid from code2Session, and every optional field.
    _, lg = login("user-erin-1")
    full = send_body(touser=lg["openid"], page="pages/order/detail?id=42",
                     miniprogram_state="formal", lang="en_US")
    _, a = send(t, full)
    check(a.get("errcode") == 0 and a.get("msgid") == FIRST_MSGID + 2,
          "send to a code2Session openid with page/state/lang")
    for st in ("developer", "trial", "formal"):
        check(send(t, send_body(miniprogram_state=st))[1].get("errcode") == 0,
              "miniprogram_state=%s accepted" % st)
    for lang in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
        check(send(t, send_body(lang=lang))[1].get("errcode") == 0,
              "lang=%s accepted" % lang)
    check(send(t, send_body(page=""))[1].get("errcode") == 0, "empty page accepted")

    # Token and body.
    _, a = jreq("POST", SEND_PATH, body=send_body())
    check(a == {"errcode": 41001, "errmsg": "access_token missing"},
          "send without access_token -> 41001")
    check(errcode(send("bogus")[1]) == 40001, "send with unknown token -> 40001")
    _, a = jreq("GET", SEND_PATH, {"access_token": t})
    check(errcode(a) == 43002, "send by GET -> 43002 require POST")
    _, _, raw = send_raw(t, b"{not json")
    check(errcode(json.loads(raw)) == 47001, "send non-JSON body -> 47001")
    _, _, raw = send_raw(t, b"[1, 2]")
    check(errcode(json.loads(raw)) == 47001, "send non-object body -> 47001")

    def answer(body):
        return send(t, body)[1]

    for touser in (None, "", 123):
        a = answer(send_body(touser=touser))
        check(a == {"errcode": 40003, "errmsg": "invalid openid"},
              "touser %r -> 40003 (%s)" % (touser, a))
    a = answer(send_body(touser="refuse-user-1"))
    check(a == {"errcode": 43101, "errmsg": "user refuse to accept the msg"},
          "touser refuse... -> 43101")
    for tpl in (None, "", "bad-template", 7):
        a = answer(send_body(template_id=tpl))
        check(a == {"errcode": 40037, "errmsg": "invalid template_id"},
              "template_id %r -> 40037 (%s)" % (tpl, a))
    for data in (None, {}, "x", [DATA]):
        a = answer(send_body(data=data))
        check(a == {"errcode": 47003, "errmsg": "argument invalid! data is empty"},
              "data %r -> 47003 data is empty (%s)" % (data, a))
    for data, key in [({"thing1": "x"}, "thing1"),
                      ({"thing1": {"value": 5}}, "thing1"),
                      ({"thing1": {"value": ""}}, "thing1"),
                      ({"thing1": {"value": "ok"}, "time2": {}}, "time2"),
                      ({"thing1": {"value": "ok"}, "name3": {"val": "x"}}, "name3")]:
        a = answer(send_body(data=data))
        want = "argument invalid! data.%s.value is empty" % key
        check(a == {"errcode": 47003, "errmsg": want},
              "data %s -> 47003 naming %s (%s)" % (json.dumps(data), key, a))
    a = answer(send_body(page="https://evil.example/x"))
    check(a == {"errcode": 41030, "errmsg": "invalid page"}, "page with :// -> 41030")
    check(errcode(answer(send_body(page=5))) == 47001, "non-string page -> 47001")
    check(errcode(answer(send_body(miniprogram_state="prod"))) == 47001,
          "bad miniprogram_state -> 47001")
    check(errcode(answer(send_body(lang="fr_FR"))) == 47001, "bad lang -> 47001")
    check(errcode(answer(dict(send_body(), lang=None))) == 47001,
          "lang null -> 47001 (optional means absent)")

    # The order of the checks.
    check(errcode(answer(send_body(touser="", template_id="bad"))) == 40003,
          "order: touser before template_id")
    check(errcode(answer(send_body(touser="refuse-2", template_id="bad"))) == 43101,
          "order: refuse before template_id")
    check(errcode(answer(send_body(template_id="bad", data={}))) == 40037,
          "order: template_id before data")
    check(errcode(answer(send_body(data={}, page="a://b", lang="xx"))) == 47003,
          "order: data before page")
    check(errcode(answer(send_body(page="a://b", lang="xx"))) == 41030,
          "order: page before lang")

    _, a = jreq("POST", "/cgi-bin/message/subscribe/Send", {"access_token": t}, send_body())
    check(errcode(a) == 40066, "send path is case-sensitive")

    # The job header: 1-128 characters.
    check(errcode(send(t, job="j" * 129)[1]) == 47001, "X-Wxapp-Job of 129 chars -> 47001")
    _, a = send(t, job="j" * 128)
    check(a.get("errcode") == 0, "X-Wxapp-Job of 128 chars accepted")

    # Errors are not delivered but are counted in /__stats.
    log = sends()
    n_ok = 3 + 3 + 4 + 1 + 1
    check(log["delivered"] == n_ok and len(log["sends"]) == n_ok,
          "only successful sends are logged (%d)" % log["delivered"])
    check([e["msgid"] for e in log["sends"]] == list(range(FIRST_MSGID, FIRST_MSGID + n_ok)),
          "msgids consecutive in arrival order")
    _, st = jreq("GET", "/__stats")
    check(st["calls"].get(SEND_PATH, 0) > n_ok + 20, "errors counted in /__stats")

    control(token_ttl_s=0.2)
    time.sleep(0.3)
    check(errcode(send(t)[1]) == 42001, "send with an expired token -> 42001")


def test_send_dedup():
    reset()
    _, a = token()
    t = a["access_token"]
    _, a = send(t, job="job-1")
    m = a.get("msgid")
    check(m == FIRST_MSGID, "first send of a job delivered")
    _, a = send(t, job="job-1")
    check(a == {"errcode": 0, "errmsg": "ok", "msgid": m}, "resent job -> same msgid")
    _, a = send(t, send_body(data={"thing1": {"value": "other"}}), job="job-1")
    check(a.get("msgid") == m, "job ids are opaque: different content, same job -> same msgid")
    _, a = send(t, job="job-2")
    check(a.get("msgid") == m + 1, "another job -> next msgid")
    log = sends()
    check(log["delivered"] == 2 and log["deduplicated"] == 2 and log["duplicates"] == 0,
          "dedup counted: %s" % {k: log[k] for k in ("delivered", "deduplicated", "duplicates")})
    check([e["job"] for e in log["sends"]] == ["job-1", "job-2"], "job ids logged")

    # A resent job whose resend fails still fails (dedup only answers what
    # would succeed), and a failed send does not claim the job id.
    check(errcode(send(t, send_body(template_id="bad"), job="job-1")[1]) == 40037,
          "resent job with a bad body -> its error, not the msgid")
    check(errcode(send("bogus", job="job-1")[1]) == 40001, "resent job with a bad token -> 40001")
    check(errcode(send(t, send_body(touser="refuse-x"), job="job-3")[1]) == 43101,
          "a job's failed first send")
    _, a = send(t, job="job-3")
    check(a.get("msgid") == m + 2, "failed send did not claim the job id")
    control(send_fail="busy", send_fail_count=1)
    check(errcode(send(t, job="job-1")[1]) == -1, "send_fail applies before dedup")
    check(send(t, job="job-1")[1].get("msgid") == m, "then the job dedups again")

    # Without the header every send is delivered; repeats counts the same
    # (touser, template_id, data) again.
    reset()
    _, a = token()
    t = a["access_token"]
    _, a1 = send(t)
    _, a2 = send(t)
    _, a3 = send(t, send_body(data={"time2": DATA["time2"], "thing1": DATA["thing1"]}))
    _, a4 = send(t, send_body(touser="oOtherUser"))
    check(len({a1["msgid"], a2["msgid"], a3["msgid"], a4["msgid"]}) == 4,
          "sends without X-Wxapp-Job are always delivered")
    log = sends()
    check(log["delivered"] == 4 and log["deduplicated"] == 0 and log["repeats"] == 2
          and log["duplicates"] == 0, "repeats counts job-less resends (key order ignored): %s"
          % {k: v for k, v in log.items() if k != "sends"})
    send(t, job="job-x")
    check(sends()["repeats"] == 2, "a job send is not a repeat")
    send(t, send_body(touser="oOtherUser"))
    check(sends()["repeats"] == 3, "job-less repeat of an earlier send counts")

    # Concurrent resends of one job: delivered exactly once.
    reset()
    _, a = token()
    t = a["access_token"]
    got = []
    lock = threading.Lock()

    def one():
        _, r = send(t, job="job-concurrent")
        with lock:
            got.append(r.get("msgid"))
    threads = [threading.Thread(target=one) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log = sends()
    check(got == [FIRST_MSGID] * 20 and log["delivered"] == 1 and log["deduplicated"] == 19,
          "20 concurrent sends of one job: 1 delivered, 19 deduplicated")


def test_sends_log():
    reset()
    log = sends()
    check(log == {"delivered": 0, "deduplicated": 0, "duplicates": 0, "repeats": 0,
                  "sends": []}, "empty send log after reset: %s" % log)
    _, a = token()
    t = a["access_token"]
    t0 = time.time()
    send(t, job="log-1")
    send(t, send_body(touser="oSecond", template_id="tpl-2", page="pages/a/b",
                      miniprogram_state="trial", lang="zh_TW"))
    send(t, send_body(touser=""))
    t1 = time.time()
    log = sends()
    es = log["sends"]
    keys = {"touser", "template_id", "page", "data", "miniprogram_state", "lang",
            "job", "msgid", "at"}
    check(len(es) == 2 and all(set(e) == keys for e in es), "send log entry keys")
    e0, e1 = es
    check(e0["touser"] == "oTestUser0000000000000000000" and e0["template_id"] == TEMPLATE
          and e0["data"] == DATA and e0["page"] is None and e0["miniprogram_state"] is None
          and e0["lang"] is None and e0["job"] == "log-1" and e0["msgid"] == FIRST_MSGID,
          "first entry: %s" % e0)
    check(e1["touser"] == "oSecond" and e1["template_id"] == "tpl-2"
          and e1["page"] == "pages/a/b" and e1["miniprogram_state"] == "trial"
          and e1["lang"] == "zh_TW" and e1["job"] is None and e1["msgid"] == FIRST_MSGID + 1,
          "second entry: %s" % e1)
    check(t0 - 1 <= e0["at"] <= e1["at"] <= t1 + 1, "'at' is the unix time, in order")
    s, _ = jreq("POST", "/__sends", body={})
    check(s == 404, "POST /__sends -> 404")
    _, st = jreq("GET", "/__stats")
    check("/__sends" not in st["calls"], "/__sends not counted in /__stats")

    # Reset clears the log, the msgid counter and the job memory.
    reset()
    check(sends()["sends"] == [], "reset clears the send log")
    _, a = token()
    t = a["access_token"]
    _, a = send(t, job="log-1")
    check(a.get("msgid") == FIRST_MSGID and sends()["delivered"] == 1,
          "after reset: msgid restarts, job id forgotten")

    # Delivered after the latency sleep.
    control(latency_ms=300)
    t0 = time.time()
    send(t)
    check(sends()["sends"][-1]["at"] >= t0 + 0.3, "a send is recorded after latency_ms")


def test_send_fail():
    reset()
    _, a = token()
    t = a["access_token"]
    for mode, want in [("busy", {"errcode": -1, "errmsg": "system error"}),
                       ("quota", {"errcode": 45009, "errmsg": "reach max api daily quota limit"}),
                       ("refuse", {"errcode": 43101, "errmsg": "user refuse to accept the msg"}),
                       ("invalid_openid", {"errcode": 40003, "errmsg": "invalid openid"})]:
        s, a = control(send_fail=mode)
        check(s == 200 and a["settings"]["send_fail"] == mode, "control send_fail=%s" % mode)
        s, a = send(t)
        check(s == 200 and a == want, "send_fail=%s -> %s (%s)" % (mode, want, a))
        check(send(t, job="j-" + mode)[1] == want, "send_fail=%s: every send" % mode)
    control(send_fail="busy")
    check("openid" in login("sf-1")[1] and "access_token" in token()[1],
          "send_fail leaves the other endpoints alone")

    control(send_fail="http500")
    s, h, raw = send_raw(t, send_body())
    check(s == 500 and b"<html>" in raw and h["Content-Type"].startswith("text/html"),
          "send_fail=http500 -> 500 HTML")
    control(send_fail="garbage")
    s, h, raw = send_raw(t, send_body())
    try:
        json.loads(raw)
        ok = False
    except ValueError:
        ok = True
    check(s == 200 and ok, "send_fail=garbage -> 200 non-JSON")
    check(sends()["delivered"] == 0, "sends failed by send_fail are not delivered")

    s, a = control(send_fail="slow", send_slow_ms=300)
    check(s == 200 and a["settings"]["send_slow_ms"] == 300, "control send_slow_ms")
    t0 = time.monotonic()
    _, a = send(t)
    dt = time.monotonic() - t0
    check(a.get("errcode") == 0 and 0.3 <= dt < 3, "send_fail=slow: ok after ~0.3 s (%.2f s)" % dt)
    check(sends()["delivered"] == 1, "slow send delivered")

    # A sender that gives up during the sleep still had its send delivered.
    control(send_slow_ms=600)
    try:
        send_raw(t, send_body(), job="gave-up", timeout=0.2)
        timed_out = False
    except (socket.timeout, TimeoutError, urllib.error.URLError):
        timed_out = True
    check(timed_out and sends()["delivered"] == 1, "client timed out before delivery")
    time.sleep(0.8)
    log = sends()
    check(log["delivered"] == 2 and log["sends"][-1]["job"] == "gave-up",
          "send recorded after the sleep though the client had gone")

    # send_fail_count: the next N calls only, then back to none.
    s, a = control(send_fail="quota", send_fail_count=2)
    check(s == 200 and a["settings"]["send_fail_count"] == 2, "control send_fail_count=2")
    check(errcode(send(t)[1]) == 45009 and errcode(send("bogus")[1]) == 45009,
          "send_fail_count: first two calls fail (before the token check)")
    check(send(t)[1].get("errcode") == 0, "send_fail_count ran out: third call succeeds")
    _, a = jreq("GET", "/__control")
    check(a["settings"]["send_fail"] == "none" and a["settings"]["send_fail_count"] == 0,
          "send_fail back to none by itself")

    control(send_fail="busy", send_fail_count=3)
    _, a = control(send_fail="refuse")
    check(a["settings"]["send_fail_count"] == 0, "send_fail alone resets send_fail_count to 0")
    _, a = control(send_fail_count=1, send_fail="busy")
    check(a["settings"]["send_fail_count"] == 1, "send_fail_count given with send_fail wins")

    # Global fail first: it doesn't use up send_fail_count.
    control(fail="busy", send_fail="quota", send_fail_count=1)
    check(errcode(send(t)[1]) == -1, "global fail applies before send_fail")
    control(fail="none")
    check(errcode(send(t)[1]) == 45009, "send_fail_count not used by the global fail")
    check(send(t)[1].get("errcode") == 0, "then sends succeed")

    # Counted exactly under concurrency.
    control(send_fail="quota", send_fail_count=5)
    codes = []
    lock = threading.Lock()

    def one():
        _, r = send(t)
        with lock:
            codes.append(r.get("errcode"))
    threads = [threading.Thread(target=one) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    check(codes.count(45009) == 5 and codes.count(0) == 15,
          "20 concurrent sends, send_fail_count=5: 5 fail, 15 ok (%s)" % codes)

    # Control validation; a bad request changes nothing.
    control(send_fail="none", send_slow_ms=5000)
    for bad in [{"send_fail": "nope"}, {"send_fail": 1}, {"send_fail": None},
                {"send_fail_count": -1}, {"send_fail_count": 1.5},
                {"send_fail_count": True}, {"send_fail_count": "2"},
                {"send_slow_ms": -1}, {"send_slow_ms": "5"}, {"send_slow_ms": False},
                {"send_fail": "busy", "send_fail_count": -1},
                {"send_fail": "busy", "send_slow_ms": "x"}]:
        s, a = control(**bad)
        check(s == 400 and "error" in a, "control rejects %s" % json.dumps(bad))
    _, a = jreq("GET", "/__control")
    st = a["settings"]
    check(st["send_fail"] == "none" and st["send_fail_count"] == 0
          and st["send_slow_ms"] == 5000, "bad send control requests changed nothing")
    check(send(t)[1].get("errcode") == 0, "sends still succeed")


def test_msg_sec_check():
    reset()
    _, a = token()
    t = a["access_token"]
    s, a = sec(t)
    check(s == 200 and set(a) == {"errcode", "errmsg", "trace_id", "result", "detail"}
          and a["errcode"] == 0 and a["errmsg"] == "ok", "msg_sec_check success shape: %s" % a)
    check(re.fullmatch(r"[0-9a-f]{24}", a.get("trace_id", "")) is not None,
          "msg_sec_check trace_id is random hex")
    check(a.get("result") == {"suggest": "pass", "label": 100}, "plain content -> pass 100")
    check(a.get("detail") == [{"strategy": "keyword", "errcode": 0, "suggest": "pass",
                               "label": 100, "prob": 90, "keyword": ""}],
          "pass detail: %s" % a.get("detail"))
    check(sec(t)[1]["trace_id"] != a["trace_id"], "a new trace_id per call")

    for content, sug, label, kw in [("this is RISKY stuff", "risky", 20001, "RISKY"),
                                    ("please REVIEW me", "review", 20002, "REVIEW"),
                                    ("REVIEW and RISKY", "risky", 20001, "RISKY"),
                                    ("risky review (lower case)", "pass", 100, "")]:
        _, a = sec(t, sec_body(content=content))
        check(a.get("result") == {"suggest": sug, "label": label}
              and a["detail"][0]["suggest"] == sug and a["detail"][0]["label"] == label
              and a["detail"][0]["keyword"] == kw,
              "%r -> %s %d keyword %r (%s)" % (content, sug, label, kw, a))
    for scene in (1, 2, 3, 4):
        check(sec(t, sec_body(scene=scene))[1].get("errcode") == 0, "scene %d accepted" % scene)
    check(sec(t, sec_body(content="x" * 2500))[1].get("errcode") == 0,
          "content of 2500 characters accepted")
    check(sec(t, sec_body(content="\u5b57" * 2500))[1].get("errcode") == 0,
          "2500 characters, not bytes")

    bad = [("version 1", sec_body(version=1), 47001),
           ("version \"2\"", sec_body(version="2"), 47001),
           ("no version", sec_body(version=None), 47001),
           ("no openid", sec_body(openid=None), 40003),
           ("empty openid", sec_body(openid=""), 40003),
           ("openid 5", sec_body(openid=5), 40003),
           ("scene 0", sec_body(scene=0), 47001),
           ("scene 5", sec_body(scene=5), 47001),
           ("scene \"1\"", sec_body(scene="1"), 47001),
           ("scene true", sec_body(scene=True), 47001),
           ("no scene", sec_body(scene=None), 47001),
           ("empty content", sec_body(content=""), 47001),
           ("content 2501", sec_body(content="x" * 2501), 47001),
           ("content 5", sec_body(content=5), 47001),
           ("no content", sec_body(content=None), 47001),
           ("order: version before openid", sec_body(version=1, openid=""), 47001),
           ("order: openid before scene", sec_body(openid="", scene=9), 40003)]
    for what, body, want in bad:
        _, a = sec(t, body)
        check(a == {"errcode": want, "errmsg": {40003: "invalid openid",
                                                47001: "data format error"}[want]},
              "msg_sec_check %s -> %d (%s)" % (what, want, a))
    _, a = jreq("POST", SEC_PATH, body=sec_body())
    check(errcode(a) == 41001, "msg_sec_check without access_token -> 41001")
    check(errcode(sec("bogus")[1]) == 40001, "msg_sec_check unknown token -> 40001")
    _, a = jreq("GET", SEC_PATH, {"access_token": t})
    check(errcode(a) == 43002, "msg_sec_check by GET -> 43002")
    _, _, raw = request("POST", SEC_PATH, {"access_token": t}, b"{not json")
    check(errcode(json.loads(raw)) == 47001, "msg_sec_check non-JSON -> 47001")
    _, st = jreq("GET", "/__stats")
    check(st["calls"].get(SEC_PATH) == 1 + 1 + 4 + 4 + 2 + len(bad) + 4,
          "msg_sec_check calls counted in /__stats (%s)" % st["calls"].get(SEC_PATH))

    # sec_fail, like send_fail.
    s, a = control(sec_fail="busy")
    check(s == 200 and a["settings"]["sec_fail"] == "busy"
          and a["settings"]["sec_fail_count"] == 0, "control sec_fail=busy")
    check(sec(t)[1] == {"errcode": -1, "errmsg": "system error"}, "sec_fail=busy -> -1")
    check(sec("bogus")[1].get("errcode") == -1, "sec_fail applies before the token check")
    check(sec(t)[1].get("errcode") == -1, "sec_fail without count: every call")
    check(send(t)[1].get("errcode") == 0 and "access_token" in token()[1],
          "sec_fail leaves the other endpoints alone")
    control(sec_fail="http500")
    s, h, raw = request("POST", SEC_PATH, {"access_token": t}, sec_body())
    check(s == 500 and b"<html>" in raw and h["Content-Type"].startswith("text/html"),
          "sec_fail=http500 -> 500 HTML")
    s, a = control(sec_fail="busy", sec_fail_count=2)
    check(a["settings"]["sec_fail_count"] == 2, "control sec_fail_count=2")
    check(errcode(sec(t)[1]) == -1 and errcode(sec(t)[1]) == -1
          and sec(t)[1].get("errcode") == 0, "sec_fail_count=2: two fail, then ok")
    _, a = jreq("GET", "/__control")
    check(a["settings"]["sec_fail"] == "none" and a["settings"]["sec_fail_count"] == 0,
          "sec_fail back to none by itself")
    control(sec_fail="timeout", sec_fail_count=1)
    t0 = time.monotonic()
    try:
        request("POST", SEC_PATH, {"access_token": t}, sec_body(), timeout=1)
        timed_out = False
    except (socket.timeout, TimeoutError, urllib.error.URLError):
        timed_out = True
    check(timed_out and time.monotonic() - t0 < 5, "sec_fail=timeout -> no answer in 1 s")
    check(sec(t)[1].get("errcode") == 0, "sec_fail=timeout, count 1: next call answers")
    control(fail="busy", sec_fail="http500", sec_fail_count=1)
    check(errcode(sec(t)[1]) == -1, "global fail applies before sec_fail")
    control(fail="none")
    s, _, _ = request("POST", SEC_PATH, {"access_token": t}, sec_body())
    check(s == 500, "sec_fail_count not used up by the global fail")

    for bad in [{"sec_fail": "quota"}, {"sec_fail": "slow"}, {"sec_fail": None},
                {"sec_fail_count": -1}, {"sec_fail_count": True},
                {"sec_fail": "busy", "sec_fail_count": "1"}]:
        s, a = control(**bad)
        check(s == 400 and "error" in a, "control rejects %s" % json.dumps(bad))
    _, a = jreq("GET", "/__control")
    check(a["settings"]["sec_fail"] == "none" and a["settings"]["sec_fail_count"] == 0,
          "bad sec control requests changed nothing")


def test_push_crypto():
    key = base64.b64decode(AES_KEY + "=")
    check(len(key) == 32, "EncodingAESKey + '=' decodes to 32 bytes")
    check(standin.push_signature("token", "1409304348", "xxxxxx")
          == hashlib.sha1(b"1409304348tokenxxxxxx").hexdigest(),
          "push_signature sorts, concatenates, sha1 lower-case hex")
    check(standin.push_signature("b", "a", "c", "A") == sha1_sorted("A", "a", "b", "c"),
          "push_signature: byte order sort")

    ok = True
    for n in list(range(0, 70)) + [255, 256, 1000]:
        msg = bytes((i * 7 + n) % 256 for i in range(n))
        enc = standin.push_encrypt(AES_KEY, APPID, msg)
        raw = base64.b64decode(enc)
        ok = ok and len(raw) % 32 == 0 and standin.push_decrypt(AES_KEY, enc) == (msg, APPID)
    check(ok, "push_encrypt/push_decrypt round trip, lengths 0..69, 255, 256, 1000")
    m64 = b"J" * 64
    check(standin.push_decrypt(AES_KEY, standin.push_encrypt(AES_KEY, APPID, m64))
          == (m64, APPID), "round trip of a 64-byte message")
    check(standin.push_encrypt(AES_KEY, APPID, "\u4e2d\u6587 text")
          and standin.push_decrypt(AES_KEY, standin.push_encrypt(AES_KEY, APPID, "\u4e2d\u6587"))
          == ("\u4e2d\u6587".encode(), APPID), "a str message is encoded as UTF-8")

    # Independently (openssl, no push_decrypt): the exact plaintext layout.
    rand = bytes(range(16))
    for msg, pad in [(b'{"hello":"world"}', None),
                     (b"x" * (32 * 3 - 20 - len(APPID)), 32),    # aligned: full block
                     (b"y" * (32 * 3 - 20 - len(APPID) - 1), 1),
                     (b"z" * 32, None)]:
        enc = standin.push_encrypt(AES_KEY, APPID, msg, rand16=rand)
        plain = openssl_decrypt(key, base64.b64decode(enc))
        body = rand + len(msg).to_bytes(4, "big") + msg + APPID.encode()
        want_pad = 32 - len(body) % 32
        check((pad is None or want_pad == pad) and plain == body + bytes([want_pad]) * want_pad,
              "openssl -d -nopad: random|length|message|appid|pad %d for a %d-byte message"
              % (want_pad, len(msg)))
    check(standin.push_encrypt(AES_KEY, APPID, b"same", rand16=rand)
          == standin.push_encrypt(AES_KEY, APPID, b"same", rand16=rand)
          and standin.push_encrypt(AES_KEY, APPID, b"same")
          != standin.push_encrypt(AES_KEY, APPID, b"same"),
          "fixed rand16 -> same ciphertext; random otherwise")

    def raises(f, *args):
        try:
            f(*args)
            return False
        except ValueError:
            return True
    check(raises(standin.push_encrypt, AES_KEY[:42], APPID, b"x"), "42-char key -> ValueError")
    check(raises(standin.push_decrypt, AES_KEY, "not base64!"), "decrypt non-base64 -> ValueError")
    check(raises(standin.push_decrypt, AES_KEY, base64.b64encode(b"x" * 17).decode()),
          "decrypt partial block -> ValueError")
    other = "Z" * 43
    enc = standin.push_encrypt(AES_KEY, APPID, b"secret message")
    try:
        wrong = standin.push_decrypt(other, enc)[1] != APPID
    except ValueError:
        wrong = True
    check(wrong, "wrong key does not give the message back")


def test_build_push():
    msg = {"ToUserName": "gh_x", "FromUserName": OPENID, "CreateTime": 1700000000,
           "MsgType": "event", "Event": "wxa_media_check", "version": 2,
           "result": {"suggest": "pass", "label": 100},
           "detail": [{"strategy": "content_model", "errcode": 0, "prob": 90}]}
    q, body, ct = standin.build_push(msg, "tok", "plain", "json",
                                     timestamp="1700000001", nonce="424242")
    qd = dict(urllib.parse.parse_qsl(q))
    check(qd == {"signature": sha1_sorted("tok", "1700000001", "424242"),
                 "timestamp": "1700000001", "nonce": "424242"},
          "plain json query: %s" % q)
    check(json.loads(body) == msg and ct == "application/json", "plain json body is the message")

    q, body, ct = standin.build_push(msg, "tok", "plain", "xml", timestamp=1700000001, nonce=7)
    want = ("<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[%s]]>"
            "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]>"
            "</MsgType><Event><![CDATA[wxa_media_check]]></Event><version>2</version>"
            "<result><suggest><![CDATA[pass]]></suggest><label>100</label></result>"
            "<detail><strategy><![CDATA[content_model]]></strategy><errcode>0</errcode>"
            "<prob>90</prob></detail></xml>" % OPENID)
    check(body.decode() == want and ct == "text/xml", "plain xml body: %s" % body.decode())
    check(dict(urllib.parse.parse_qsl(q))["signature"] == sha1_sorted("tok", "1700000001", "7"),
          "integer timestamp/nonce signed as strings")
    _, body, _ = standin.build_push({"Content": "a]]>b<c>&"}, "tok", "plain", "xml")
    check(ET.fromstring(body).find("Content").text == "a]]>b<c>&", "']]>' survives CDATA")

    for fmt in ("json", "xml"):
        q, body, ct = standin.build_push(msg, "tok", "safe", fmt, aes_key=AES_KEY,
                                         appid=APPID, timestamp="1700000001", nonce="99")
        got = {"query": dict(urllib.parse.parse_qsl(q)), "ctype": ct, "body": body}
        text, appid = push_checks(got, "tok", True, "safe %s build_push" % fmt)
        check(appid == APPID, "safe %s: appid at the end of the plaintext" % fmt)
        want = json.dumps(msg).encode() if fmt == "json" else standin.push_xml(msg).encode()
        check(text == want, "safe %s: the encrypted message is the %s message" % (fmt, fmt))
        to = json.loads(body)["ToUserName"] if fmt == "json" \
            else ET.fromstring(body).find("ToUserName").text
        check(to == "gh_x", "safe %s: ToUserName outside" % fmt)

    q, _, _ = standin.build_push(msg, "tok", "plain", "json")
    qd = dict(urllib.parse.parse_qsl(q))
    check(abs(int(qd["timestamp"]) - time.time()) < 5 and re.fullmatch(r"\d{6,}", qd["nonce"]),
          "default timestamp is now, nonce random digits: %s" % q)
    q, body, _ = standin.build_push("raw <body>", "tok", "safe", "xml", aes_key=AES_KEY,
                                    appid="wxother")
    got = {"query": dict(urllib.parse.parse_qsl(q)), "ctype": "text/xml", "body": body}
    check(push_checks(got, "tok", True, "raw safe") == (b"raw <body>", "wxother"),
          "a raw string message is encrypted as is")
    q, body, _ = standin.build_push({"ToUserName": "gh_y"}, "tok", "safe", "json",
                                    aes_key=AES_KEY, appid=APPID, raw=b"<xml>as is")
    got = {"query": dict(urllib.parse.parse_qsl(q)), "ctype": "application/json", "body": body}
    check(push_checks(got, "tok", True, "raw= safe") == (b"<xml>as is", APPID)
          and json.loads(body)["ToUserName"] == "gh_y",
          "raw= is encrypted as is, ToUserName from message")
    _, body, _ = standin.build_push({}, "tok", "plain", "xml", raw="plain raw")
    check(body == b"plain raw", "raw= in plain mode is the body")

    # tamper: one character of the value changed after signing.
    base = dict(aes_key=AES_KEY, appid=APPID, timestamp="1", nonce="2")
    q0, b0, _ = standin.build_push(msg, "tok", "safe", "json", **base)
    q0 = dict(urllib.parse.parse_qsl(q0))
    enc0 = json.loads(b0)["Encrypt"]
    for what in ("signature", "msg_signature", "encrypt"):
        q, b, _ = standin.build_push(msg, "tok", "safe", "json", tamper=what, **base)
        q = dict(urllib.parse.parse_qsl(q))
        enc = json.loads(b)["Encrypt"]
        # (Encrypt is random per call, so compare each value with what signs.)
        sig_ok = q["signature"] == sha1_sorted("tok", "1", "2")
        msig_ok = q["msg_signature"] == sha1_sorted("tok", "1", "2", enc)
        check(sig_ok == (what != "signature") and msig_ok == (what == "signature"),
              "tamper=%s breaks exactly that value" % what)
        if what == "signature":
            check(sum(x != y for x, y in zip(q0["signature"], q["signature"])) == 1,
                  "tamper=signature: one hex character differs")
        elif what == "msg_signature":
            right = sha1_sorted("tok", "1", "2", enc)
            check(sum(x != y for x, y in zip(right, q["msg_signature"])) == 1,
                  "tamper=msg_signature: one hex character differs")
        else:
            m = len(enc) // 2
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            signed = [c for c in alphabet if c != enc[m] and q["msg_signature"]
                      == sha1_sorted("tok", "1", "2", enc[:m] + c + enc[m + 1:])]
            check(len(signed) == 1 and len(enc) == len(enc0),
                  "tamper=encrypt: msg_signature signs Encrypt with one character other")

    def raises(**kw):
        args = dict(message=msg, token="tok", mode="safe", fmt="json", aes_key=AES_KEY)
        args.update(kw)
        try:
            standin.build_push(**args)
            return False
        except ValueError:
            return True
    check(raises(mode="compat") and raises(fmt="yaml") and raises(tamper="nonce")
          and raises(mode="plain", tamper="msg_signature") and raises(aes_key=None)
          and raises(mode="plain", tamper="encrypt"),
          "build_push rejects bad mode/format/tamper and safe mode without a key")


def test_media_check_async():
    reset()
    rec = Recorder()
    try:
        _, a = token()
        t = a["access_token"]
        s, a = control(push_url=rec.url, push_token=PUSH_TOKEN, push_aes_key=AES_KEY)
        check(s == 200 and a["settings"]["push_mode"] == "safe"
              and a["settings"]["push_format"] == "json", "push defaults: safe, json")

        for what, body in [("http media_url", media_body(media_url="http://x/1.jpg")),
                           ("cloud media_url", media_body(media_url="cloud://x/1.jpg")),
                           ("bare https://", media_body(media_url="https://")),
                           ("no media_url", media_body(media_url=None)),
                           ("media_type 3", media_body(media_type=3)),
                           ("media_type \"2\"", media_body(media_type="2")),
                           ("no media_type", media_body(media_type=None)),
                           ("version 1", media_body(version=1)),
                           ("no version", media_body(version=None)),
                           ("empty openid", media_body(openid="")),
                           ("openid 5", media_body(openid=5)),
                           ("scene 0", media_body(scene=0)),
                           ("scene 5", media_body(scene=5)),
                           ("scene true", media_body(scene=True))]:
            _, a = media(t, body)
            check(a == {"errcode": 47001, "errmsg": "data format error"},
                  "media_check_async %s -> 47001 (%s)" % (what, a))
        _, _, raw = request("POST", MEDIA_PATH, {"access_token": t}, b"[]")
        check(errcode(json.loads(raw)) == 47001, "media_check_async non-object -> 47001")
        _, a = jreq("POST", MEDIA_PATH, body=media_body())
        check(errcode(a) == 41001, "media_check_async without access_token -> 41001")
        check(errcode(media("bogus")[1]) == 40001, "media_check_async unknown token -> 40001")
        time.sleep(0.4)
        check(rec.requests() == [] and pushes()["count"] == 0, "rejected requests push nothing")

        # Safe mode, JSON.
        control(media_delay_ms=300)
        t0 = time.time()
        s, a = media(t)
        answered = time.time() - t0
        check(s == 200 and set(a) == {"errcode", "errmsg", "trace_id"} and a["errcode"] == 0
              and a["errmsg"] == "ok" and re.fullmatch(r"[0-9a-f]{24}", a["trace_id"]),
              "media_check_async answer: %s" % a)
        check(answered < 0.3, "answered at once (%.2f s)" % answered)
        trace = a["trace_id"]
        got = rec.wait(1)
        check(got is not None, "verdict pushed to push_url")
        if got:
            g = got[0]
            check(g["at"] - t0 >= 0.3, "after media_delay_ms (%.2f s)" % (g["at"] - t0))
            check(g["path"] == "/wx/push" and g["ctype"].startswith("application/json"),
                  "pushed to the URL's path, JSON")
            text, appid = push_checks(g, PUSH_TOKEN, True, "media safe json")
            check(appid == APPID, "decrypted appid is the stand-in's appid")
            ev = json.loads(text)
            check(set(ev) == {"ToUserName", "FromUserName", "CreateTime", "MsgType",
                              "Event", "appid", "trace_id", "version", "result", "detail"},
                  "event keys: %s" % sorted(ev))
            check(ev["ToUserName"] == "gh_standin" and ev["FromUserName"] == OPENID
                  and ev["MsgType"] == "event" and ev["Event"] == "wxa_media_check"
                  and ev["appid"] == APPID and ev["trace_id"] == trace and ev["version"] == 2,
                  "event fields: %s" % ev)
            check(isinstance(ev["CreateTime"], int) and abs(ev["CreateTime"] - time.time()) < 5,
                  "CreateTime is now")
            check(ev["result"] == {"suggest": "pass", "label": 100}
                  and ev["detail"] == [{"strategy": "content_model", "errcode": 0,
                                        "suggest": "pass", "label": 100, "prob": 90}],
                  "pass verdict: %s %s" % (ev["result"], ev["detail"]))
            check(json.loads(g["body"])["ToUserName"] == "gh_standin",
                  "safe JSON ToUserName is the event's")
        wait_until(lambda: pushes()["count"] >= 1)
        log = pushes()
        check(log["count"] == 1 and len(log["pushes"]) == 1, "/__pushes has the callback")
        if log["pushes"]:
            e = log["pushes"][0]
            check(set(e) == {"url", "trace_id", "openid", "suggest", "label", "mode", "format",
                             "status", "body", "error", "at"}, "/__pushes entry keys")
            check(e["url"] == rec.url and e["trace_id"] == trace and e["suggest"] == "pass"
                  and e["status"] == 200 and e["body"] == "success" and e["error"] is None
                  and e["mode"] == "safe" and e["format"] == "json",
                  "/__pushes entry: %s" % e)

        # Verdicts by media_url; "never" gets no callback.
        rec.clear()
        control(media_delay_ms=0)
        traces = {}
        for url, sug, label in [("https://x/risky.jpg", "risky", 20001),
                                ("https://x/review.mp3", "review", 20002),
                                ("https://x/risky-review.jpg", "risky", 20001)]:
            traces[media(t, media_body(media_url=url, media_type=1 if "mp3" in url else 2))
                   [1]["trace_id"]] = (sug, label)
        _, a = media(t, media_body(media_url="https://x/never.jpg"))
        check(a.get("errcode") == 0, "a 'never' media_url is accepted")
        got = rec.wait(3)
        time.sleep(0.4)
        check(got is not None and len(rec.requests()) == 3, "3 callbacks, none for 'never'")
        for g in got or []:
            ev = json.loads(push_checks(g, PUSH_TOKEN, True, "verdict")[0])
            want = traces.get(ev["trace_id"])
            check(want is not None and ev["result"] == {"suggest": want[0], "label": want[1]}
                  and ev["detail"][0]["suggest"] == want[0]
                  and ev["detail"][0]["label"] == want[1],
                  "verdict %s for its trace_id" % (want,))
        check(pushes()["count"] == 4, "/__pushes: 4 callbacks in all")

        # Safe mode, XML.
        rec.clear()
        control(push_format="xml")
        trace = media(t)[1]["trace_id"]
        got = rec.wait(1)
        if check_got(got, "safe xml callback"):
            g = got[0]
            check(g["ctype"].startswith("text/xml"), "XML content type")
            text, appid = push_checks(g, PUSH_TOKEN, True, "media safe xml")
            check(appid == APPID, "safe xml: appid")
            check_xml_event(text, trace, "safe xml")
            check(ET.fromstring(g["body"]).find("ToUserName").text == "gh_standin",
                  "safe XML ToUserName")

        # Plain mode, XML and JSON.
        for fmt in ("xml", "json"):
            rec.clear()
            control(push_mode="plain", push_format=fmt)
            trace = media(t)[1]["trace_id"]
            got = rec.wait(1)
            if check_got(got, "plain %s callback" % fmt):
                text, appid = push_checks(got[0], PUSH_TOKEN, False, "media plain " + fmt)
                if fmt == "xml":
                    check_xml_event(text, trace, "plain xml")
                else:
                    ev = json.loads(text)
                    check(ev["trace_id"] == trace and ev["appid"] == APPID
                          and ev["result"]["suggest"] == "pass",
                          "plain json: the event itself")

        # What the backend answered is logged; failures too.
        reset()
        _, a = token()
        t = a["access_token"]
        rec.clear()
        control(push_url=rec.url + "?from=wx", push_token=PUSH_TOKEN, push_aes_key=AES_KEY,
                media_delay_ms=0)
        rec.status, rec.answer = 403, b"bad signature"
        media(t)
        got = rec.wait(1)
        check(got is not None and got[0]["query"].get("from") == "wx"
              and "signature" in got[0]["query"], "push_url's own query kept")
        wait_until(lambda: pushes()["count"] >= 1)
        e = (pushes()["pushes"] or [{}])[0]
        check(e.get("status") == 403 and e.get("body") == "bad signature"
              and e.get("error") is None, "backend's 403 and body logged: %s" % e)
        rec.status, rec.answer = 200, b"success"

        reset()
        _, a = token()
        t = a["access_token"]
        control(media_delay_ms=0)
        media(t)
        wait_until(lambda: pushes()["count"] >= 1)
        e = (pushes()["pushes"] or [{}])[0]
        check(e.get("status") is None and e.get("url") == ""
              and "push_url not set" in (e.get("error") or ""), "no push_url: logged: %s" % e)
        control(push_url=rec.url, push_aes_key="")
        media(t)
        wait_until(lambda: pushes()["count"] >= 2)
        e = (pushes()["pushes"] + [{}, {}])[1]
        check(e.get("status") is None and "EncodingAESKey" in (e.get("error") or ""),
              "safe mode without push_aes_key: logged: %s" % e)
        control(push_url="http://127.0.0.1:%d/x" % free_port(), push_aes_key=AES_KEY)
        media(t)
        wait_until(lambda: pushes()["count"] >= 3)
        e = (pushes()["pushes"] + [{}, {}, {}])[2]
        check(e.get("status") is None and e.get("error"), "unreachable push_url: logged: %s" % e)

        # A reset cancels pending pushes.
        rec.clear()
        control(push_url=rec.url, media_delay_ms=400)
        media(t)
        reset()
        control(push_url=rec.url, push_aes_key=AES_KEY)
        time.sleep(0.7)
        check(rec.requests() == [] and pushes()["count"] == 0, "reset drops pending pushes")
        _, st = jreq("GET", "/__stats")
        check(st["calls"] == {}, "/__pushes not counted in /__stats")
        _, a = token()
        media(a["access_token"])
        _, st = jreq("GET", "/__stats")
        check(st["calls"].get(MEDIA_PATH) == 1, "media_check_async counted in /__stats")
    finally:
        rec.close()

    # Over HTTPS with a self-signed certificate (not verified).
    tmp = tempfile.mkdtemp(prefix="standin-cert-")
    try:
        rec = Recorder(make_cert(tmp))
        try:
            reset()
            _, a = token()
            control(push_url=rec.url, push_token=PUSH_TOKEN, push_aes_key=AES_KEY,
                    media_delay_ms=0)
            trace = media(a["access_token"])[1]["trace_id"]
            got = rec.wait(1)
            if check_got(got, "https callback (self-signed certificate)"):
                ev = json.loads(push_checks(got[0], PUSH_TOKEN, True, "https")[0])
                check(ev["trace_id"] == trace, "https callback carries the trace_id")
            wait_until(lambda: pushes()["count"] >= 1)
            e = (pushes()["pushes"] or [{}])[0]
            check(rec.url.startswith("https://") and e.get("status") == 200,
                  "https callback logged with status 200: %s" % e)
        finally:
            rec.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_got(got, what):
    check(got is not None, what)
    return got is not None


def check_xml_event(text, trace, what):
    root = ET.fromstring(text)
    f = {c.tag: c for c in root}
    check(root.tag == "xml" and set(f) == {"ToUserName", "FromUserName", "CreateTime",
                                           "MsgType", "Event", "appid", "trace_id",
                                           "version", "result", "detail"},
          what + ": event elements %s" % sorted(f))
    check(f["ToUserName"].text == "gh_standin" and f["FromUserName"].text == OPENID
          and f["MsgType"].text == "event" and f["Event"].text == "wxa_media_check"
          and f["appid"].text == APPID and f["trace_id"].text == trace
          and f["version"].text == "2", what + ": event fields")
    check(f["CreateTime"].text.isdigit() and b"<CreateTime><!" not in text
          and b"<version>2</version>" in text, what + ": ints without CDATA")
    check(f["result"].find("suggest").text == "pass" and f["result"].find("label").text == "100",
          what + ": nested result")
    d = f["detail"]
    check([c.tag for c in d] == ["strategy", "errcode", "suggest", "label", "prob"]
          and d.find("strategy").text == "content_model" and d.find("prob").text == "90",
          what + ": nested detail")
    check(b"<suggest><![CDATA[pass]]></suggest>" in text, what + ": strings in CDATA")


def test_manual_push():
    reset()
    s, a = jreq("POST", "/__push", body={"message": {"a": "b"}})
    check(s == 400 and "push_url" in a.get("error", ""), "/__push without push_url -> 400")
    rec = Recorder()
    try:
        control(push_url=rec.url, push_token=PUSH_TOKEN, push_aes_key=AES_KEY)
        msg = {"ToUserName": "gh_x", "FromUserName": OPENID, "CreateTime": 1700000000,
               "MsgType": "text", "Content": "hi", "MsgId": 42}
        s, a = jreq("POST", "/__push", body={"message": msg})
        check(s == 200 and set(a) == {"status", "body", "query", "sent"}
              and a["status"] == 200 and a["body"] == "success",
              "/__push answer: %s" % a)
        got = rec.wait(1)
        if check_got(got, "/__push reached push_url"):
            g = got[0]
            check(g["body"].decode() == a["sent"]
                  and g["query"] == dict(urllib.parse.parse_qsl(a["query"])),
                  "/__push answer shows the query and body sent")
            text, appid = push_checks(g, PUSH_TOKEN, True, "/__push safe json")
            check(json.loads(text) == msg and appid == APPID, "/__push: message and appid")

        # Overrides.
        rec.clear()
        _, a = jreq("POST", "/__push", body={"message": msg, "mode": "plain", "format": "xml",
                                             "timestamp": "1700000005", "nonce": 123,
                                             "token": "otherTok"})
        got = rec.wait(1)
        if check_got(got, "/__push with overrides"):
            q = got[0]["query"]
            check(q["timestamp"] == "1700000005" and q["nonce"] == "123",
                  "timestamp/nonce overrides")
            push_checks(got[0], "otherTok", False, "/__push plain xml, token override")
            check(got[0]["body"] == standin.push_xml(msg).encode()
                  and got[0]["ctype"].startswith("text/xml"), "/__push plain xml body")
        rec.clear()
        _, a = jreq("POST", "/__push", body={"raw": "<xml>not quite", "appid": "wxother",
                                             "format": "xml"})
        got = rec.wait(1)
        if check_got(got, "/__push raw"):
            check(push_checks(got[0], PUSH_TOKEN, True, "/__push raw safe xml")
                  == (b"<xml>not quite", "wxother"), "raw encrypted as is, appid override")
        rec.clear()
        jreq("POST", "/__push", body={"raw": "{\"half\":", "mode": "plain"})
        got = rec.wait(1)
        check(got is not None and got[0]["body"] == b"{\"half\":", "raw plain body as is")

        # tamper
        for what in ("signature", "msg_signature", "encrypt"):
            rec.clear()
            _, a = jreq("POST", "/__push", body={"message": msg, "tamper": what})
            got = rec.wait(1)
            if not check_got(got, "/__push tamper=%s" % what):
                continue
            q = got[0]["query"]
            enc = json.loads(got[0]["body"])["Encrypt"]
            sig_ok = q["signature"] == sha1_sorted(PUSH_TOKEN, q["timestamp"], q["nonce"])
            msig_ok = q["msg_signature"] == sha1_sorted(PUSH_TOKEN, q["timestamp"],
                                                        q["nonce"], enc)
            check(sig_ok == (what != "signature") and msig_ok == (what == "signature"),
                  "/__push tamper=%s breaks exactly that" % what)
        rec.clear()
        rec.status, rec.answer = 401, b"forbidden"
        _, a = jreq("POST", "/__push", body={"message": msg, "tamper": "signature",
                                             "mode": "plain"})
        check(a.get("status") == 401 and a.get("body") == "forbidden",
              "/__push reports the backend's error answer")
        rec.status, rec.answer = 200, b"success"

        n = len(rec.requests())
        for bad in [{}, {"message": msg, "raw": "x"}, {"message": "x"}, {"raw": 5},
                    {"message": msg, "mode": "compat"}, {"message": msg, "format": "yaml"},
                    {"message": msg, "tamper": "nonce"},
                    {"message": msg, "mode": "plain", "tamper": "msg_signature"},
                    {"message": msg, "mode": "plain", "tamper": "encrypt"},
                    {"message": msg, "aes_key": "short"}, {"message": msg, "token": 5},
                    {"message": msg, "timestamp": True}, {"message": msg, "bogus": 1}]:
            s, a = jreq("POST", "/__push", body=bad)
            check(s == 400 and "error" in a, "/__push rejects %s" % json.dumps(bad)[:60])
        _, _, raw = request("POST", "/__push", body=b"{nope")
        check(json.loads(raw).get("error"), "/__push non-JSON -> 400")
        control(push_aes_key="")
        s, a = jreq("POST", "/__push", body={"message": msg})
        check(s == 400, "/__push safe mode without an AES key -> 400")
        s, a = jreq("POST", "/__push", body={"message": msg, "aes_key": AES_KEY})
        check(s == 200 and a.get("status") == 200, "aes_key override")
        check(len(rec.requests()) == n + 1, "rejected /__push requests sent nothing")

        control(push_url="http://127.0.0.1:%d/x" % free_port())
        s, a = jreq("POST", "/__push", body={"message": msg, "mode": "plain"})
        check(s == 200 and a.get("status") is None and a.get("body") is None and a.get("error"),
              "/__push to an unreachable URL: status null, error: %s" % a)
        check(pushes()["count"] == 0, "/__push is not logged in /__pushes")
        _, st = jreq("GET", "/__stats")
        check(st["total"] == 0, "/__push not counted in /__stats")
    finally:
        rec.close()


def test_push_controls():
    reset()
    s, a = control(push_url="https://127.0.0.1:8443/wechat/push", push_token="t",
                   push_aes_key=AES_KEY, push_mode="plain", push_format="xml",
                   media_delay_ms=50)
    st = a.get("settings", {})
    check(s == 200 and st["push_url"] == "https://127.0.0.1:8443/wechat/push"
          and st["push_token"] == "t" and st["push_aes_key"] == AES_KEY
          and st["push_mode"] == "plain" and st["push_format"] == "xml"
          and st["media_delay_ms"] == 50, "push controls set")
    for bad in [{"push_url": "ftp://x"}, {"push_url": 5}, {"push_url": None},
                {"push_token": 5}, {"push_aes_key": AES_KEY[:42]},
                {"push_aes_key": AES_KEY[:42] + "+"}, {"push_aes_key": AES_KEY + "A"},
                {"push_mode": "compat"}, {"push_format": "yaml"}, {"media_delay_ms": -1},
                {"media_delay_ms": "5"}, {"push_url": "", "push_mode": "nope"}]:
        s, a = control(**bad)
        check(s == 400 and "error" in a, "control rejects %s" % json.dumps(bad)[:60])
    _, a = jreq("GET", "/__control")
    check(a["settings"] == dict(a["settings"], push_url="https://127.0.0.1:8443/wechat/push",
                                push_token="t", push_aes_key=AES_KEY, push_mode="plain",
                                push_format="xml", media_delay_ms=50),
          "bad push control requests changed nothing")
    s, a = control(push_url="", push_aes_key="")
    check(s == 200 and a["settings"]["push_url"] == "" and a["settings"]["push_aes_key"] == "",
          "push_url and push_aes_key can be cleared")
    s, a = jreq("POST", "/__pushes", body={})
    check(s == 404, "POST /__pushes -> 404")
    s, a = jreq("GET", "/__push")
    check(s == 404, "GET /__push -> 404")


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    global BASE
    tmp = tempfile.mkdtemp(prefix="standin-test-")
    pidfile = os.path.join(tmp, "standin.pid")
    port = free_port()
    BASE = "http://127.0.0.1:%d" % port
    cmd = [sys.executable, STANDIN, "--listen", "127.0.0.1:%d" % port,
           "--appid", APPID, "--secret", SECRET, "--pidfile", pidfile]
    if not VERBOSE:
        cmd.append("--quiet")
    proc = subprocess.Popen(cmd)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(pidfile) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        check(os.path.exists(pidfile), "pid file written once listening")
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                check(f.read().strip() == str(proc.pid), "pid file holds the server pid")

        tests = [test_code2session, test_prefixes, test_token, test_stable_token,
                 test_phone, test_failures, test_stats_and_reset, test_traces, test_http,
                 test_subscribe_send, test_send_dedup, test_sends_log, test_send_fail,
                 test_msg_sec_check, test_push_crypto, test_build_push,
                 test_media_check_async, test_manual_push, test_push_controls]
        for t in tests:
            if VERBOSE:
                print("== " + t.__name__)
            try:
                t()
            except Exception as e:      # a crash counts as one failure
                check(False, "%s raised %s: %s" % (t.__name__, type(e).__name__, e))

        # SIGTERM: clean exit (even with a handler still sleeping in
        # fail=timeout mode from test_failures) and the pid file removed.
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "SIGTERM -> clean exit (rc=%s)" % rc)
        check(not os.path.exists(pidfile), "pid file removed on exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        try:
            os.unlink(pidfile)
        except OSError:
            pass
        os.rmdir(tmp)

    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
