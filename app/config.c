/*
 * config: the keys of wxapp.conf (their type, default, range and
 * secrecy), where they go in struct config, and what serving needs beyond
 * a valid file.  The file format is lib/conf's.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "config.h"
#include "log.h"
#include "util.h"

#ifndef WX_SYSCONFDIR
#define WX_SYSCONFDIR	"/usr/local/etc"
#endif
#ifndef WX_DATADIR
#define WX_DATADIR	"/usr/local/share"
#endif
#ifndef WX_RUNSTATEDIR
#define WX_RUNSTATEDIR	"/run"
#endif

static const char *const token_apis[] = { "stable_token", "token", NULL };
static const char *const fail_opens[] = { "none", "read", "all", NULL };
static const char *const push_modes[] = { "plain", "safe", NULL };
static const char *const check_fails[] = { "closed", "open", "queue", NULL };

#define K(n, t, d, lo, hi, s) { .name = #n, .type = t, \
	.off = offsetof(struct config, n), .def = d, .min = lo, .max = hi, \
	.secret = s }
#define E(n, d, list) { .name = #n, .type = CONF_ENUM, \
	.off = offsetof(struct config, n), .def = d, .names = list }
#define OBSOLETE(n) { .name = #n, .type = CONF_OBSOLETE }
static const struct conf_key keys[] = {
	E(log_level, "info", log_level_names),
	K(log_file, CONF_STR, "", 0, 0, 0),
	K(access_log, CONF_BOOL, "on", 0, 0, 0),
	K(access_log_buffer, CONF_INT, "16384", 0, 1048576, 0),
	K(access_log_flush_ms, CONF_INT, "500", 1, 60000, 0),
	K(max_requests, CONF_INT, "1000000", 0, 1000000000, 0),
	K(max_body_bytes, CONF_INT, "65536", 1, 64 * 1024 * 1024, 0),
	K(pg_conninfo, CONF_STR, "dbname=wxapp", 0, 0, 1),
	K(pg_connect_timeout, CONF_INT, "2", 1, 60, 0),
	K(pg_statement_timeout_ms, CONF_INT, "2000", 1, 600000, 0),
	OBSOLETE(pg_reconnect_max_ms),	/* 0.2: the breaker decides */
	K(redis_addr, CONF_STR, "127.0.0.1:6379", 0, 0, 0),
	K(redis_password, CONF_STR, "", 0, 0, 1),
	K(redis_connect_timeout_ms, CONF_INT, "500", 1, 60000, 0),
	K(redis_command_timeout_ms, CONF_INT, "250", 1, 60000, 0),
	K(sql_dir, CONF_STR, WX_DATADIR "/wxapp/sql", 0, 0, 0),
	K(wechat_appid, CONF_STR, "", 0, 0, 0),
	K(wechat_secret, CONF_STR, "", 0, 0, 1),
	K(wechat_api_base, CONF_STR, "https://api.weixin.qq.com", 0, 0, 0),
	E(wechat_token_api, "stable_token", token_apis),
	K(wechat_connect_timeout_ms, CONF_INT, "1000", 1, 60000, 0),
	K(wechat_timeout_ms, CONF_INT, "3000", 1, 60000, 0),
	K(jwt_secret, CONF_STR, "", 0, 0, 1),
	K(jwt_kid, CONF_STR, "k1", 0, 0, 0),
	K(jwt_prev_secret, CONF_STR, "", 0, 0, 1),
	K(jwt_prev_kid, CONF_STR, "", 0, 0, 0),
	K(jwt_issuer, CONF_STR, "wxapp", 0, 0, 0),
	K(jwt_audience, CONF_STR, "wxapp-miniprogram", 0, 0, 0),
	K(jwt_leeway, CONF_INT, "30", 0, 300, 0),
	K(access_token_ttl, CONF_INT, "900", 60, 86400, 0),
	K(refresh_token_ttl, CONF_INT, "604800", 300, 31536000, 0),
	K(refresh_grace, CONF_INT, "10", 0, 300, 0),
	E(auth_fail_open, "read", fail_opens),
	K(decrypt_max_age, CONF_INT, "0", 0, 31536000, 0),
	K(session_key_ttl, CONF_INT, "604800", 60, 31536000, 0),
	K(cache_ttl, CONF_INT, "300", 1, 86400, 0),
	K(cache_negative_ttl, CONF_INT, "30", 1, 3600, 0),
	K(cache_lock_wait_ms, CONF_INT, "1000", 0, 10000, 0),
	K(cache_local_bytes, CONF_INT, "8388608", 0, 1073741824, 0),
	K(http_cache_control, CONF_STR, "public, no-cache", 0, 0, 0),
	K(preload_pages, CONF_INT, "3", 0, 100, 0),
	K(preload_page_size, CONF_INT, "20", 1, 100, 0),
	K(ratelimit, CONF_BOOL, "on", 0, 0, 0),
	K(ratelimit_login_rate, CONF_INT, "10", 1, 1000000, 0),
	K(ratelimit_login_period, CONF_INT, "60", 1, 86400, 0),
	K(ratelimit_login_burst, CONF_INT, "5", 1, 1000000, 0),
	K(ratelimit_read_rate, CONF_INT, "20", 1, 1000000, 0),
	K(ratelimit_read_period, CONF_INT, "1", 1, 86400, 0),
	K(ratelimit_read_burst, CONF_INT, "40", 1, 1000000, 0),
	K(ratelimit_write_rate, CONF_INT, "5", 1, 1000000, 0),
	K(ratelimit_write_period, CONF_INT, "1", 1, 86400, 0),
	K(ratelimit_write_burst, CONF_INT, "10", 1, 1000000, 0),
	K(ratelimit_lease, CONF_INT, "32", 1, 1000000, 0),
	K(shm_name, CONF_STR, "/wxapp", 0, 0, 0),
	K(breaker_window_s, CONF_INT, "10", 1, 60, 0),
	K(breaker_min_calls, CONF_INT, "20", 1, 1000000, 0),
	K(breaker_error_pct, CONF_INT, "50", 1, 100, 0),
	K(breaker_open_ms, CONF_INT, "500", 100, 600000, 0),
	K(breaker_half_open_calls, CONF_INT, "1", 1, 100, 0),
	K(breaker_timeouts, CONF_INT, "2", 0, 1000, 0),
	K(breaker_slow_pct, CONF_INT, "80", 0, 100, 0),
	K(breaker_store_open_ms, CONF_INT, "500", 100, 600000, 0),
	K(request_terminate_timeout, CONF_INT, "10", 0, 3600, 0),
	K(keepalive_drain_ms, CONF_INT, "8000", 0, 60000, 0),
	K(slow_request_ms, CONF_INT, "1000", 0, 600000, 0),
	K(metrics, CONF_BOOL, "on", 0, 0, 0),
	K(status_allow, CONF_STR, "", 0, 0, 0),
	K(max_requests_jitter, CONF_INT, "50000", 0, 1000000000, 0),
	K(job_concurrency, CONF_INT, "64", 1, 4096, 0),
	K(job_claim_idle_ms, CONF_INT, "60000", 1000, 86400000, 0),
	K(job_retry_base_ms, CONF_INT, "1000", 10, 3600000, 0),
	K(job_retry_max, CONF_INT, "8", 0, 100, 0),
	K(job_dedup_ttl, CONF_INT, "86400", 1, 2592000, 0),
	K(job_stop_timeout, CONF_INT, "10", 0, 3600, 0),
	K(message_user_hourly, CONF_INT, "10", 0, 1000000, 0),
	K(message_template_hourly, CONF_INT, "100000", 0, 100000000, 0),
	K(message_item_published_template, CONF_STR, "", 0, 0, 0),
	K(wechat_push_token, CONF_STR, "", 0, 0, 1),
	K(wechat_push_aes_key, CONF_STR, "", 0, 0, 1),
	E(wechat_push_mode, "safe", push_modes),
	K(wechat_push_max_skew, CONF_INT, "300", 1, 86400, 0),
	E(content_check_fail, "queue", check_fails),
	K(media_check_timeout, CONF_INT, "1800", 10, 86400, 0),
	K(message_item_rejected_template, CONF_STR, "", 0, 0, 0),
	K(otlp_endpoint, CONF_STR, "", 0, 0, 0),
	K(otlp_headers, CONF_STR, "", 0, 0, 1),
	K(otlp_timeout_ms, CONF_INT, "10000", 1, 600000, 0),
	K(otlp_socket, CONF_STR, WX_RUNSTATEDIR "/wxapp-otlp/otlp.sock", 0, 0,
	    0),
	K(otlp_service_name, CONF_STR, "wxapp", 0, 0, 0),
	K(trace_trust_parent, CONF_BOOL, "on", 0, 0, 0),
	{ .name = "trace_sample_ratio", .type = CONF_RATIO,
	    .off = offsetof(struct config, trace_sample_ratio), .def = "0.1" },
};
#undef K
#undef E
#undef OBSOLETE

static const struct conf_schema schema = {
	.keys = keys,
	.nkeys = sizeof(keys) / sizeof(keys[0]),
	.size = sizeof(struct config),
	.env_prefix = "WXAPP_"
};

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

/* *field, when wxapp's own key left it empty, from OpenTelemetry's var. */
static int
otel_default(char **field, const char *var, char *err, size_t errlen)
{
	const char	*v = getenv(var);
	char		*dup;

	if ((*field)[0] != '\0' || v == NULL || v[0] == '\0')
		return 0;
	if ((dup = strdup(v)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", var);
		return -1;
	}
	free(*field);
	*field = dup;
	return 0;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	char	why[128];

	if (conf_load(&schema, c, path, &c->obsolete, err, errlen) == -1)
		return -1;
	/* The exporter's standard variables, below wxapp's keys. */
	if (otel_default(&c->otlp_endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT", err,
	    errlen) == -1 || otel_default(&c->otlp_headers,
	    "OTEL_EXPORTER_OTLP_HEADERS", err, errlen) == -1)
		goto fail;
	if (util_cidr_check(c->status_allow, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "status_allow: %s", why);
		goto fail;
	}
	return 0;
fail:
	conf_free(&schema, c);
	return -1;
}

void
config_free(struct config *c)
{
	conf_free(&schema, c);
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
	/*
	 * A job still running must never look abandoned: its longest run is
	 * a token refresh under the lock and a send retried once, each up to
	 * wechat_timeout_ms.
	 */
	if (c->job_claim_idle_ms < 5 * c->wechat_timeout_ms + 5000) {
		snprintf(err, errlen, "job_claim_idle_ms must be at least 5 "
		    "wechat_timeout_ms + 5000 (%lld), the longest a job runs",
		    5 * c->wechat_timeout_ms + 5000);
		return -1;
	}
	/* WeChat's console takes a Token of 3 to 32 characters. */
	if (c->wechat_push_token[0] != '\0' &&
	    (strlen(c->wechat_push_token) < 3 ||
	    strlen(c->wechat_push_token) > 32)) {
		snprintf(err, errlen, "wechat_push_token must be 3 to 32 "
		    "characters");
		return -1;
	}
	if (c->wechat_push_token[0] != '\0' && c->wechat_push_mode ==
	    PUSH_SAFE && strlen(c->wechat_push_aes_key) != 43) {
		snprintf(err, errlen, "wechat_push_mode safe needs "
		    "wechat_push_aes_key: the console's 43-character "
		    "EncodingAESKey");
		return -1;
	}
	return 0;
}

void
config_dump(const struct config *c, FILE *f)
{
	conf_dump(&schema, c, f);
}

void
config_list_keys(FILE *f)
{
	conf_list_keys(&schema, f);
}
