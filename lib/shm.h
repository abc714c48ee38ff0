/*
 * shm: memory that the processes of a pool share -- a named POSIX shared
 * memory object with one robust process-shared lock.  A mechanism, not a
 * layout: the program says what the segment holds (struct shm_layout: its
 * size, a version it bumps whenever the layout changes, and how a fresh
 * segment is initialized).  Owns creating the segment exactly once,
 * attaching to it, replacing one of another layout, and the lock, which
 * survives a holder that dies (EOWNERDEAD is repaired).
 */
#ifndef WX_SHM_H
#define WX_SHM_H

#include <stddef.h>
#include <stdint.h>

struct shm_layout {
	size_t		 size;		/* of the program's data */
	uint32_t	 version;	/* of its layout */
	void		(*init)(void *data);	/* a fresh, zeroed segment */
};

struct shm_hdr;

struct shm {
	struct shm_hdr	*hdr;		/* the header, then the data */
	void		*data;
	size_t		 len;		/* of the whole mapping */
	int		 shared;	/* 0: a region of this process only */
};

/*
 * Create or attach to the segment `name` ("/myapp"); 0, or -1 with errno.
 * A segment of another layout (left by an older version, still used by
 * its processes during a rolling restart) is unlinked and made anew; the
 * old processes keep their mapping of the old one.
 */
int	shm_attach(struct shm *, const char *name, const struct shm_layout *);
/* A region in this process only, when the shared one cannot be had. */
int	shm_private(struct shm *, const struct shm_layout *);
/* Attach read-only, for reporting; -1 when absent or of another layout. */
int	shm_peek(struct shm *, const char *name, const struct shm_layout *);
/* Unmap (the segment stays for the others). */
void	shm_detach(struct shm *);
void	shm_lock(struct shm *);
void	shm_unlock(struct shm *);

#endif
