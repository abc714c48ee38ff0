/*
 * wxappctl token issue ID [--ttl S]: a short-lived access token for an
 * operator's test call, logged.  It is issued in a session of its own
 * (a family with no refresh token), so only `user revoke` ends it early.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "crypto.h"
#include "ctl.h"
#include "log.h"
#include "token.h"
#include "util.h"

int
ctl_token(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ttl", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	struct token_claims	 cl;
	struct token_opts	 opts;
	struct arena		 a;
	const char		*tok, *errstr, *params[1];
	char			 err[256];
	PGresult		*res;
	long long		 id, ttl = 300;
	int			 ch;

	app_token_opts(&ctl->cfg, &opts);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 't' || util_strtonum(optarg, 1, opts.max_ttl, &ttl,
		    &errstr) == -1) {
			ctl_err("usage: %s (S from 1 to access_token_ttl, "
			    "%lld)", ctl->cmd->usage, opts.max_ttl);
			return CTL_USAGE;
		}
	}
	/* Options are permuted ahead: "issue" and the id are what is left. */
	if (optind != argc - 2 || strcmp(argv[optind], "issue") != 0 ||
	    util_strtonum(argv[optind + 1], 1, LLONG_MAX, &id, &errstr) == -1) {
		return ctl_usage(ctl);
	}
	if (config_check_serving(&ctl->cfg, err, sizeof(err)) == -1) {
		ctl_err("token: %s", err);
		return CTL_FAIL;
	}
	/* A token is issued only when its issue can be logged. */
	if (!ctl->logging) {
		if (ctl->cfg.log_file[0] == '\0')
			ctl_err("token: log_file is not set: a token is issued "
			    "only when its issue is logged");
		else
			ctl_err("token: cannot write log_file %s (run as a user "
			    "who can): a token is issued only when its issue is "
			    "logged", ctl->cfg.log_file);
		return CTL_FAIL;
	}
	if (ctl_db(ctl, 1) != CTL_OK)
		return CTL_FAIL;
	params[0] = argv[optind + 1];
	if (db_exec(&ctl->db, STMT_USER_GET, params, &res) != DB_OK) {
		ctl_err("token: postgres: %s", ctl->db.errmsg);
		return CTL_FAIL;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		ctl_err("token: no user %lld", id);
		return CTL_FAIL;
	}
	memset(&cl, 0, sizeof(cl));
	cl.user_id = id;
	if (util_strtonum(PQgetvalue(res, 0, UC_GEN), 0, LLONG_MAX, &cl.gen,
	    &errstr) == -1)
		cl.gen = -1;
	PQclear(res);
	arena_init(&a, 4096, 1);
	if (crypto_random_b64url(16, cl.fam) == -1 ||
	    token_issue(&opts, ttl, &a, &tok, &cl) == -1) {
		arena_free(&a);
		ctl_err("token: cannot issue a token");
		return CTL_FAIL;
	}
	log_warn("wxappctl: issued an access token for user %lld, jti %s, "
	    "valid %lld s", id, cl.jti, ttl);
	printf("%s\n", tok);
	arena_free(&a);
	return CTL_OK;
}
