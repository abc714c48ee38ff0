/*
 * scoreboard: slots in shared memory.  The caller holds the shm lock
 * around scoreboard_join and scoreboard_leave, which hand out slots.  A
 * slot is written only by its own responder, so scoreboard_begin and
 * scoreboard_end take no lock (every request would otherwise serialize
 * the whole pool on one mutex); the pool's counters are atomic.  Readers
 * (scoreboard_json, a status command) take no lock either: a status page
 * may show a value mid-update, and never blocks the pool.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "scoreboard.h"

/* A slot's process is gone (reusable). */
static int
slot_dead(const struct sb_slot *s)
{
	return s->pid != 0 && kill(s->pid, 0) == -1 && errno == ESRCH;
}

int
scoreboard_live(const struct sb_slot *s)
{
	return s->pid != 0 && !slot_dead(s);
}

int
scoreboard_join(struct scoreboard *sb, pid_t pid, int64_t wall_us)
{
	int	i;

	for (i = 0; i < SB_SLOTS; i++)
		if (sb->slots[i].pid == 0 || sb->slots[i].pid == pid ||
		    slot_dead(&sb->slots[i]))
			break;
	if (i == SB_SLOTS)
		return -1;
	memset(&sb->slots[i], 0, sizeof(sb->slots[i]));
	sb->slots[i].pid = pid;
	sb->slots[i].state = SB_IDLE;
	sb->slots[i].born_wall_us = wall_us;
	if ((uint32_t)i >= sb->used)
		sb->used = (uint32_t)i + 1;
	return i;
}

void
scoreboard_leave(struct scoreboard *sb, int slot)
{
	memset(&sb->slots[slot], 0, sizeof(sb->slots[slot]));
}

/* Copy s into dst (n bytes), truncating. */
static void
copy(char *dst, size_t n, const char *s)
{
	size_t	len = strlen(s);

	if (len >= n)
		len = n - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

void
scoreboard_begin(struct scoreboard *sb, int slot, const char *method,
    const char *path, int64_t now_us)
{
	struct sb_slot	*s = &sb->slots[slot];
	uint32_t	 busy = 0, seen;
	int		 i;

	s->in_flight++;
	s->started_us = now_us;
	copy(s->method, sizeof(s->method), method);
	copy(s->path, sizeof(s->path), path);
	__atomic_store_n(&s->state, SB_BUSY, __ATOMIC_RELEASE);
	__atomic_add_fetch(&sb->accepted, 1, __ATOMIC_RELAXED);
	for (i = 0; i < (int)sb->used && i < SB_SLOTS; i++)
		busy += sb->slots[i].pid != 0 &&
		    __atomic_load_n(&sb->slots[i].state, __ATOMIC_RELAXED) ==
		    SB_BUSY;
	seen = __atomic_load_n(&sb->max_busy, __ATOMIC_RELAXED);
	while (busy > seen && !__atomic_compare_exchange_n(&sb->max_busy,
	    &seen, busy, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

void
scoreboard_end(struct scoreboard *sb, int slot, int64_t took_us, int slow,
    uint64_t rss_kb, uint64_t local_hits)
{
	struct sb_slot	*s = &sb->slots[slot];

	s->local_hits = local_hits;
	s->requests++;
	s->last_us = took_us;
	if (rss_kb != 0)
		s->rss_kb = rss_kb;
	/*
	 * A responder of the concurrent loop holds many requests at once:
	 * it stays busy until the last of them has ended.
	 */
	if (s->in_flight > 0)
		s->in_flight--;
	if (s->in_flight == 0)
		__atomic_store_n(&s->state, SB_IDLE, __ATOMIC_RELEASE);
	if (slow)
		__atomic_add_fetch(&sb->slow, 1, __ATOMIC_RELAXED);
}

void
scoreboard_capacity(struct scoreboard *sb, int slot, uint32_t n)
{
	sb->slots[slot].capacity = n;
}

void
scoreboard_connections(struct scoreboard *sb, int slot, uint32_t open,
    uint64_t accepted)
{
	sb->slots[slot].conns = open;
	sb->slots[slot].conns_accepted = accepted;
}

void
scoreboard_stale_write(struct scoreboard *sb)
{
	__atomic_add_fetch(&sb->stale_writes, 1, __ATOMIC_RELAXED);
}

void
scoreboard_count(const struct scoreboard *sb, int *busy, int *idle)
{
	int	i;

	*busy = *idle = 0;
	for (i = 0; i < SB_SLOTS; i++) {
		if (!scoreboard_live(&sb->slots[i]))
			continue;
		if (sb->slots[i].state == SB_BUSY)
			(*busy)++;
		else
			(*idle)++;
	}
}

void
scoreboard_load(const struct scoreboard *sb, uint64_t *in_flight,
    uint64_t *capacity)
{
	const struct sb_slot	*s;
	int			 i;

	*in_flight = *capacity = 0;
	for (i = 0; i < SB_SLOTS; i++) {
		s = &sb->slots[i];
		if (!scoreboard_live(s))
			continue;
		*in_flight += __atomic_load_n(&s->in_flight, __ATOMIC_RELAXED);
		*capacity += s->capacity;
	}
}

void
scoreboard_json(const struct scoreboard *sb, struct buf *b, int64_t now_us,
    int64_t now_wall_us)
{
	const struct sb_slot	*s;
	int			 i, busy, idle, first = 1;

	scoreboard_count(sb, &busy, &idle);
	buf_printf(b, "{\"start_time\":%lld,\"uptime_s\":%lld,"
	    "\"accepted\":%llu,\"busy\":%d,\"idle\":%d,\"total\":%d,"
	    "\"max_busy\":%u,\"slow_requests\":%llu,\"stale_writes\":%llu,"
	    "\"responders\":[",
	    (long long)(sb->start_wall_us / 1000000),
	    (long long)((now_wall_us - sb->start_wall_us) / 1000000),
	    (unsigned long long)sb->accepted, busy, idle, busy + idle,
	    sb->max_busy, (unsigned long long)sb->slow,
	    (unsigned long long)sb->stale_writes);
	for (i = 0; i < SB_SLOTS; i++) {
		s = &sb->slots[i];
		if (!scoreboard_live(s))
			continue;
		buf_printf(b, "%s{\"pid\":%d,\"state\":\"%s\",\"requests\":%llu,"
		    "\"started\":%lld,\"last_request_us\":%lld,\"rss_kb\":%llu,"
		    "\"local_hits\":%llu,\"connections\":%u,"
		    "\"connections_accepted\":%llu",
		    first ? "" : ",", (int)s->pid,
		    s->state == SB_BUSY ? "busy" : "idle",
		    (unsigned long long)s->requests,
		    (long long)(s->born_wall_us / 1000000),
		    (long long)s->last_us, (unsigned long long)s->rss_kb,
		    (unsigned long long)s->local_hits, s->conns,
		    (unsigned long long)s->conns_accepted);
		if (s->state == SB_BUSY) {
			buf_adds(b, ",\"method\":");
			buf_json_str(b, s->method, strnlen(s->method,
			    sizeof(s->method)));
			buf_adds(b, ",\"path\":");
			buf_json_str(b, s->path, strnlen(s->path,
			    sizeof(s->path)));
			buf_printf(b, ",\"elapsed_us\":%lld,\"in_flight\":%u",
			    (long long)(now_us - s->started_us), s->in_flight);
		}
		buf_addc(b, '}');
		first = 0;
	}
	buf_adds(b, "]}");
}
