/*
 * cowait: coroutines waiting for curl transfers and timers (see cowait.h).
 */
#include <stdlib.h>
#include <unistd.h>

#include "coro.h"
#include "cowait.h"
#include "util.h"

int
cowait_init(struct cowait *cw)
{
	cw->current = NULL;
	cw->woken = NULL;
	cw->woken_tail = &cw->woken;
	return (cw->multi = curl_multi_init()) == NULL ? -1 : 0;
}

void
cowait_free(struct cowait *cw)
{
	if (cw->multi != NULL)
		curl_multi_cleanup(cw->multi);
	cw->multi = NULL;
}

int
cowait_can_yield(struct cowait *cw)
{
	return cw->current != NULL && coro_current() != NULL &&
	    (cw->may_yield == NULL || cw->may_yield(cw->arg));
}

CURLcode
cowait_perform(void *arg, CURL *h)
{
	struct cowait		*cw = arg;
	struct cowait_task	*t = cw->current;

	if (!cowait_can_yield(cw))
		return curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_PRIVATE, t);
	if (curl_multi_add_handle(cw->multi, h) != CURLM_OK)
		return curl_easy_perform(h);
	t->waiting = COWAIT_TRANSFER;
	coro_yield();
	curl_multi_remove_handle(cw->multi, h);
	return t->result;
}

void
cowait_wait(struct cowait *cw)
{
	struct cowait_task	*t = cw->current;

	t->waiting = COWAIT_EVENT;
	coro_yield();
}

void
cowait_wake(struct cowait *cw, struct cowait_task *t)
{
	if (t->waiting != COWAIT_EVENT)
		return;
	t->waiting = COWAIT_NONE;
	t->next = NULL;
	*cw->woken_tail = t;
	cw->woken_tail = &t->next;
}

void
cowait_pause(void *arg, int64_t us)
{
	struct cowait		*cw = arg;
	struct cowait_task	*t = cw->current;

	if (!cowait_can_yield(cw)) {
		usleep((useconds_t)us);
		return;
	}
	t->wake_us = util_mono_us() + us;
	t->waiting = COWAIT_TIMER;
	coro_yield();
	t->waiting = COWAIT_NONE;
}

void
cowait_poll(struct cowait *cw, struct curl_waitfd *fds, unsigned n,
    int64_t wake_us)
{
	int64_t	now = util_mono_us(), ms = 1000;

	if (wake_us > 0)
		ms = wake_us <= now ? 0 : (wake_us - now) / 1000 + 1;
	if (ms > 1000)
		ms = 1000;
	(void)curl_multi_poll(cw->multi, fds, n, (int)ms, NULL);
	(void)curl_multi_perform(cw->multi, &(int){ 0 });
}

struct cowait_task *
cowait_done(struct cowait *cw)
{
	struct CURLMsg		*m;
	struct cowait_task	*t;
	char			*priv;
	int			 q;

	if ((t = cw->woken) != NULL) {
		if ((cw->woken = t->next) == NULL)
			cw->woken_tail = &cw->woken;
		return t;
	}
	while ((m = curl_multi_info_read(cw->multi, &q)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		if ((t = (struct cowait_task *)(void *)priv) == NULL ||
		    t->waiting != COWAIT_TRANSFER)
			continue;
		t->result = m->data.result;
		t->waiting = COWAIT_NONE;
		return t;
	}
	return NULL;
}
