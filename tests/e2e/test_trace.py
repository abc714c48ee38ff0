"""W3C Trace Context through the stack: the caller's traceparent is
continued (a new span in its trace) or, absent or malformed, a new trace
is started; the answer carries the request's traceparent; every log line
of the request names its trace and span; and each WeChat call the request
makes carries a traceparent of its own in the same trace.  The caller's
tracestate goes on with it (to WeChat, and through a job), when it is
valid and came with a traceparent that was taken."""

import json
import re
import secrets
import time
import unittest

import e2elib as e2e

# A tracestate of two vendors, one of them multi-tenant.
TS = "rojo=00f067aa0ba902b7,t61@congo=a b~c"
TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse(tp):
    m = TP_RE.match(tp or "")
    if not m:
        raise AssertionError("not a traceparent: %r" % tp)
    return m.groups()


def log_lines(request_id):
    lines = []
    with open(e2e.log_file_path(), encoding="utf-8", errors="replace") as f:
        for ln in f:
            if request_id in ln:
                try:
                    lines.append(json.loads(ln))
                except ValueError:
                    pass
    return lines


class Trace(unittest.TestCase):

    def test_continued_started_and_returned(self):
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        r = e2e.get("/ping", headers={"traceparent": "00-%s-%s-01" % (trace, parent)})
        t, span, flags = parse(r.header("traceparent"))
        self.assertEqual((t, flags), (trace, "01"))
        self.assertNotEqual(span, parent)
        r = e2e.get("/ping")
        t1, _, flags = parse(r.header("traceparent"))
        self.assertEqual(flags, "00")
        for bad in ("00-%s-%s-01" % (trace.upper(), parent),
                    "00-%s-%s-01" % ("0" * 32, parent),
                    "ff-%s-%s-01" % (trace, parent), "garbage"):
            r = e2e.get("/ping", headers={"traceparent": bad})
            t2, _, _ = parse(r.header("traceparent"))
            self.assertNotIn(t2, (trace, t1), bad)
        # A 304 and an error carry it too.
        r = e2e.get("/no/such/route")
        parse(r.header("traceparent"))

    def test_log_lines_and_wechat_calls_carry_it(self):
        e2e.wechat_base()
        e2e.wechat_reset()
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        rid = "trace-%s" % secrets.token_hex(6)
        e2e.clear_rate_limits()
        # An unknown code: a WeChat call, and a line in the log about it.
        r = e2e.post_json("/api/v1/user/login", {"code": "invalid-%s" % rid},
                          headers={"traceparent": "00-%s-%s-01" % (trace, parent),
                                   "tracestate": TS, "X-Request-Id": rid})
        self.assertEqual(r.status, 400, r.describe())
        _, span, _ = parse(r.header("traceparent"))
        _, calls = e2e.wechat_request("GET", "/__traces")
        c2s = [c for c in calls["calls"] if c["path"] == "/sns/jscode2session"]
        self.assertEqual(len(c2s), 1, calls)
        t, wx_span, flags = parse(c2s[0]["traceparent"])
        self.assertEqual((t, flags), (trace, "01"))
        self.assertNotIn(wx_span, (span, parent), "the call is a span of its own")
        self.assertEqual(c2s[0].get("tracestate"), TS, "the tracestate goes along")

        def lines():
            got = log_lines(rid)
            return got if any(ln.get("type") == "access" for ln in got) else None
        got = e2e.wait_for(lines, 5)
        self.assertTrue(got, "no log lines of %s" % rid)
        self.assertGreaterEqual(len(got), 2, got)
        for ln in got:
            self.assertEqual((ln.get("trace_id"), ln.get("span_id")),
                             (trace, span), ln)

    def test_b_a_tracestate_goes_on_only_valid_and_with_its_traceparent(self):
        e2e.wechat_base()
        e2e.clear_rate_limits()
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        tp = "00-%s-%s-01" % (trace, parent)
        cases = [
            ("invalid", tp, "Rojo=1,rojo=2"),       # upper case: dropped
            ("too many", tp, ",".join("k%d=v" % i for i in range(33))),
            ("too long", tp, "k=" + "v" * 256 + ",j=" + "v" * 256),
            ("no traceparent", None, TS),
            ("a traceparent refused", "00-%s-%s-01" % ("0" * 32, parent), TS),
        ]
        for what, tparent, tstate in cases:
            e2e.wechat_reset()
            e2e.clear_rate_limits()
            headers = {"tracestate": tstate}
            if tparent:
                headers["traceparent"] = tparent
            r = e2e.post_json("/api/v1/user/login",
                              {"code": "invalid-ts%s" % secrets.token_hex(4)},
                              headers=headers)
            # Never a failure of the request: only the header is dropped.
            self.assertEqual(r.status, 400, what + ": " + r.describe())
            t, _, _ = parse(r.header("traceparent"))
            self.assertEqual(t == trace, tparent == tp, what)
            _, calls = e2e.wechat_request("GET", "/__traces")
            c2s = [c for c in calls["calls"] if c["path"] == "/sns/jscode2session"]
            self.assertEqual(len(c2s), 1, calls)
            self.assertNotIn("tracestate", c2s[0], what)

    def test_a_job_runs_in_the_trace_that_enqueued_it(self):
        e2e.wechat_base()
        e2e.wechat_reset()
        admin = e2e.make_admin(e2e.login())
        trace, parent = secrets.token_hex(16), secrets.token_hex(8)
        r = e2e.call("POST", "/api/v1/messages/subscribe", admin, {
            "openid": "o-trace-%s" % secrets.token_hex(4),
            "template_id": "tpl-trace",
            "data": {"thing1": {"value": "traced"}}},
            headers={"traceparent": "00-%s-%s-01" % (trace, parent),
                     "tracestate": TS})
        self.assertEqual(r.status, 202, r.describe())
        job = r.json()["data"]["job_id"]
        _, request_span, _ = parse(r.header("traceparent"))

        def sent():
            _, calls = e2e.wechat_request("GET", "/__traces")
            return [c for c in calls["calls"]
                    if c["path"] == "/cgi-bin/message/subscribe/send"]
        calls = e2e.wait_for(sent, 20)
        self.assertTrue(calls, "the message was not sent")
        t, span, flags = parse(calls[0]["traceparent"])
        self.assertEqual((t, flags), (trace, "01"))
        self.assertNotEqual(span, request_span)
        self.assertEqual(calls[0].get("tracestate"), TS,
                         "the job kept the tracestate of its request")
        # The worker's line about the job is in the trace too.
        got = e2e.wait_for(lambda: [ln for ln in log_lines(job)
                                    if "done in" in ln.get("msg", "")], 10)
        self.assertTrue(got, "no log line of job %s" % job)
        self.assertEqual(got[0].get("trace_id"), trace, got[0])
