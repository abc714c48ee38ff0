/*
 * wxappctl: the admin command.  Reads the same configuration as the
 * responders and dispatches to one subcommand.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "ctl.h"
#include "log.h"

#define C(n, u, f)	{ .name = n, .usage = u, .fn = f }
static const struct ctl_cmd cmds[] = {
	C("migrate",	"migrate [--status]",			ctl_migrate),
	C("check",	"check",				ctl_check),
	C("seed",	"seed [--users N] [--items N] [--force]", ctl_seed),
	C("preload",	"preload",				ctl_preload),
	C("cache",	"cache flush [--collection NAME]",	ctl_cache),
	C("status",	"status [--json]",			ctl_status),
	C("moderation",	"moderation list [--json] | moderation approve ID | "
	    "moderation reject ID",				ctl_moderation),
	C("jobs",	"jobs [--json] | jobs dead [--limit N] | "
	    "jobs retry ID|--all | jobs purge",			ctl_jobs),
	C("config",	"config [--keys]",			ctl_config),
	C("user",	"user show ID|openid | user revoke ID | "
			"user grant ID admin|user | user delete ID", ctl_user),
	C("token",	"token issue ID [--ttl S]",		ctl_token),
	{ .name = "probe", .usage = "probe SOCKET|HOST:PORT [--timeout S]",
	  .fn = ctl_probe, .noconfig = 1 },
};
#undef C

void
ctl_err(const char *fmt, ...)
{
	va_list	ap;

	fputs("wxappctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
ctl_usage(const struct ctl *ctl)
{
	ctl_err("usage: %s", ctl->cmd->usage);
	return CTL_USAGE;
}

void
ctl_redis(struct ctl *ctl, struct cache *cc)
{
	struct cache_opts	o;

	app_cache_opts(&ctl->cfg, NULL, &o);
	cache_init(cc, &o);
}

int
ctl_db(struct ctl *ctl, int prepared)
{
	struct db_opts	o;

	app_db_opts(&ctl->cfg, NULL, &o);
	if (prepared)
		db_init(&ctl->db, &o, app_stmts, STMT_COUNT);
	else
		db_init(&ctl->db, &o, NULL, 0);
	if (db_connect(&ctl->db) == -1) {
		ctl_err("postgres: %s", ctl->db.errmsg);
		return CTL_FAIL;
	}
	return CTL_OK;
}

static void
usage(FILE *f)
{
	size_t	i;

	fprintf(f, "usage: wxappctl [-c config] command [args]\ncommands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %s\n", cmds[i].usage);
}

int
main(int argc, char *argv[])
{
	struct ctl	 ctl;
	char		 err[1024];
	size_t		 i;
	int		 ch, rc;

	memset(&ctl, 0, sizeof(ctl));
	/* A server that goes away mid-command is an error, not a kill. */
	(void)signal(SIGPIPE, SIG_IGN);
	/* Errors are ours to report, in one line: no getopt messages. */
	opterr = 0;
	while ((ch = getopt(argc, argv, "+c:hV")) != -1) {
		switch (ch) {
		case 'c':
			ctl.cfgpath = optarg;
			break;
		case 'h':
			usage(stdout);
			return CTL_OK;
		case 'V':
			printf("wxappctl %s\n", PACKAGE_VERSION);
			return CTL_OK;
		default:
			ctl_err("unknown option; see wxappctl -h");
			return CTL_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		ctl_err("no command given; see wxappctl -h");
		return CTL_USAGE;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		ctl_err("unknown command `%s`; see wxappctl -h", argv[0]);
		return CTL_USAGE;
	}
	ctl.cmd = &cmds[i];
	if (ctl.cmd->noconfig) {
		optind = 0;
		return ctl.cmd->fn(&ctl, argc, argv);
	}
	ctl.cfgpath = config_pick_path(ctl.cfgpath);
	if (config_load(&ctl.cfg, ctl.cfgpath, err, sizeof(err)) == -1) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	/*
	 * What wxappctl does is logged where the responders log; when that is
	 * stderr, library messages are silenced: wxappctl reports its own
	 * errors there, one line each.
	 */
	/*
	 * The responders' log: wxappctl writes to it but never creates it (run
	 * as root, it would make the file root's and the responders, which run
	 * as the service user, could not open it).
	 */
	if (ctl.cfg.log_file[0] != '\0' &&
	    log_attach(ctl.cfg.log_file, ctl.cfg.log_level) == 0)
		ctl.logging = 1;
	else
		(void)log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	/* 0, not 1: glibc starts afresh (and permutes) for the subcommand. */
	optind = 0;
	rc = ctl.cmd->fn(&ctl, argc, argv);
	db_close(&ctl.db);
	config_free(&ctl.cfg);
	return rc;
}
