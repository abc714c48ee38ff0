/*
 * nearcache: copies of cached answers shared by the processes of a host,
 * kept honest by the host's write counters and by Redis' invalidation
 * messages.
 *
 * The store is a ring of records with an index of where each key's latest
 * record is.  Nothing in it is locked, so that a process killed at any
 * point leaves nothing held:
 *  - a writer reserves room by moving the cursor (the bytes of the ring
 *    ever reserved) with a compare-and-swap, writes its record there, and
 *    only then publishes it in the key's index slot (direct-mapped: a
 *    collision replaces the older record);
 *  - a reader copies the record into its request's arena, then reads the
 *    cursor again: if the ring has come round past the record's start
 *    meanwhile, a writer may have written over what was copied, and the
 *    copy is thrown away.  Otherwise nobody wrote there since the record
 *    was published, and the copy is whole (a seqlock, with the cursor as
 *    its count).
 * A record holds what its answer needs: the entry, its header lines made
 * once, the key (checked in full, since index slots are shared by hash)
 * and the host's write count of its collection when it was fetched.
 */
#include <sys/socket.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "keys.h"
#include "log.h"
#include "nearcache.h"
#include "util.h"

#define RETRY_US	1000000	/* after a failed set-up of the connection */
#define STORE_HDR	64	/* the cursor, alone on its cache line */
#define STORE_MIN	(64 * 1024)	/* a smaller store keeps nothing */
#define INDEX_RATIO	512	/* bytes of store per index slot */
#define TAG_BITS	16	/* of the hash, in an index slot */

/* A record in the ring: this, then key, NUL, body, header lines. */
struct nc_rec {
	uint64_t	 hash;
	uint64_t	 mark;		/* the host's write count when fetched */
	int64_t		 born_us;
	uint32_t	 size;		/* of the whole record, 8-aligned */
	uint32_t	 keylen;
	int32_t		 coll;
	int32_t		 status;
	long long	 last_modified;
	uint32_t	 body_len;
	uint32_t	 headers_len;
	char		 etag[sizeof(((struct hc_entry *)NULL)->etag)];
	char		 lm_http[sizeof(((struct hc_entry *)NULL)->lm_http)];
	char		 data[];
};

/* Set by SIGIO: the invalidation connection has something to read. */
static volatile sig_atomic_t	readable;

static void
on_sigio(int sig)
{
	(void)sig;
	readable = 1;
}

/*
 * The store's geometry, which its size alone decides, so that every
 * process of the host agrees on it: the cursor, an index of a power of two
 * slots (one per INDEX_RATIO bytes), then the ring.
 */
static void
store_open(struct nearcache *nc, void *store, size_t bytes)
{
	size_t	slots = 1;

	if (store == NULL || bytes < STORE_MIN)
		return;
	while (slots * 2 <= bytes / INDEX_RATIO)
		slots *= 2;
	nc->cursor = store;
	nc->index = (uint64_t *)((char *)store + STORE_HDR);
	nc->index_mask = slots - 1;
	nc->ring = (char *)(nc->index + slots);
	nc->ring_bytes = (bytes - STORE_HDR - slots * sizeof(uint64_t)) &
	    ~(size_t)7;
}

void
nearcache_init(struct nearcache *nc, const struct nearcache_opts *o)
{
	struct sigaction	sa;

	memset(nc, 0, sizeof(*nc));
	nc->o = *o;
	nc->changes = o->changes;
	cache_init(&nc->conn, o->redis);
	store_open(nc, o->store, o->store_bytes);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_sigio;
	sa.sa_flags = SA_RESTART;
	if (nc->changes != NULL && sigaction(SIGIO, &sa, NULL) == -1) {
		log_error("nearcache: cannot handle SIGIO: %s; answers are "
		    "not copied into the responder", strerror(errno));
		nc->changes = NULL;
	}
}

/*
 * Redis reported a change of coll (-1: of anything, or this process may
 * have missed one): what stamps vouch for goes, and so do the host's
 * copies, for every process, by a bump of the host's write counters.
 */
static void
outdate(struct nearcache *nc, int coll)
{
	int	i;

	if (coll == -1)
		nc->epoch++;
	else if (coll < NEARCACHE_COLLECTIONS)
		nc->coll_epoch[coll]++;
	if (nc->changes == NULL)
		return;
	for (i = 0; nc->o.collections[i] != NULL &&
	    i < NEARCACHE_COLLECTIONS; i++)
		if (coll == -1 || coll == i)
			nearcache_wrote(nc->o.changes, i);
}

/* Forget what the reader of the invalidation connection holds. */
static void
reader_free(struct nearcache *nc)
{
	if (nc->reader != NULL)
		redisReaderFree(nc->reader);
	nc->reader = NULL;
	nc->unparsed = 0;
}

void
nearcache_free(struct nearcache *nc)
{
	cache_close(&nc->conn);
	reader_free(nc);
	nc->tracking = 0;
}

int
nearcache_collection(const struct nearcache *nc, const char *collection)
{
	int	i;

	for (i = 0; nc->o.collections[i] != NULL &&
	    i < NEARCACHE_COLLECTIONS; i++)
		if (strcmp(nc->o.collections[i], collection) == 0)
			return i;
	return -1;
}

/* The bucket of a subject's reports. */
static uint32_t
subject_bucket(const char *subject, size_t n)
{
	return (uint32_t)(util_fnv1a(UTIL_FNV_INIT, subject, n) %
	    NEARCACHE_SUBJECTS);
}

/*
 * The connection is gone or cannot be trusted: forget everything.  A
 * connection that worked is made again at the next request (while the
 * responder's own Redis connection is up); one that could not be set up
 * waits RETRY_US.
 */
static void
lose(struct nearcache *nc, const char *why, int64_t retry_us)
{
	log_warn("nearcache: invalidation connection %s; copies dropped", why);
	outdate(nc, -1);
	cache_close(&nc->conn);
	reader_free(nc);
	nc->retry_us = util_mono_us() + retry_us;
	nc->tracking = 0;
}

/*
 * Run one set-up command; 0 when Redis answered with a reply of type, 1
 * when it refused the command (an error reply), -1 when it is unreachable.
 */
static int
setup_cmd(struct nearcache *nc, int type, int argc, const char **argv,
    long long *integer)
{
	size_t			 argvlen[CACHE_CALL_ARGS];
	redisReply		*r;
	enum cache_status	 st;
	int			 i, ok;

	for (i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	if ((st = cache_cmd(&nc->conn, &r, argc, argv, argvlen)) ==
	    CACHE_ERROR)
		return 1;
	if (st != CACHE_OK || r == NULL)
		return -1;
	ok = r->type == type;
	if (ok && integer != NULL)
		*integer = r->integer;
	freeReplyObject(r);
	return ok ? 0 : -1;
}

/* Apply one message from __redis__:invalidate; -1 when not understood. */
static int
apply(struct nearcache *nc, const redisReply *m)
{
	const redisReply	*keys, *k;
	size_t			 i, plen = sizeof(KEYS_VERSION) - 1;
	size_t			 slen = strlen(nc->o.subject_prefix);
	int			 coll;

	if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 ||
	    m->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(m->element[0]->str, "message") != 0)
		return -1;
	nc->invalidations++;
	keys = m->element[2];
	if (keys->type == REDIS_REPLY_NIL) {	/* FLUSHALL, FLUSHDB */
		outdate(nc, -1);
		return 0;
	}
	for (i = 0; i < (keys->type == REDIS_REPLY_ARRAY ? keys->elements :
	    1); i++) {
		k = keys->type == REDIS_REPLY_ARRAY ? keys->element[i] : keys;
		if (k->type != REDIS_REPLY_STRING)
			return -1;
		if (k->len > slen &&
		    memcmp(k->str, nc->o.subject_prefix, slen) == 0) {
			nc->subj_epoch[subject_bucket(k->str + slen,
			    k->len - slen)]++;
			continue;
		}
		coll = k->len > plen && memcmp(k->str, KEYS_VERSION, plen) == 0 ?
		    nearcache_collection(nc, k->str + plen) : -1;
		outdate(nc, coll);
	}
	return 0;
}

/*
 * Connect the invalidation connection: tracking in broadcast mode for the
 * version keys, redirected to itself, then subscribed (after which it
 * only receives).  0 or -1 (logged).
 */
static int
track(struct nearcache *nc)
{
	const char	*id_argv[] = { "CLIENT", "ID" };
	const char	*sub_argv[] = { "SUBSCRIBE", "__redis__:invalidate" };
	const char	*tr_argv[] = { "CLIENT", "TRACKING", "on", "REDIRECT",
			    NULL, "BCAST", "PREFIX", KEYS_VERSION, "PREFIX",
			    nc->o.subject_prefix };
	redisReply	*m;
	char		 id[24];
	long long	 n;
	int		 rc, w, fd, fl;

	if (cache_ready(&nc->conn) == -1)
		return -1;
	if ((rc = setup_cmd(nc, REDIS_REPLY_INTEGER, 2, id_argv, &n)) != 0)
		goto fail;
	w = snprintf(id, sizeof(id), "%lld", n);
	if (w < 0 || (size_t)w >= sizeof(id))
		goto fail;
	tr_argv[4] = id;
	if ((rc = setup_cmd(nc, REDIS_REPLY_STATUS, 10, tr_argv, NULL)) != 0 ||
	    (rc = setup_cmd(nc, REDIS_REPLY_ARRAY, 2, sub_argv, NULL)) != 0)
		goto fail;
	/* The kernel signals when Redis sends something (see nearcache.h). */
	fd = nc->conn.c->fd;
	if (fcntl(fd, F_SETOWN, getpid()) == -1 ||
	    (fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_ASYNC) == -1 ||
	    (nc->reader = redisReaderCreate()) == NULL) {
		rc = -1;
		goto fail;
	}
	/*
	 * From now on the connection is read here, with a reader of our own.
	 * Messages that came with the subscription's reply are applied; half
	 * of one left behind shows as a protocol error on ours, and the
	 * connection is made again.
	 */
	while (redisGetReplyFromReader(nc->conn.c, (void **)&m) == REDIS_OK &&
	    m != NULL) {
		rc = apply(nc, m);
		freeReplyObject(m);
		if (rc == -1)
			goto fail;
	}
	readable = 1;
	/* Copies from before the subscription cannot be vouched for. */
	outdate(nc, -1);
	nc->tracking = 1;
	log_info("nearcache: tracking writes to %s* and %s* on redis",
	    KEYS_VERSION, nc->o.subject_prefix);
	return 0;
fail:
	if (rc == 1) {
		/* Refused (Redis before 6, or a renamed command): for good. */
		log_error("nearcache: redis refused client-side caching (%s); "
		    "answers are not copied into the responder",
		    nc->conn.errmsg);
		nc->changes = NULL;
		cache_close(&nc->conn);
		return -1;
	}
	lose(nc, "could not be set up", RETRY_US);
	return -1;
}

/* Decimal digits of n, with its sign. */
static size_t
digits(long long n)
{
	size_t	d = n < 0 ? 2 : 1;

	while (n <= -10 || n >= 10) {
		n /= 10;
		d++;
	}
	return d;
}

/*
 * The bytes of r in RESP2, which Redis writes in one way only: what the
 * reader consumed to make it.
 */
static size_t
resp_len(const redisReply *r)
{
	size_t	n, i;

	switch (r->type) {
	case REDIS_REPLY_STRING:
		return 1 + digits((long long)r->len) + 2 + r->len + 2;
	case REDIS_REPLY_ARRAY:
		n = 1 + digits((long long)r->elements) + 2;
		for (i = 0; i < r->elements; i++)
			n += resp_len(r->element[i]);
		return n;
	case REDIS_REPLY_INTEGER:
		return 1 + digits(r->integer) + 2;
	case REDIS_REPLY_NIL:
		return 5;	/* $-1 or *-1 */
	default:		/* status, error */
		return 1 + r->len + 2;
	}
}

/* Read and apply whatever Redis has sent; -1 when the connection is lost. */
static int
drain(struct nearcache *nc)
{
	redisReply	*m;
	char		 buf[4096];
	size_t		 total = 0, len;
	ssize_t		 n;
	int		 rc;

	for (;;) {
		n = recv(nc->conn.c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			if (redisReaderFeed(nc->reader, buf, (size_t)n) !=
			    REDIS_OK)
				break;
			total += (size_t)n;
			nc->unparsed += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		lose(nc, n == 0 ? "closed by redis" : "failed", 0);
		return -1;
	}
	while ((rc = redisReaderGetReply(nc->reader, (void **)&m)) ==
	    REDIS_OK && m != NULL) {
		len = resp_len(m);
		nc->unparsed = len <= nc->unparsed ? nc->unparsed - len : 0;
		rc = apply(nc, m);
		freeReplyObject(m);
		if (rc == -1) {
			lose(nc, "sent something unexpected", 0);
			return -1;
		}
	}
	if (rc != REDIS_OK) {
		lose(nc, "sent a protocol error", 0);
		return -1;
	}
	/* Redis may have held back what did not fit in the socket. */
	if (total > NEARCACHE_DRAIN_MAX) {
		lose(nc, "fell behind", 0);
		return -1;
	}
	return 0;
}

/*
 * The rule the copies rest on: SIGIO is not blocked while a request is
 * served.  A process may hold it back only while it waits for a request
 * (around FCGX_Accept_r, say); the signal is then handled when
 * unblocked, before the request.  Blocked here, a write reported by
 * Redis would go unnoticed.  Checked on the first call and every 256th:
 * a system call on every hit would cost the hot path, and a process that
 * breaks the rule breaks it every time.
 */
static int
sigio_deliverable(void)
{
	static unsigned	calls;
	sigset_t	set;

	if (calls++ % 256 != 0)
		return 1;
	return sigprocmask(SIG_BLOCK, NULL, &set) == 0 &&
	    !sigismember(&set, SIGIO);
}

int
nearcache_sync(struct nearcache *nc, const struct cache *main)
{
	if (nc->changes == NULL)
		return 0;
	assert(sigio_deliverable());
	if (!nc->tracking) {
		/* Redis down: leave the reconnecting (and logging) to main. */
		if (main->c == NULL || main->c->err != 0 ||
		    util_mono_us() < nc->retry_us || track(nc) == -1)
			return 0;
	}
	if (readable) {
		readable = 0;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (drain(nc) == -1)
			return 0;
	}
	/* Half a message: it may be the one that matters. */
	return nc->unparsed == 0;
}

uint64_t
nearcache_mark(const struct nearcache *nc, int coll)
{
	return __atomic_load_n(&nc->changes[coll], __ATOMIC_ACQUIRE);
}

/* The hash of a key, salted with the collection. */
static uint64_t
key_hash(int coll, const char *key, size_t len)
{
	return util_fnv1a(UTIL_FNV_INIT ^ (uint64_t)coll, key, len);
}

/* Where a record starts in an index slot, with the tag of its hash. */
static uint64_t
locator(uint64_t start, uint64_t hash)
{
	return ((start / 8 + 1) << TAG_BITS) | (hash >> (64 - TAG_BITS));
}

const struct hc_entry *
nearcache_get(struct nearcache *nc, struct arena *a, int coll,
    const char *key)
{
	size_t		 len = strlen(key), pos;
	uint64_t	 h = key_hash(coll, key, len), loc, start;
	struct nc_rec	 hdr, *r;
	struct hc_entry	*e;
	long long	 ttl;

	if (nc->cursor == NULL)
		return NULL;
	loc = __atomic_load_n(&nc->index[h & nc->index_mask],
	    __ATOMIC_ACQUIRE);
	if (loc == 0 || (loc & ((1u << TAG_BITS) - 1)) != h >> (64 - TAG_BITS))
		return NULL;
	start = ((loc >> TAG_BITS) - 1) * 8;
	pos = (size_t)(start % nc->ring_bytes);
	/* Only sizes that keep the copy inside the ring, checked later. */
	memcpy(&hdr, nc->ring + pos, sizeof(hdr));
	if (hdr.size < sizeof(hdr) || hdr.size > nc->ring_bytes - pos ||
	    (r = arena_alloc(a, hdr.size)) == NULL)
		return NULL;
	memcpy(r, nc->ring + pos, hdr.size);
	/* Whole unless the ring came round to it while it was copied. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(nc->cursor, __ATOMIC_RELAXED) - start >
	    nc->ring_bytes)
		return NULL;
	if (r->hash != h || r->coll != coll || r->keylen != len ||
	    memcmp(r->data, key, len) != 0)
		return NULL;
	ttl = r->status == 200 ? nc->o.ttl_s : nc->o.negative_ttl_s;
	if (r->mark != nearcache_mark(nc, coll) ||
	    util_mono_us() - r->born_us > ttl * 1000000)
		return NULL;
	if ((e = arena_alloc(a, sizeof(*e))) == NULL)
		return NULL;
	e->status = r->status;
	memcpy(e->etag, r->etag, sizeof(e->etag));
	e->last_modified = r->last_modified;
	memcpy(e->lm_http, r->lm_http, sizeof(e->lm_http));
	e->body = r->data + len + 1;
	e->body_len = r->body_len;
	e->headers = r->headers_len > 0 ? e->body + r->body_len : NULL;
	e->headers_len = r->headers_len;
	nc->hits++;
	return e;
}

/*
 * Reserve size bytes of the ring, never across its end: where they start
 * (the bytes ever reserved before them).
 */
static uint64_t
reserve(struct nearcache *nc, size_t size)
{
	uint64_t	o, start;

	o = __atomic_load_n(nc->cursor, __ATOMIC_RELAXED);
	do {
		start = o;
		if (o % nc->ring_bytes + size > nc->ring_bytes)
			start += nc->ring_bytes - o % nc->ring_bytes;
	} while (!__atomic_compare_exchange_n(nc->cursor, &o, start + size, 1,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	/* A reader that sees what is written next sees the cursor moved. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return start;
}

void
nearcache_put(struct nearcache *nc, int coll, const char *key, uint64_t mark,
    const struct hc_entry *e)
{
	size_t		 len = strlen(key), size;
	uint64_t	 h = key_hash(coll, key, len), start;
	struct nc_rec	*r;
	struct hc_entry	 made;

	if (nc->changes == NULL || nc->cursor == NULL || !nc->tracking)
		return;
	size = sizeof(*r) + len + 1 + e->body_len +
	    httpcache_headers_max(nc->o.cache_control);
	size = (size + 7) & ~(size_t)7;
	/* A record may take a quarter of the ring, so that some stay. */
	if (size > nc->ring_bytes / 4 || size > UINT32_MAX)
		return;
	start = reserve(nc, size);
	r = (struct nc_rec *)(nc->ring + start % nc->ring_bytes);
	made = *e;
	httpcache_prepare_answer(&made, nc->o.cache_control,
	    r->data + len + 1 + e->body_len);
	r->hash = h;
	r->mark = mark;
	r->born_us = util_mono_us();
	r->size = (uint32_t)size;
	r->keylen = (uint32_t)len;
	r->coll = coll;
	r->status = made.status;
	r->last_modified = made.last_modified;
	r->body_len = (uint32_t)made.body_len;
	r->headers_len = (uint32_t)made.headers_len;
	memcpy(r->etag, made.etag, sizeof(r->etag));
	memcpy(r->lm_http, made.lm_http, sizeof(r->lm_http));
	memcpy(r->data, key, len + 1);
	memcpy(r->data + len + 1, e->body, e->body_len);
	__atomic_store_n(&nc->index[h & nc->index_mask], locator(start, h),
	    __ATOMIC_RELEASE);
}

void
nearcache_wrote(uint64_t *changes, int coll)
{
	__atomic_add_fetch(&changes[coll], 1, __ATOMIC_RELEASE);
}

int
nearcache_stamp(struct nearcache *nc, const struct cache *main, int coll,
    const char *subject, struct nc_stamp *st)
{
	if (coll < 0 || coll >= NEARCACHE_COLLECTIONS ||
	    !nearcache_sync(nc, main))
		return 0;
	st->coll = coll;
	st->mark = nearcache_mark(nc, coll);
	st->epoch = nc->epoch + nc->coll_epoch[coll];
	st->bucket = subject_bucket(subject, strlen(subject));
	st->subject = nc->subj_epoch[st->bucket];
	return 1;
}

int
nearcache_current(struct nearcache *nc, const struct cache *main,
    const struct nc_stamp *st)
{
	return nearcache_sync(nc, main) &&
	    st->mark == nearcache_mark(nc, st->coll) &&
	    st->epoch == nc->epoch + nc->coll_epoch[st->coll] &&
	    st->subject == nc->subj_epoch[st->bucket];
}
