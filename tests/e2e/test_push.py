"""WeChat's message push (/api/v1/wechat/push), end to end through nginx.

The messages are built by the WeChat stand-in's own code (standin.py:
Python's hashlib for the signatures, OpenSSL's command line for AES), not
by wxapp's C: the URL check, plaintext and safe mode, JSON and XML; then
what must be refused -- bad signatures, an old timestamp, a replayed
nonce, another appid, an XML bomb, an over-long body -- with the responder
still alive after each."""

import json
import os
import sys
import time
import unittest
import urllib.parse

import e2elib as e2e
import fcgi
from test_ops import OwnResponder

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "wechat"))
import standin  # noqa: E402  (the stand-in's push builders)

PUSH = "/api/v1/wechat/push"


def settings():
    return (e2e.conf_value("wechat_push_token"),
            e2e.conf_value("wechat_push_aes_key"),
            e2e.conf_value("wechat_appid"))


def post(query, body, ctype):
    return e2e.request("POST", PUSH + "?" + query, body=body,
                       headers={"Content-Type": ctype})


def event(**extra):
    m = {"ToUserName": "gh_standin", "FromUserName": "oPushUser",
         "CreateTime": int(time.time()), "MsgType": "event",
         "Event": "user_enter_tempsession", "SessionFrom": "e2e"}
    m.update(extra)
    return m


def recorded(key_like):
    return int(e2e.psql_value("SELECT count(*) FROM push_events WHERE "
                              "payload::text LIKE %s"
                              % e2e.sql_quote("%" + key_like + "%")))


class Push(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        e2e.wechat_base()
        cls.token, cls.aes, cls.appid = settings()
        if not cls.token:
            raise AssertionError("the stack sets no wechat_push_token")

    def build(self, message, fmt="json", **kw):
        return standin.build_push(message, self.token, "safe", fmt,
                                  aes_key=self.aes, appid=self.appid, **kw)

    def alive(self):
        r = e2e.get("/ping")
        self.assertEqual(r.status, 200, "the responder died")

    def test_url_check(self):
        ts, nonce = str(int(time.time())), "12345"
        sig = standin.push_signature(self.token, ts, nonce)
        q = urllib.parse.urlencode({"signature": sig, "timestamp": ts,
                                    "nonce": nonce, "echostr": "echo-5831"})
        r = e2e.get(PUSH + "?" + q)
        self.assertEqual((r.status, r.body), (200, b"echo-5831"), r.describe())
        q = q.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
        r = e2e.get(PUSH + "?" + q)
        self.assertEqual((r.status, r.json()["code"]), (403, 40300))

    def test_safe_mode_json_and_xml_are_recorded_once(self):
        for fmt in ("json", "xml"):
            tag = "e2e-%s-%d" % (fmt, time.time_ns())
            msg = event(SessionFrom=tag)
            q, body, ctype = self.build(msg, fmt)
            r = post(q, body, ctype)
            self.assertEqual((r.status, r.body), (200, b"success"), r.describe())
            # WeChat retries (a new nonce, the same message): one record.
            q, body, ctype = self.build(msg, fmt)
            self.assertEqual(post(q, body, ctype).status, 200)
            self.assertTrue(e2e.wait_for(lambda: recorded(tag) >= 1, 20), fmt)
            time.sleep(0.5)
            self.assertEqual(recorded(tag), 1, fmt)

    def test_what_is_refused(self):
        good = event(SessionFrom="refused-%d" % time.time_ns())
        now = int(time.time())
        cases = []
        q, body, ct = self.build(good)
        cases.append(("bad msg_signature", q.replace("msg_signature=",
                      "msg_signature=0"), body, ct, 403))
        q, body, ct = self.build(good, timestamp=str(now - 3600))
        cases.append(("old timestamp", q, body, ct, 403))
        q, body, ct = standin.build_push(good, self.token, "safe", "json",
                                         aes_key=self.aes,
                                         appid="wxsomeoneelse000000")
        cases.append(("another appid", q, body, ct, 403))
        q, body, ct = standin.build_push(good, self.token, "safe", "json",
                                         aes_key="A" * 43, appid=self.appid)
        cases.append(("another key", q, body, ct, (400, 403)))
        q, body, ct = standin.build_push(good, "another-token", "safe", "json",
                                         aes_key=self.aes, appid=self.appid)
        cases.append(("another token", q, body, ct, 403))
        q, _, ct = self.build(good)
        cases.append(("not JSON", q, b"{not json", ct, 400))
        for what, q, body, ct, want in cases:
            r = post(q, body, ct)
            self.assertIn(r.status, want if isinstance(want, tuple) else (want,),
                          "%s: %s" % (what, r.describe()))
            self.assertIn(r.json()["code"], (40002, 40300), what)
            self.alive()
        # A replay: the same request twice.
        q, body, ct = self.build(event(SessionFrom="replay-%d" % time.time_ns()))
        self.assertEqual(post(q, body, ct).status, 200)
        r = post(q, body, ct)
        self.assertEqual(r.status, 403, r.describe())
        self.assertIn("nonce", r.json()["message"])

    def test_redis_down_is_a_503_for_wechat_to_retry(self):
        q, body, ct = self.build(event(SessionFrom="down-%d" % time.time_ns()))
        e2e.svc("stop", "redis")
        try:
            r = post(q, body, ct)
            self.assertEqual((r.status, r.json()["code"]), (503, 50302),
                             r.describe())
        finally:
            e2e.svc("start", "redis")
        # WeChat's retry of the same request is taken (its nonce unspent),
        # once the responders' Redis breaker lets a call through again.
        r = e2e.wait_for(lambda: (lambda r: r if r.status == 200 else None)(
            post(q, body, ct)), 10, interval=0.3)
        self.assertTrue(r, "the retry was not taken")
        self.assertEqual(r.body, b"success")

    def test_hostile_xml_and_bodies(self):
        bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                '<xml><ToUserName>&lol3;</ToUserName><Encrypt>x</Encrypt></xml>')
        xxe = ('<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               '<xml><Encrypt>&x;</Encrypt></xml>')
        for what, body in (("billion laughs", bomb), ("external entity", xxe)):
            q, _, _ = self.build(event(), "xml")
            r = post(q, body.encode(), "text/xml")
            self.assertEqual(r.status, 400, "%s: %s" % (what, r.describe()))
            self.alive()
        # The bomb inside the envelope, encrypted and signed as WeChat would.
        q, body, ct = standin.build_push({}, self.token, "safe", "xml",
                                         aes_key=self.aes, appid=self.appid,
                                         raw=bomb.encode())
        r = post(q, body, ct)
        self.assertEqual(r.status, 400, r.describe())
        self.alive()
        q, _, _ = self.build(event())
        r = post(q, b"{" + b'"a":"' + b"x" * 70000 + b'"}', "application/json")
        self.assertEqual(r.status, 413, r.describe())
        self.alive()


class PlainMode(OwnResponder):
    """wechat_push_mode = plain, on a responder of the test's own."""

    def test_plain_json_and_xml(self):
        e2e.wechat_base()
        token = e2e.conf_value("wechat_push_token")
        self.start(WXAPP_WECHAT_PUSH_MODE="plain")
        for fmt in ("json", "xml"):
            tag = "plain-%s-%d" % (fmt, time.time_ns())
            q, body, ct = standin.build_push(event(SessionFrom=tag), token,
                                             "plain", fmt)
            r = fcgi.request(self.sock, "POST", PUSH, query=q, body=body,
                             content_type=ct)
            self.assertEqual((r.status, r.body), (200, b"success"),
                             "%s: %s%s" % (fmt, r.describe(), self.diag()))
            self.assertTrue(e2e.wait_for(lambda: recorded(tag) == 1, 20), fmt)
        # Signed, but a safe-mode envelope is no plaintext message.
        q, body, ct = standin.build_push(event(), token, "safe", "json",
                                         aes_key=e2e.conf_value(
                                             "wechat_push_aes_key"),
                                         appid=e2e.conf_value("wechat_appid"))
        r = fcgi.request(self.sock, "POST", PUSH, query=q, body=body,
                         content_type=ct)
        self.assertEqual(r.status, 400, r.describe())
        self.assertIsNone(self.proc.poll())
