/*
 * signals: what a wxapp program's signals mean, the same in the
 * responder and the worker (see wxapp-fcgi(8), wxapp-worker(8)).
 */
#include <signal.h>
#include <string.h>

#include "app.h"

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
