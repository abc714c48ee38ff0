"""GET /metrics: the pool's figures in Prometheus's text format, counted in
shared memory by every responder, for loopback and the scrapers that
status_allow names only."""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import e2elib as e2e
import fcgi
from test_ops import OwnResponder, prefix_dir

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape():
    """{(name, frozenset(labels)): value} and the TYPE of each family."""
    r = e2e.get("/metrics")
    if r.status != 200:
        raise AssertionError("GET /metrics: %s" % r.describe())
    ctype = r.header("Content-Type") or ""
    if not ctype.startswith("text/plain; version=0.0.4"):
        raise AssertionError("GET /metrics: Content-Type %r" % ctype)
    samples, types = {}, {}
    for ln in r.body.decode("utf-8").splitlines():
        if ln.startswith("# TYPE "):
            _, _, name, kind = ln.split(" ", 3)
            types[name] = kind
            continue
        if ln.startswith("#") or not ln:
            continue
        m = LINE.match(ln)
        if not m:
            raise AssertionError("not the exposition format: %r" % ln)
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class Metrics(e2e.TestCase):

    def setUp(self):
        e2e.need_stack()

    def test_format_and_families(self):
        samples, types = scrape()
        for name, kind in (("wxapp_requests_total", "counter"),
                           ("wxapp_request_duration_seconds", "histogram"),
                           ("wxapp_cache_lookups_total", "counter"),
                           ("wxapp_ratelimit_rejected_total", "counter"),
                           ("wxapp_breaker_state", "gauge"),
                           ("wxapp_breaker_transitions_total", "counter"),
                           ("wxapp_dependency_duration_seconds", "histogram"),
                           ("wxapp_dependency_errors_total", "counter"),
                           ("wxapp_pool_responders", "gauge"),
                           ("wxapp_pool_requests_in_flight", "gauge"),
                           ("wxapp_pool_requests_capacity", "gauge"),
                           ("wxapp_spans_dropped_total", "counter"),
                           ("wxapp_jobs", "gauge"),
                           ("wxapp_jobs_oldest_age_seconds", "gauge"),
                           ("wxapp_build_info", "gauge")):
            self.assertEqual(types.get(name), kind, "%s: %r" % (name, types))
        for state in ("queued", "pending", "retrying", "dead", "outbox"):
            self.assertIn(("wxapp_jobs", frozenset({("state", state)})), samples,
                          "wxapp_jobs{state=%s}" % state)
        # Every change of a breaker's state, by the state entered.
        for dep in ("postgres", "redis", "wechat"):
            for to in ("closed", "open", "half_open"):
                self.assertIn(("wxapp_breaker_transitions_total",
                               frozenset({("dependency", dep), ("to", to)})), samples,
                              "wxapp_breaker_transitions_total{%s,%s}" % (dep, to))
        for reason in ("handover", "queue", "export", "cap"):
            self.assertIn(("wxapp_spans_dropped_total",
                           frozenset({("reason", reason)})), samples, reason)
        # Saturation: this scrape is one of the requests in flight, and
        # the responders hold at most their capacity (-C each).
        in_flight = value(samples, "wxapp_pool_requests_in_flight")
        capacity = value(samples, "wxapp_pool_requests_capacity")
        self.assertGreaterEqual(in_flight, 1)
        self.assertGreaterEqual(capacity, in_flight)
        responders = sum(value(samples, "wxapp_pool_responders", state=s)
                         for s in ("idle", "busy"))
        self.assertGreaterEqual(capacity, responders)
        # Every histogram: cumulative buckets, +Inf = _count.
        buckets = {}
        for (name, labels), v in samples.items():
            if name.endswith("_bucket"):
                rest = frozenset(l for l in labels if l[0] != "le")
                le = dict(labels)["le"]
                buckets.setdefault((name, rest), []).append(
                    (float("inf") if le == "+Inf" else float(le), v))
        self.assertTrue(buckets)
        for (name, rest), bs in buckets.items():
            bs.sort()
            counts = [v for _, v in bs]
            self.assertEqual(counts, sorted(counts), "%s %s not cumulative" % (name, rest))
            total = samples[(name[:-len("_bucket")] + "_count", rest)]
            self.assertEqual(bs[-1], (float("inf"), total))
        # Route labels are the route table's patterns, never raw paths.
        for (name, labels), _ in samples.items():
            if name == "wxapp_requests_total":
                route = dict(labels)["route"]
                self.assertTrue(route == "none" or route.startswith("/"), route)
                self.assertNotRegex(route, r"/\d+(/|$)", "a raw path as a label")

    def test_counts_follow_the_traffic(self):
        item = "/api/v1/data/%d" % 1
        before, _ = scrape()
        for _ in range(25):
            self.assertEqual(e2e.get("/ping").status, 200)
        for _ in range(7):
            e2e.get(item)
        e2e.get("/no/such/route")
        after, _ = scrape()
        d = lambda n, **l: value(after, n, **l) - value(before, n, **l)  # noqa: E731
        self.assertEqual(d("wxapp_requests_total", route="/ping", method="GET",
                           code="200"), 25)
        self.assertEqual(d("wxapp_request_duration_seconds_count", route="/ping",
                           method="GET"), 25)
        got = sum(d("wxapp_requests_total", route="/api/v1/data/{id}",
                    method="GET", code=c) for c in ("200", "304", "404"))
        self.assertEqual(got, 7)
        lookups = sum(d("wxapp_cache_lookups_total", result=r)
                      for r in ("near", "redis", "miss", "unavailable"))
        self.assertEqual(lookups, 7, "7 cached reads, %s lookups" % lookups)
        self.assertEqual(d("wxapp_requests_total", route="none", method="none",
                           code="404"), 1)
        self.assertGreater(d("wxapp_dependency_duration_seconds_count",
                             dependency="redis"), 0)
        # The version the installed responder says it is.
        v = subprocess.run([os.path.join(prefix_dir(), "sbin", "wxapp-fcgi"), "-V"],
                           stdout=subprocess.PIPE, check=True, timeout=10)
        self.assertEqual(value(after, "wxapp_build_info",
                               version=v.stdout.decode().split()[-1]), 1)

    def test_a_202_is_counted_by_its_status(self):
        admin = e2e.make_admin(e2e.login())
        before, _ = scrape()
        r = e2e.call("POST", "/api/v1/messages/subscribe", admin, {
            "openid": "o-metrics-%s" % secrets.token_hex(4), "template_id": "tpl-metrics",
            "data": {"thing1": {"value": "counted"}}})
        self.assertEqual(r.status, 202, r.describe())
        after, _ = scrape()
        self.assertEqual(value(after, "wxapp_requests_total",
                               route="/api/v1/messages/subscribe", method="POST",
                               code="202")
                         - value(before, "wxapp_requests_total",
                                 route="/api/v1/messages/subscribe", method="POST",
                                 code="202"), 1)

    def test_strangers_are_refused(self):
        r = e2e.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
        self.assert_envelope(r, 403, 40300, message="forbidden")


    def test_promtool_accepts_it(self):
        r = e2e.get("/metrics")
        p = subprocess.run(["promtool", "check", "metrics"], input=r.body,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(p.returncode, 0, "promtool check metrics:\n%s"
                         % p.stdout.decode(errors="replace"))

    def test_a_restarted_responder_is_counted(self):
        before, _ = scrape()
        pids = sorted(e2e.responder_pids())
        self.assertTrue(pids)
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        got = 0
        while time.monotonic() < deadline:
            after, _ = scrape()
            got = (value(after, "wxapp_responder_restarts_total")
                   - value(before, "wxapp_responder_restarts_total"))
            if got >= 1:
                break
            time.sleep(0.2)
        self.assertEqual(got, 1, "a killed responder, replaced: the counter "
                         "moved by %s" % got)


class RemoteScraper(OwnResponder):
    """status_allow lets a scraper elsewhere read /metrics and /status (as
    nginx's REMOTE_ADDR names it); everyone else still gets 403.  Talked
    to over FastCGI, as nginx would after its own allow rule."""

    def get(self, path, addr):
        return fcgi.request(self.sock, "GET", path, remote_addr=addr)

    def test_status_allow_names_the_scrapers(self):
        self.start(WXAPP_STATUS_ALLOW="198.51.100.0/24, 2001:db8::/32,"
                                      "192.0.2.7")
        for addr in ("127.0.0.1", "::1", "198.51.100.7", "198.51.100.255",
                     "192.0.2.7", "2001:db8:5::1", "::ffff:198.51.100.9"):
            for path in ("/metrics", "/status"):
                r = self.get(path, addr)
                self.assertEqual(r.status, 200, "%s from %s: %s"
                                 % (path, addr, r.describe()))
        for addr in ("198.51.101.1", "192.0.2.8", "2001:db9::1", "10.0.0.1",
                     "127.0.0.2", "", "unix:"):
            for path in ("/metrics", "/status"):
                r = self.get(path, addr)
                self.assertEqual(r.status, 403, "%s from %r: %s"
                                 % (path, addr, r.describe()))
                self.assertEqual(r.json()["code"], 40300)

    def test_without_it_only_loopback(self):
        self.start()
        self.assertEqual(self.get("/metrics", "127.0.0.1").status, 200)
        self.assertEqual(self.get("/metrics", "198.51.100.7").status, 403)
        self.assertEqual(self.get("/status", "198.51.100.7").status, 403)

    def test_a_bad_list_is_refused_at_start(self):
        p = subprocess.run([self.binary, "-t", "-c", self.conf],
                           env=self._env(WXAPP_STATUS_ALLOW="10.0.0.0/8, 10.1/40"),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b'status_allow: "10.1/40" is not an address', p.stdout)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PrometheusServer(e2e.TestCase):
    """A real Prometheus (Debian's package) scrapes the stack on loopback;
    its HTTP API must see the traffic the test sent."""

    def setUp(self):
        e2e.need_stack()
        self.dir = tempfile.mkdtemp(prefix="wxapp-prom-")
        os.chmod(self.dir, 0o777)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.port = free_port()
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write(SCRAPE % (e2e.HOST, e2e.PORT))
        self.proc = subprocess.Popen(
            ["prometheus", "--config.file=" + os.path.join(self.dir, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        self.addCleanup(self._stop)

    def _stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def query(self, q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.port, urllib.parse.urlencode({"query": q}))
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        res = body["data"]["result"]
        return float(res[0]["value"][1]) if res else None

    def wait_value(self, q, pred, timeout=30):
        deadline = time.monotonic() + timeout
        v = None
        while time.monotonic() < deadline:
            try:
                v = self.query(q)
            except OSError:
                v = None
            if v is not None and pred(v):
                return v
            time.sleep(0.5)
        with open(os.path.join(self.dir, "log")) as f:
            log = f.read()[-2000:]
        raise AssertionError("%s: %r after %d s; prometheus log:\n%s"
                             % (q, v, timeout, log))

    def test_prometheus_sees_the_traffic(self):
        series = 'wxapp_requests_total{route="/ping",method="GET",code="200"}'
        start = self.wait_value(series, lambda v: v >= 0)
        # 150 pings over about 15 s: 10 a second.
        t0 = time.monotonic()
        for i in range(150):
            self.assertEqual(e2e.get("/ping").status, 200)
            time.sleep(max(0, t0 + (i + 1) * 0.1 - time.monotonic()))
        self.wait_value(series, lambda v: v - start >= 150)
        end = self.query(series)
        self.assertEqual(end - start, 150, "prometheus scraped %s -> %s"
                         % (start, end))
        rate = self.query("rate(%s[10s])" % series)
        self.assertIsNotNone(rate)
        self.assertTrue(5 <= rate <= 15, "rate() of 10 pings a second: %s" % rate)
        # Every query of the shipped dashboard runs on this Prometheus.
        src = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        with open(os.path.join(src, "spawn", "grafana-wxapp.json")) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 8)
        for e in exprs:
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (
                self.port, urllib.parse.urlencode({"query": e}))
            with urllib.request.urlopen(url, timeout=5) as r:
                self.assertEqual(json.load(r)["status"], "success", e)


SCRAPE = """# generated by tests/e2e/test_metrics.py
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: wxapp
    scheme: https
    tls_config:
      insecure_skip_verify: true
    static_configs:
      - targets: ["%s:%d"]
"""


if __name__ == "__main__":
    unittest.main()
