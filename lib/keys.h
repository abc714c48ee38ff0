/*
 * keys: the names of the Redis keys that libwxapp writes, in one place,
 * so that no two modules spell one and a program sees which names are
 * taken.  A program keeps its own under other prefixes.
 */
#ifndef WX_KEYS_H
#define WX_KEYS_H

/*
 * httpcache: a cached answer, wx:hc:<collection>:<version>:<key>, and its
 * rebuild lock, the same with :lock after it.
 */
#define KEYS_ANSWER		"wx:hc:"
/*
 * httpcache, nearcache: a collection's version (bumped by every write,
 * watched through client tracking) and its last change (ms).
 */
#define KEYS_VERSION		"wx:ver:"
#define KEYS_MTIME		"wx:mtime:"
/* ratelimit: a bucket, wx:rl:<class>:<identity>. */
#define KEYS_BUCKET		"wx:rl:"
/* wechat: the shared access_token, and the lock of its one refresher. */
#define KEYS_WX_TOKEN		"wx:access_token"
#define KEYS_WX_TOKEN_LOCK	"wx:access_token:lock"

/*
 * job: the stream of jobs, the sorted set of retries waiting, the
 * dead-letter stream, and an idempotency key's job (wx:jobs:key:<key>).
 */
#define KEYS_JOBS		"wx:jobs"
#define KEYS_JOBS_RETRY		"wx:jobs:retry"
#define KEYS_JOBS_DEAD		"wx:jobs:dead"
#define KEYS_JOBS_KEY		"wx:jobs:key:"

#endif
