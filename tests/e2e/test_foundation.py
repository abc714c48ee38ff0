"""Foundation (issue 2): /ping, /healthz, routing, request ids, body limits,
the access log and the nginx front (TLS/ALPN, headers)."""

import json
import os
import secrets

import e2elib as e2e

PONG = {"message": "pong"}


class Ping(e2e.TestCase):

    def test_get(self):
        r = e2e.get("/ping")
        body = self.assert_envelope(r, 200, 0, data=PONG, message="ok")
        self.assertEqual(body, {"code": 0, "data": PONG, "message": "ok"})

    def test_get_has_content_length(self):
        r = e2e.get("/ping")
        self.assert_envelope(r, 200, 0, data=PONG)
        self.assertEqual(r.header("Content-Length"), str(len(r.body)),
                         "GET /ping should carry a correct Content-Length: %s" % r.describe())

    def test_get_with_query_string(self):
        r = e2e.get("/ping?a=1&b=%20x")
        self.assert_envelope(r, 200, 0, data=PONG)

    def test_head(self):
        c = e2e.connect()
        try:
            r = e2e.request("HEAD", "/ping", conn=c)
            self.assertEqual(r.status, 200, r.describe())
            self.assertEqual(r.body, b"", r.describe())
            self.assert_common_headers(r)
            # If the HEAD answer had carried a body, this second response on
            # the same connection would be unparseable.
            r2 = e2e.request("GET", "/ping", conn=c)
            self.assert_envelope(r2, 200, 0, data=PONG)
        finally:
            c.close()

    def test_post_echo(self):
        r = e2e.post_json("/ping", {"echo": "hi"})
        self.assert_envelope(r, 200, 0, data={"message": "pong", "echo": "hi"})

    def test_post_echo_unicode(self):
        text = "h\u00e9llo \u4f60\u597d \U0001f600 \"q\" \\ /"
        r = e2e.post_json("/ping", {"echo": text})
        self.assert_envelope(r, 200, 0, data={"message": "pong", "echo": text})

    def test_post_echo_content_type_with_charset(self):
        r = e2e.post_json("/ping", '{"echo":"cs"}',
                          headers={"Content-Type": "application/json; charset=utf-8"})
        self.assert_envelope(r, 200, 0, data={"message": "pong", "echo": "cs"})

    def test_post_chunked_body(self):
        # No Content-Length from the client: nginx buffers the chunked body
        # and passes CONTENT_LENGTH itself, so this is not a 411.
        payload = b'{"echo":"chunky"}'
        req = (b"POST " + (e2e.PREFIX + "/ping").encode() + b" HTTP/1.1\r\n"
               b"Host: " + e2e.HOST_HEADER.encode() + b"\r\n"
               b"Content-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n"
               + b"%x\r\n" % 5 + payload[:5] + b"\r\n"
               + b"%x\r\n" % (len(payload) - 5) + payload[5:] + b"\r\n"
               b"0\r\n\r\n")
        r = e2e.raw_request(req, method="POST", target="/ping (chunked)")
        self.assertIsNotNone(r, "no response to a chunked POST")
        self.assert_envelope(r, 200, 0, data={"message": "pong", "echo": "chunky"})

    def test_post_malformed_json(self):
        r = e2e.post_json("/ping", '{"echo": ')
        body = self.assert_envelope(r, 400, 40001, data=None)
        self.assertIn("at byte", body["message"],
                      "malformed-JSON message should give the byte offset: %s" % r.describe())

    def test_post_malformed_json_offset(self):
        # The error is at a known position: the offset must be a number.
        r = e2e.post_json("/ping", '{"echo": "x",,}')
        body = self.assert_envelope(r, 400, 40001)
        self.assertRegex(body["message"], r"at byte \d+", r.describe())

    def test_post_missing_field(self):
        r = e2e.post_json("/ping", "{}")
        body = self.assert_envelope(r, 400, 40002)
        self.assertIn("echo", body["message"], r.describe())
        self.assertIn("missing", body["message"], r.describe())

    def test_post_field_not_string(self):
        r = e2e.post_json("/ping", '{"echo": 5}')
        body = self.assert_envelope(r, 400, 40002)
        self.assertIn("echo", body["message"], r.describe())
        self.assertIn("must be a string", body["message"], r.describe())

    def test_post_not_an_object(self):
        r = e2e.post_json("/ping", '["echo"]')
        self.assert_envelope(r, 400)

    def test_post_wrong_content_type(self):
        r = e2e.request("POST", "/ping", body='{"echo":"hi"}',
                        headers={"Content-Type": "text/plain"})
        self.assert_envelope(r, 415, 41500)

    def test_post_no_content_type(self):
        r = e2e.request("POST", "/ping", body='{"echo":"hi"}')
        self.assert_envelope(r, 415, 41500)

    def test_post_too_large(self):
        limit = int(e2e.conf_value("max_body_bytes", "65536")) if e2e.RUN_DIR else 65536
        body = b'{"echo":"' + b"a" * (limit + 1 - 11) + b'"}'
        self.assertEqual(len(body), limit + 1)
        r = e2e.post_json("/ping", body)
        self.assert_envelope(r, 413, 41300)

    def test_post_exactly_at_limit(self):
        limit = int(e2e.conf_value("max_body_bytes", "65536")) if e2e.RUN_DIR else 65536
        text = "b" * (limit - 11)
        body = ('{"echo":"%s"}' % text).encode()
        self.assertEqual(len(body), limit)
        r = e2e.post_json("/ping", body)
        self.assert_envelope(r, 200, 0, data={"message": "pong", "echo": text})

    def test_post_no_content_length(self):
        # HTTP/1.1 POST with neither Content-Length nor a body (curl
        # without -d, wx.request without data): nginx passes an empty
        # CONTENT_LENGTH, which is an empty body, not a 411.  /ping wants
        # a JSON object, so it says the body is empty.
        r = e2e.request("POST", "/ping", body=None, content_length=None,
                        headers={"Content-Type": "application/json"})
        self.assert_envelope(r, 400, 40001, message_contains="empty")

    def test_post_no_content_length_raw(self):
        req = (b"POST " + (e2e.PREFIX + "/ping").encode() + b" HTTP/1.1\r\n"
               b"Host: " + e2e.HOST_HEADER.encode() + b"\r\n"
               b"Content-Type: application/json\r\n"
               b"Connection: close\r\n\r\n")
        r = e2e.raw_request(req, method="POST", target="/ping (raw, no length)")
        self.assertIsNotNone(r, "no response")
        self.assert_envelope(r, 400, 40001, message_contains="empty")


class Healthz(e2e.TestCase):

    def test_get(self):
        r = e2e.get("/healthz")
        self.assert_envelope(r, 200, 0, data={"postgres": "ok", "redis": "ok"})

    def test_repeated(self):
        # Hit every responder a few times: all of them must be connected.
        for _ in range(12):
            r = e2e.get("/healthz")
            self.assert_envelope(r, 200, 0, data={"postgres": "ok", "redis": "ok"})

    def test_post_is_405(self):
        r = e2e.post_json("/healthz", "{}")
        self.assert_envelope(r, 405, 40500)
        allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
        self.assertTrue({"GET", "HEAD"} <= allow, "Allow: %r" % r.header("Allow"))


class Routing(e2e.TestCase):

    def test_unknown_path(self):
        r = e2e.get("/nope")
        self.assert_envelope(r, 404, 40400, data=None)

    def test_unknown_nested_path(self):
        r = e2e.get("/nope/deeper/still?x=1")
        self.assert_envelope(r, 404, 40400)

    def test_unknown_path_post(self):
        r = e2e.post_json("/nope", '{"echo":"x"}')
        self.assert_envelope(r, 404, 40400)

    def test_ping_subpath_is_404(self):
        r = e2e.get("/ping/extra")
        self.assert_envelope(r, 404, 40400)

    def test_delete_ping_405(self):
        r = e2e.request("DELETE", "/ping")
        self.assert_envelope(r, 405, 40500)
        allow_hdrs = r.header_all("Allow")
        self.assertEqual(len(allow_hdrs), 1, "want one Allow header: %s" % r.describe())
        allow = {m.strip() for m in allow_hdrs[0].split(",")}
        self.assertTrue({"GET", "HEAD", "POST"} <= allow,
                        "Allow %r must list GET, HEAD and POST" % allow_hdrs[0])

    def test_put_ping_405(self):
        r = e2e.request("PUT", "/ping", body='{"echo":"x"}',
                        headers={"Content-Type": "application/json"})
        self.assert_envelope(r, 405, 40500)
        allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
        self.assertTrue({"GET", "HEAD", "POST"} <= allow, "Allow: %r" % r.header("Allow"))


class RequestId(e2e.TestCase):

    def _rid(self, sent):
        h = {} if sent is None else {"X-Request-Id": sent}
        r = e2e.get("/ping", headers=h)
        self.assert_envelope(r, 200, 0, data=PONG)
        return r.header("X-Request-Id")

    def test_echo_well_formed(self):
        for sent in ("abc-123.X_y", "a" * 64, "0", "._-", "E2E-" + secrets.token_hex(8)):
            got = self._rid(sent)
            self.assertEqual(got, sent, "well-formed id %r must be echoed" % sent)

    def test_replace_malformed(self):
        for sent in ("has space", "a" * 65, "<script>", "a/b", "semi;colon",
                     "caf\u00e9", "x" * 200, ""):
            got = self._rid(sent)
            self.assertNotEqual(got, sent, "malformed id %r must not be echoed" % sent)
            self.assertRegex(got, e2e.REQUEST_ID_RE)

    def test_generated_when_absent(self):
        a = self._rid(None)
        b = self._rid(None)
        self.assertNotEqual(a, b, "two requests got the same generated id %r" % a)

    def test_echo_on_errors(self):
        rid = "err-" + secrets.token_hex(6)
        for method, path, body, ct, status in (
                ("GET", "/nope", None, None, 404),
                ("DELETE", "/ping", None, None, 405),
                ("POST", "/ping", '{"echo": ', "application/json", 400),
                ("POST", "/ping", '{"echo":"x"}', "text/plain", 415)):
            h = {"X-Request-Id": rid}
            if ct:
                h["Content-Type"] = ct
            r = e2e.request(method, path, body=body, headers=h)
            self.assert_envelope(r, status)
            self.assertEqual(r.header("X-Request-Id"), rid, r.describe())

    def test_present_on_nginx_errors(self):
        # 413 is answered by nginx itself: the envelope and a request id
        # must still be there.
        r = e2e.post_json("/ping", b"x" * (70 * 1024),
                          headers={"X-Request-Id": "big-body-1"})
        self.assert_envelope(r, 413, 41300)


class AccessLog(e2e.TestCase):

    KEYS = {"time", "request_id", "method", "path", "status", "duration_us",
            "bytes", "pid", "remote_addr"}

    def setUp(self):
        e2e.need_run_dir()
        self.path = e2e.log_file_path()
        if not self.path:
            self.fail("log_file is not set in %s (and no WXAPP_LOG_FILE override): "
                      "cannot check the access log" % e2e.conf_path())
        if e2e.conf_value("access_log", "on") in ("off", "no", "false", "0"):
            self.skipTest("access_log = off in the stack's config")

    def _find(self, rid, offset, timeout=3.0):
        found = []

        def scan():
            try:
                with open(self.path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                return None
            for line in data.split(b"\n"):
                if rid.encode() in line:
                    found.append(line)
                    try:
                        obj = json.loads(line.decode("utf-8"))
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and obj.get("request_id") == rid \
                            and "status" in obj:
                        return obj
            return None

        obj = e2e.wait_for(scan, timeout, 0.1)
        return obj, found

    def _size(self):
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def test_access_line(self):
        rid = "e2e-log-" + secrets.token_hex(8)
        off = self._size()
        r = e2e.get("/ping", headers={"X-Request-Id": rid})
        self.assert_envelope(r, 200, 0, data=PONG)
        obj, lines = self._find(rid, off)
        self.assertIsNotNone(obj, "no JSON access line with request_id %r in %s "
                             "(lines mentioning it: %r)" % (rid, self.path, lines[:3]))
        missing = self.KEYS - set(obj)
        self.assertFalse(missing, "access line lacks %s: %r" % (sorted(missing), obj))
        self.assertEqual(obj["method"], "GET", obj)
        self.assertEqual(obj["path"], "/ping", obj)
        self.assertEqual(obj["status"], 200, obj)
        for k in ("duration_us", "bytes", "pid"):
            self.assertTrue(isinstance(obj[k], int) and not isinstance(obj[k], bool),
                            "%s must be an integer: %r" % (k, obj))
        self.assertGreaterEqual(obj["duration_us"], 0, obj)
        self.assertGreater(obj["bytes"], 0, obj)
        self.assertGreater(obj["pid"], 1, obj)
        self.assertEqual(obj["remote_addr"], "127.0.0.1", obj)
        self.assertIsInstance(obj["time"], str, obj)
        self.assertEqual(len(lines), 1, "the access line should be one line: %r" % lines)

    def test_access_line_trace_id(self):
        rid = "e2e-trace-" + secrets.token_hex(8)
        trace = secrets.token_hex(16)
        off = self._size()
        r = e2e.get("/ping", headers={
            "X-Request-Id": rid,
            "traceparent": "00-%s-%s-01" % (trace, secrets.token_hex(8))})
        self.assert_envelope(r, 200, 0, data=PONG)
        obj, lines = self._find(rid, off)
        self.assertIsNotNone(obj, "no access line for %r" % rid)
        self.assertEqual(obj.get("trace_id"), trace, obj)
        # A malformed traceparent starts a trace of the request's own.
        rid = "e2e-trace-" + secrets.token_hex(8)
        off = self._size()
        e2e.get("/ping", headers={"X-Request-Id": rid,
                                  "traceparent": "00-xyz-01"})
        obj, _ = self._find(rid, off)
        self.assertIsNotNone(obj, "no access line for %r" % rid)
        self.assertRegex(obj.get("trace_id", ""), "^[0-9a-f]{32}$", obj)
        self.assertNotEqual(obj["trace_id"], trace)

    def test_access_line_error_status(self):
        rid = "e2e-log404-" + secrets.token_hex(8)
        off = self._size()
        r = e2e.get("/nope?q=1", headers={"X-Request-Id": rid})
        self.assert_envelope(r, 404, 40400)
        obj, lines = self._find(rid, off)
        self.assertIsNotNone(obj, "no access line for %r in %s: %r" % (rid, self.path, lines[:3]))
        self.assertEqual(obj["status"], 404, obj)
        self.assertEqual(obj["method"], "GET", obj)
        self.assertTrue(obj["path"].startswith("/nope"), obj)

    def test_generated_id_logged(self):
        off = self._size()
        r = e2e.get("/ping")
        self.assert_envelope(r, 200, 0)
        rid = r.header("X-Request-Id")
        obj, lines = self._find(rid, off)
        self.assertIsNotNone(obj, "generated id %r not in the access log %s" % (rid, self.path))


class Front(e2e.TestCase):
    """What nginx adds: TLS with HTTP/2, security headers."""

    def test_alpn_h2(self):
        if e2e.SCHEME != "https":
            self.skipTest("not https")
        import socket
        s = socket.create_connection((e2e.HOST, e2e.PORT), timeout=e2e.TIMEOUT)
        t = e2e.ssl_context(alpn=["h2", "http/1.1"]).wrap_socket(s, server_hostname=e2e.HOST)
        try:
            self.assertEqual(t.selected_alpn_protocol(), "h2",
                             "nginx should offer HTTP/2 (ALPN h2); TLS %s" % t.version())
            self.assertIn(t.version(), ("TLSv1.2", "TLSv1.3"))
        finally:
            t.close()

    def test_nginx_errors_are_envelopes(self):
        # Answers nginx produces itself (the request never reaches a
        # responder) must still be the JSON envelope with one request id,
        # and never a 5xx for a client mistake.
        host = e2e.HOST_HEADER.encode()
        pfx = e2e.PREFIX.encode()

        def req(first, *hdrs, body=b""):
            return b"\r\n".join([first, b"Host: " + host] + list(hdrs)
                                + [b"Connection: close"]) + b"\r\n\r\n" + body

        cases = [
            ("bad request line", b"GARBAGE\r\n\r\n"),
            ("no Host header", b"GET " + pfx + b"/ping HTTP/1.1\r\nConnection: close\r\n\r\n"),
            ("header too large", req(b"GET " + pfx + b"/ping HTTP/1.1",
                                     b"Cookie: " + b"c" * 40000)),
            ("URI too long", req(b"GET " + pfx + b"/ping?" + b"q" * 20000 + b" HTTP/1.1")),
            ("bad chunked body", req(b"POST " + pfx + b"/ping HTTP/1.1",
                                     b"Content-Type: application/json",
                                     b"Transfer-Encoding: chunked", body=b"zz\r\n{}\r\n0\r\n\r\n")),
            ("Transfer-Encoding gzip", req(b"POST " + pfx + b"/ping HTTP/1.1",
                                           b"Content-Type: application/json",
                                           b"Transfer-Encoding: gzip", body=b"{}")),
            ("HTTP/9.9", req(b"GET " + pfx + b"/ping HTTP/9.9")),
            ("TRACE", req(b"TRACE " + pfx + b"/ping HTTP/1.1")),
            ("negative Content-Length", req(b"POST " + pfx + b"/ping HTTP/1.1",
                                            b"Content-Type: application/json",
                                            b"Content-Length: -1", body=b"{}")),
        ]
        problems = []
        for label, data in cases:
            r = e2e.raw_request(data, timeout=5.0, target=label)
            if r is None:
                problems.append("%s: no answer" % label)
                continue
            try:
                self.assertLess(r.status, 500, "5xx for a client mistake: %s" % r.describe(120))
                self.assert_envelope(r, r.status)
            except AssertionError as e:
                problems.append("%s -> HTTP %s, Content-Type %r, body %r (%s)"
                                % (label, r.status, r.header("Content-Type"),
                                   r.body[:40], str(e).split(":")[0]))
        self.assertFalse(problems, "%d of %d nginx-level errors are not envelopes: %s"
                         % (len(problems), len(cases), " || ".join(problems)))

    def test_nosniff(self):
        r = e2e.get("/ping")
        self.assertEqual((r.header("X-Content-Type-Options") or "").lower(), "nosniff",
                         "security header X-Content-Type-Options: nosniff missing: %s"
                         % r.describe())
