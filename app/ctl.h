/*
 * ctl: wxappctl's shared context and its subcommands, one file each
 * (ctl_migrate.c, ctl_check.c, ...).  A subcommand returns the process
 * exit status: CTL_OK, CTL_FAIL, CTL_USAGE (or CTL_STOPPED for status).
 */
#ifndef WX_CTL_H
#define WX_CTL_H

#include "config.h"
#include "cache.h"
#include "db.h"

#define CTL_OK		0
#define CTL_FAIL	1
#define CTL_USAGE	2
#define CTL_STOPPED	3	/* status: no responder runs (as LSB's status) */

struct ctl;

/* A subcommand: wxappctl's usage text is made from the table of them. */
struct ctl_cmd {
	const char	*name;
	const char	*usage;
	int		(*fn)(struct ctl *, int, char **);
	int		 noconfig;	/* runs without reading wxapp.conf */
};

struct ctl {
	const char		*cfgpath;
	const struct ctl_cmd	*cmd;		/* the one running */
	struct config		 cfg;
	struct db		 db;
	int			 logging;	/* log_file is open */
};

/* "wxappctl: usage: <the command's usage>" on stderr; CTL_USAGE. */
int	ctl_usage(const struct ctl *);
/* Print one error line to stderr: "wxappctl: <message>". */
void	ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Set up a Redis connection (not connected yet; no breaker). */
void	ctl_redis(struct ctl *, struct cache *);
/* Connect to PostgreSQL, preparing the responder's statements when
 * prepared is set; CTL_OK or CTL_FAIL (reported). */
int	ctl_db(struct ctl *, int prepared);

int	ctl_migrate(struct ctl *, int, char **);
int	ctl_check(struct ctl *, int, char **);
int	ctl_seed(struct ctl *, int, char **);
int	ctl_preload(struct ctl *, int, char **);
int	ctl_cache(struct ctl *, int, char **);
int	ctl_status(struct ctl *, int, char **);
int	ctl_config(struct ctl *, int, char **);
int	ctl_user(struct ctl *, int, char **);
int	ctl_token(struct ctl *, int, char **);
int	ctl_probe(struct ctl *, int, char **);
int	ctl_jobs(struct ctl *, int, char **);
int	ctl_moderation(struct ctl *, int, char **);

#endif
