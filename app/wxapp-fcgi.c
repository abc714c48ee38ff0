/*
 * wxapp-fcgi: the FastCGI responder.  One request at a time from the
 * FCGX_Accept_r loop; run by spawn-fcgi (listening socket on fd 0) under a
 * supervisor, or standalone with --listen for development.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "app.h"
#include "log.h"
#include "util.h"

#define ARENA_BLOCK	(128 * 1024)
#define ARENA_KEEP	4

static volatile sig_atomic_t	stop_signal;
static volatile sig_atomic_t	reopen_log;

static void
on_stop(int sig)
{
	stop_signal = sig;
}

static void
on_hup(int sig)
{
	(void)sig;
	reopen_log = 1;
}

/*
 * Stop signals end the process after the request in flight.  No
 * SA_RESTART: a signal must interrupt accept(2) so an idle responder
 * exits at once (FCGI_FAIL_ACCEPT_ON_INTR).
 */
static int
install_signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGUSR1, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1)
		return -1;
	sa.sa_handler = on_hup;
	if (sigaction(SIGHUP, &sa, NULL) == -1)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

static int
fcgi_read(void *ctx, char *p, int n)
{
	return FCGX_GetStr(p, n, ctx);
}

/* Answer one request: route, read the body, run the handler, write once. */
static void
app_handle(struct app *app, FCGX_Request *fr)
{
	struct req		rq;
	struct resp		rs;
	struct buf		out;
	struct log_access	al;
	int64_t			start = util_mono_us();

	req_init(&rq, &app->arena, fr->envp);
	log_set_request(rq.id);
	resp_init(&rs, &app->arena);
	if (router_match(app_routes, app_nroutes, &rq, &rs) == ROUTE_FOUND &&
	    limits_check(app, &rq, &rs) == 0 &&
	    ((rq.route->flags & ROUTE_AUTH) == 0 ||
	    auth_require(app, &rq, &rs) == 0) &&
	    req_parse_query(&rq, &rs) == 0 &&
	    req_read_body(&rq, &rs, app->cfg.max_body_bytes, fcgi_read,
	    fr->in) == 0)
		rq.route->fn(app, &rq, &rs);
	if (!resp_is_set(&rs)) {
		log_error("%s %s: handler gave no answer", rq.method, rq.path);
		resp_error(&rs, API_INTERNAL, "internal error");
	}
	resp_serialize(&rs, rq.id, rq.head, &out);
	if (FCGX_PutStr(out.p, (int)out.len, fr->out) < 0 ||
	    FCGX_FFlush(fr->out) < 0)
		log_info("%s %s: client went away", rq.method, rq.path);
	al.request_id = rq.id;
	al.method = rq.method;
	al.path = rq.path;
	al.remote_addr = rq.remote_addr;
	al.status = rs.status;
	al.duration_us = util_mono_us() - start;
	al.bytes = out.len;
	log_access(&al);
	req_finish(&rq);
	log_set_request(NULL);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: wxapp-fcgi [-t] [-c config] [--listen path|host:port]\n");
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "listen",	required_argument,	NULL, 'l' },
		{ "test",	no_argument,		NULL, 't' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct app	 app;
	FCGX_Request	 fr;
	const char	*cfgpath = NULL, *listen_addr = NULL;
	char		 err[1024];
	int		 ch, test = 0, fd = 0, rc;
	struct stat	 st;

	while ((ch = getopt_long(argc, argv, "c:l:thV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'l':
			listen_addr = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("wxapp-fcgi %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	memset(&app, 0, sizeof(app));
	cfgpath = config_pick_path(cfgpath);
	if (config_load(&app.cfg, cfgpath, err, sizeof(err)) == -1) {
		fprintf(stderr, "wxapp-fcgi: %s\n", err);
		return 1;
	}
	if (config_check_serving(&app.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "wxapp-fcgi: %s: %s\n", cfgpath, err);
		config_free(&app.cfg);
		return 1;
	}
	if (test) {
		printf("wxapp-fcgi: %s: config ok\n", cfgpath);
		config_free(&app.cfg);
		return 0;
	}
	if (log_open(app.cfg.log_file, app.cfg.log_level,
	    app.cfg.access_log) == -1) {
		fprintf(stderr, "wxapp-fcgi: %s: %s\n", app.cfg.log_file,
		    strerror(errno));
		return 1;
	}
	if (install_signals() == -1 || FCGX_Init() != 0 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialize: %s", strerror(errno));
		return 1;
	}
	if (listen_addr != NULL) {
		if ((fd = FCGX_OpenSocket(listen_addr, 1024)) < 0) {
			log_error("cannot listen on %s", listen_addr);
			return 1;
		}
	} else if (fstat(0, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "wxapp-fcgi: fd 0 is not a socket: run under "
		    "spawn-fcgi or use --listen\n");
		return 1;
	}
	if (FCGX_InitRequest(&fr, fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("cannot initialize the request");
		return 1;
	}
	arena_init(&app.arena, ARENA_BLOCK, ARENA_KEEP);
	req_id_seed();
	db_init(&app.db, &app.cfg, app_stmts, STMT_COUNT);
	cache_init(&app.cache, &app.cfg);
	app.cache.on_recover = httpcache_recover;
	limits_init(&app);
	if (wechat_init(&app.wx, &app.cfg, &app.cache) == -1) {
		log_error("cannot initialize libcurl");
		return 1;
	}
	/* Dependencies that are down now are retried per request. */
	(void)db_connect(&app.db);
	(void)cache_connect(&app.cache);
	log_info("responder started (config %s)", cfgpath);

	while (!stop_signal) {
		if (reopen_log) {
			reopen_log = 0;
			if (log_reopen() == -1)
				log_error("cannot reopen %s: %s",
				    app.cfg.log_file, strerror(errno));
		}
		if ((rc = FCGX_Accept_r(&fr)) < 0) {
			if (rc == -EINTR)
				continue;
			log_error("accept failed: %s", strerror(-rc));
			break;
		}
		app_handle(&app, &fr);
		FCGX_Finish_r(&fr);
		arena_reset(&app.arena);
		app.served++;
		if (app.cfg.max_requests > 0 &&
		    app.served >= (unsigned long)app.cfg.max_requests) {
			log_info("served %lu requests: exiting to be replaced",
			    app.served);
			break;
		}
	}
	if (stop_signal)
		log_info("signal %d: exiting after %lu requests",
		    (int)stop_signal, app.served);
	FCGX_Free(&fr, 1);
	db_close(&app.db);
	cache_close(&app.cache);
	wechat_free(&app.wx);
	curl_global_cleanup();
	arena_free(&app.arena);
	log_close();
	config_free(&app.cfg);
	return 0;
}
