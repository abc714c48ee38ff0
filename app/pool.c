/*
 * pool: the layout of the host's shared memory, and its status.
 */
#include <errno.h>
#include <stdio.h>

#include "pool.h"
#include "util.h"

/* A fresh segment: breakers closed, the scoreboard's clock started. */
static void
pool_init(void *data)
{
	struct pool	*p = data;
	int		 i;

	for (i = 0; i < DEP_COUNT; i++)
		breaker_reset(&p->breakers[i], util_mono_us());
	p->sb.start_wall_us = util_wall_us();
}

const struct shm_layout pool_layout = {
	.size = sizeof(struct pool),
	.version = 10,
	.init = pool_init
};

int
pool_near_attach(struct shm *s, const char *shm_name, size_t bytes)
{
	char			name[256];
	struct shm_layout	l = {
		.size = bytes,
		.version = 1
	};
	int			w;

	w = snprintf(name, sizeof(name), "%s%s", shm_name, POOL_NEAR_SUFFIX);
	if (w < 0 || (size_t)w >= sizeof(name)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return shm_attach(s, name, &l);
}

const char *
pool_span_drop_name(enum pool_span_drop why)
{
	static const char *const names[SPANS_DROP_COUNT] = {
		[SPANS_HANDOVER] = "handover",
		[SPANS_QUEUE] = "queue",
		[SPANS_EXPORT] = "export",
		[SPANS_CAP] = "cap"
	};

	return (unsigned)why < SPANS_DROP_COUNT ? names[why] : "?";
}

const char *
pool_dep_name(enum pool_dep dep)
{
	static const char *const names[DEP_COUNT] = {
		[DEP_POSTGRES] = "postgres",
		[DEP_REDIS] = "redis",
		[DEP_WECHAT] = "wechat"
	};

	return (unsigned)dep < DEP_COUNT ? names[dep] : "?";
}

void
pool_status_json(const struct pool *p, struct buf *b)
{
	const struct breaker	*br;
	int			 i;

	buf_adds(b, "{\"pool\":");
	scoreboard_json(&p->sb, b, util_mono_us(), util_wall_us());
	buf_adds(b, ",\"breakers\":{");
	for (i = 0; i < DEP_COUNT; i++) {
		br = &p->breakers[i];
		buf_printf(b, "%s\"%s\":{\"state\":\"%s\",\"opened\":%llu,"
		    "\"rejected\":%llu}", i > 0 ? "," : "", pool_dep_name(i),
		    breaker_state_name(br->state),
		    (unsigned long long)br->opened,
		    (unsigned long long)br->rejected);
	}
	buf_adds(b, "}}");
}

/*
 * The statuses wxapp answers (and 504, nginx's), each a series of its
 * own: 202 is a queued message or a held name.
 */
static const int codes[POOL_CODES - 1] = {
	200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409, 413, 415, 422,
	429, 500, 503, 504
};

int
pool_code_index(int status)
{
	int	i;

	for (i = 0; i < POOL_CODES - 1; i++)
		if (codes[i] == status)
			return i;
	return POOL_CODES - 1;
}

int
pool_code_of(int index)
{
	return index >= 0 && index < POOL_CODES - 1 ? codes[index] : 0;
}
