#!/usr/bin/env python3
"""tests/deploy/check.py -- checks of a deployed wxapp, through the host's
nginx at https://localhost/ (run by tests/deploy/run).

  basics   over HTTP/2 (curl): login through the WeChat stand-in, a
           cached read and its 304, a write, and the JSON error envelopes
           (404, 401, 413, 400) that nginx and the responders answer
  job      a subscribe message, sent by an admin, reaches the stand-in
           through the worker (its job's status becomes "sent")
  load     logins (the WeChat pool) and reads (the main pool) from
           several threads until SIGINT or --seconds; exits 1 if any
           request failed (anything but 200/201/304), 0 otherwise.  With
           --progress FILE it keeps "READS LOGINS FAILED" (the answered
           reads and logins, the failed requests so far) in FILE, replaced
           a few times a second, so that a caller can tell the load runs
"""

import argparse
import http.client
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time

BASE = "https://localhost"


def curl(method, path, body=None, headers=None):
    """One request over HTTP/2: (status, headers dict, body bytes)."""
    cmd = ["curl", "-sk", "--http2", "-X", method, "-D", "-", "-o", "-",
           "--max-time", "10", BASE + path]
    for k, v in (headers or {}).items():
        cmd += ["-H", "%s: %s" % (k, v)]
    if body is not None:
        cmd += ["--data-binary", "@-"]
    p = subprocess.run(cmd, input=body if body is not None else b"",
                       stdout=subprocess.PIPE, check=True)
    head, _, rest = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    proto, status = lines[0].split()[:2]
    if proto != "HTTP/2":
        raise AssertionError("%s %s: answered over %s, not HTTP/2" % (method, path, proto))
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(status), hdrs, rest


def envelope(method, path, want, body=None, headers=None):
    """A request whose answer must be status `want` and a JSON envelope."""
    status, hdrs, raw = curl(method, path, body, headers)
    if status != want:
        raise AssertionError("%s %s: %d, want %d: %r" % (method, path, status, want, raw[:300]))
    if not hdrs.get("content-type", "").startswith("application/json"):
        raise AssertionError("%s %s: %d is %s, not JSON: %r" % (
            method, path, status, hdrs.get("content-type"), raw[:200]))
    doc = json.loads(raw)
    for k in ("code", "data", "message"):
        if k not in doc:
            raise AssertionError("%s %s: no %r in %r" % (method, path, k, doc))
    return hdrs, doc


def login_body():
    return json.dumps({"code": "deploy-" + secrets.token_hex(8)}).encode()


def basics():
    envelope("GET", "/healthz", 200)
    _, doc = envelope("POST", "/api/v1/user/login", 200, login_body(),
                      {"Content-Type": "application/json"})
    token = doc["data"]["access_token"]
    auth = {"Authorization": "Bearer " + token}
    print("login: user %s, an access token" % doc["data"]["user"]["id"])

    # A cached read, then the same with its ETag: 304, no body.
    path = "/api/v1/data/list?page=1&page_size=5"
    hdrs, _ = envelope("GET", path, 200)
    etag = hdrs.get("etag")
    if not etag:
        raise AssertionError("GET %s: no ETag" % path)
    status, _, raw = curl("GET", path, headers={"If-None-Match": etag})
    if status != 304 or raw:
        raise AssertionError("GET %s with If-None-Match: %d %r, want 304" % (path, status, raw[:100]))
    print("read: 200 with ETag %s, then 304" % etag)

    # A write, and the item it made.
    _, doc = envelope("POST", "/api/v1/data", 201,
                      json.dumps({"title": "deployed", "category": "food"}).encode(),
                      dict(auth, **{"Content-Type": "application/json"}))
    item = doc["data"]["id"]
    envelope("GET", "/api/v1/data/%s" % item, 200)
    print("write: item %s created and read back" % item)

    # Error envelopes: nginx's (404 of an unknown path, 413) and the
    # responders' (401 without a token, 400 for bad JSON), all JSON.
    _, doc = envelope("GET", "/no/such/thing", 404)
    _, doc = envelope("POST", "/api/v1/data", 401,
                      json.dumps({"title": "x"}).encode(),
                      {"Content-Type": "application/json"})
    _, doc = envelope("POST", "/api/v1/data", 413, b"x" * (1 << 20),
                      dict(auth, **{"Content-Type": "application/json"}))
    _, doc = envelope("POST", "/api/v1/data", 400, b"{not json",
                      dict(auth, **{"Content-Type": "application/json"}))
    print("errors: 404, 401, 413 and 400 are JSON envelopes over HTTP/2")


def job():
    _, doc = envelope("POST", "/api/v1/user/login", 200, login_body(),
                      {"Content-Type": "application/json"})
    uid = doc["data"]["user"]["id"]
    subprocess.run(["runuser", "-u", "wxapp", "--", "wxappctl", "user", "grant",
                    str(uid), "admin"], check=True, stdout=subprocess.DEVNULL)
    auth = {"Authorization": "Bearer " + doc["data"]["access_token"],
            "Content-Type": "application/json"}
    _, doc = envelope("POST", "/api/v1/messages/subscribe", 202, json.dumps({
        "user_id": uid, "template_id": "tpl-deploy",
        "data": {"thing1": {"value": "deployed"}}}).encode(), auth)
    jid = doc["data"]["job_id"]
    for _ in range(100):
        _, doc = envelope("GET", "/api/v1/messages/" + jid, 200, headers=auth)
        if doc["data"]["status"] == "sent":
            print("job: message %s sent by the worker (msgid %s)"
                  % (jid, doc["data"]["msgid"]))
            return
        time.sleep(0.2)
    raise AssertionError("job %s: still %s after 20 s" % (jid, doc["data"]["status"]))


class Load:
    def __init__(self):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.ok = {"read": 0, "login": 0}
        self.failures = []

    def record(self, what, status, detail=""):
        with self.lock:
            key = "%s %s" % (what, status)
            self.counts[key] = self.counts.get(key, 0) + 1
            if status not in (200, 201, 304):
                self.failures.append("%s: %s %s" % (what, status, detail))
            else:
                self.ok[what] += 1

    def write_progress(self, path):
        with self.lock:
            line = "%d %d %d\n" % (self.ok["read"], self.ok["login"], len(self.failures))
        with open(path + ".tmp", "w") as f:
            f.write(line)
        os.replace(path + ".tmp", path)

    def progress(self, path):
        while not self.stop.wait(0.2):
            self.write_progress(path)
        self.write_progress(path)

    def loop(self, what, method, path, body_fn, pause):
        ctx = ssl._create_unverified_context()
        while not self.stop.is_set():
            body = body_fn() if body_fn else None
            try:
                c = http.client.HTTPSConnection("localhost", 443, context=ctx, timeout=10)
                c.request(method, path, body=body,
                          headers={"Content-Type": "application/json"} if body else {})
                r = c.getresponse()
                raw = r.read()
                self.record(what, r.status, raw[:200])
                c.close()
            except Exception as e:  # a refused or broken connection fails too
                self.record(what, "error", repr(e))
            self.stop.wait(pause)


def load(seconds, progress=None):
    ld = Load()
    signal.signal(signal.SIGINT, lambda *_: ld.stop.set())
    if progress:
        ld.write_progress(progress)
    threads = [threading.Thread(target=ld.loop, args=(
        "read", "GET", "/api/v1/data/list?page=1&page_size=5", None, 0.02))
        for _ in range(3)]
    threads += [threading.Thread(target=ld.loop, args=(
        "login", "POST", "/api/v1/user/login", login_body, 0.1)) for _ in range(2)]
    if progress:
        threads.append(threading.Thread(target=ld.progress, args=(progress,)))
    for t in threads:
        t.start()
    ld.stop.wait(seconds)
    ld.stop.set()
    for t in threads:
        t.join()
    total = sum(ld.counts.values())
    print("load: %d requests: %s" % (total, ", ".join(
        "%s: %d" % kv for kv in sorted(ld.counts.items()))))
    if ld.failures or total == 0:
        print("load: %d failed:\n  %s" % (len(ld.failures), "\n  ".join(ld.failures[:20])))
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("basics", "job", "load"))
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--progress", metavar="FILE")
    a = ap.parse_args()
    if a.what == "basics":
        basics()
        return 0
    if a.what == "job":
        job()
        return 0
    return load(a.seconds, a.progress)


if __name__ == "__main__":
    sys.exit(main())
