/*
 * nearcache: copies of hot cached answers on the host, so that a hit costs
 * no round trip to Redis.  Owns the store of copies (a region the caller
 * gives it, shared by the responders of the host: one copy per host, not
 * per process), the connection on which Redis tells each process about
 * writes, and the rules that keep a copy from outliving its data.
 *
 * A copy of an entry of collection C is used only while all of these hold:
 *  - no responder of this host has written C since the copy was fetched
 *    (the host's write counter of C in shared memory, read before the
 *    fetch, is unchanged: a local write is seen at once, Redis or not);
 *  - Redis has not reported a change of wx:ver:C since.  The invalidation
 *    connection has CLIENT TRACKING on in broadcast mode for the prefix
 *    wx:ver: (redirected to itself and SUBSCRIBEd to __redis__:invalidate,
 *    which works over RESP2).  Redis queues the message in the same event
 *    loop pass as the write that bumps the version, before it sends the
 *    writer its reply, so a write on another host is known here as soon
 *    as the message has crossed the network to this host.  The connection
 *    is O_ASYNC: the kernel raises SIGIO as it queues what Redis sent, and
 *    the signal is handled before this process returns from its next
 *    system call, so before it can have read a request that followed the
 *    write.  A request reads what has arrived (recv with MSG_DONTWAIT)
 *    when the signal came, before using a copy; otherwise it makes no
 *    system call for it;
 *  - that connection is alive and nothing it sent is half-read or
 *    possibly lost (more than NEARCACHE_DRAIN_MAX bytes at once);
 *  - the copy is younger than the entry's TTL in Redis (ttl_s, or
 *    negative_ttl_s for a 404).
 * Otherwise the process uses no copy, or every copy (or every copy of C)
 * is dropped, and reads go to Redis as before.
 *
 * Copies are shared, but each process trusts only its own connection.
 * What a process learns from Redis (a change of C, or that it may have
 * missed one: its connection was lost or is new) it passes on by bumping
 * the host's write counter of C (of every collection), which outdates the
 * copies for every process.  So a copy stored by any process is used by
 * this one only while its own connection vouches that nothing changed
 * since the copy was fetched.
 *
 * The same connection vouches for anything else the responder derives
 * from state that changes rarely (whether a session still holds, say): a
 * stamp taken before reading such state stays valid while the
 * connection does and nothing was reported since, neither the stamp's
 * collection (wx:ver:C, or the host's write count of C) nor its subject:
 * a key <subject prefix><subject> that Redis reports as written.
 * Subjects are counted in NEARCACHE_SUBJECTS buckets by hash, so a
 * report costs at most a few unrelated stamps their validity.
 */
#ifndef WX_NEARCACHE_H
#define WX_NEARCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "httpcache.h"

#define NEARCACHE_DRAIN_MAX	(32 * 1024)
#define NEARCACHE_COLLECTIONS	8
#define NEARCACHE_SUBJECTS	1024

struct arena;

struct nearcache_opts {
	const struct cache_opts	*redis;		/* where to connect */
	/*
	 * The host's write counters, one per entry of collections (NULL:
	 * nothing is vouched for), and their names, NULL-ended.
	 */
	uint64_t		*changes;
	const char *const	*collections;
	const char		*subject_prefix;	/* keys of subjects */
	/*
	 * The store of copies: store_bytes, zeroed when first made, shared
	 * by the processes of the host (NULL or too small: no copies).
	 */
	void			*store;
	size_t			 store_bytes;
	long long		 ttl_s;		/* a copy of a 200 lives */
	long long		 negative_ttl_s;	/* ... of a 404 */
	const char		*cache_control;	/* of a copy's answers */
};

struct nearcache {
	struct nearcache_opts	 o;
	const uint64_t		*changes;	/* o.changes; NULL: off */
	struct cache		 conn;		/* the invalidation connection */
	struct redisReader	*reader;	/* ... and what reads it */
	size_t			 unparsed;	/* bytes of a message read half */
	int64_t			 retry_us;	/* no set-up before (monotonic) */
	int			 tracking;	/* conn is subscribed */
	/* The store: how far it was ever written, an index, a ring. */
	uint64_t		*cursor;	/* NULL: no copies */
	uint64_t		*index;
	size_t			 index_mask;
	char			*ring;
	size_t			 ring_bytes;
	unsigned long		 hits;
	unsigned long		 invalidations;	/* messages from Redis */
	/* Reports counted for stamps: everything, per collection, subject. */
	uint64_t		 epoch;
	uint64_t		 coll_epoch[NEARCACHE_COLLECTIONS];
	uint32_t		 subj_epoch[NEARCACHE_SUBJECTS];
};

/* What state read under it was vouched for by (see above). */
struct nc_stamp {
	uint64_t	mark;		/* the host's write count of coll */
	uint64_t	epoch;		/* this process's reports for coll */
	uint32_t	subject;	/* ... and for the subject's bucket */
	uint32_t	bucket;
	int		coll;
};

/*
 * Set up; installs the process's SIGIO handler (SA_RESTART).  The process
 * may block SIGIO only while no request is in flight (nearcache_sync
 * asserts it).
 */
void	nearcache_init(struct nearcache *, const struct nearcache_opts *);
void	nearcache_free(struct nearcache *);
/*
 * Apply what Redis has reported; connect the invalidation connection when
 * main (the responder's Redis connection) is up.  1 when copies may be
 * used and stored now, else 0.
 */
int	nearcache_sync(struct nearcache *, const struct cache *main);
/* The index of a collection, or -1. */
int	nearcache_collection(const struct nearcache *, const char *collection);
/* The host's write count of coll: read it before fetching what to store. */
uint64_t nearcache_mark(const struct nearcache *, int coll);
/* The copy of key, copied into the arena, or NULL. */
const struct hc_entry *nearcache_get(struct nearcache *, struct arena *,
	    int coll, const char *key);
/* Store a copy of e, fetched after nearcache_mark returned mark. */
void	nearcache_put(struct nearcache *, int coll, const char *key,
	    uint64_t mark, const struct hc_entry *e);
/* Count a write of coll on this host (after Redis was told). */
void	nearcache_wrote(uint64_t *changes, int coll);
/*
 * Take a stamp for state of coll and subject about to be read; 0 when
 * nothing can be vouched for now (nearcache_sync was 0).
 */
int	nearcache_stamp(struct nearcache *, const struct cache *main, int coll,
	    const char *subject, struct nc_stamp *);
/* 1 while what was read under the stamp is still current. */
int	nearcache_current(struct nearcache *, const struct cache *main,
	    const struct nc_stamp *);

#endif
