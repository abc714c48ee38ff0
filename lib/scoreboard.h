/*
 * scoreboard: what every responder of a host is doing, kept in shared
 * memory (see shm) so that a status command or page can show the pool
 * the way PHP-FPM's status page does: per responder its pid, state,
 * requests served, the requests in flight (more than one in the concurrent
 * loop), the latest one's method, path and elapsed time, the last
 * request's duration, its RSS and its FastCGI connections (open, and
 * accepted in all: nginx's kept connections serve many requests each); per pool the start time, accepted
 * requests, busy/idle counts, the most busy ever seen, slow requests and
 * stale writes (committed while Redis missed their invalidation).
 */
#ifndef WX_SCOREBOARD_H
#define WX_SCOREBOARD_H

#include <stdint.h>
#include <sys/types.h>

#include "arena.h"

#define SB_SLOTS	256

enum sb_state {
	SB_IDLE,
	SB_BUSY
};

struct sb_slot {
	int32_t		pid;		/* 0: free */
	int32_t		state;		/* enum sb_state */
	uint64_t	requests;
	int64_t		born_wall_us;
	uint32_t	in_flight;	/* busy while above 0 */
	uint32_t	capacity;	/* requests it holds at once at most */
	int64_t		started_us;	/* monotonic, of the latest request */
	int64_t		last_us;	/* duration of the last request */
	uint64_t	rss_kb;
	uint64_t	local_hits;	/* answered from the responder's copies */
	uint32_t	conns;		/* FastCGI connections open now */
	uint64_t	conns_accepted;	/* in all: fewer than requests when kept */
	char		method[8];
	char		path[120];
};

struct scoreboard {
	int64_t		start_wall_us;
	uint64_t	accepted;
	uint64_t	slow;
	uint64_t	stale_writes;
	uint32_t	max_busy;
	uint32_t	used;		/* slots above it were never taken */
	struct sb_slot	slots[SB_SLOTS];
};

/* Claim a slot for pid (reusing those of dead processes); index or -1. */
/* Under the shm lock. */
int	scoreboard_join(struct scoreboard *, pid_t, int64_t wall_us);
void	scoreboard_leave(struct scoreboard *, int slot);
/* Without a lock, by the slot's own responder only. */
void	scoreboard_begin(struct scoreboard *, int slot, const char *method,
	    const char *path, int64_t now_us);
/* One request of the slot's ended after took_us; idle when none is left. */
void	scoreboard_end(struct scoreboard *, int slot, int64_t took_us,
	    int slow, uint64_t rss_kb, uint64_t local_hits);
/* How many requests the slot's responder holds at once at most. */
void	scoreboard_capacity(struct scoreboard *, int slot, uint32_t n);
/* The slot's FastCGI connections: open now, accepted in all. */
void	scoreboard_connections(struct scoreboard *, int slot, uint32_t open,
	    uint64_t accepted);
/* Count a write whose invalidation Redis missed (any process, no lock). */
void	scoreboard_stale_write(struct scoreboard *);
/* The slot holds a process that is still alive. */
int	scoreboard_live(const struct sb_slot *);
/* Live responders, busy and idle. */
void	scoreboard_count(const struct scoreboard *, int *busy, int *idle);
/*
 * The requests the live responders hold now, and the most they can hold
 * at once (the sum of their capacities): how saturated the pool is.
 */
void	scoreboard_load(const struct scoreboard *, uint64_t *in_flight,
	    uint64_t *capacity);
/* The whole board as JSON (the data of a status page). */
void	scoreboard_json(const struct scoreboard *, struct buf *,
	    int64_t now_us, int64_t now_wall_us);

#endif
