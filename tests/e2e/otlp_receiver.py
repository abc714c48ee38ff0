"""A test OTLP/HTTP receiver: POST /v1/traces with the JSON encoding, as an
OpenTelemetry collector takes it.  It checks each request the way the
collector's OTLP receiver would (Content-Type, an ExportTraceServiceRequest
with resourceSpans -> scopeSpans -> spans, ids as hex of the right length,
times as decimal strings) and keeps every span, flattened, with its
resource's attributes.  It can also fail (503) or hang, to show that a
collector that is down or slow changes nothing for clients.

In a test: r = Receiver(); r.start(); ... r.spans(trace_id) ...; r.stop().
Alone: python3 otlp_receiver.py [--discard] [PORT] prints each span it
receives (--discard: answers 200 without reading them, for bench/run)."""

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEX = re.compile(r"^[0-9a-f]+$")
NANOS = re.compile(r"^[0-9]{1,20}$")


def attrs(lst):
    """OTLP's [{key, value: {stringValue|intValue|...}}] as a dict."""
    out = {}
    for a in lst or []:
        v = a["value"]
        if "stringValue" in v:
            out[a["key"]] = v["stringValue"]
        elif "intValue" in v:
            out[a["key"]] = int(v["intValue"])
        elif "boolValue" in v:
            out[a["key"]] = bool(v["boolValue"])
        elif "doubleValue" in v:
            out[a["key"]] = float(v["doubleValue"])
        else:
            raise ValueError("attribute %r: unknown value %r" % (a["key"], v))
    return out


def check_span(s):
    """Raise ValueError unless s is a Span as OTLP/JSON spells it."""
    for k, n in (("traceId", 32), ("spanId", 16)):
        if not (isinstance(s.get(k), str) and len(s[k]) == n and HEX.match(s[k])
                and s[k] != "0" * n):
            raise ValueError("%s %r" % (k, s.get(k)))
    p = s.get("parentSpanId", "")
    if p and not (len(p) == 16 and HEX.match(p)):
        raise ValueError("parentSpanId %r" % p)
    if not isinstance(s.get("name"), str) or not s["name"]:
        raise ValueError("name %r" % s.get("name"))
    if s.get("kind") not in (0, 1, 2, 3, 4, 5):
        raise ValueError("kind %r" % s.get("kind"))
    for k in ("startTimeUnixNano", "endTimeUnixNano"):
        v = s.get(k)
        if not (isinstance(v, int) or (isinstance(v, str) and NANOS.match(v))):
            raise ValueError("%s %r" % (k, v))
    if int(s["endTimeUnixNano"]) < int(s["startTimeUnixNano"]):
        raise ValueError("ends before it starts")
    if not isinstance(s.get("traceState", ""), str):
        raise ValueError("traceState %r" % s.get("traceState"))
    st = s.get("status", {})
    if not isinstance(st, dict) or st.get("code", 0) not in (0, 1, 2):
        raise ValueError("status %r" % st)


class Receiver:

    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.received = []      # flattened spans
        self.requests = []      # (headers, number of spans) per export
        self.errors = []        # what a collector would have refused
        self.mode = "ok"        # ok | fail | hang
        self.discard = False    # take and drop, unread (a bench's sink)
        self.discarded = 0
        self.release = threading.Event()
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if recv.discard:
                    recv.discarded += 1
                    self.answer(200, {})
                    return
                if recv.mode == "hang":
                    recv.release.wait(120)
                    return
                if recv.mode == "fail":
                    self.answer(503, {"code": 14, "message": "unavailable"})
                    return
                if self.path != "/v1/traces":
                    self.answer(404, {})
                    return
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    recv.errors.append("Content-Type %r" % self.headers.get("Content-Type"))
                    self.answer(415, {})
                    return
                try:
                    got = recv.decode(json.loads(raw))
                except (ValueError, KeyError, TypeError) as e:
                    with recv.lock:
                        recv.errors.append("%s: %s" % (e, raw[:200]))
                    self.answer(400, {"code": 3, "message": str(e)})
                    return
                with recv.lock:
                    recv.received.extend(got)
                    recv.requests.append((dict(self.headers), len(got)))
                self.answer(200, {})

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (host, self.port)

    def decode(self, req):
        out = []
        for rs in req["resourceSpans"]:
            res = attrs(rs.get("resource", {}).get("attributes"))
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    check_span(s)
                    d = dict(s)
                    d["attributes"] = attrs(s.get("attributes"))
                    d["resource"] = res
                    d["scope"] = ss.get("scope", {}).get("name")
                    out.append(d)
        return out

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def spans(self, trace_id=None):
        with self.lock:
            return [s for s in self.received
                    if trace_id is None or s["traceId"] == trace_id]

    def wait_spans(self, trace_id, n, timeout=10):
        """The spans of trace_id once there are at least n (or what came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.spans(trace_id)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        return self.spans(trace_id)


def main():
    args = sys.argv[1:]
    discard = "--discard" in args
    args = [a for a in args if a != "--discard"]
    r = Receiver(port=int(args[0]) if args else 4318)
    r.discard = discard
    r.start()
    print("OTLP/HTTP JSON receiver on %s/v1/traces%s" % (
        r.url, " (discarding)" if discard else ""), flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            if discard:
                continue
            got = r.spans()
            for s in got[seen:]:
                print(json.dumps({k: s[k] for k in ("traceId", "spanId", "name",
                                                    "attributes")}), flush=True)
            seen = len(got)
    except KeyboardInterrupt:
        r.stop()


if __name__ == "__main__":
    main()
