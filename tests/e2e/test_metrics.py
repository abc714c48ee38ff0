"""GET /metrics: the pool's figures in Prometheus's text format, counted in
shared memory by every responder, loopback only."""

import re
import unittest

import e2elib as e2e

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
                           ("wxapp_dependency_duration_seconds", "histogram"),
                           ("wxapp_dependency_errors_total", "counter"),
                           ("wxapp_pool_responders", "gauge"),
                           ("wxapp_build_info", "gauge")):
            self.assertEqual(types.get(name), kind, "%s: %r" % (name, types))
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
        self.assertEqual(value(after, "wxapp_build_info",
                               version=e2e.stack_env().get("VERSION", "0.2.0")), 1)

    def test_strangers_are_refused(self):
        r = e2e.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
        self.assert_envelope(r, 403, 40300, message="forbidden")


if __name__ == "__main__":
    unittest.main()
