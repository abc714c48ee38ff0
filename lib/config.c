/*
 * config: table-driven `key = value` parsing.
 *
 * Format: one `key = value` per line; blank lines and lines whose first
 * non-blank character is `#` are ignored (a `#` later on a line is part of
 * the value, so passwords may contain it).  The value is the rest of the
 * line with surrounding blanks trimmed.  Unknown keys, duplicates, bad
 * numbers and out-of-range values are errors naming file:line and the key.
 * After the file, any WXAPP_<KEY> environment variable overrides its key.
 * Values of secret keys are never printed, in errors or in dumps.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "util.h"

#ifndef WX_SYSCONFDIR
#define WX_SYSCONFDIR	"/usr/local/etc"
#endif
#ifndef WX_DATADIR
#define WX_DATADIR	"/usr/local/share"
#endif

/* CFG_OBSOLETE: accepted and ignored, so an older file still loads. */
enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL, CFG_ENUM, CFG_OBSOLETE };

struct cfg_key {
	const char	*name;
	enum cfg_type	 type;
	size_t		 off;
	const char	*def;
	long long	 min, max;
	int		 secret;
	const char *const *names;	/* CFG_ENUM: value i is names[i] */
};

static const char *const levels[] = {
	[LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn", [LOG_LEVEL_ERROR] = "error", NULL
};
static const char *const token_apis[] = { "stable_token", "token", NULL };
static const char *const fail_opens[] = { "none", "read", "all", NULL };

#define K(n, t, d, lo, hi, s) \
	{ #n, t, offsetof(struct config, n), d, lo, hi, s, NULL }
#define E(n, d, names) \
	{ #n, CFG_ENUM, offsetof(struct config, n), d, 0, 0, 0, names }
#define OBSOLETE(n) \
	{ #n, CFG_OBSOLETE, 0, NULL, 0, 0, 0, NULL }
static const struct cfg_key keys[] = {
	E(log_level, "info", levels),
	K(log_file, CFG_STR, "", 0, 0, 0),
	K(access_log, CFG_BOOL, "on", 0, 0, 0),
	K(access_log_buffer, CFG_INT, "16384", 0, 1048576, 0),
	K(access_log_flush_ms, CFG_INT, "500", 1, 60000, 0),
	K(max_requests, CFG_INT, "1000000", 0, 1000000000, 0),
	K(max_body_bytes, CFG_INT, "65536", 1, 64 * 1024 * 1024, 0),
	K(pg_conninfo, CFG_STR, "dbname=wxapp", 0, 0, 1),
	K(pg_connect_timeout, CFG_INT, "2", 1, 60, 0),
	K(pg_statement_timeout_ms, CFG_INT, "2000", 1, 600000, 0),
	OBSOLETE(pg_reconnect_max_ms),	/* 0.2: the breaker decides */
	K(redis_addr, CFG_STR, "127.0.0.1:6379", 0, 0, 0),
	K(redis_password, CFG_STR, "", 0, 0, 1),
	K(redis_connect_timeout_ms, CFG_INT, "500", 1, 60000, 0),
	K(redis_command_timeout_ms, CFG_INT, "250", 1, 60000, 0),
	K(sql_dir, CFG_STR, WX_DATADIR "/wxapp/sql", 0, 0, 0),
	K(wechat_appid, CFG_STR, "", 0, 0, 0),
	K(wechat_secret, CFG_STR, "", 0, 0, 1),
	K(wechat_api_base, CFG_STR, "https://api.weixin.qq.com", 0, 0, 0),
	E(wechat_token_api, "stable_token", token_apis),
	K(wechat_connect_timeout_ms, CFG_INT, "1000", 1, 60000, 0),
	K(wechat_timeout_ms, CFG_INT, "3000", 1, 60000, 0),
	K(jwt_secret, CFG_STR, "", 0, 0, 1),
	K(jwt_kid, CFG_STR, "k1", 0, 0, 0),
	K(jwt_prev_secret, CFG_STR, "", 0, 0, 1),
	K(jwt_prev_kid, CFG_STR, "", 0, 0, 0),
	K(jwt_issuer, CFG_STR, "wxapp", 0, 0, 0),
	K(jwt_audience, CFG_STR, "wxapp-miniprogram", 0, 0, 0),
	K(jwt_leeway, CFG_INT, "30", 0, 300, 0),
	K(access_token_ttl, CFG_INT, "900", 60, 86400, 0),
	K(refresh_token_ttl, CFG_INT, "604800", 300, 31536000, 0),
	K(refresh_grace, CFG_INT, "10", 0, 300, 0),
	E(auth_fail_open, "read", fail_opens),
	K(decrypt_max_age, CFG_INT, "0", 0, 31536000, 0),
	K(session_key_ttl, CFG_INT, "604800", 60, 31536000, 0),
	K(cache_ttl, CFG_INT, "300", 1, 86400, 0),
	K(cache_negative_ttl, CFG_INT, "30", 1, 3600, 0),
	K(cache_lock_wait_ms, CFG_INT, "1000", 0, 10000, 0),
	K(cache_local_bytes, CFG_INT, "8388608", 0, 1073741824, 0),
	K(http_cache_control, CFG_STR, "public, no-cache", 0, 0, 0),
	K(preload_pages, CFG_INT, "3", 0, 100, 0),
	K(preload_page_size, CFG_INT, "20", 1, 100, 0),
	K(ratelimit, CFG_BOOL, "on", 0, 0, 0),
	K(ratelimit_login_rate, CFG_INT, "10", 1, 1000000, 0),
	K(ratelimit_login_period, CFG_INT, "60", 1, 86400, 0),
	K(ratelimit_login_burst, CFG_INT, "5", 1, 1000000, 0),
	K(ratelimit_read_rate, CFG_INT, "20", 1, 1000000, 0),
	K(ratelimit_read_period, CFG_INT, "1", 1, 86400, 0),
	K(ratelimit_read_burst, CFG_INT, "40", 1, 1000000, 0),
	K(ratelimit_write_rate, CFG_INT, "5", 1, 1000000, 0),
	K(ratelimit_write_period, CFG_INT, "1", 1, 86400, 0),
	K(ratelimit_write_burst, CFG_INT, "10", 1, 1000000, 0),
	K(ratelimit_lease, CFG_INT, "32", 1, 1000000, 0),
	K(shm_name, CFG_STR, "/wxapp", 0, 0, 0),
	K(breaker_window_s, CFG_INT, "10", 1, 60, 0),
	K(breaker_min_calls, CFG_INT, "20", 1, 1000000, 0),
	K(breaker_error_pct, CFG_INT, "50", 1, 100, 0),
	K(breaker_open_ms, CFG_INT, "5000", 100, 600000, 0),
	K(breaker_half_open_calls, CFG_INT, "1", 1, 100, 0),
	K(breaker_timeouts, CFG_INT, "2", 0, 1000, 0),
	K(breaker_store_open_ms, CFG_INT, "500", 100, 600000, 0),
	K(request_terminate_timeout, CFG_INT, "10", 0, 3600, 0),
	K(slow_request_ms, CFG_INT, "1000", 0, 600000, 0),
	K(max_requests_jitter, CFG_INT, "50000", 0, 1000000000, 0),
};
#undef K
#undef E
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

const char *
config_default_path(void)
{
	return WX_SYSCONFDIR "/wxapp/wxapp.conf";
}

const char *
config_pick_path(const char *cli)
{
	const char	*env;

	if (cli != NULL)
		return cli;
	if ((env = getenv("WXAPP_CONF")) != NULL && *env != '\0')
		return env;
	return config_default_path();
}

static const struct cfg_key *
key_find(const char *name)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* Store value into the field of k; on a bad value, *why says what is wrong. */
static int
key_set(struct config *c, const struct cfg_key *k, const char *value,
    char *why, size_t whylen)
{
	char		*field = (char *)c + k->off;
	const char	*errstr;
	long long	 n;
	size_t		 i;
	char		*dup;
	int		 r;

	switch (k->type) {
	case CFG_OBSOLETE:
		c->obsolete = k->name;
		return 0;
	case CFG_STR:
		if ((dup = strdup(value)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	case CFG_INT:
		if (util_strtonum(value, k->min, k->max, &n, &errstr) == -1) {
			r = snprintf(why, whylen, "%s (allowed %lld..%lld)",
			    errstr, k->min, k->max);
			if (r < 0 || (size_t)r >= whylen)
				snprintf(why, whylen, "%s", errstr);
			return -1;
		}
		*(long long *)field = n;
		return 0;
	case CFG_BOOL:
		if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 ||
		    strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
			*(int *)field = 1;
		else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 ||
		    strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
			*(int *)field = 0;
		else {
			snprintf(why, whylen, "must be on or off");
			return -1;
		}
		return 0;
	case CFG_ENUM:
		for (i = 0; k->names[i] != NULL; i++)
			if (strcmp(value, k->names[i]) == 0) {
				*(int *)field = (int)i;
				return 0;
			}
		r = snprintf(why, whylen, "must be one of");
		for (i = 0; k->names[i] != NULL && r > 0 && (size_t)r < whylen;
		    i++)
			r += snprintf(why + r, whylen - (size_t)r, "%s %s",
			    i > 0 ? "," : "", k->names[i]);
		return -1;
	}
	snprintf(why, whylen, "unknown type");
	return -1;
}

static char *
trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Parse the file at path into c; 0, or -1 with err naming path:line. */
static int
config_parse_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE			*f;
	char			 line[4096], why[128], *p, *eq, *name, *value;
	unsigned char		 seen[NKEYS] = { 0 };
	const struct cfg_key	*k;
	int			 lineno = 0, rc = -1;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto fail;
		}
		p = trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected `key = value`",
			    path, lineno);
			goto fail;
		}
		*eq = '\0';
		name = trim(p);
		value = trim(eq + 1);
		if ((k = key_find(name)) == NULL) {
			snprintf(err, errlen, "%s:%d: unknown key `%.64s`",
			    path, lineno, name);
			goto fail;
		}
		if (seen[k - keys]++) {
			snprintf(err, errlen, "%s:%d: %s: duplicate key",
			    path, lineno, k->name);
			goto fail;
		}
		if (key_set(c, k, value, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s:%d: %s: value %s",
			    path, lineno, k->name, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	rc = 0;
fail:
	fclose(f);
	return rc;
}

/* Apply WXAPP_<KEY> variables; 0, or -1 with err naming the variable. */
static int
config_parse_env(struct config *c, char *err, size_t errlen)
{
	char		 var[64], why[128];
	const char	*value;
	size_t		 i, j;

	for (i = 0; i < NKEYS; i++) {
		memcpy(var, "WXAPP_", 6);
		for (j = 0; keys[i].name[j] != '\0' && j + 7 < sizeof(var); j++)
			var[6 + j] = (char)toupper((unsigned char)keys[i].name[j]);
		var[6 + j] = '\0';
		if ((value = getenv(var)) == NULL)
			continue;
		if (key_set(c, &keys[i], value, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "environment %s: %s: value %s",
			    var, keys[i].name, why);
			return -1;
		}
	}
	return 0;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	char	why[128];
	size_t	i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NKEYS; i++)
		if (keys[i].type != CFG_OBSOLETE &&
		    key_set(c, &keys[i], keys[i].def, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "default of %s: %s",
			    keys[i].name, why);
			goto fail;
		}
	if (config_parse_file(c, path, err, errlen) == -1 ||
	    config_parse_env(c, err, errlen) == -1)
		goto fail;
	return 0;
fail:
	config_free(c);
	return -1;
}

void
config_free(struct config *c)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].type == CFG_STR) {
			free(*(char **)((char *)c + keys[i].off));
			*(char **)((char *)c + keys[i].off) = NULL;
		}
}

int
config_check_serving(const struct config *c, char *err, size_t errlen)
{
	if (strlen(c->jwt_secret) < CONFIG_SECRET_MIN) {
		snprintf(err, errlen, "jwt_secret must be at least %d bytes",
		    CONFIG_SECRET_MIN);
		return -1;
	}
	if (c->jwt_prev_kid[0] != '\0' &&
	    strlen(c->jwt_prev_secret) < CONFIG_SECRET_MIN) {
		snprintf(err, errlen, "jwt_prev_secret must be at least %d "
		    "bytes when jwt_prev_kid is set", CONFIG_SECRET_MIN);
		return -1;
	}
	if (c->jwt_kid[0] == '\0' ||
	    strcmp(c->jwt_kid, c->jwt_prev_kid) == 0) {
		snprintf(err, errlen, "jwt_kid must be set and differ from "
		    "jwt_prev_kid");
		return -1;
	}
	if (c->wechat_appid[0] == '\0' || c->wechat_secret[0] == '\0') {
		snprintf(err, errlen, "wechat_appid and wechat_secret must be set");
		return -1;
	}
	return 0;
}

void
config_dump(const struct config *c, FILE *f)
{
	const char	*field;
	size_t		 i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].type == CFG_OBSOLETE)
			continue;
		field = (const char *)c + keys[i].off;
		fprintf(f, "%s = ", keys[i].name);
		switch (keys[i].type) {
		case CFG_STR:
			if (keys[i].secret)
				fputs(**(char *const *)field ? "(secret)" : "",
				    f);
			else
				fputs(*(char *const *)field, f);
			break;
		case CFG_INT:
			fprintf(f, "%lld", *(const long long *)field);
			break;
		case CFG_BOOL:
			fputs(*(const int *)field ? "on" : "off", f);
			break;
		case CFG_ENUM:
			fputs(keys[i].names[*(const int *)field], f);
			break;
		case CFG_OBSOLETE:
			break;
		}
		fputc('\n', f);
	}
}

void
config_list_keys(FILE *f)
{
	size_t	i;

	for (i = 0; i < NKEYS; i++)
		fprintf(f, "%s\n", keys[i].name);
}
