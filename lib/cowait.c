/*
 * cowait: coroutines waiting for curl transfers and timers (see cowait.h).
 */
#include <poll.h>
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

	t->wake_us = 0;
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

int
cowait_fd(struct cowait *cw, int fd, short events, int64_t deadline)
{
	struct cowait_task	*t = cw->current;

	if (!cowait_can_yield(cw))
		return util_poll(fd, events, deadline);
	if (deadline <= util_mono_us())
		return 0;
	t->fd = fd;
	t->events = events;
	t->ready = 0;
	t->wake_us = deadline;
	t->waiting = COWAIT_FD;
	coro_yield();
	t->waiting = COWAIT_NONE;
	return t->ready;
}

void
cowait_lock_init(struct cowait_lock *l)
{
	l->held = 0;
	l->waiters = NULL;
	l->waiters_tail = &l->waiters;
}

int
cowait_lock_take(struct cowait *cw, struct cowait_lock *l, int64_t deadline)
{
	struct cowait_task	*t = cw->current, **pp;

	while (l->held) {
		if (deadline == 0 || !cowait_can_yield(cw) ||
		    util_mono_us() >= deadline)
			return -1;
		t->lnext = NULL;
		*l->waiters_tail = t;
		l->waiters_tail = &t->lnext;
		t->wake_us = deadline;
		t->waiting = COWAIT_EVENT;
		coro_yield();
		if (t->waiting == COWAIT_NONE)	/* woken by a give: again */
			continue;
		/* The deadline: out of the line. */
		t->waiting = COWAIT_NONE;
		for (pp = &l->waiters; *pp != NULL; pp = &(*pp)->lnext)
			if (*pp == t) {
				if ((*pp = t->lnext) == NULL)
					l->waiters_tail = pp;
				break;
			}
		return -1;
	}
	l->held = 1;
	return 0;
}

void
cowait_lock_give(struct cowait *cw, struct cowait_lock *l)
{
	struct cowait_task	*t;

	l->held = 0;
	/*
	 * Woken, not handed the lock: the code that gave it back may take
	 * it again before the waiter runs -- a transaction's next statement
	 * must, since it cannot yield.
	 */
	if ((t = l->waiters) != NULL) {
		if ((l->waiters = t->lnext) == NULL)
			l->waiters_tail = &l->waiters;
		cowait_wake(cw, t);
	}
}

int64_t
cowait_due(const struct cowait_task *t)
{
	switch (t->waiting) {
	case COWAIT_TIMER:
	case COWAIT_EVENT:
	case COWAIT_FD:
		return t->wake_us;
	default:
		return 0;
	}
}

int
cowait_fd_wanted(const struct cowait_task *t, struct curl_waitfd *w)
{
	if (t->waiting != COWAIT_FD)
		return 0;
	w->fd = t->fd;
	w->events = (short)(((t->events & POLLIN) ? CURL_WAIT_POLLIN : 0) |
	    ((t->events & POLLOUT) ? CURL_WAIT_POLLOUT : 0));
	w->revents = 0;
	return 1;
}

void
cowait_fd_ready(struct cowait_task *t)
{
	t->ready = 1;
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
