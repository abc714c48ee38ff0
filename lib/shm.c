/*
 * shm: one segment per host and configuration.
 *
 * The first process to start creates it with O_EXCL, initializes the
 * mutex and contents, and publishes the magic number last; the others
 * wait briefly for the magic before using it.  The segment outlives the
 * responders (a restarted pool keeps its counters); it takes about 200 KiB,
 * most of it the rate-limit leases.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "shm.h"
#include "util.h"

static struct shm_region *
shm_map(int fd, int prot)
{
	void	*p;

	p = mmap(NULL, sizeof(struct shm_region), prot, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Initialize a fresh segment and publish it. */
static int
shm_init(struct shm_region *r)
{
	pthread_mutexattr_t	a;
	int			i;

	if (pthread_mutexattr_init(&a) != 0 ||
	    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&r->lock, &a) != 0)
		return -1;
	pthread_mutexattr_destroy(&a);
	for (i = 0; i < SHM_BREAKERS; i++)
		breaker_reset(&r->breakers[i], util_mono_us());
	r->sb.start_wall_us = util_wall_us();
	r->version = SHM_VERSION;
	__atomic_store_n(&r->magic, SHM_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Attach to `name`, creating it when absent.  -1 with errno; *stale set
 * when the segment exists with another layout.
 */
static struct shm_region *
shm_try_attach(const char *name, int *stale)
{
	struct shm_region	*r = NULL;
	struct stat		 st;
	int			 fd, created = 0, tries;

	*stale = 0;
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd != -1)
		created = 1;
	else if (errno == EEXIST)
		fd = shm_open(name, O_RDWR, 0600);
	if (fd == -1)
		return NULL;
	if (created && ftruncate(fd, sizeof(struct shm_region)) == -1)
		goto fail;
	/* Another creator may not have sized it yet. */
	for (tries = 0; tries < 100; tries++) {
		if (fstat(fd, &st) == -1)
			goto fail;
		if (st.st_size != 0)
			break;
		usleep(10000);
	}
	if ((size_t)st.st_size != sizeof(struct shm_region)) {
		*stale = st.st_size != 0;
		errno = EPROTO;
		goto fail;
	}
	if ((r = shm_map(fd, PROT_READ | PROT_WRITE)) == NULL)
		goto fail;
	if (created && shm_init(r) == -1)
		goto fail;
	for (tries = 0; tries < 100 &&
	    __atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != SHM_MAGIC; tries++)
		usleep(10000);
	if (r->magic != SHM_MAGIC || r->version != SHM_VERSION) {
		*stale = 1;	/* another layout, or a creator that died */
		errno = EPROTO;
		goto fail;
	}
	close(fd);
	return r;
fail:
	if (r != NULL)
		munmap(r, sizeof(*r));
	close(fd);
	return NULL;
}

struct shm_region *
shm_attach(const char *name)
{
	struct shm_region	*r;
	int			 stale;

	/*
	 * Responders of the old layout keep their mapping of the unlinked
	 * object; the new ones share the new one.
	 */
	if ((r = shm_try_attach(name, &stale)) == NULL && stale &&
	    shm_unlink(name) == 0)
		r = shm_try_attach(name, &stale);
	return r;
}

struct shm_region *
shm_private(void)
{
	struct shm_region	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL || shm_init(r) == -1) {
		free(r);
		return NULL;
	}
	return r;
}

const struct shm_region *
shm_peek(const char *name)
{
	struct shm_region	*r;
	struct stat		 st;
	int			 fd;

	if ((fd = shm_open(name, O_RDONLY, 0)) == -1)
		return NULL;
	r = NULL;
	if (fstat(fd, &st) == 0 && (size_t)st.st_size == sizeof(*r))
		r = shm_map(fd, PROT_READ);
	close(fd);
	if (r != NULL && (r->magic != SHM_MAGIC || r->version != SHM_VERSION)) {
		munmap(r, sizeof(*r));
		r = NULL;
	}
	return r;
}

void
shm_status_json(const struct shm_region *r, struct buf *b)
{
	const struct breaker	*br;
	int			 i;

	buf_adds(b, "{\"pool\":");
	scoreboard_json(&r->sb, b, util_mono_us(), util_wall_us());
	buf_adds(b, ",\"breakers\":{");
	for (i = 0; i < GUARD_NDEPS; i++) {
		br = &r->breakers[i];
		buf_printf(b, "%s\"%s\":{\"state\":\"%s\",\"opened\":%llu,"
		    "\"rejected\":%llu}", i > 0 ? "," : "", guard_name(i),
		    breaker_state_name(br->state),
		    (unsigned long long)br->opened,
		    (unsigned long long)br->rejected);
	}
	buf_adds(b, "}}");
}

void
shm_lock(struct shm_region *r)
{
	/* The last holder died mid-update: the data is counters, keep it. */
	if (pthread_mutex_lock(&r->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&r->lock);
}

void
shm_unlock(struct shm_region *r)
{
	pthread_mutex_unlock(&r->lock);
}
