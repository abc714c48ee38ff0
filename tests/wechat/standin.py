#!/usr/bin/env python3
"""A local stand-in for WeChat's server API (api.weixin.qq.com), for tests.

The real WeChat servers are unreachable from test machines, so the stack and
the tests point `wechat_api_base` at this server instead.  It answers with
WeChat's exact request and response shapes (see
../../../shared/reference/wechat-api.md for the facts) and lets the tests pick
errors, latency and failures.  Python 3 standard library only.

    python3 tests/wechat/standin.py --listen 127.0.0.1:PORT \\
        --appid APPID --secret SECRET [--pidfile F] [--quiet]

Endpoints (WeChat answers HTTP 200 even for errors; an error is
`{"errcode": N, "errmsg": "..."}`):

  GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
       auth.code2Session.  Success: {"openid", "session_key"[, "unionid"]},
       no errcode.  The path is case-sensitive: /sns/jsCode2Session -> 40066.
  GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=
       -> {"access_token", "expires_in": 7200}.  Every call issues a new token;
       the previous one stays valid for `overlap_s` seconds, older ones die.
  POST /cgi-bin/stable_token  {"grant_type","appid","secret","force_refresh"}
       -> the same unexpired token on repeated calls; a new one (killing the
       previous) on force_refresh or after expiry.  Independent of
       /cgi-bin/token.
  POST /wxa/business/getuserphonenumber?access_token=T  {"code": "..."}
       -> {"errcode":0,"errmsg":"ok","phone_info":{...}}.
  POST /cgi-bin/message/subscribe/send?access_token=T
       subscribeMessage.send, body {"touser", "template_id", "data":
       {"<key>": {"value": "..."}, ...}[, "page"][, "miniprogram_state":
       developer|trial|formal][, "lang": zh_CN|en_US|zh_HK|zh_TW]}
       -> {"errcode":0,"errmsg":"ok","msgid":N}, N counting up from
       3000000000000000000 per delivered message (a JSON number past 2**53,
       as WeChat's are).  Checked in this order (after the token: 41001,
       40001, 42001; a body that is not a JSON object: 47001):
         touser missing/empty/not a string   40003 invalid openid
         touser starting with "refuse"       43101 user refuse to accept the
                                             msg (refused, or a one-time
                                             subscription used up)
         template_id missing/empty, or       40037 invalid template_id
           starting with "bad"
         data missing/empty/not an object    47003 argument invalid! data is
                                             empty
         data.<key> not {"value": non-empty  47003 argument invalid!
           string}                           data.<key>.value is empty
         page not a string                   47001; containing "://": 41030
                                             invalid page
         miniprogram_state / lang not one    47001
           of the values above
       Any other non-empty touser is accepted (code2Session's openids and
       literal ones alike).

       Dedup by job (the stand-in's own, NOT a WeChat feature: real WeChat
       delivers every send).  A sender may name the job a send belongs to in
       the header `X-Wxapp-Job: <id>` (an opaque string of 1-128 characters;
       longer: 47001; empty: as if absent).  The first send of a job that
       passes every check is delivered and its msgid remembered; a later one
       with the same id that would also succeed is not delivered again: it
       answers the same msgid and counts as "deduplicated".  So tests can tell
       a sender that resends a job (fine) from a message delivered twice.
       Sends without the header are always delivered.
  POST /wxa/msg_sec_check?access_token=T
       msgSecCheck v2, body {"version": 2, "openid", "scene": 1..4,
       "content": 1..2500 characters}
       -> {"errcode":0,"errmsg":"ok","trace_id":"<24 hex>","result":
       {"suggest":S,"label":L},"detail":[{"strategy":"keyword","errcode":0,
       "suggest":S,"label":L,"prob":90,"keyword":K}]}: content containing
       "RISKY" -> S "risky", L 20001, K "RISKY"; else containing "REVIEW" ->
       "review", 20002, "REVIEW"; else "pass", 100, "".  Checked in this
       order (after sec_fail and the token; a body that is not a JSON
       object: 47001): version not 2 -> 47001, openid missing/empty/not a
       string -> 40003, scene not an integer 1..4 -> 47001, content not a
       string of 1..2500 characters -> 47001.
  POST /wxa/media_check_async?access_token=T
       mediaCheckAsync v2, body {"media_url": "https://...", "media_type":
       1 (audio) | 2 (image), "version": 2, "openid": non-empty, "scene":
       1..4}; anything else (incl. a media_url not starting with https://)
       -> 47001.  -> {"errcode":0,"errmsg":"ok","trace_id":"<24 hex>"} at
       once; then, media_delay_ms later, on a background thread, the verdict
       is POSTed as a message push (see below) to push_url:
         {"ToUserName":"gh_standin","FromUserName":<openid>,"CreateTime":
          <now>,"MsgType":"event","Event":"wxa_media_check","appid":<appid>,
          "trace_id":<trace_id>,"version":2,"result":{"suggest":S,"label":L},
          "detail":[{"strategy":"content_model","errcode":0,"suggest":S,
          "label":L,"prob":90}]}
       with S/L "risky"/20001 when media_url contains "risky", else
       "review"/20002 when it contains "review", else "pass"/100.  A
       media_url containing "never" gets no callback at all.  In the XML
       format the same fields are elements (ints without CDATA; result and
       the detail entry as nested elements).  One attempt only (no retries);
       the outcome is logged in /__pushes.  The push uses the settings at
       the time it is sent; a /__reset in between cancels it.

Message push (WeChat -> the backend's callback URL), as WeChat sends it:
query signature = sha1(sorted [token, timestamp, nonce] joined), lower-case
hex, plus timestamp and nonce; in safe mode also encrypt_type=aes and
msg_signature = sha1(sorted [token, timestamp, nonce, Encrypt] joined), and
the body is {"ToUserName", "Encrypt"} (JSON) or <xml><ToUserName/><Encrypt/>
</xml>, Encrypt = base64(AES-256-CBC(key = b64decode(EncodingAESKey + "="),
iv = key[:16], 16 random bytes | 4-byte big-endian length | message | appid,
PKCS#7-padded to 32 bytes)).  TLS certificates are not verified (the backend
has a self-signed one).  Importable by tests (`import standin`):

  push_signature(*strings)         lower-case hex sha1 of the sorted strings
  push_encrypt(aes_key_43, appid, message_bytes, rand16=None) -> base64 text
                                   (AES through the `openssl` command)
  push_decrypt(aes_key_43, b64)    -> (message_bytes, appid); ValueError when
                                   it is not a valid encryption
  push_xml(message)                <xml><Name><![CDATA[v]]></Name>...</xml>
                                   (ints bare, dicts nested, lists repeated)
  build_push(message, token, mode, fmt, aes_key=None, appid=None,
             timestamp=None, nonce=None, tamper=None, raw=None)
                                   -> (query_string, body_bytes, content_type);
                                   message: a dict, or a str/bytes body used
                                   as is (or give it as raw=, message then
                                   only gives ToUserName); mode
                                   "plain"|"safe", fmt "json"|"xml";
                                   tamper "signature"|
                                   "msg_signature"|"encrypt" flips one
                                   character of that value after signing
  send_push(url, query, body, ctype, timeout=10) -> (status, body bytes);
                                   HTTP(S) POST, no TLS verification, no
                                   proxy; connection errors raise OSError

Login codes (js_code) pick the answer:

  invalid...   40029 invalid code          risky...  40226 code blocked
  busy...      -1 system error             quota...  45011 minute-quota
  garbage...   HTTP 200, a non-JSON body   trunc...  HTTP 200, truncated JSON
  http500...   HTTP 500 with an HTML page  slow<N>-  sleep N ms, then succeed
  ...union...  success includes "unionid"
  user-<name>-<anything>   openid/unionid derived from <name> only (the same
                           user logging in with two codes gets one openid)
  anything else            openid derived from the whole code

A code is single use: once exchanged successfully, using it again answers
40163 "code been used" (phone codes: 40029).  An error answer does not consume
the code (WeChat never issued it as a valid code), so retrying e.g. a `busy`
code gives -1 again.

Test control (never counted in /__stats):

  POST /__control  JSON, any of:
       latency_ms: N          delay every WeChat endpoint answer by N ms
       fail: "none"|"busy"|"http500"|"garbage"|"timeout"
                              break every WeChat endpoint (timeout = sleep
                              30 s, then answer normally)
       overlap_s: N           how long a replaced /cgi-bin/token token lives on
                              (default 300)
       token_ttl_s: N         real lifetime of access tokens (default 7200);
                              applies to tokens already issued; past it a token
                              answers 42001
       expires_in_s: N        the expires_in reported to clients (default
                              7200, what WeChat says), independent of
                              token_ttl_s so tests can make a token expire
                              before the client expects it
       invalidate_tokens: true  kill every access token now (next use: 40001)
       send_fail: "none"|"busy"|"quota"|"http500"|"garbage"|"slow"|"refuse"|
                  "invalid_openid"
                              break subscribe/send only: busy = -1 system
                              error, quota = 45009 reach max api daily quota
                              limit, http500 / garbage as for `fail`, slow =
                              sleep send_slow_ms then answer normally,
                              refuse = 43101 and invalid_openid = 40003 for
                              every send.  Taken at the start of each send
                              call (after latency_ms and `fail`, before the
                              token check); a send failed this way is not
                              delivered.  Given without send_fail_count, it
                              sets send_fail_count to 0.
       send_fail_count: N     integer >= 0: send_fail applies to the next N
                              send calls only, then send_fail goes back to
                              "none" by itself (counted exactly under
                              concurrency); 0 (default): every call until
                              changed
       send_slow_ms: N        how long send_fail=slow sleeps (default 5000)
       sec_fail: "none"|"busy"|"timeout"|"http500"
                              break msg_sec_check only (busy = -1, timeout =
                              sleep 30 s then answer normally, http500 as for
                              `fail`); taken like send_fail (after latency_ms
                              and `fail`, before the token check); given
                              without sec_fail_count, it sets it to 0
       sec_fail_count: N      as send_fail_count, for sec_fail
       media_delay_ms: N      delay before a media_check_async verdict is
                              pushed (default 200)
       push_url: "http(s)://..."  the backend's message push URL ("" =
                              none, the default: verdicts are logged as not
                              sent)
       push_token: "..."      the Token of the push configuration (default "")
       push_aes_key: "..."    the EncodingAESKey: 43 characters of
                              [A-Za-z0-9], or "" (default)
       push_mode: "plain"|"safe"  (default "safe")
       push_format: "json"|"xml"  (default "json")
       -> {"ok": true, "settings": {...}}
  GET  /__control  -> {"settings": {...}}
  GET  /__traces   -> {"calls": [{"path", "traceparent"}, ...]}: the W3C
                       traceparent header of the last 200 WeChat calls
                       (null when a call had none), and "tracestate"
                       when the call sent one
  GET  /__stats    -> {"calls": {"<path>": n, ...}, "total": n,
                       "max_inflight": the most WeChat calls answered at once}
  GET  /__sends    -> what subscribe/send delivered, in arrival order:
                      {"delivered": n, "deduplicated": n, "duplicates": n,
                       "repeats": n, "sends": [{"touser", "template_id",
                       "page", "data", "miniprogram_state", "lang", "job",
                       "msgid", "at"}, ...]}
                      Only delivered sends are listed (absent optional fields
                      and job are null; "at" is the unix time it was
                      recorded, after any latency/slow sleep, so a sender
                      killed while waiting still had it delivered).  Errors
                      are only counted in /__stats.  "duplicates": delivered
                      sends whose job id an earlier delivered send had (0 by
                      construction, given the dedup above); "repeats":
                      delivered sends without a job id whose (touser,
                      template_id, data) equals an earlier delivered send's.
  GET  /__pushes   -> the media_check_async verdict pushes, in the order
                      they finished: {"count": n, "pushes": [{"url",
                      "trace_id", "openid", "suggest", "label", "mode",
                      "format", "status", "body", "error", "at"}, ...]}
                      status: the HTTP status the backend answered, body:
                      its answer as text; both null when nothing was
                      answered, error then says why (push_url not set, no
                      push_aes_key in safe mode, connection error...), else
                      error is null.  "at": unix time of the outcome.
  POST /__push     JSON {"message": {...}} or {"raw": "<body text, signed
                      (and in safe mode encrypted) as is>"}, optional
                      overrides of the push_* settings "mode", "format",
                      "token", "aes_key", "appid" (default: the --appid),
                      "timestamp", "nonce" (strings or integers), "tamper":
                      "signature"|"msg_signature"|"encrypt" (the latter two
                      in safe mode only).  Builds the push with build_push,
                      POSTs it to push_url and answers
                      {"status": N, "body": "<the backend's answer>",
                       "query": "<query string sent>", "sent": "<body sent>"}
                      (status and body null, plus "error", when the backend
                      could not be reached).  400 when push_url is not set,
                      a value is bad, or safe mode has no AES key.  Not
                      logged in /__pushes.
  POST /__reset    -> counters, used codes, tokens, settings to defaults, and
                      the send log, msgid counter, job memory and push log
                      cleared (pending verdict pushes are dropped)
"""

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JSON_CT = "application/json; charset=utf-8"

# How long the "timeout" failure mode sleeps before answering.
TIMEOUT_SLEEP_S = 30.0

DEFAULT_SETTINGS = {
    "latency_ms": 0,        # added to every WeChat endpoint answer
    "fail": "none",         # global failure injection
    "overlap_s": 300,       # old /cgi-bin/token token stays valid this long
    "token_ttl_s": 7200,    # real server-side lifetime of an access token
    "expires_in_s": 7200,   # lifetime the answers *report*
    "send_fail": "none",    # failure injection for subscribe/send only
    "send_fail_count": 0,   # >0: send_fail for that many more calls only
    "send_slow_ms": 5000,   # how long send_fail=slow sleeps
    "sec_fail": "none",     # failure injection for msg_sec_check only
    "sec_fail_count": 0,    # >0: sec_fail for that many more calls only
    "media_delay_ms": 200,  # media_check_async verdict push delay
    "push_url": "",         # the backend's message push URL ("" = none)
    "push_token": "",       # message push Token
    "push_aes_key": "",     # message push EncodingAESKey (43 chars) or ""
    "push_mode": "safe",    # "plain" | "safe"
    "push_format": "json",  # "json" | "xml"
}
FAIL_MODES = ("none", "busy", "http500", "garbage", "timeout")
SEND_FAIL_MODES = ("none", "busy", "quota", "http500", "garbage", "slow",
                   "refuse", "invalid_openid")
SEC_FAIL_MODES = ("none", "busy", "timeout", "http500")
# <prefix>_fail / <prefix>_fail_count pairs, and their modes.
FAULT_MODES = {"send": SEND_FAIL_MODES, "sec": SEC_FAIL_MODES}

# Content security (msgSecCheck / mediaCheckAsync v2)
SEC_SCENES = (1, 2, 3, 4)
SEC_CONTENT_MAX = 2500
MEDIA_TYPES = (1, 2)            # 1 audio, 2 image
# (marker, suggest, label), first match wins; else ("pass", 100).
SEC_MARKERS = (("RISKY", "risky", 20001), ("REVIEW", "review", 20002))
MEDIA_MARKERS = (("risky", "risky", 20001), ("review", "review", 20002))
MEDIA_NEVER = "never"           # a media_url with this gets no callback
PUSH_TO_USER = "gh_standin"

# Message push
PUSH_MODES = ("plain", "safe")
PUSH_FORMATS = ("json", "xml")
PUSH_CTYPES = {"json": "application/json", "xml": "text/xml"}
PUSH_TAMPER = ("signature", "msg_signature", "encrypt")
AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
PUSH_BLOCK = 32                 # WeChat's PKCS#7 block size (not AES's 16)

# subscribeMessage.send
FIRST_MSGID = 3000000000000000000
MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")
JOB_HEADER = "X-Wxapp-Job"
JOB_MAX = 128

# WeChat error messages (errmsg) used below.
ERR = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40066: "invalid url",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "code blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    41030: "invalid page",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit",
    47001: "data format error",
    47003: "argument invalid!",     # WeChat appends what is wrong
}

HTML_500 = (b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n"
            b"<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n"
            b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
GARBAGE = b"<html><body>this is not JSON</body></html>\n"


# --------------------------------------------------------------------------
# Deterministic identities
# --------------------------------------------------------------------------

def _sha256(text):
    return hashlib.sha256(text.encode("utf-8")).digest()


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# `user-<name>-...` anywhere at a code's start or after a '-' (so prefixes
# combine: `slow2000-user-alice-1` is alice, slowly).
USER_RE = re.compile(r"(?:^|-)user-([^-]+)-")
SLOW_RE = re.compile(r"^slow(\d+)-")


def identity_name(code):
    """The name openid/unionid derive from: <name> of user-<name>-..., else the code."""
    m = USER_RE.search(code)
    return m.group(1) if m else code


def make_openid(name):
    # WeChat openids are 28 characters, start with "o", base64url alphabet.
    return "o" + _b64url(_sha256("openid:" + name))[:27]


def make_unionid(name):
    return "u" + _b64url(_sha256("unionid:" + name))[:27]


def make_session_key(code):
    # WeChat session_key: standard base64 of 16 random bytes (24 characters,
    # may contain '+' and '/'), here derived from the code: a fresh key per
    # login, reproducible by tests.
    return base64.b64encode(_sha256("session_key:" + code)[:16]).decode("ascii")


def make_phone(code):
    """An 11-digit mainland China mobile number derived from the phone code."""
    h = int.from_bytes(_sha256("phone:" + code)[:8], "big")
    return "1" + "3456789"[h % 7] + "%09d" % ((h // 7) % 10 ** 9)


def new_access_token():
    # Real tokens are ~136-157 characters of [A-Za-z0-9_-]; clients must keep
    # at least 512 bytes for one.
    return secrets.token_urlsafe(105)       # 140 characters


# --------------------------------------------------------------------------
# Message push (WeChat -> the backend), importable by tests
# --------------------------------------------------------------------------

def push_signature(*strings):
    """Lower-case hex sha1 of the strings sorted lexicographically and
    concatenated (signature and msg_signature)."""
    return hashlib.sha1("".join(sorted(str(x) for x in strings))
                        .encode("utf-8")).hexdigest()


def _aes_key(aes_key_43):
    """The 32-byte AESKey of an EncodingAESKey; ValueError when bad."""
    if not isinstance(aes_key_43, str) or len(aes_key_43) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    key = base64.b64decode(aes_key_43 + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey does not decode to 32 bytes")
    return key


def _openssl_aes(key, data, decrypt):
    """AES-256-CBC, iv = key[:16], no padding, by the openssl command."""
    cmd = ["openssl", "enc", "-aes-256-cbc", "-K", key.hex(),
           "-iv", key[:16].hex(), "-nopad"]
    if decrypt:
        cmd.append("-d")
    r = subprocess.run(cmd, input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise ValueError("openssl enc failed: %s"
                         % r.stderr.decode("utf-8", "replace").strip())
    return r.stdout


def push_encrypt(aes_key_43, appid, message_bytes, rand16=None):
    """WeChat's Encrypt value: base64 of AES-256-CBC(16 random bytes |
    4-byte big-endian length | message | appid, PKCS#7 to 32 bytes)."""
    key = _aes_key(aes_key_43)
    if isinstance(message_bytes, str):
        message_bytes = message_bytes.encode("utf-8")
    if rand16 is None:
        rand16 = os.urandom(16)
    if len(rand16) != 16:
        raise ValueError("rand16 must be 16 bytes")
    plain = (rand16 + len(message_bytes).to_bytes(4, "big") + message_bytes
             + appid.encode("utf-8"))
    pad = PUSH_BLOCK - len(plain) % PUSH_BLOCK      # 1..32
    plain += bytes([pad]) * pad
    return base64.b64encode(_openssl_aes(key, plain, False)).decode("ascii")


def push_decrypt(aes_key_43, b64):
    """The reverse of push_encrypt: (message_bytes, appid).  ValueError when
    the text is not base64 of whole blocks, or padding/length are wrong."""
    key = _aes_key(aes_key_43)
    try:
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, TypeError):
        raise ValueError("Encrypt is not base64")
    if not raw or len(raw) % 16:
        raise ValueError("Encrypt is not whole AES blocks")
    plain = _openssl_aes(key, raw, True)
    pad = plain[-1]
    if not 1 <= pad <= PUSH_BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad PKCS#7 padding")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise ValueError("plaintext too short")
    n = int.from_bytes(plain[16:20], "big")
    if 20 + n > len(plain):
        raise ValueError("message length past the end")
    return plain[20:20 + n], plain[20 + n:].decode("utf-8", "replace")


def _cdata(text):
    # "]]>" cannot appear inside one CDATA section: split it across two.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml_fields(message):
    out = []
    for name, value in message.items():
        for v in (value if isinstance(value, list) else [value]):
            if isinstance(v, dict):
                inner = _xml_fields(v)
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                inner = str(v)
            else:
                inner = _cdata(str(v))
            out.append("<%s>%s</%s>" % (name, inner, name))
    return "".join(out)


def push_xml(message):
    """<xml><Name><![CDATA[value]]></Name>...</xml>: ints without CDATA,
    dicts as nested elements, a list as the element repeated."""
    return "<xml>" + _xml_fields(message) + "</xml>"


def _flip(text):
    """text with its middle character changed (hex and base64 stay valid)."""
    i = len(text) // 2
    return text[:i] + ("1" if text[i] == "0" else "0") + text[i + 1:]


def build_push(message, token, mode, fmt, aes_key=None, appid=None,
               timestamp=None, nonce=None, tamper=None, raw=None):
    """A message push request as WeChat signs it:
    (query_string, body_bytes, content_type).  See the module docstring.
    raw (str/bytes), when given, is the message text instead of message's
    (message then only gives the safe-mode ToUserName)."""
    if mode not in PUSH_MODES:
        raise ValueError("mode must be one of " + ", ".join(PUSH_MODES))
    if fmt not in PUSH_FORMATS:
        raise ValueError("fmt must be one of " + ", ".join(PUSH_FORMATS))
    if tamper is not None and tamper not in PUSH_TAMPER:
        raise ValueError("tamper must be one of " + ", ".join(PUSH_TAMPER))
    if tamper in ("msg_signature", "encrypt") and mode != "safe":
        raise ValueError("tamper=%s needs safe mode" % tamper)
    if raw is not None:
        to_user = message.get("ToUserName", "") if isinstance(message, dict) else ""
        text = raw.encode("utf-8") if isinstance(raw, str) else raw
    elif isinstance(message, dict):
        to_user = message.get("ToUserName", "")
        if fmt == "json":
            text = json.dumps(message, ensure_ascii=False).encode("utf-8")
        else:
            text = push_xml(message).encode("utf-8")
    else:
        to_user = ""
        text = message.encode("utf-8") if isinstance(message, str) else message
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    if nonce is None:
        nonce = "".join(secrets.choice("0123456789") for _ in range(10))
    nonce = str(nonce)
    token = token or ""

    params = [("signature", push_signature(token, timestamp, nonce)),
              ("timestamp", timestamp), ("nonce", nonce)]
    if mode == "plain":
        body = text
    else:
        if not aes_key:
            raise ValueError("safe mode needs an EncodingAESKey")
        encrypt = push_encrypt(aes_key, appid or "", text)
        params += [("encrypt_type", "aes"),
                   ("msg_signature",
                    push_signature(token, timestamp, nonce, encrypt))]
        if tamper == "encrypt":
            encrypt = _flip(encrypt)
        if fmt == "json":
            body = json.dumps({"ToUserName": to_user, "Encrypt": encrypt},
                              ensure_ascii=False).encode("utf-8")
        else:
            body = ("<xml><ToUserName>%s</ToUserName><Encrypt>%s</Encrypt></xml>"
                    % (_cdata(str(to_user)), _cdata(encrypt))).encode("utf-8")
    if tamper in ("signature", "msg_signature"):
        params = [(k, _flip(v) if k == tamper else v) for k, v in params]
    return urllib.parse.urlencode(params), body, PUSH_CTYPES[fmt]


# No proxy (the backend is local) and no TLS verification (self-signed).
_PUSH_OPENER = urllib.request.build_opener(
    urllib.request.ProxyHandler({}),
    urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))


def send_push(url, query, body, ctype, timeout=10):
    """POST a built push to url: (status, body bytes).  An HTTP error status
    is an answer too; a connection failure or timeout raises OSError."""
    full = url + ("&" if "?" in url else "?") + query if query else url
    req = urllib.request.Request(full, data=body, method="POST",
                                 headers={"Content-Type": ctype})
    try:
        with _PUSH_OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        try:
            return e.code, e.read()
        finally:
            e.close()


# --------------------------------------------------------------------------
# Shared state (one lock; handlers run on many threads)
# --------------------------------------------------------------------------

class State:
    def __init__(self, appid, secret):
        self.appid = appid
        self.secret = secret
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.settings = dict(DEFAULT_SETTINGS)
            self.calls = {}             # path -> count
            self.traces = []            # (path, traceparent), the last 200
            # WeChat calls being answered now: live, so kept across a reset
            # (a call still sleeping must not leave it negative).
            self.inflight = getattr(self, "inflight", 0)
            self.max_inflight = self.inflight   # the most at once since the reset
            self.used_login = set()     # consumed wx.login codes
            self.used_phone = set()     # consumed getPhoneNumber codes
            # token -> {"issued": t, "dies_at": None | t}.  dies_at is set
            # when the token is replaced (end of its overlap window).
            self.tokens = {}
            self.current_token = None   # latest /cgi-bin/token token
            self.current_stable = None  # latest /cgi-bin/stable_token token
            # subscribe/send
            self.sends = []             # delivered sends, in arrival order
            self.next_msgid = FIRST_MSGID
            self.jobs = {}              # X-Wxapp-Job id -> msgid
            self.deduplicated = 0       # sends answered from self.jobs
            # media_check_async verdict pushes, in the order they finished;
            # push_gen cancels the pushes pending at a reset.
            self.pushes = []
            self.push_gen = getattr(self, "push_gen", 0) + 1

    def count(self, path, traceparent=None, tracestate=None):
        with self.lock:
            self.calls[path] = self.calls.get(path, 0) + 1
            call = {"path": path, "traceparent": traceparent}
            if tracestate is not None:
                call["tracestate"] = tracestate
            self.traces.append(call)
            del self.traces[:-200]

    def enter(self, delta):
        with self.lock:
            self.inflight += delta
            self.max_inflight = max(self.max_inflight, self.inflight)

    def setting(self, key):
        with self.lock:
            return self.settings[key]

    # -- access tokens ----------------------------------------------------

    def issue_token(self):
        """/cgi-bin/token: a new token; the previous lives on for overlap_s,
        anything older is dead at once."""
        now = time.time()
        with self.lock:
            prev = self.current_token
            for tok in [t for t, info in self.tokens.items()
                        if info.get("kind") == "token" and t != prev]:
                del self.tokens[tok]
            if prev in self.tokens:
                self.tokens[prev]["dies_at"] = now + self.settings["overlap_s"]
            tok = new_access_token()
            self.tokens[tok] = {"kind": "token", "issued": now, "dies_at": None}
            self.current_token = tok
            return tok, self.settings["expires_in_s"]

    def stable_token(self, force_refresh):
        """/cgi-bin/stable_token: the current one while unexpired, else (or on
        force_refresh) a new one that kills the previous immediately.
        expires_in is what is left of the reported lifetime."""
        now = time.time()
        with self.lock:
            cur = self.current_stable
            info = self.tokens.get(cur)
            if (force_refresh or info is None
                    or now - info["issued"] >= self.settings["token_ttl_s"]):
                if cur in self.tokens:
                    del self.tokens[cur]
                cur = new_access_token()
                info = {"kind": "stable", "issued": now, "dies_at": None}
                self.tokens[cur] = info
                self.current_stable = cur
            left = self.settings["expires_in_s"] - (now - info["issued"])
            return cur, max(1, int(left))

    def check_token(self, tok):
        """0 when usable, else WeChat's errcode (40001 invalid / not latest,
        42001 expired)."""
        now = time.time()
        with self.lock:
            info = self.tokens.get(tok)
            if info is None:
                return 40001
            if info["dies_at"] is not None and now >= info["dies_at"]:
                return 40001
            if now - info["issued"] >= self.settings["token_ttl_s"]:
                return 42001
            return 0

    def invalidate_tokens(self):
        with self.lock:
            self.tokens.clear()
            self.current_token = None
            self.current_stable = None

    # -- subscribe/send ---------------------------------------------------

    def take_fault(self, prefix):
        """The <prefix>_fail mode for this call (prefix "send" or "sec");
        counts one call off <prefix>_fail_count (back to "none" when it
        reaches 0)."""
        fail, count = prefix + "_fail", prefix + "_fail_count"
        with self.lock:
            mode = self.settings[fail]
            if mode != "none" and self.settings[count] > 0:
                self.settings[count] -= 1
                if self.settings[count] == 0:
                    self.settings[fail] = "none"
            return mode

    def deliver(self, entry):
        """Record a send that passed every check and return its msgid; a job
        id already delivered is not delivered again (its msgid comes back)."""
        job = entry["job"]
        with self.lock:
            if job is not None and job in self.jobs:
                self.deduplicated += 1
                return self.jobs[job]
            msgid = self.next_msgid
            self.next_msgid += 1
            if job is not None:
                self.jobs[job] = msgid
            entry["msgid"] = msgid
            entry["at"] = time.time()
            self.sends.append(entry)
            return msgid

    def send_log(self):
        """GET /__sends.  duplicates and repeats are computed from the log
        itself, not from the dedup memory, so they check it."""
        with self.lock:
            sends = [dict(s) for s in self.sends]
            deduplicated = self.deduplicated
        jobs, seen = set(), set()
        duplicates = repeats = 0
        for s in sends:
            same = (s["touser"], s["template_id"],
                    json.dumps(s["data"], sort_keys=True, ensure_ascii=False))
            if s["job"] is not None:
                duplicates += s["job"] in jobs
                jobs.add(s["job"])
            elif same in seen:
                repeats += 1
            seen.add(same)
        return {"delivered": len(sends), "deduplicated": deduplicated,
                "duplicates": duplicates, "repeats": repeats, "sends": sends}

    # -- media_check_async verdict pushes ----------------------------------

    def push_settings(self, gen):
        """The push_* settings now, or None when a reset came after gen."""
        with self.lock:
            if gen != self.push_gen:
                return None
            return {k: v for k, v in self.settings.items()
                    if k.startswith("push_")}

    def record_push(self, gen, entry):
        with self.lock:
            if gen == self.push_gen:
                entry["at"] = time.time()
                self.pushes.append(entry)

    def push_log(self):
        """GET /__pushes."""
        with self.lock:
            pushes = [dict(p) for p in self.pushes]
        return {"count": len(pushes), "pushes": pushes}

    # -- single-use codes -------------------------------------------------

    def consume(self, used, code):
        """Mark a code used; False when it already was."""
        with self.lock:
            if code in used:
                return False
            used.add(code)
            return True

    def is_used(self, used, code):
        with self.lock:
            return code in used


STATE = None            # set in main()
QUIET = False


def sec_verdict(text, markers):
    """(suggest, label, marker) for a content security check."""
    for marker, suggest, label in markers:
        if marker in text:
            return suggest, label, marker
    return "pass", 100, ""


def media_verdict_push(gen, delay_s, trace_id, openid, suggest, label):
    """Background thread of media_check_async: after delay_s, push the
    verdict event to push_url and log the outcome in /__pushes."""
    time.sleep(delay_s)
    conf = STATE.push_settings(gen)
    if conf is None:
        return                          # a reset came in between
    entry = {"url": conf["push_url"], "trace_id": trace_id, "openid": openid,
             "suggest": suggest, "label": label, "mode": conf["push_mode"],
             "format": conf["push_format"], "status": None, "body": None,
             "error": None}
    event = {"ToUserName": PUSH_TO_USER, "FromUserName": openid,
             "CreateTime": int(time.time()), "MsgType": "event",
             "Event": "wxa_media_check", "appid": STATE.appid,
             "trace_id": trace_id, "version": 2,
             "result": {"suggest": suggest, "label": label},
             "detail": [{"strategy": "content_model", "errcode": 0,
                         "suggest": suggest, "label": label, "prob": 90}]}
    try:
        if not conf["push_url"]:
            raise ValueError("push_url not set")
        query, body, ctype = build_push(
            event, conf["push_token"], conf["push_mode"], conf["push_format"],
            aes_key=conf["push_aes_key"], appid=STATE.appid)
        status, answer = send_push(conf["push_url"], query, body, ctype)
        entry["status"] = status
        entry["body"] = answer.decode("utf-8", "replace")
    except (ValueError, OSError) as e:
        entry["error"] = "%s: %s" % (type(e).__name__, e)
    if not QUIET:
        sys.stderr.write("standin: verdict push %s %s -> %s\n"
                         % (trace_id, suggest, entry["status"] or entry["error"]))
    STATE.record_push(gen, entry)


# --------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------

class Reply(Exception):
    """Raised anywhere in a handler to send an answer at once."""

    def __init__(self, status, body, ctype=JSON_CT):
        super().__init__(status)
        self.status, self.body, self.ctype = status, body, ctype


def err(errcode, status=200):
    """A WeChat error answer (WeChat uses HTTP 200 for errors)."""
    return Reply(status, {"errcode": errcode, "errmsg": ERR[errcode]})


def fault(mode, slow_ms=0):
    """Fail as a fault mode says (the global `fail`, or an endpoint's):
    raise its answer, or sleep and let the call go on (timeout, slow)."""
    answers = {"busy": -1, "quota": 45009, "refuse": 43101,
               "invalid_openid": 40003}
    if mode in answers:
        raise err(answers[mode])
    if mode == "http500":
        raise Reply(500, HTML_500, "text/html")
    if mode == "garbage":
        raise Reply(200, GARBAGE)
    if mode == "timeout":
        time.sleep(TIMEOUT_SLEEP_S)         # then answer normally
    elif mode == "slow":
        time.sleep(slow_ms / 1000.0)        # then answer normally


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive; every answer has a length

    def version_string(self):           # the Server header
        return "wechat-standin"

    def setup(self):
        # Headers and body go out in two writes: with Nagle on, the second
        # waits for the client's delayed ACK (40 ms on a kept-alive
        # connection), a stall WeChat's own servers do not have.
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # Routes: path -> (method, handler name).  Paths are case-sensitive.
    ROUTES = {
        "/sns/jscode2session": ("GET", "code2session"),
        "/cgi-bin/token": ("GET", "token"),
        "/cgi-bin/stable_token": ("POST", "stable_token"),
        "/wxa/business/getuserphonenumber": ("POST", "phone"),
        "/cgi-bin/message/subscribe/send": ("POST", "subscribe_send"),
        "/wxa/msg_sec_check": ("POST", "msg_sec_check"),
        "/wxa/media_check_async": ("POST", "media_check_async"),
    }

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    # -- plumbing ---------------------------------------------------------

    def read_body(self):
        """The request body (Content-Length or chunked), always read in full
        so the kept-alive connection stays in sync."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass            # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()   # CRLF after the chunk
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body, ctype=JSON_CT):
        if not isinstance(body, bytes):
            body = json.dumps(body, ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True    # the client gave up (timeout)

    def log_request(self, code="-", size="-"):
        if not QUIET:
            # Never log the appsecret.
            line = re.sub(r"(secret=)[^&\s]*", r"\1***", self.requestline)
            sys.stderr.write("standin: %s %s\n" % (line, code))

    def log_message(self, fmt, *args):
        if not QUIET:
            sys.stderr.write("standin: " + (fmt % args) + "\n")

    def dispatch(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.send(400, {"errcode": 47001, "errmsg": ERR[47001]})
            return
        url = urllib.parse.urlsplit(self.path)
        self.query = {k: v[0] for k, v in
                      urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        self.body = body
        try:
            if url.path.startswith("/__"):
                self.control(url.path)
            else:
                STATE.count(url.path, self.headers.get("traceparent"),
                            self.headers.get("tracestate"))
                STATE.enter(1)
                try:
                    self.wechat(url.path)
                finally:
                    STATE.enter(-1)
        except Reply as r:
            self.send(r.status, r.body, r.ctype)

    def json_body(self):
        """The body as a JSON object, else 47001 data format error."""
        try:
            obj = json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            raise err(47001)
        if not isinstance(obj, dict):
            raise err(47001)
        return obj

    # -- WeChat endpoints -------------------------------------------------

    def wechat(self, path):
        route = self.ROUTES.get(path)
        if route is None:
            # e.g. /sns/jsCode2Session: WeChat's paths are case-sensitive.
            raise err(40066, status=404)
        method, name = route
        if self.command != method:
            raise err(43001 if method == "GET" else 43002)

        latency = STATE.setting("latency_ms")
        if latency > 0:
            time.sleep(latency / 1000.0)
        fault(STATE.setting("fail"))

        raise Reply(200, getattr(self, "ep_" + name)())

    def check_app(self, appid, secret, grant_type, want_grant, bad_secret):
        """appid/secret/grant_type checks shared by every endpoint."""
        if not appid:
            raise err(41002)
        if appid != STATE.appid:
            raise err(40013)
        if not secret:
            raise err(41004)
        if secret != STATE.secret:
            raise err(bad_secret)
        if grant_type != want_grant:
            raise err(40002)

    def ep_code2session(self):
        q = self.query
        # Note: a wrong secret here is 40125 (40001 on the token endpoints).
        self.check_app(q.get("appid"), q.get("secret"), q.get("grant_type"),
                       "authorization_code", 40125)
        code = q.get("js_code", "")
        if not code:
            raise err(41008)
        if STATE.is_used(STATE.used_login, code):
            raise err(40163)

        # Special codes, checked before success.  Errors don't consume.
        if code.startswith("invalid"):
            raise err(40029)
        if code.startswith("risky"):
            raise err(40226)
        if code.startswith("busy"):
            raise err(-1)
        if code.startswith("quota"):
            raise err(45011)
        if code.startswith("garbage"):
            raise Reply(200, GARBAGE)
        if code.startswith("http500"):
            raise Reply(500, HTML_500, "text/html")
        m = SLOW_RE.match(code)
        if m:
            time.sleep(int(m.group(1)) / 1000.0)

        name = identity_name(code)
        answer = {"session_key": make_session_key(code),
                  "openid": make_openid(name)}
        if "union" in code:
            answer["unionid"] = make_unionid(name)
        if code.startswith("trunc"):
            # The answer cut off mid-way (a broken connection or proxy).
            raw = json.dumps(answer).encode("utf-8")
            raise Reply(200, raw[:len(raw) // 2])
        if not STATE.consume(STATE.used_login, code):
            raise err(40163)    # a concurrent request got there first
        return answer

    def ep_token(self):
        q = self.query
        self.check_app(q.get("appid"), q.get("secret"), q.get("grant_type"),
                       "client_credential", 40001)
        tok, expires_in = STATE.issue_token()
        return {"access_token": tok, "expires_in": expires_in}

    def ep_stable_token(self):
        b = self.json_body()
        self.check_app(b.get("appid"), b.get("secret"), b.get("grant_type"),
                       "client_credential", 40001)
        force = b.get("force_refresh", False)
        if not isinstance(force, bool):
            raise err(47001)
        tok, expires_in = STATE.stable_token(force)
        return {"access_token": tok, "expires_in": expires_in}

    def require_token(self):
        """The access_token of the query: 41001 without one, 40001 or
        42001 when it is not (or no longer) valid."""
        tok = self.query.get("access_token", "")
        if not tok:
            raise err(41001)
        bad = STATE.check_token(tok)
        if bad:
            raise err(bad)

    def ep_phone(self):
        self.require_token()
        b = self.json_body()
        code = b.get("code")
        if not isinstance(code, str) or not code:
            raise err(41008)
        # The phone code is single use; reuse (like a wrong or a wx.login
        # code) is 40029 invalid code.
        if code.startswith("invalid") or not STATE.consume(STATE.used_phone, code):
            raise err(40029)
        pure = make_phone(code)
        return {"errcode": 0, "errmsg": "ok", "phone_info": {
            "phoneNumber": "+86 " + pure,
            "purePhoneNumber": pure,
            "countryCode": "86",
            "watermark": {"timestamp": int(time.time()), "appid": STATE.appid},
        }}

    def ep_subscribe_send(self):
        fault(STATE.take_fault("send"), STATE.setting("send_slow_ms"))

        self.require_token()
        b = self.json_body()
        job = self.headers.get(JOB_HEADER) or None
        if job is not None and len(job) > JOB_MAX:
            raise err(47001)

        touser = b.get("touser")
        if not isinstance(touser, str) or not touser:
            raise err(40003)
        if touser.startswith("refuse"):
            raise err(43101)
        template_id = b.get("template_id")
        if (not isinstance(template_id, str) or not template_id
                or template_id.startswith("bad")):
            raise err(40037)
        data = b.get("data")
        if not isinstance(data, dict) or not data:
            raise Reply(200, {"errcode": 47003,
                              "errmsg": ERR[47003] + " data is empty"})
        for key, item in data.items():
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(value, str) or not value:
                raise Reply(200, {"errcode": 47003, "errmsg":
                                  ERR[47003] + " data.%s.value is empty" % key})
        page = b.get("page")
        if "page" in b:
            if not isinstance(page, str):
                raise err(47001)
            if "://" in page:
                raise err(41030)
        state = b.get("miniprogram_state")
        if "miniprogram_state" in b and state not in MINIPROGRAM_STATES:
            raise err(47001)
        lang = b.get("lang")
        if "lang" in b and lang not in LANGS:
            raise err(47001)

        msgid = STATE.deliver({"touser": touser, "template_id": template_id,
                               "page": page, "data": data,
                               "miniprogram_state": state, "lang": lang,
                               "job": job})
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    @staticmethod
    def is_int(v, allowed):
        return isinstance(v, int) and not isinstance(v, bool) and v in allowed

    def ep_msg_sec_check(self):
        fault(STATE.take_fault("sec"))

        self.require_token()
        b = self.json_body()
        if not self.is_int(b.get("version"), (2,)):
            raise err(47001)
        openid = b.get("openid")
        if not isinstance(openid, str) or not openid:
            raise err(40003)
        if not self.is_int(b.get("scene"), SEC_SCENES):
            raise err(47001)
        content = b.get("content")
        if not isinstance(content, str) or not 1 <= len(content) <= SEC_CONTENT_MAX:
            raise err(47001)
        suggest, label, marker = sec_verdict(content, SEC_MARKERS)
        return {"errcode": 0, "errmsg": "ok", "trace_id": secrets.token_hex(12),
                "result": {"suggest": suggest, "label": label},
                "detail": [{"strategy": "keyword", "errcode": 0,
                            "suggest": suggest, "label": label, "prob": 90,
                            "keyword": marker}]}

    def ep_media_check_async(self):
        self.require_token()
        b = self.json_body()
        url = b.get("media_url")
        openid = b.get("openid")
        if (not isinstance(url, str) or not url.startswith("https://")
                or len(url) == len("https://")
                or not self.is_int(b.get("media_type"), MEDIA_TYPES)
                or not self.is_int(b.get("version"), (2,))
                or not isinstance(openid, str) or not openid
                or not self.is_int(b.get("scene"), SEC_SCENES)):
            raise err(47001)
        trace_id = secrets.token_hex(12)
        if MEDIA_NEVER not in url:
            suggest, label, _ = sec_verdict(url, MEDIA_MARKERS)
            with STATE.lock:
                gen = STATE.push_gen
                delay_s = STATE.settings["media_delay_ms"] / 1000.0
            threading.Thread(target=media_verdict_push, daemon=True,
                             args=(gen, delay_s, trace_id, openid,
                                   suggest, label)).start()
        return {"errcode": 0, "errmsg": "ok", "trace_id": trace_id}

    # -- test control -----------------------------------------------------

    def control(self, path):
        if path == "/__traces" and self.command == "GET":
            with STATE.lock:
                raise Reply(200, {"calls": list(STATE.traces)})
        if path == "/__stats" and self.command == "GET":
            with STATE.lock:
                calls = dict(STATE.calls)
                most = STATE.max_inflight
            raise Reply(200, {"calls": calls, "total": sum(calls.values()),
                              "max_inflight": most})
        if path == "/__sends" and self.command == "GET":
            raise Reply(200, STATE.send_log())
        if path == "/__pushes" and self.command == "GET":
            raise Reply(200, STATE.push_log())
        if path == "/__push" and self.command == "POST":
            self.manual_push()
        if path == "/__reset" and self.command == "POST":
            STATE.reset()
            raise Reply(200, {"ok": True})
        if path == "/__control" and self.command == "GET":
            with STATE.lock:
                raise Reply(200, {"settings": dict(STATE.settings)})
        if path == "/__control" and self.command == "POST":
            self.set_control()
        raise Reply(404, {"error": "unknown control path or method"})

    def set_control(self):
        try:
            req = json.loads(self.body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            raise Reply(400, {"error": "body is not JSON"})
        if not isinstance(req, dict):
            raise Reply(400, {"error": "body must be a JSON object"})

        def number(key, minimum):
            v = req[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum:
                raise Reply(400, {"error": "%s must be a number >= %s" % (key, minimum)})
            return v

        # Validate everything before changing anything.
        changes = {}
        for key in req:
            if key == "latency_ms":
                changes[key] = number(key, 0)
            elif key == "overlap_s":
                changes[key] = number(key, 0)
            elif key in ("token_ttl_s", "expires_in_s"):
                changes[key] = number(key, 0.001)
                if key == "expires_in_s":
                    changes[key] = int(changes[key]) or 1
            elif key == "fail":
                if req[key] not in FAIL_MODES:
                    raise Reply(400, {"error": "fail must be one of " + ", ".join(FAIL_MODES)})
                changes[key] = req[key]
            elif key == "invalidate_tokens":
                if not isinstance(req[key], bool):
                    raise Reply(400, {"error": "invalidate_tokens must be a boolean"})
            elif key in ("send_fail", "sec_fail"):
                modes = FAULT_MODES[key[:-len("_fail")]]
                if not isinstance(req[key], str) or req[key] not in modes:
                    raise Reply(400, {"error": "%s must be one of %s"
                                      % (key, ", ".join(modes))})
                changes[key] = req[key]
                # Alone, it means every call until changed.
                changes.setdefault(key + "_count", 0)
            elif key in ("send_fail_count", "sec_fail_count"):
                v = req[key]
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise Reply(400, {"error": "%s must be an integer >= 0" % key})
                changes[key] = v
            elif key in ("send_slow_ms", "media_delay_ms"):
                changes[key] = number(key, 0)
            elif key == "push_url":
                v = req[key]
                if not isinstance(v, str) or (
                        v and not v.startswith(("http://", "https://"))):
                    raise Reply(400, {"error": "push_url must be \"\" or an "
                                      "http:// or https:// URL"})
                changes[key] = v
            elif key == "push_token":
                if not isinstance(req[key], str):
                    raise Reply(400, {"error": "push_token must be a string"})
                changes[key] = req[key]
            elif key == "push_aes_key":
                v = req[key]
                if not isinstance(v, str) or (v and not AES_KEY_RE.fullmatch(v)):
                    raise Reply(400, {"error": "push_aes_key must be \"\" or "
                                      "43 characters of [A-Za-z0-9]"})
                changes[key] = v
            elif key in ("push_mode", "push_format"):
                allowed = PUSH_MODES if key == "push_mode" else PUSH_FORMATS
                if req[key] not in allowed:
                    raise Reply(400, {"error": "%s must be one of %s"
                                      % (key, ", ".join(allowed))})
                changes[key] = req[key]
            else:
                raise Reply(400, {"error": "unknown control key: %s" % key})
        with STATE.lock:
            STATE.settings.update(changes)
            settings = dict(STATE.settings)
        if req.get("invalidate_tokens"):
            STATE.invalidate_tokens()
        raise Reply(200, {"ok": True, "settings": settings})

    def manual_push(self):
        """POST /__push: build a push (push_* settings, overridden by the
        request), send it to push_url, answer what the backend said."""
        try:
            req = json.loads(self.body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            raise Reply(400, {"error": "body is not JSON"})
        if not isinstance(req, dict):
            raise Reply(400, {"error": "body must be a JSON object"})

        def bad(text):
            return Reply(400, {"error": text})

        known = ("message", "raw", "mode", "format", "timestamp", "nonce",
                 "token", "aes_key", "appid", "tamper")
        for key in req:
            if key not in known:
                raise bad("unknown /__push key: %s" % key)
        if ("message" in req) == ("raw" in req):
            raise bad("give exactly one of message and raw")
        if "message" in req and not isinstance(req["message"], dict):
            raise bad("message must be a JSON object")
        if "raw" in req and not isinstance(req["raw"], str):
            raise bad("raw must be a string")
        for key in ("token", "aes_key", "appid"):
            if key in req and not isinstance(req[key], str):
                raise bad("%s must be a string" % key)
        for key in ("timestamp", "nonce"):
            v = req.get(key)
            if key in req and (isinstance(v, bool) or not isinstance(v, (str, int))):
                raise bad("%s must be a string or an integer" % key)
        with STATE.lock:
            conf = dict(STATE.settings)
        if not conf["push_url"]:
            raise bad("push_url is not set")
        mode = req.get("mode", conf["push_mode"])
        fmt = req.get("format", conf["push_format"])
        aes_key = req.get("aes_key", conf["push_aes_key"])
        if mode not in PUSH_MODES:
            raise bad("mode must be one of " + ", ".join(PUSH_MODES))
        if fmt not in PUSH_FORMATS:
            raise bad("format must be one of " + ", ".join(PUSH_FORMATS))
        if "tamper" in req and req["tamper"] not in PUSH_TAMPER:
            raise bad("tamper must be one of " + ", ".join(PUSH_TAMPER))
        if mode == "safe" and not AES_KEY_RE.fullmatch(aes_key or ""):
            raise bad("safe mode needs an AES key of 43 characters of [A-Za-z0-9]")
        try:
            query, body, ctype = build_push(
                req.get("message", req.get("raw")),
                req.get("token", conf["push_token"]), mode, fmt,
                aes_key=aes_key, appid=req.get("appid", STATE.appid),
                timestamp=req.get("timestamp"), nonce=req.get("nonce"),
                tamper=req.get("tamper"))
        except ValueError as e:
            raise bad(str(e))
        answer = {"status": None, "body": None, "query": query,
                  "sent": body.decode("utf-8", "replace")}
        try:
            status, got = send_push(conf["push_url"], query, body, ctype)
            answer["status"] = status
            answer["body"] = got.decode("utf-8", "replace")
        except OSError as e:
            answer["error"] = "%s: %s" % (type(e).__name__, e)
        raise Reply(200, answer)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv=None):
    global STATE, QUIET
    ap = argparse.ArgumentParser(description="Local stand-in for WeChat's server API.")
    ap.add_argument("--listen", required=True, type=parse_listen,
                    metavar="HOST:PORT", help="address to listen on (port 0: any)")
    ap.add_argument("--appid", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--pidfile", help="write the pid here once listening")
    ap.add_argument("--quiet", action="store_true", help="no request log on stderr")
    args = ap.parse_args(argv)

    QUIET = args.quiet
    STATE = State(args.appid, args.secret)
    ThreadingHTTPServer.allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of new connections (a
    # login benchmark at -c400) would see SYNs dropped and retried after a
    # second, a delay that is the stand-in's, not WeChat's.
    ThreadingHTTPServer.request_queue_size = 1024
    if ":" in args.listen[0]:
        import socket
        ThreadingHTTPServer.address_family = socket.AF_INET6
    try:
        server = ThreadingHTTPServer(args.listen, Handler)
    except OSError as e:
        sys.stderr.write("standin: cannot listen on %s:%d: %s\n"
                         % (args.listen[0], args.listen[1], e.strerror or e))
        return 2
    server.daemon_threads = True    # sleeping handlers never block exit

    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, args.pidfile)
    if not QUIET:
        sys.stderr.write("standin: listening on http://%s:%d\n"
                         % (args.listen[0], server.server_address[1]))
        sys.stderr.flush()

    # SIGTERM/SIGINT: stop serve_forever from another thread (shutdown()
    # waits for the loop, so it can't run on the loop's own thread).
    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if args.pidfile:
            try:
                with open(args.pidfile) as f:
                    mine = f.read().strip() == str(os.getpid())
                if mine:
                    os.unlink(args.pidfile)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
