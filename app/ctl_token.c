/*
 * wxappctl token issue ID [--ttl S]: a short-lived access token for an
 * operator's test call, logged.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

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
	struct arena		 a;
	const char		*tok, *errstr;
	char			 err[256];
	long long		 id, ttl = 300;
	int			 ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 't' || util_strtonum(optarg, 1, 3600, &ttl,
		    &errstr) == -1) {
			ctl_err("usage: token issue ID [--ttl S] (S from 1 to "
			    "3600)");
			return CTL_USAGE;
		}
	}
	/* Options are permuted ahead: "issue" and the id are what is left. */
	if (optind != argc - 2 || strcmp(argv[optind], "issue") != 0 ||
	    util_strtonum(argv[optind + 1], 1, LLONG_MAX, &id, &errstr) == -1) {
		ctl_err("usage: token issue ID [--ttl S]");
		return CTL_USAGE;
	}
	if (config_check_serving(&ctl->cfg, err, sizeof(err)) == -1) {
		ctl_err("token: %s", err);
		return CTL_FAIL;
	}
	arena_init(&a, 4096, 1);
	if (token_issue(&ctl->cfg, id, ttl, &a, &tok, &cl) == -1) {
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
