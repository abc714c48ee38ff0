/*
 * job: durable background jobs in Redis Streams (see job.h).
 *
 * Where a job is, always exactly one of:
 *   wx:jobs        the stream, read through the consumer group "workers";
 *                  a job taken and not finished is pending there;
 *   wx:jobs:retry  a sorted set, by when its next run is due;
 *   wx:jobs:dead   the dead letters, a stream.
 * A stream entry that is done is deleted (XDEL), so that the stream holds
 * only the work still to do and its length is the queue's depth.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "job.h"
#include "keys.h"
#include "util.h"

/* Backoff stops doubling here: 2^16 times the base. */
#define BACKOFF_MAX_SHIFT	16

/*
 * Enqueue.  KEYS: stream, retry set, dedup key.  ARGV: id, type,
 * payload, idempotency key ("" none), not-before (ms), dedup ttl (s),
 * traceparent ("" none), tracestate ("" none).
 */
static const char enqueue_lua[] =
	"if ARGV[4] ~= '' then "
	"  local prev = redis.call('GET', KEYS[3]) "
	"  if prev then return {prev, 1} end "
	"  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[6]) "
	"end "
	"local t = redis.call('TIME') "
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
	"if tonumber(ARGV[5]) > now then "
	"  redis.call('ZADD', KEYS[2], ARGV[5], cjson.encode({id = ARGV[1], "
	"    type = ARGV[2], payload = ARGV[3], key = ARGV[4], attempt = '0', "
	"    error = '', trace = ARGV[7], tracestate = ARGV[8]})) "
	"else "
	"  redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'type', ARGV[2], "
	"    'payload', ARGV[3], 'key', ARGV[4], 'attempt', '0', 'error', '', "
	"    'trace', ARGV[7], 'tracestate', ARGV[8]) "
	"end "
	"return {ARGV[1], 0}";

/*
 * A run failed.  KEYS: stream, retry set, dead letters.  ARGV: group,
 * entry, error, the delay (ms) before the next run or "dead".  The job's
 * fields are read from its entry; 0 when the entry is gone (another
 * consumer finished the job), 1 retried, 2 dead.
 */
static const char fail_lua[] =
	"local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) "
	"redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) "
	"redis.call('XDEL', KEYS[1], ARGV[2]) "
	"if #e == 0 then return 0 end "
	"local f, j = e[1][2], {} "
	"for i = 1, #f, 2 do j[f[i]] = f[i + 1] end "
	"j.attempt = tostring((tonumber(j.attempt) or 0) + 1) "
	"j.error = ARGV[3] "
	"local t = redis.call('TIME') "
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
	"if ARGV[4] == 'dead' then "
	"  redis.call('XADD', KEYS[3], '*', 'id', j.id, 'type', j.type, "
	"    'payload', j.payload, 'key', j.key or '', 'attempt', j.attempt, "
	"    'error', j.error, 'trace', j.trace or '', "
	"    'tracestate', j.tracestate or '') "
	"  return 2 "
	"end "
	"redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), cjson.encode(j)) "
	"return 1";

/* Done.  KEYS: stream.  ARGV: group, entry. */
static const char done_lua[] =
	"redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) "
	"return redis.call('XDEL', KEYS[1], ARGV[2])";

/* Due retries into the stream.  KEYS: retry set, stream.  ARGV: limit. */
static const char promote_lua[] =
	"local t = redis.call('TIME') "
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, "
	"  'LIMIT', 0, ARGV[1]) "
	"for _, m in ipairs(due) do "
	"  local j = cjson.decode(m) "
	"  redis.call('XADD', KEYS[2], '*', 'id', j.id, 'type', j.type, "
	"    'payload', j.payload, 'key', j.key, 'attempt', j.attempt, "
	"    'error', j.error, 'trace', j.trace or '', "
	"    'tracestate', j.tracestate or '') "
	"  redis.call('ZREM', KEYS[1], m) "
	"end "
	"return #due";

/*
 * Dead letters back.  KEYS: dead letters, stream.  ARGV: the job id, or
 * "" for all.  Scans the dead letters in pages of 100.
 */
static const char revive_lua[] =
	"local n, from = 0, '-' "
	"while true do "
	"  local es = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100) "
	"  if #es == 0 then break end "
	"  for _, e in ipairs(es) do "
	"    local f, j = e[2], {} "
	"    for i = 1, #f, 2 do j[f[i]] = f[i + 1] end "
	"    if ARGV[1] == '' or j.id == ARGV[1] then "
	"      redis.call('XADD', KEYS[2], '*', 'id', j.id, 'type', j.type, "
	"        'payload', j.payload, 'key', j.key, 'attempt', '0', "
	"        'error', j.error, 'trace', j.trace or '', "
	"        'tracestate', j.tracestate or '') "
	"      redis.call('XDEL', KEYS[1], e[1]) "
	"      n = n + 1 "
	"    end "
	"  end "
	"  from = '(' .. es[#es][1] "
	"end "
	"return n";

/* Purge.  KEYS: dead letters. */
static const char purge_lua[] =
	"local n = redis.call('XLEN', KEYS[1]) "
	"redis.call('DEL', KEYS[1]) "
	"return n";

#define ARG(i, s)	do { int i_ = (i); argv[i_] = (s); \
			    argvlen[i_] = strlen(argv[i_]); } while (0)

int
job_new_id(char id[JOB_ID_LEN + 1])
{
	unsigned char	r[JOB_ID_LEN / 2];

	if (util_random(r, sizeof(r)) == -1)
		return -1;
	crypto_hex(r, sizeof(r), id);
	return 0;
}

long long
job_backoff_ms(long long base_ms, long long attempt, uint32_t rnd)
{
	long long	d;

	if (base_ms < 1)
		base_ms = 1;
	if (attempt < 0)
		attempt = 0;
	if (attempt > BACKOFF_MAX_SHIFT)
		attempt = BACKOFF_MAX_SHIFT;
	if (base_ms > (INT64_MAX >> (BACKOFF_MAX_SHIFT + 1)))
		base_ms = INT64_MAX >> (BACKOFF_MAX_SHIFT + 1);
	d = base_ms << attempt;
	return d - (long long)((uint64_t)rnd % (uint64_t)(d / 2 + 1));
}

enum cache_status
job_enqueue(struct cache *cc, const struct job_opts *o, struct arena *a,
    struct job *j, long long not_before_ms, int *dup)
{
	const char		*argv[14];
	size_t			 argvlen[14];
	char			 nbf[24], ttl[24];
	redisReply		*r;
	enum cache_status	 st;

	*dup = 0;
	snprintf(nbf, sizeof(nbf), "%lld", not_before_ms);
	snprintf(ttl, sizeof(ttl), "%lld", o->dedup_ttl_s);
	ARG(2, "3");
	ARG(3, KEYS_JOBS);
	ARG(4, KEYS_JOBS_RETRY);
	ARG(5, arena_printf(a, KEYS_JOBS_KEY "%s", j->key));
	ARG(6, j->id);
	ARG(7, j->type);
	ARG(8, j->payload);
	ARG(9, j->key);
	ARG(10, nbf);
	ARG(11, ttl);
	ARG(12, j->trace != NULL ? j->trace : "");
	ARG(13, j->tracestate != NULL ? j->tracestate : "");
	if ((st = cache_eval(cc, &r, enqueue_lua, 14, argv, argvlen)) !=
	    CACHE_OK)
		return st;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_INTEGER) {
		if ((*dup = r->element[1]->integer == 1))
			j->id = arena_strndup(a, r->element[0]->str,
			    r->element[0]->len);
	} else
		st = CACHE_ERROR;
	freeReplyObject(r);
	return st;
}

/* A field of an entry's [f1, v1, f2, v2 ...], copied; "" when absent. */
static const char *
entry_field(struct arena *a, const redisReply *f, const char *name)
{
	size_t	i;

	for (i = 0; i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, name) == 0 &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING)
			return arena_strndup(a, f->element[i + 1]->str,
			    f->element[i + 1]->len);
	return "";
}

/* A stream entry [id, [fields]] as a job; -1 when it is not one. */
static int
entry_job(struct arena *a, const redisReply *e, struct job *j)
{
	const redisReply	*f;
	long long		 n;
	const char		*why;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING ||
	    e->element[0]->len >= sizeof(j->entry) ||
	    (f = e->element[1])->type != REDIS_REPLY_ARRAY)
		return -1;
	memcpy(j->entry, e->element[0]->str, e->element[0]->len + 1);
	j->id = entry_field(a, f, "id");
	j->type = entry_field(a, f, "type");
	j->payload = entry_field(a, f, "payload");
	j->key = entry_field(a, f, "key");
	j->error = entry_field(a, f, "error");
	j->trace = entry_field(a, f, "trace");
	j->tracestate = entry_field(a, f, "tracestate");
	if (util_strtonum(entry_field(a, f, "attempt"), 0, 1000000000, &n,
	    &why) == -1)
		n = 0;
	j->attempt = n;
	j->at_ms = strtoll(j->entry, NULL, 10);
	return j->id[0] != '\0' && j->type[0] != '\0' ? 0 : -1;
}

/* The entries of an array reply as jobs, up to max; *n of them. */
static void
entries_jobs(struct arena *a, const redisReply *es, struct job *jobs, int max,
    int *n)
{
	size_t	i;

	for (i = 0; i < es->elements && *n < max; i++)
		if (entry_job(a, es->element[i], &jobs[*n]) == 0)
			(*n)++;
}

enum cache_status
job_setup(struct cache *cc)
{
	const char		*argv[6];
	size_t			 argvlen[6];
	redisReply		*r;
	enum cache_status	 st;

	ARG(0, "XGROUP");
	ARG(1, "CREATE");
	ARG(2, KEYS_JOBS);
	ARG(3, JOB_GROUP);
	ARG(4, "0");
	ARG(5, "MKSTREAM");
	st = cache_cmd(cc, &r, 6, argv, argvlen);
	freeReplyObject(r);
	if (st == CACHE_ERROR && strncmp(cc->errmsg, "BUSYGROUP", 9) == 0)
		return CACHE_OK;
	return st;
}

enum cache_status
job_take(struct cache *cc, struct arena *a, const char *consumer, int mine,
    long long block_ms, struct job *jobs, int max, int *n)
{
	const char		*argv[11];
	size_t			 argvlen[11];
	char			 count[16], block[24];
	redisReply		*r;
	enum cache_status	 st;
	int			 argc = 0, tries;

	*n = 0;
	snprintf(count, sizeof(count), "%d", max);
	snprintf(block, sizeof(block), "%lld", block_ms);
	ARG(argc++, "XREADGROUP");
	ARG(argc++, "GROUP");
	ARG(argc++, JOB_GROUP);
	ARG(argc++, consumer);
	ARG(argc++, "COUNT");
	ARG(argc++, count);
	if (block_ms > 0) {
		ARG(argc++, "BLOCK");
		ARG(argc++, block);
	}
	ARG(argc++, "STREAMS");
	ARG(argc++, KEYS_JOBS);
	ARG(argc++, mine ? "0" : ">");
	for (tries = 0; tries < 2; tries++) {
		st = cache_cmd(cc, &r, argc, argv, argvlen);
		if (st != CACHE_ERROR || strncmp(cc->errmsg, "NOGROUP", 7) != 0)
			break;
		/* The stream was deleted (a FLUSHALL, a Redis without AOF). */
		if ((st = job_setup(cc)) != CACHE_OK)
			return st;
	}
	if (st != CACHE_OK)
		return st;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY &&
	    r->element[0]->elements == 2)
		entries_jobs(a, r->element[0]->element[1], jobs, max, n);
	freeReplyObject(r);
	return CACHE_OK;
}

enum cache_status
job_claim(struct cache *cc, const struct job_opts *o, struct arena *a,
    const char *consumer, char cursor[48], struct job *jobs, int max, int *n)
{
	const char		*argv[8];
	size_t			 argvlen[8];
	char			 idle[24], count[16];
	redisReply		*r;
	enum cache_status	 st;

	*n = 0;
	snprintf(idle, sizeof(idle), "%lld", o->claim_idle_ms);
	snprintf(count, sizeof(count), "%d", max);
	ARG(0, "XAUTOCLAIM");
	ARG(1, KEYS_JOBS);
	ARG(2, JOB_GROUP);
	ARG(3, consumer);
	ARG(4, idle);
	ARG(5, cursor);
	ARG(6, "COUNT");
	ARG(7, count);
	if ((st = cache_cmd(cc, &r, 8, argv, argvlen)) != CACHE_OK)
		return st;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[0]->len < 48) {
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		if (r->element[1]->type == REDIS_REPLY_ARRAY)
			entries_jobs(a, r->element[1], jobs, max, n);
	}
	freeReplyObject(r);
	return CACHE_OK;
}

enum cache_status
job_done(struct cache *cc, const struct job *j)
{
	const char		*argv[6];
	size_t			 argvlen[6];
	redisReply		*r;
	enum cache_status	 st;

	ARG(2, "1");
	ARG(3, KEYS_JOBS);
	ARG(4, JOB_GROUP);
	ARG(5, j->entry);
	st = cache_eval(cc, &r, done_lua, 6, argv, argvlen);
	freeReplyObject(r);
	return st;
}

enum cache_status
job_fail(struct cache *cc, const struct job_opts *o, const struct job *j,
    const char *error, int permanent, int *dead)
{
	const char		*argv[10];
	size_t			 argvlen[10];
	char			 delay[24];
	uint32_t		 rnd = 0;
	redisReply		*r;
	enum cache_status	 st;

	*dead = permanent || j->attempt >= o->retry_max;
	if (!*dead) {
		(void)util_random(&rnd, sizeof(rnd));
		snprintf(delay, sizeof(delay), "%lld",
		    job_backoff_ms(o->retry_base_ms, j->attempt, rnd));
	}
	ARG(2, "3");
	ARG(3, KEYS_JOBS);
	ARG(4, KEYS_JOBS_RETRY);
	ARG(5, KEYS_JOBS_DEAD);
	ARG(6, JOB_GROUP);
	ARG(7, j->entry);
	ARG(8, error);
	ARG(9, *dead ? "dead" : delay);
	st = cache_eval(cc, &r, fail_lua, 10, argv, argvlen);
	freeReplyObject(r);
	return st;
}

/* A script that answers an integer: *out. */
static enum cache_status
eval_int(struct cache *cc, const char *script, int argc, const char **argv,
    size_t *argvlen, long long *out)
{
	redisReply		*r;
	enum cache_status	 st;

	*out = 0;
	if ((st = cache_eval(cc, &r, script, argc, argv, argvlen)) != CACHE_OK)
		return st;
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		*out = r->integer;
	else
		st = CACHE_ERROR;
	freeReplyObject(r);
	return st;
}

enum cache_status
job_promote(struct cache *cc, int *moved)
{
	const char		*argv[6];
	size_t			 argvlen[6];
	long long		 n;
	enum cache_status	 st;

	ARG(2, "2");
	ARG(3, KEYS_JOBS_RETRY);
	ARG(4, KEYS_JOBS);
	ARG(5, "500");
	st = eval_int(cc, promote_lua, 6, argv, argvlen, &n);
	*moved = (int)n;
	return st;
}

enum cache_status
job_dead_retry(struct cache *cc, const char *id, int *moved)
{
	const char		*argv[6];
	size_t			 argvlen[6];
	long long		 n;
	enum cache_status	 st;

	ARG(2, "2");
	ARG(3, KEYS_JOBS_DEAD);
	ARG(4, KEYS_JOBS);
	ARG(5, id != NULL ? id : "");
	st = eval_int(cc, revive_lua, 6, argv, argvlen, &n);
	*moved = (int)n;
	return st;
}

enum cache_status
job_dead_purge(struct cache *cc, long long *removed)
{
	const char	*argv[4];
	size_t		 argvlen[4];

	ARG(2, "1");
	ARG(3, KEYS_JOBS_DEAD);
	return eval_int(cc, purge_lua, 4, argv, argvlen, removed);
}

enum cache_status
job_dead_list(struct cache *cc, struct arena *a, struct job *jobs, int max,
    int *n)
{
	const char		*argv[6];
	size_t			 argvlen[6];
	char			 count[16];
	redisReply		*r;
	enum cache_status	 st;

	*n = 0;
	snprintf(count, sizeof(count), "%d", max);
	ARG(0, "XRANGE");
	ARG(1, KEYS_JOBS_DEAD);
	ARG(2, "-");
	ARG(3, "+");
	ARG(4, "COUNT");
	ARG(5, count);
	if ((st = cache_cmd(cc, &r, 6, argv, argvlen)) != CACHE_OK)
		return st;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY)
		entries_jobs(a, r, jobs, max, n);
	freeReplyObject(r);
	return CACHE_OK;
}

/* An integer command of one key (XLEN, ZCARD): *out. */
static enum cache_status
count_of(struct cache *cc, const char *cmd, const char *key, long long *out)
{
	const char		*argv[2];
	size_t			 argvlen[2];
	redisReply		*r;
	enum cache_status	 st;

	*out = 0;
	ARG(0, cmd);
	ARG(1, key);
	if ((st = cache_cmd(cc, &r, 2, argv, argvlen)) == CACHE_OK &&
	    r != NULL && r->type == REDIS_REPLY_INTEGER)
		*out = r->integer;
	freeReplyObject(r);
	return st;
}

enum cache_status
job_stats(struct cache *cc, struct job_stats *s)
{
	const char		*argv[6];
	size_t			 argvlen[6];
	redisReply		*r, *c;
	enum cache_status	 st;
	size_t			 i;
	long long		 first;

	memset(s, 0, sizeof(*s));
	if ((st = count_of(cc, "XLEN", KEYS_JOBS, &s->queued)) != CACHE_OK ||
	    (st = count_of(cc, "ZCARD", KEYS_JOBS_RETRY, &s->retrying)) !=
	    CACHE_OK ||
	    (st = count_of(cc, "XLEN", KEYS_JOBS_DEAD, &s->dead)) != CACHE_OK)
		return st;
	ARG(0, "XRANGE");
	ARG(1, KEYS_JOBS);
	ARG(2, "-");
	ARG(3, "+");
	ARG(4, "COUNT");
	ARG(5, "1");
	if ((st = cache_cmd(cc, &r, 6, argv, argvlen)) != CACHE_OK)
		return st;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY &&
	    r->element[0]->elements == 2 &&
	    r->element[0]->element[0]->type == REDIS_REPLY_STRING) {
		first = strtoll(r->element[0]->element[0]->str, NULL, 10);
		s->oldest_ms = util_wall_us() / 1000 - first;
		if (s->oldest_ms < 0)
			s->oldest_ms = 0;
	}
	freeReplyObject(r);
	ARG(0, "XPENDING");
	ARG(1, KEYS_JOBS);
	ARG(2, JOB_GROUP);
	st = cache_cmd(cc, &r, 3, argv, argvlen);
	if (st == CACHE_ERROR && strncmp(cc->errmsg, "NOGROUP", 7) == 0)
		return CACHE_OK;	/* no worker ever started */
	if (st != CACHE_OK)
		return st;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER) {
		s->pending = r->element[0]->integer;
		c = r->element[3];
		for (i = 0; c->type == REDIS_REPLY_ARRAY && i < c->elements &&
		    s->consumers < JOB_STATS_CONSUMERS; i++) {
			if (c->element[i]->type != REDIS_REPLY_ARRAY ||
			    c->element[i]->elements != 2 ||
			    c->element[i]->element[0]->type !=
			    REDIS_REPLY_STRING ||
			    c->element[i]->element[1]->type !=
			    REDIS_REPLY_STRING)
				continue;
			snprintf(s->consumer[s->consumers].name,
			    sizeof(s->consumer[0].name), "%s",
			    c->element[i]->element[0]->str);
			s->consumer[s->consumers++].pending =
			    strtoll(c->element[i]->element[1]->str, NULL, 10);
		}
	}
	freeReplyObject(r);
	return CACHE_OK;
}
