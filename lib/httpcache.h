/*
 * httpcache: read-through caching of whole answers in Redis, and
 * conditional GET.  Owns the entry format (status, strong ETag,
 * Last-Modified, the exact body bytes), collection versions (invalidation
 * on write), the rebuild lock (stampede protection), and the
 * If-None-Match / If-Modified-Since decision.
 *
 * Invalidation by version: every key of a collection embeds the
 * collection's version number (wx:ver:<collection>), read in the same
 * round trip as the entry by a Lua script.  A write also records when it
 * happened (wx:mtime:<collection>, Redis' clock).  A write INCRs the version, so
 * every cached page of the collection is unreachable at once without
 * knowing which pages exist (list pages by category, page, size and
 * cursor are too many to delete one by one); the orphans expire by TTL.
 * A write that cannot reach Redis leaves the cache stale, so after any
 * Redis failure the first successful connect bumps every collection.
 * The responder that made such a write bumps on its own reconnect; until
 * then, a responder that never saw the outage could still read an entry
 * from before it, if Redis kept its data through the outage (a network
 * partition, or a restart with persistence).
 */
#ifndef WX_HTTPCACHE_H
#define WX_HTTPCACHE_H

#include <stddef.h>

#include "arena.h"
#include "cache.h"
#include "request.h"
#include "response.h"

struct hc_entry {
	int		 status;	/* 200, or 404 for negative entries */
	char		 etag[40];	/* "\"<32 hex>\"" */
	long long	 last_modified;	/* unix seconds; 0 = unknown */
	char		 lm_http[32];	/* ... as an HTTP date, or "" */
	const char	*headers;	/* a 200's header lines, made once */
	size_t		 headers_len;
	const char	*body;
	size_t		 body_len;
};

enum hc_result {
	HC_HIT,
	HC_MISS,
	HC_UNAVAILABLE
};

/* A lookup split in two, to share a round trip with other commands. */
struct hc_pending {
	struct cache_call	 call;
	const char		*prefix;
	const char		*key;
};

/*
 * Look up key in collection.  On HC_MISS *vkey is the versioned key under
 * which to store the rebuilt entry, and *changed the time of the
 * collection's last write (0 when unknown; strictly increasing): a list's
 * Last-Modified must not go back when a delete removes its newest row.
 */
enum hc_result httpcache_get(struct cache *, struct arena *,
	    const char *collection, const char *key, struct hc_entry *,
	    const char **vkey, long long *changed);
/* httpcache_get in two steps around cache_eval_calls. */
void	httpcache_prepare(struct arena *, const char *collection,
	    const char *key, struct hc_pending *);
enum hc_result httpcache_finish(struct hc_pending *, struct arena *,
	    struct hc_entry *, const char **vkey, long long *changed);
/* Look up an exact versioned key (waiting for another rebuild). */
enum hc_result httpcache_get_exact(struct cache *, struct arena *,
	    const char *vkey, struct hc_entry *);
/* Store e under vkey for ttl seconds. */
enum cache_status httpcache_put(struct cache *, struct arena *,
	    const char *vkey, const struct hc_entry *, long long ttl);
/* Take the rebuild lock of vkey: 1 taken, 0 held by another, -1 error. */
int	httpcache_lock(struct cache *, struct arena *, const char *vkey);
void	httpcache_unlock(struct cache *, struct arena *, const char *vkey);
/* Invalidate every entry of a collection. */
enum cache_status httpcache_bump(struct cache *, const char *collection);
/*
 * on_recover hook for struct cache: bump every collection of the
 * NULL-ended list of names that arg points to.
 */
void	httpcache_recover(struct cache *, const void *arg);
/*
 * For an entry answered many times: keep its Last-Modified formatted, and
 * the header lines of a 200 (ETag, Last-Modified, Cache-Control) made in
 * dst (httpcache_headers_max bytes), so an answer only copies them.
 */
void	httpcache_prepare_answer(struct hc_entry *, const char *cache_control,
	    char *dst);
size_t	httpcache_headers_max(const char *cache_control);
/* Fill e's ETag from its body bytes. */
void	httpcache_set_etag(struct hc_entry *);
/*
 * Answer rq from e: 304 when the request's validators match, else the
 * entry with ETag, Last-Modified and Cache-Control.
 */
void	httpcache_answer(struct req *, struct resp *, const struct hc_entry *,
	    const char *cache_control);

#endif
