#!/usr/bin/env python3
"""Self-test for the WeChat API stand-in (tests/wechat/standin.py).

    python3 tests/wechat/test_standin.py [-v]

Starts the stand-in on a free port as a subprocess, exercises every rule with
urllib/http.client, stops it with SIGTERM, and prints `N passed, N failed` as
its last line.  Exit status 0 only when nothing failed.
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
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
                            "send_slow_ms": 5000},
          "reset restores default settings")
    _, a = jreq("GET", "/__stats")
    check(a["total"] == 0, "reset zeroes counters")
    check("openid" in login("st-1")[1], "reset forgets used codes")


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
                 test_phone, test_failures, test_stats_and_reset, test_http,
                 test_subscribe_send, test_send_dedup, test_sends_log, test_send_fail]
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
