/*
 * cache: the responder's one Redis connection.  Owns connecting over a
 * unix socket or host:port with a connect timeout, the command timeout
 * (set again on every connect, since hiredis forgets it), AUTH, noticing a
 * dead context (hiredis' c->err is final) and connecting again, and
 * binary-safe commands (argv + lengths only).
 *
 * Every round trip goes through the Redis guard (lib/guard): while its
 * breaker is open, commands fail at once as CACHE_UNAVAILABLE without
 * touching the network, as if Redis were down, and a Redis that hangs
 * costs each responder a command timeout or two, not one per command.
 *
 * hiredis writes with write(2): a process that uses this module ignores
 * SIGPIPE, or a Redis that goes away mid-command kills it.
 */
#ifndef WX_CACHE_H
#define WX_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "arena.h"
#include "guard.h"
#include "span.h"

enum cache_status {
	CACHE_OK,
	CACHE_UNAVAILABLE,	/* not connected, lost, or timed out */
	CACHE_ERROR		/* Redis answered with an error reply */
};

#define CACHE_CALL_ARGS	14

/* One command of a pipelined round trip, and its outcome. */
struct cache_call {
	const char		*script;	/* cache_eval_calls: the Lua */
	int			 argc;
	const char		*argv[CACHE_CALL_ARGS];
	size_t			 argvlen[CACHE_CALL_ARGS];
	redisReply		*reply;		/* CACHE_OK: the caller's to free */
	enum cache_status	 st;
	char			 sha[41];	/* of script, for EVALSHA */
};

struct cache_opts {
	const char	*addr;		/* "/path/to/socket" or "host:port" */
	const char	*password;	/* "" for no AUTH */
	long long	 connect_timeout_ms;
	long long	 command_timeout_ms;
	struct guard	*guard;		/* NULL: none */
};

struct cache {
	redisContext		*c;
	struct cache_opts	 o;
	char			 errmsg[256];
	int			 lost;		/* a failure since the last connect */
	int			 timed_out;	/* ... and it was a timeout */
	/* Called after a connect that follows a failure (see httpcache). */
	void			(*on_recover)(struct cache *, const void *);
	const void		*recover_arg;
	unsigned long		 failures;	/* commands that found Redis down */
	int64_t			 busy_us;	/* time spent in Redis */
	struct spans		*spans;		/* NULL, or where each call
						   records a span */
	int64_t			 c_born_us;	/* when c was connected */
};

void	cache_init(struct cache *, const struct cache_opts *);
/* Connect now; 0, or -1 (logged). */
int	cache_connect(struct cache *);
void	cache_close(struct cache *);
/* Connected, or connected again when the guard allows; 0 or -1. */
int	cache_ready(struct cache *);
/*
 * Run one command given as argc arguments with explicit lengths.  On
 * CACHE_OK *reply is the caller's to freeReplyObject (reply may be NULL).
 */
enum cache_status cache_cmd(struct cache *, redisReply **reply, int argc,
	    const char **argv, const size_t *argvlen);
/*
 * Run a Lua script by its SHA-1 (EVALSHA), loading it with EVAL when
 * Redis answers NOSCRIPT.  argv[0] and argv[1] are filled in here; the
 * caller provides numkeys, keys and args from argv[2] on.
 */
enum cache_status cache_eval(struct cache *, redisReply **reply,
	    const char *script, int argc, const char **argv, size_t *argvlen);
/*
 * Several scripts in one round trip (pipelined EVALSHA), each call as
 * cache_eval's: script, argc and argv[2..] given, st and reply set.
 */
void	cache_eval_calls(struct cache *, struct cache_call *, int n);
/* GET key into the arena; *val is NULL when the key is absent. */
enum cache_status cache_get(struct cache *, struct arena *, const char *key,
	    const char **val, size_t *len);
/* SET key val EX ttl_s. */
enum cache_status cache_setex(struct cache *, const char *key,
	    const char *val, size_t len, long long ttl_s);
/* SET key owner NX PX ms: 1 taken, 0 held by another, -1 Redis down. */
int	cache_lock(struct cache *, const char *key, const char *owner,
	    const char *ms);
/* DEL key if it still holds value (a lock we own, a token gone stale). */
void	cache_del_if(struct cache *, const char *key, const char *value);
/* PING; CACHE_OK when Redis answered PONG. */
enum cache_status cache_ping(struct cache *);

#endif
