/*
 * cowait: coroutines (lib/coro) that wait for libcurl transfers and for
 * timers without blocking their process.  A coroutine hands its transfer
 * to one curl multi handle and yields; the process's loop polls curl
 * together with its own descriptors and resumes each coroutine when its
 * transfer is done or its timer is due.  cowait_perform and cowait_pause
 * fit lib/wechat's perform and pause hooks, so that code written as
 * plain blocking calls runs many calls at once.  cowait_wait and
 * cowait_wake let a coroutine wait for the loop itself (lib/dbbatch: for
 * a statement that the loop runs for many coroutines at once).
 * cowait_fd waits for a descriptor (lib/db's socket), and a cowait_lock
 * lets coroutines take turns with what only one may use across its waits
 * (lib/db's one connection): see lib/db's struct db_io.
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
	COWAIT_TIMER,		/* until wake_us */
	COWAIT_EVENT,		/* until cowait_wake, or wake_us if not 0 */
	COWAIT_FD		/* until fd is ready for events, or wake_us */
};

/* A coroutine's waiting; the loop embeds one in each of its tasks. */
struct cowait_task {
	void		*owner;		/* the loop's task */
	enum cowait_wait waiting;
	CURLcode	 result;	/* of the transfer it waited for */
	int64_t		 wake_us;
	int		 fd;		/* COWAIT_FD: the descriptor, */
	short		 events;	/* ... poll(2)'s events, */
	int		 ready;		/* ... and whether the loop saw them */
	struct cowait_task *next;	/* woken, not yet resumed */
	struct cowait_task *lnext;	/* waiting for a cowait_lock */
};

/*
 * What one coroutine at a time may use, across its waits: the others
 * queue, each up to a deadline of its own.
 */
struct cowait_lock {
	int			 held;
	struct cowait_task	*waiters, **waiters_tail;
};

struct cowait {
	CURLM			*multi;
	struct cowait_task	*current;	/* whose coroutine runs */
	struct cowait_task	*woken, **woken_tail;	/* by cowait_wake */
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
/* May the running code yield to the loop now? */
int	cowait_can_yield(struct cowait *);
/*
 * Yield until cowait_wake names the running coroutine's task; only where
 * cowait_can_yield says so.
 */
void	cowait_wait(struct cowait *);
/* t, waiting in cowait_wait, is to be resumed: cowait_done returns it. */
void	cowait_wake(struct cowait *, struct cowait_task *t);
/*
 * Wait until fd is ready for events (POLLIN, POLLOUT) or until deadline
 * (monotonic us): yield, or poll(2) where the running code may not.
 * 1 ready, 0 the deadline passed, -1 poll failed.
 */
int	cowait_fd(struct cowait *, int fd, short events, int64_t deadline);
void	cowait_lock_init(struct cowait_lock *);
/*
 * Take l: 0; -1 when another holds it until deadline (monotonic us; 0:
 * do not wait), or holds it and the running code may not yield.  The
 * waiters take it in turn.
 */
int	cowait_lock_take(struct cowait *, struct cowait_lock *, int64_t deadline);
/* Give l back; the waiter first in line tries again. */
void	cowait_lock_give(struct cowait *, struct cowait_lock *);
/* Sleep us microseconds: yield until the timer is due, or usleep. */
void	cowait_pause(void *arg, int64_t us);
/*
 * Wait up to until wake_us (a monotonic time; 0: up to a second) for
 * curl's sockets and the n descriptors of fds.
 */
void	cowait_poll(struct cowait *, struct curl_waitfd *fds, unsigned n,
	    int64_t wake_us);
/*
 * For the loop: when t, a task that waits, is due to resume with a time
 * out (monotonic us); 0 when only an event can resume it.
 */
int64_t	cowait_due(const struct cowait_task *t);
/*
 * For the loop: t waits for a descriptor (COWAIT_FD): 1, with *w what
 * to poll; else 0.  When w's revents are set, cowait_fd_ready(t).
 */
int	cowait_fd_wanted(const struct cowait_task *t, struct curl_waitfd *w);
void	cowait_fd_ready(struct cowait_task *t);
/*
 * A task that was woken, or whose transfer has finished (its result set),
 * to resume (waiting NONE); NULL when there is none left.  Call after
 * cowait_poll.
 */
struct cowait_task *cowait_done(struct cowait *);

#endif
