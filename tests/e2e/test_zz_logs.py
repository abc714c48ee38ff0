"""End-to-end: no personal data in any log (issue 9 section 2).

Named to run last: by then the suite has logged users in, stored phone
numbers and e-mail addresses, decrypted data, deleted accounts and broken
every dependency once.  Every log of the stack is then read for an e-mail
address, a phone number or a session_key that the stack holds or handed
out.  The stand-in's own log (it plays WeChat) and the build and test
logs are not the stack's.  No e-mail address at all belongs in a log;
phone numbers and session_keys are looked for among those the stack
holds and those the suite was handed.
"""

import base64
import hashlib
import os
import re

import e2elib as e2e

NOT_THE_STACK = {"wechat.log", "build.log", "make-check.log", "e2e.log",
                 "initdb.log"}
EMAIL_RE = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE_RE = re.compile(rb"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
KEY_RE = re.compile(rb"[A-Za-z0-9+/]{22}==")


def session_key_of(code):
    """What the stand-in hands out for a code (tests/wechat/standin.py)."""
    raw = hashlib.sha256(("session_key:" + code).encode()).digest()[:16]
    return base64.b64encode(raw)


def logs_under(top):
    """Every file under top, in every subdirectory (the pools' logs are in
    log/pool, the ops tests' responders' in log/ops, valgrind's in
    log/memcheck)."""
    for d, _, names in os.walk(top):
        for n in names:
            path = os.path.join(d, n)
            if os.path.isfile(path):    # not a socket left there
                yield path


class Logs(e2e.TestCase):

    def test_no_personal_data_in_any_log(self):
        e2e.need_run_dir()
        e2e.wechat_base()
        # Some of each, now, whatever ran before.
        s = e2e.login()
        r = e2e.call("POST", "/api/v1/user/phone", s, {"code": "p-logs-%d" % s.uid})
        self.assert_envelope(r, 200)
        admin = e2e.make_admin(e2e.login())
        self.assert_envelope(e2e.call("PATCH", "/api/v1/users/%d" % s.uid,
                                      admin, {"email": "logs%d@example.com"
                                              % s.uid}), 200)
        self.assert_envelope(e2e.call("PATCH", "/api/v1/users/%d" % s.uid,
                                      s, {"email": "x@example.com"}), 403)

        emails, phones = set(), set()
        for email, phone in e2e.psql("SELECT coalesce(email, ''), "
                                     "coalesce(phone, '') FROM users"):
            if email:
                emails.add(email.encode())
            if phone:
                phones.add(phone[-11:].encode())
        phones |= {p[-11:].encode() for p in e2e.PHONE_NUMBERS}
        keys = {session_key_of(c) for c in e2e.LOGIN_CODES}
        for k in e2e.redis_cli("EVAL", "local t = {} for _, k in ipairs("
                               "redis.call('KEYS', 'wx:sk:*')) do t[#t+1] = "
                               "redis.call('GET', k) end return t",
                               "0").split():
            keys.add(k.encode())
        self.assertTrue(emails and phones and keys)

        found, read, pool_read = [], 0, 0
        top = os.path.join(e2e.RUN_DIR, "log")
        for path in sorted(logs_under(top)):
            if os.path.basename(path) in NOT_THE_STACK:
                continue
            with open(path, "rb") as f:
                text = f.read()
            read += len(text)
            if os.path.relpath(path, top).startswith("pool" + os.sep):
                pool_read += 1
            for rx, known, what in ((EMAIL_RE, None, "e-mail"),
                                    (PHONE_RE, phones, "phone"),
                                    (KEY_RE, keys, "session_key")):
                seen = set(rx.findall(text))
                for m in seen if known is None else seen & known:
                    found.append("%s %s in %s" % (what, m.decode(),
                                                  os.path.basename(path)))
        self.assertGreater(read, 0, "no log read")
        # The pools' supervisors' logs (what responders print outside
        # log_file, which is log/wxapp.log) are in log/pool: read too,
        # though they may be empty.
        self.assertGreater(pool_read, 0, "the pools' logs (log/pool) not read")
        self.assertEqual(found, [], "; ".join(found[:10]))
