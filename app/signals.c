/*
 * signals: how a wxapp program starts and what its signals mean, the
 * same in the responder, the worker and the span exporter (see
 * wxapp-fcgi(8), wxapp-worker(8), wxapp-otlp(8)).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "prefork.h"

int
app_signals(void (*stop)(int), void (*hup)(int))
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = stop;
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGUSR1, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1)
		return -1;
	sa.sa_handler = hup;
	if (sigaction(SIGHUP, &sa, NULL) == -1)
		return -1;
	/* A peer (Redis, nginx) that went away is an error, not a death. */
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

int
app_program_start(const char *prog, const char **cfgpath, struct config *cfg,
    int (*check)(const struct config *, char *, size_t), int test,
    const struct prefork_opts *supervise)
{
	char	err[1024];

	*cfgpath = config_pick_path(*cfgpath);
	if (config_load(cfg, *cfgpath, err, sizeof(err)) == -1)
		goto bad;
	if (check != NULL && check(cfg, err, sizeof(err)) == -1) {
		config_free(cfg);
		goto bad;
	}
	if (test) {
		printf("%s: %s: config ok\n", prog, *cfgpath);
		config_free(cfg);
		return 0;
	}
	if (log_open(cfg->log_file, cfg->log_level, 0) == -1) {
		fprintf(stderr, "%s: %s: %s\n", prog, cfg->log_file,
		    strerror(errno));
		config_free(cfg);
		return 1;
	}
	/* With -f, this process stays behind and starts the rest again. */
	if (supervise != NULL)
		(void)prefork_run(supervise);
	return -1;
bad:
	fprintf(stderr, "%s: %s: %s\n", prog, *cfgpath, err);
	return 1;
}
