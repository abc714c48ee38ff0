"""OpenTelemetry spans, end to end: a responder of the test's own and a
wxapp-otlp of its own send the spans of sampled requests to a test OTLP
receiver (otlp_receiver.py, which decodes OTLP/JSON as a collector does).

A login is one server span with a client span under it for each PostgreSQL
statement, Redis round trip and WeChat call; they continue the caller's
trace, name statements and commands but never their parameters, and the
WeChat call's span is the one whose id went to WeChat in its traceparent.
The caller's tracestate is every span's traceState.  Sampling is
parent-based with trace_sample_ratio for new traces.  A collector that
hangs, fails or is gone, and an exporter that is gone, change nothing for
clients: the spans are dropped and counted, the worker's too.

The responders run the concurrent loop (-C), as the stack's pools do."""

import json
import os
import pwd
import secrets
import subprocess
import time

import e2elib as e2e
import fcgi
from otlp_receiver import Receiver
from test_ops import OwnResponder, client_addr, prefix_dir, read_text, tail
from test_trace import TS, parse

LOGIN = "/api/v1/user/login"
# The stack's pools run the concurrent loop: so do these responders.
CONCURRENT = ("-C", "8")


def sampled_parent():
    trace, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace, parent, "00-%s-%s-01" % (trace, parent)


class Spans(OwnResponder):

    def setUp(self):
        super().setUp()
        self.recv = Receiver().start()
        self.addCleanup(self.recv.stop)
        self.otlp_sock = os.path.join(self.dir, "otlp-%d.sock" % os.getpid())
        self.otlp_log = os.path.join(self.dir, self.name + ".otlp.log")
        for p in (self.otlp_sock, self.otlp_log):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        self.exporter = None
        self.addCleanup(self.stop_exporter)
        self.otlp_env = dict(WXAPP_OTLP_ENDPOINT=self.recv.url + "/",
                             WXAPP_OTLP_SOCKET=self.otlp_sock,
                             WXAPP_OTLP_HEADERS="x-wxapp-test = a%20b, "
                                                "authorization=Bearer%20t0k")

    def start_exporter(self, **over):
        argv = [os.path.join(prefix_dir(), "sbin", "wxapp-otlp"), "-c", self.conf]
        kw = {}
        if self.user:
            pw = pwd.getpwnam(self.user)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid)
        env = self._env(**dict(self.otlp_env, WXAPP_LOG_FILE=self.otlp_log, **over))
        self.exporter = subprocess.Popen(argv, env=env, cwd="/",
                                         stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, **kw)
        ok = e2e.wait_for(lambda: os.path.exists(self.otlp_sock) and
                          "started" in read_text(self.otlp_log), 10)
        self.assertTrue(ok, "wxapp-otlp did not start: %s"
                        % tail(read_text(self.otlp_log)))

    def stop_exporter(self):
        if self.exporter is not None and self.exporter.poll() is None:
            self.exporter.terminate()
            try:
                self.exporter.wait(15)
            except subprocess.TimeoutExpired:
                self.exporter.kill()
                self.exporter.wait()
        self.exporter = None

    def start_traced(self, *args, ratio="0.1", **over):
        self.start(*(args or CONCURRENT), WXAPP_TRACE_SAMPLE_RATIO=ratio,
                   **dict(self.otlp_env, **over))

    def metric(self, name, labels):
        r = fcgi.request(self.sock, "GET", "/metrics", remote_addr="127.0.0.1")
        self.assertEqual(r.status, 200, r.describe())
        want = name + (" " if labels is None else "{%s} " % labels)
        for ln in r.body.decode().splitlines():
            if ln.startswith(want):
                return float(ln.rsplit(" ", 1)[1])
        self.fail("no %s in /metrics" % want)

    def diag(self):
        return super().diag() + "\nwxapp-otlp log:\n%s\nreceiver errors: %s" % (
            tail(read_text(self.otlp_log)), self.recv.errors[-3:])

    # -- the spans of a login ----------------------------------------------

    def test_a_login_is_one_trace_of_server_and_client_spans(self):
        e2e.wechat_base()
        e2e.wechat_reset()
        self.start_exporter()
        self.start_traced()
        trace, parent, tp = sampled_parent()
        code = "user-otlp%s-%s" % (secrets.token_hex(3), secrets.token_hex(4))
        r = fcgi.request(self.sock, "POST", LOGIN, body=json.dumps({"code": code}),
                         content_type="application/json",
                         headers={"traceparent": tp, "tracestate": TS},
                         remote_addr=client_addr())
        self.assertEqual(r.status, 200, r.describe() + self.diag())
        t, server_id, flags = parse(r.header("traceparent"))
        self.assertEqual((t, flags), (trace, "01"))

        got = self.recv.wait_spans(trace, 1)
        self.assertTrue(got, "no spans of the login reached the receiver" + self.diag())
        servers = [s for s in got if s["kind"] == 2]
        self.assertEqual(len(servers), 1, got)
        srv = servers[0]
        self.assertEqual((srv["spanId"], srv.get("parentSpanId")), (server_id, parent),
                         "the server span is the answer's, under the caller's")
        self.assertEqual(srv["name"], "POST " + LOGIN)
        self.assertEqual(srv["attributes"], {
            "http.request.method": "POST", "http.route": LOGIN,
            "http.response.status_code": 200})
        self.assertEqual(srv["resource"].get("service.name"), "wxapp")
        self.assertTrue(srv["resource"].get("service.version"))

        clients = [s for s in got if s["kind"] == 3]
        self.assertEqual(len(clients) + 1, len(got), got)
        t0, t1 = int(srv["startTimeUnixNano"]), int(srv["endTimeUnixNano"])
        for s in clients:
            self.assertEqual(s["parentSpanId"], server_id, s)
            self.assertTrue(t0 <= int(s["startTimeUnixNano"]) <=
                            int(s["endTimeUnixNano"]) <= t1, s)
        self.assertEqual(len({s["spanId"] for s in got}), len(got), "ids repeat")
        # The caller's tracestate is the span context's, every span's.
        self.assertEqual({s.get("traceState") for s in got}, {TS})

        # WeChat: the span whose id went out in the call's traceparent.
        wx = [s for s in clients if s["name"] == "code2session"]
        self.assertEqual(len(wx), 1, [s["name"] for s in clients])
        self.assertEqual(wx[0]["attributes"]["http.request.method"], "GET")
        self.assertEqual(wx[0]["attributes"]["http.response.status_code"], 200)
        self.assertEqual(wx[0]["attributes"]["server.address"], "127.0.0.1")
        _, calls = e2e.wechat_request("GET", "/__traces")
        sent = [c for c in calls["calls"] if c["path"] == "/sns/jscode2session"]
        self.assertEqual(len(sent), 1, calls)
        self.assertEqual(parse(sent[0]["traceparent"])[:2], (trace, wx[0]["spanId"]))
        self.assertEqual(sent[0].get("tracestate"), TS)

        pg = [s for s in clients if s["attributes"].get("db.system.name") == "postgresql"]
        rd = [s for s in clients if s["attributes"].get("db.system.name") == "redis"]
        self.assertTrue(pg, "no PostgreSQL span: %s" % [s["name"] for s in clients])
        self.assertTrue(rd, "no Redis span: %s" % [s["name"] for s in clients])
        for s in pg:
            self.assertRegex(s["name"], r"^[a-z0-9_]+$|^[A-Z ]+$",
                             "a statement's name, or a transaction command")

        # Nothing of the request's data: not the code, the openid, the
        # session key or the tokens.
        text = json.dumps(got)
        body = r.json()["data"]
        for secret in [code, body.get("access_token"), body.get("refresh_token")]:
            if secret:
                self.assertNotIn(secret, text)
        self.assertNotIn("session_key", text)

        # otlp_headers went along, percent-decoded.
        hdrs = {k.lower(): v for k, v in self.recv.requests[-1][0].items()}
        self.assertEqual(hdrs.get("x-wxapp-test"), "a b")
        self.assertEqual(hdrs.get("authorization"), "Bearer t0k")
        self.assertEqual(self.recv.errors, [])

    def test_b_logins_in_flight_together_keep_their_own_spans(self):
        """The concurrent loop (-C) runs requests in coroutines that swap
        their state: each login's spans must stay in its own trace."""
        import threading
        e2e.wechat_base()
        e2e.wechat_reset()
        self.addCleanup(e2e.wechat_control, latency_ms=0)
        e2e.wechat_control(latency_ms=300)
        self.start_exporter()
        self.start_traced("-C", "8")
        results = {}

        def one(i):
            trace, _, tp = sampled_parent()
            code = "user-otlpc%d%s-%s" % (i, secrets.token_hex(3), secrets.token_hex(4))
            r = fcgi.request(self.sock, "POST", LOGIN, body=json.dumps({"code": code}),
                             content_type="application/json",
                             headers={"traceparent": tp}, remote_addr=client_addr())
            results[i] = (trace, r)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 6)
        sizes = []
        for trace, r in results.values():
            self.assertEqual(r.status, 200, r.describe() + self.diag())
            server_id = parse(r.header("traceparent"))[1]
            got = self.recv.wait_spans(trace, 1)
            names = sorted(s["name"] for s in got)
            self.assertEqual(names.count("code2session"), 1, names)
            self.assertEqual(names.count("POST " + LOGIN), 1, names)
            for s in got:
                if s["kind"] == 3:
                    self.assertEqual(s["parentSpanId"], server_id, s)
            # The login's statement waited for the batch (lib/dbbatch):
            # a PostgreSQL span of its own, which says how many logins the
            # one statement carried.
            login = [s for s in got if s["name"] == "login"]
            self.assertEqual(len(login), 1, names)
            self.assertEqual(login[0]["attributes"].get("db.system.name"),
                             "postgresql", login[0])
            size = login[0]["attributes"].get("db.operation.batch.size")
            self.assertIsInstance(size, int, login[0])
            self.assertTrue(1 <= size <= 6, login[0])
            sizes.append(size)
        # A batch of k logins is k spans that say k.
        for k in set(sizes):
            self.assertEqual(sizes.count(k) % k, 0, sizes)
        # Nothing landed outside the six traces.
        ours = {trace for trace, _ in results.values()}
        self.assertEqual({s["traceId"] for s in self.recv.spans()} - ours, set())

    def start_worker(self, **over):
        """A worker of the test's own (on the responder's shm_name), in
        place of the stack's, which stops until the test ends; its log."""
        e2e.svc("stop", "worker")
        self.addCleanup(e2e.svc, "start", "worker")
        argv = [os.path.join(prefix_dir(), "sbin", "wxapp-worker"), "-c", self.conf,
                "-n", "otlp-test-%d" % os.getpid()]
        kw = {}
        if self.user:
            pw = pwd.getpwnam(self.user)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid)
        wlog = os.path.join(self.dir, self.name + ".worker.log")
        env = self._env(**dict(self.otlp_env, WXAPP_LOG_FILE=wlog, **over))
        worker = subprocess.Popen(argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)

        def stop_worker():
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.addCleanup(stop_worker)
        return wlog

    def subscribe(self, admin, tp):
        """A message to send, enqueued in the trace of tp: its answer."""
        r = fcgi.request(self.sock, "POST", "/api/v1/messages/subscribe", body=json.dumps({
            "openid": "o-otlp-%s" % secrets.token_hex(4), "template_id": "tpl-otlp",
            "data": {"thing1": {"value": "traced"}}}), content_type="application/json",
            headers=dict(admin.auth(), traceparent=tp, tracestate=TS),
            remote_addr=client_addr())
        self.assertEqual(r.status, 202, r.describe() + self.diag())
        return r

    def test_e_a_job_run_is_a_span_of_the_request_that_enqueued_it(self):
        e2e.wechat_base()
        e2e.wechat_reset()
        admin = e2e.make_admin(e2e.login())
        self.start_exporter()
        self.start_traced()
        # The test's worker takes the job (with spans), not the stack's.
        wlog = self.start_worker()

        trace, _, tp = sampled_parent()
        r = self.subscribe(admin, tp)
        job_id = r.json()["data"]["job_id"]
        server_id = parse(r.header("traceparent"))[1]

        def job_spans():
            got = self.recv.spans(trace)
            return got if any(s["kind"] == 5 for s in got) else None
        got = e2e.wait_for(job_spans, 20)
        self.assertTrue(got, "no span of the job's run" + self.diag() +
                        "\nworker log:\n" + tail(read_text(wlog)))
        runs = [s for s in got if s["kind"] == 5]
        self.assertEqual(len(runs), 1, runs)
        run = runs[0]
        self.assertEqual(run["name"], "job subscribe")
        self.assertEqual(run["parentSpanId"], server_id,
                         "the run is a span under the request that enqueued it")
        self.assertEqual(run["attributes"]["messaging.message.id"], job_id)
        under = [s for s in got if s.get("parentSpanId") == run["spanId"]]
        self.assertTrue(any(s["attributes"].get("server.address") for s in under),
                        "no WeChat call under the run: %s" % [s["name"] for s in under])
        self.assertTrue(any(s["attributes"].get("db.system.name") == "postgresql"
                            for s in under), [s["name"] for s in under])
        # The tracestate went through the queue with the job.
        self.assertEqual({s.get("traceState") for s in [run] + under}, {TS})

    def test_f_a_worker_that_cannot_hand_spans_over_counts_them(self):
        """The worker counts what it drops where the responders do (the
        pool's shared memory): wxapp_spans_dropped_total{reason=handover}."""
        e2e.wechat_base()
        e2e.wechat_reset()
        admin = e2e.make_admin(e2e.login())
        self.start_exporter()
        self.start_traced()
        # The responder hands its spans to the exporter; the worker has
        # none to hand them to.
        wlog = self.start_worker(WXAPP_OTLP_SOCKET=os.path.join(
            self.dir, "no-exporter-%d.sock" % os.getpid()))
        before = self.metric("wxapp_spans_dropped_total", 'reason="handover"')
        trace, _, tp = sampled_parent()
        self.subscribe(admin, tp)
        self.assertTrue(self.recv.wait_spans(trace, 1), "the request's spans "
                        "did not arrive" + self.diag())

        def dropped():
            return self.metric("wxapp_spans_dropped_total", 'reason="handover"') > before
        self.assertTrue(e2e.wait_for(dropped, 20), "the worker's dropped spans are "
                        "not counted" + self.diag() + "\nworker log:\n" + tail(read_text(wlog)))
        self.assertTrue(e2e.wait_for(lambda: "spans of job runs dropped" in read_text(wlog), 5))
        # None of the run's spans reached the collector.
        self.assertFalse([s for s in self.recv.spans(trace) if s["kind"] == 5])
        self.assertEqual(self.metric("wxapp_spans_dropped_total", 'reason="cap"'), 0)

    # -- sampling ------------------------------------------------------------

    def marker(self):
        """A sampled request, waited for: what was sent before it is in."""
        trace, _, tp = sampled_parent()
        r = self.req("GET", "/ping", headers={"traceparent": tp})
        self.assertEqual(r.status, 200, r.describe())
        self.assertTrue(self.recv.wait_spans(trace, 1), "the marker's spans did "
                        "not arrive" + self.diag())

    def test_c_sampling_is_parent_based_with_a_ratio_for_new_traces(self):
        self.start_exporter()
        # Ratio 0: only a sampled caller's trace is recorded.
        self.start_traced(ratio="0")
        r = self.req("GET", "/ping")
        t_new, _, flags = parse(r.header("traceparent"))
        self.assertEqual(flags, "00")
        trace, _, tp = sampled_parent()
        r = self.req("GET", "/ping", headers={"traceparent": tp})
        self.assertEqual(parse(r.header("traceparent"))[2], "01")
        self.assertEqual(len(self.recv.wait_spans(trace, 1)), 1)
        self.marker()
        self.assertEqual(self.recv.spans(t_new), [])

        # Ratio 1: every new trace, but not a caller's unsampled one.
        self.proc.kill()
        self.proc.wait(10)
        self.start_traced(ratio="1")
        r = self.req("GET", "/ping")
        t_all, _, flags = parse(r.header("traceparent"))
        self.assertEqual(flags, "01")
        unsampled = secrets.token_hex(16)
        r = self.req("GET", "/ping", headers={
            "traceparent": "00-%s-%s-00" % (unsampled, secrets.token_hex(8))})
        self.assertEqual(parse(r.header("traceparent"))[2], "00")
        self.marker()
        self.assertEqual(len(self.recv.spans(t_all)), 1)
        self.assertEqual(self.recv.spans(unsampled), [])

        # A caller not trusted to decide: its trace goes on, sampled or
        # not by the ratio alone.
        self.proc.kill()
        self.proc.wait(10)
        self.start_traced(ratio="0", WXAPP_TRACE_TRUST_PARENT="off")
        trace, _, tp = sampled_parent()
        r = self.req("GET", "/ping", headers={"traceparent": tp})
        t, _, flags = parse(r.header("traceparent"))
        self.assertEqual((t, flags), (trace, "00"))
        self.proc.kill()
        self.proc.wait(10)
        self.start_traced(ratio="1", WXAPP_TRACE_TRUST_PARENT="off")
        self.marker()
        self.assertEqual(self.recv.spans(trace), [])

    # -- a collector or an exporter in trouble -------------------------------

    def burst(self, n=40):
        """n sampled reads; each answered, and at once (not after the
        collector's 10 s timeout)."""
        for _ in range(n):
            _, _, tp = sampled_parent()
            t = time.monotonic()
            r = self.req("GET", "/api/v1/data/list", headers={"traceparent": tp})
            self.assertEqual(r.status, 200, r.describe())
            self.assertLess(time.monotonic() - t, 2.0,
                            "a request waited for the span exporter")

    def test_d_a_collector_or_exporter_in_trouble_changes_nothing(self):
        self.start_exporter(WXAPP_OTLP_TIMEOUT_MS="10000")
        self.start_traced()
        self.marker()

        # The collector hangs: exports wait, spans queue, then drop.
        self.recv.mode = "hang"
        self.burst()
        # It fails: every export is dropped and counted.
        self.recv.mode = "fail"
        self.recv.release.set()
        self.burst()
        self.assertTrue(e2e.wait_for(lambda: self.metric(
            "wxapp_spans_dropped_total", 'reason="export"') > 0, 15),
            "no dropped export counted" + self.diag())

        # The exporter is gone: the spans cannot be handed over.
        self.stop_exporter()
        self.burst()
        self.assertGreater(self.metric("wxapp_spans_dropped_total",
                                       'reason="handover"'), 0)

        # Both back: the responder connects again by itself.
        self.recv.mode = "ok"
        self.start_exporter()

        def through():
            trace, _, tp = sampled_parent()
            self.req("GET", "/ping", headers={"traceparent": tp})
            return self.recv.wait_spans(trace, 1, timeout=0.5)
        self.assertTrue(e2e.wait_for(through, 10), "spans did not flow again"
                        + self.diag())
        self.assertGreater(self.metric("wxapp_spans_exported_total", None), 0)
