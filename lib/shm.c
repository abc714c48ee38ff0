/*
 * shm: one segment per name.
 *
 * The first process to start creates it with O_EXCL, initializes the
 * mutex and the program's data, and publishes the magic number last; the
 * others wait briefly for the magic before using it.  The segment
 * outlives the processes (a restarted pool keeps its counters).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm.h"

#define SHM_MAGIC	0x77786170u	/* "wxap" */
#define SHM_HDR_SIZE	128		/* the data starts cache-line aligned */

struct shm_hdr {
	uint32_t	magic;		/* published last */
	uint32_t	version;	/* of the program's layout */
	uint64_t	size;		/* of the program's data */
	pthread_mutex_t	lock;
};

_Static_assert(sizeof(struct shm_hdr) <= SHM_HDR_SIZE,
    "the header fits before the data");

/* Map len bytes of fd into s. */
static int
shm_map(struct shm *s, int fd, size_t len, int prot)
{
	void	*p;

	if ((p = mmap(NULL, len, prot, MAP_SHARED, fd, 0)) == MAP_FAILED)
		return -1;
	s->hdr = p;
	s->data = (char *)p + SHM_HDR_SIZE;
	s->len = len;
	s->shared = 1;
	return 0;
}

/* Initialize a fresh segment and publish it. */
static int
shm_init(struct shm *s, const struct shm_layout *l)
{
	pthread_mutexattr_t	a;

	if (pthread_mutexattr_init(&a) != 0 ||
	    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&s->hdr->lock, &a) != 0)
		return -1;
	pthread_mutexattr_destroy(&a);
	if (l->init != NULL)
		l->init(s->data);
	s->hdr->size = l->size;
	s->hdr->version = l->version;
	__atomic_store_n(&s->hdr->magic, SHM_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

/* The segment's header says it holds layout l. */
static int
shm_is(const struct shm *s, const struct shm_layout *l)
{
	return __atomic_load_n(&s->hdr->magic, __ATOMIC_ACQUIRE) == SHM_MAGIC &&
	    s->hdr->version == l->version && s->hdr->size == l->size;
}

/*
 * Attach to `name`, creating it when absent.  -1 with errno; *stale set
 * when the segment exists with another layout.
 */
static int
shm_try_attach(struct shm *s, const char *name, const struct shm_layout *l,
    int *stale, ino_t *ino)
{
	size_t		len = SHM_HDR_SIZE + l->size;
	struct stat	st;
	int		fd, created = 0, tries;

	*stale = 0;
	s->hdr = NULL;
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd != -1)
		created = 1;
	else if (errno == EEXIST)
		fd = shm_open(name, O_RDWR, 0600);
	if (fd == -1)
		return -1;
	if (created && ftruncate(fd, (off_t)len) == -1)
		goto fail;
	if (fstat(fd, &st) == -1)
		goto fail;
	*ino = st.st_ino;
	/* Another creator may not have sized it yet. */
	for (tries = 0; tries < 100; tries++) {
		if (fstat(fd, &st) == -1)
			goto fail;
		if (st.st_size != 0)
			break;
		usleep(10000);
	}
	if ((size_t)st.st_size != len) {
		*stale = st.st_size != 0;
		errno = EPROTO;
		goto fail;
	}
	if (shm_map(s, fd, len, PROT_READ | PROT_WRITE) == -1)
		goto fail;
	if (created && shm_init(s, l) == -1)
		goto fail;
	for (tries = 0; tries < 100 &&
	    __atomic_load_n(&s->hdr->magic, __ATOMIC_ACQUIRE) != SHM_MAGIC;
	    tries++)
		usleep(10000);
	if (!shm_is(s, l)) {
		*stale = 1;	/* another layout, or a creator that died */
		errno = EPROTO;
		goto fail;
	}
	close(fd);
	return 0;
fail:
	if (s->hdr != NULL)
		munmap(s->hdr, len);
	s->hdr = NULL;
	close(fd);
	return -1;
}

/* Unlink name if it is still the object ino (not one made since). */
static void
unlink_if(const char *name, ino_t ino)
{
	struct stat	st;
	int		fd;

	if ((fd = shm_open(name, O_RDONLY, 0)) == -1)
		return;
	if (fstat(fd, &st) == 0 && st.st_ino == ino)
		(void)shm_unlink(name);
	close(fd);
}

int
shm_attach(struct shm *s, const char *name, const struct shm_layout *l)
{
	ino_t	ino = 0;
	int	stale;

	/*
	 * Processes of the old layout keep their mapping of the unlinked
	 * object; the new ones share the new one.  Responders starting
	 * together all find the stale one: each unlinks it only if no other
	 * has replaced it yet, then attaches to (or creates) the new one.
	 */
	if (shm_try_attach(s, name, l, &stale, &ino) == -1 && stale) {
		unlink_if(name, ino);
		return shm_try_attach(s, name, l, &stale, &ino);
	}
	return s->hdr != NULL ? 0 : -1;
}

int
shm_private(struct shm *s, const struct shm_layout *l)
{
	s->len = SHM_HDR_SIZE + l->size;
	s->shared = 0;
	if ((s->hdr = calloc(1, s->len)) == NULL)
		return -1;
	s->data = (char *)s->hdr + SHM_HDR_SIZE;
	if (shm_init(s, l) == -1) {
		free(s->hdr);
		s->hdr = NULL;
		return -1;
	}
	return 0;
}

int
shm_peek(struct shm *s, const char *name, const struct shm_layout *l)
{
	struct stat	st;
	int		fd, rc = -1;

	if ((fd = shm_open(name, O_RDONLY, 0)) == -1)
		return -1;
	if (fstat(fd, &st) == 0 &&
	    (size_t)st.st_size == SHM_HDR_SIZE + l->size &&
	    shm_map(s, fd, (size_t)st.st_size, PROT_READ) == 0) {
		if (shm_is(s, l))
			rc = 0;
		else
			shm_detach(s);
	}
	close(fd);
	return rc;
}

void
shm_detach(struct shm *s)
{
	if (s->hdr == NULL)
		return;
	if (s->shared)
		munmap(s->hdr, s->len);
	else
		free(s->hdr);
	s->hdr = NULL;
	s->data = NULL;
}

void
shm_lock(struct shm *s)
{
	/* The last holder died mid-update: the data is counters, keep it. */
	if (pthread_mutex_lock(&s->hdr->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&s->hdr->lock);
}

void
shm_unlock(struct shm *s)
{
	pthread_mutex_unlock(&s->hdr->lock);
}
