"""Content security, end to end: item titles and summaries and user names
checked with msgSecCheck as they are written, images with mediaCheckAsync
and the verdict WeChat pushes back, the moderation queue, and what
content_check_fail does when WeChat cannot be asked.

The stand-in calls a text containing RISKY risky and one containing REVIEW
review; an image URL containing "risky" or "review" likewise, and one
containing "never" gets no verdict."""

import json
import time
import unittest

import e2elib as e2e
import fcgi
from test_ops import OwnResponder

ITEMS = "/api/v1/data"
MOD = "/api/v1/moderation"


def item(session, title, **extra):
    b = {"title": title, "category": "food"}
    b.update(extra)
    return e2e.call("POST", ITEMS, session, b)


def waiting(admin):
    r = e2e.call("GET", MOD, admin)
    if r.status != 200:
        raise AssertionError(r.describe())
    return r.json()["data"]["items"]


def row_of(admin, **match):
    for row in waiting(admin):
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def moderate(action, row_id):
    rc, out, err = e2e.wxappctl_run("moderation", action, str(row_id))
    if rc != 0:
        raise AssertionError("wxappctl moderation %s %s: %s" % (action, row_id, err))
    return out


def public(item_id):
    return e2e.get("%s/%d" % (ITEMS, item_id)).status


class Content(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        e2e.wechat_base()
        cls.admin = e2e.make_admin(e2e.login())
        cls.owner = e2e.login()

    def setUp(self):
        e2e.wechat_reset()
        token = e2e.conf_value("wechat_push_token")
        e2e.wechat_control(push_url=e2e.BASE_URL + "/api/v1/wechat/push",
                           push_token=token,
                           push_aes_key=e2e.conf_value("wechat_push_aes_key"),
                           push_mode="safe", push_format="json",
                           media_delay_ms=200)

    def tearDown(self):
        e2e.wechat_control(sec_fail="none")

    def test_risky_text_is_refused_naming_the_field(self):
        r = item(self.owner, "festival RISKY deal")
        self.assertEqual((r.status, r.json()["code"]), (422, 42200), r.describe())
        self.assertIn("`title`", r.json()["message"])
        r = item(self.owner, "fine", summary="RISKY words")
        self.assertIn("`summary`", r.json()["message"])
        r = e2e.call("PATCH", "/api/v1/users/%d" % self.owner.uid, self.owner,
                     {"name": "RISKY name"})
        self.assertEqual((r.status, r.json()["code"]), (422, 42200), r.describe())

    def test_review_is_a_draft_until_approved(self):
        r = item(self.owner, "please REVIEW me %d" % time.time_ns())
        self.assertEqual(r.status, 201, r.describe())
        it = r.json()["data"]
        self.assertEqual(it["status"], "draft")
        self.assertEqual(public(it["id"]), 404, "hidden from the public")
        self.assertEqual(e2e.call("GET", "%s/%d" % (ITEMS, it["id"]),
                                  self.owner).status, 200, "its owner sees it")
        row = row_of(self.admin, item_id=it["id"])
        self.assertEqual((row["field"], row["reason"]), ("title", "review"))
        # Only admins see the queue.
        self.assertEqual(e2e.call("GET", MOD, self.owner).status, 403)
        self.assertEqual(e2e.call("GET", MOD, None).status, 401)
        # Its owner cannot publish it meanwhile.
        r = e2e.call("PATCH", "%s/%d" % (ITEMS, it["id"]), self.owner,
                     {"status": "published"})
        self.assertEqual((r.status, r.json()["code"]), (409, 40900), r.describe())
        self.assertIn("`title` waits", r.json()["message"])
        # Nor does a stranger learn that it waits.
        r = e2e.call("PATCH", "%s/%d" % (ITEMS, it["id"]), e2e.login(),
                     {"status": "published"})
        self.assertEqual(r.status, 404, r.describe())
        out = moderate("approve", row["id"])
        self.assertIn("published", out)
        self.assertEqual(public(it["id"]), 200)
        self.assertIsNone(row_of(self.admin, item_id=it["id"]))
        # Rejected: archived.
        r = item(self.owner, "again REVIEW %d" % time.time_ns())
        it = r.json()["data"]
        moderate("reject", row_of(self.admin, item_id=it["id"])["id"])
        r = e2e.call("GET", "%s/%d" % (ITEMS, it["id"]), self.owner)
        self.assertEqual(r.json()["data"]["status"], "archived")
        # Rejected content stays unpublished until it is changed.
        r = e2e.call("PATCH", "%s/%d" % (ITEMS, it["id"]), self.owner,
                     {"status": "published"})
        self.assertEqual(r.status, 409, r.describe())
        self.assertIn("rejected", r.json()["message"])
        r = e2e.call("PATCH", "%s/%d" % (ITEMS, it["id"]), self.owner,
                     {"title": "a better title", "status": "published"})
        self.assertEqual((r.status, r.json()["data"]["status"]),
                         (200, "published"), r.describe())
        rc, _, err = e2e.wxappctl_run("moderation", "approve", "999999999")
        self.assertEqual(rc, 1, err)

    def test_image_waits_for_the_pushed_verdict(self):
        r = item(self.owner, "a picture", cover_url="https://img.example/ok-%d.png"
                 % time.time_ns())
        self.assertEqual(r.status, 201, r.describe())
        it = r.json()["data"]
        self.assertEqual(it["status"], "draft")
        self.assertTrue(e2e.wait_for(lambda: public(it["id"]) == 200, 20),
                        "the pass event did not publish it")
        _, pushes = e2e.wechat_request("GET", "/__pushes")
        self.assertTrue(any(p.get("status") == 200 for p in pushes["pushes"]),
                        pushes)

    def test_risky_image_is_archived_and_its_owner_told(self):
        r = item(self.owner, "bad picture", cover_url="https://img.example/risky.png")
        it = r.json()["data"]

        def archived():
            r = e2e.call("GET", "%s/%d" % (ITEMS, it["id"]), self.owner)
            return r.json()["data"]["status"] == "archived"
        self.assertTrue(e2e.wait_for(archived, 20))
        tpl = e2e.conf_value("message_item_rejected_template")

        def told():
            _, s = e2e.wechat_request("GET", "/__sends")
            return [x for x in s["sends"] if x["template_id"] == tpl]
        self.assertTrue(e2e.wait_for(told, 20), "the owner was not told")

    def test_wechat_unavailable_queues_and_rechecks(self):
        self.assertEqual(e2e.conf_value("content_check_fail", "queue"), "queue")
        e2e.wechat_control(sec_fail="busy", sec_fail_count=1)
        r = item(self.owner, "while WeChat is away %d" % time.time_ns())
        self.assertEqual(r.status, 201, r.describe())
        it = r.json()["data"]
        self.assertEqual(it["status"], "draft")
        self.assertTrue(e2e.wait_for(lambda: public(it["id"]) == 200, 30),
                        "the recheck did not publish it")

    def test_a_name_under_review_waits(self):
        u = e2e.login()
        before = e2e.call("GET", "/api/v1/user/me", u).json()["data"]["name"]
        name = "REVIEW me %d" % (time.time_ns() % 100000)
        r = e2e.call("PATCH", "/api/v1/users/%d" % u.uid, u, {"name": name})
        self.assertEqual(r.status, 202, r.describe())
        self.assertEqual(r.json()["data"]["name"], before)
        row = row_of(self.admin, user_id=u.uid)
        self.assertEqual(row["content"], name)
        moderate("approve", row["id"])
        r = e2e.call("GET", "/api/v1/user/me", u)
        self.assertEqual(r.json()["data"]["name"], name)

    def test_a_stranger_asks_wechat_nothing(self):
        r = item(self.owner, "mine %d" % time.time_ns())
        it = r.json()["data"]
        e2e.wechat_reset()
        r = e2e.call("PATCH", "%s/%d" % (ITEMS, it["id"]), e2e.login(),
                     {"title": "hijacked"})
        self.assertIn(r.status, (403, 404), r.describe())
        self.assertNotIn("/wxa/msg_sec_check", e2e.wechat_stats())

    def test_an_image_without_a_verdict_goes_to_a_moderator(self):
        timeout = e2e.conf_int("media_check_timeout", 1800)
        self.assertLessEqual(timeout, 30, "the stack gives up on images fast")
        r = item(self.owner, "never judged",
                 cover_url="https://img.example/never-%d.png" % time.time_ns())
        it = r.json()["data"]
        self.assertEqual(it["status"], "draft")
        self.assertTrue(e2e.wait_for(lambda: (row_of(self.admin, item_id=it["id"])
                                              or {}).get("reason") == "review",
                                     timeout + 15),
                        "content_check_fail=queue: a moderator decides")
        self.assertEqual(public(it["id"]), 404)


class Policy(OwnResponder):
    """content_check_fail closed and open, on a responder of the test's own
    (the stack's is queue), with WeChat's content check failing."""

    def post_item(self, owner):
        return fcgi.request(self.sock, "POST", ITEMS, body=json.dumps(
            {"title": "while WeChat is away %d" % time.time_ns(),
             "category": "food"}), content_type="application/json",
            headers={"Authorization": "Bearer " + owner.access})

    def setUp(self):
        super().setUp()
        e2e.wechat_base()
        self.owner = e2e.login()
        self.addCleanup(e2e.wechat_control, sec_fail="none")
        e2e.wechat_control(sec_fail="busy")

    def test_closed_refuses_the_write(self):
        self.start(WXAPP_CONTENT_CHECK_FAIL="closed")
        r = self.post_item(self.owner)
        self.assertEqual((r.status, r.json()["code"]), (503, 50303),
                         r.describe() + self.diag())
        self.assertIn("`title`", r.json()["message"])

    def test_open_lets_it_through(self):
        self.start(WXAPP_CONTENT_CHECK_FAIL="open")
        r = self.post_item(self.owner)
        self.assertEqual((r.status, r.json()["data"]["status"]),
                         (201, "published"), r.describe() + self.diag())
