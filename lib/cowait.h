/*
 * cowait: coroutines (lib/coro) that wait for libcurl transfers and for
 * timers without blocking their process.  A coroutine hands its transfer
 * to one curl multi handle and yields; the process's loop polls curl
 * together with its own descriptors and resumes each coroutine when its
 * transfer is done or its timer is due.  cowait_perform and cowait_pause
 * fit lib/wechat's perform and pause hooks, so that code written as
 * plain blocking calls runs many calls at once.
 *
 * The loop owns its tasks; cowait only knows the one running
 * (cowait.current, set by the loop around coro_start/coro_resume).
 */
#ifndef WX_COWAIT_H
#define WX_COWAIT_H

#include <stdint.h>

#include <curl/curl.h>

enum cowait_wait {
	COWAIT_NONE,		/* running, or not started */
	COWAIT_TRANSFER,	/* until its transfer is done */
	COWAIT_TIMER		/* until wake_us */
};

/* A coroutine's waiting; the loop embeds one in each of its tasks. */
struct cowait_task {
	void		*owner;		/* the loop's task */
	enum cowait_wait waiting;
	CURLcode	 result;	/* of the transfer it waited for */
	int64_t		 wake_us;
};

struct cowait {
	CURLM			*multi;
	struct cowait_task	*current;	/* whose coroutine runs */
	/* May the running coroutine yield now?  NULL: always. */
	int			(*may_yield)(void *arg);
	void			*arg;
};

/* 0, or -1 when curl has no multi handle for us. */
int	cowait_init(struct cowait *);
void	cowait_free(struct cowait *);
/*
 * Run the transfer h: from a coroutine, yield until it is done; else
 * (or when may_yield says no) block in curl_easy_perform.  arg: the
 * struct cowait.
 */
CURLcode cowait_perform(void *arg, CURL *h);
/* Sleep us microseconds: yield until the timer is due, or usleep. */
void	cowait_pause(void *arg, int64_t us);
/*
 * Wait up to until wake_us (a monotonic time; 0: up to a second) for
 * curl's sockets and the n descriptors of fds.
 */
void	cowait_poll(struct cowait *, struct curl_waitfd *fds, unsigned n,
	    int64_t wake_us);
/*
 * A task whose transfer has finished (its result set, waiting NONE), to
 * resume; NULL when there is none left.  Call after cowait_poll.
 */
struct cowait_task *cowait_done(struct cowait *);

#endif
