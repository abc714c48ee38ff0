/*
 * config: the one configuration of a wxapp process: struct config, the
 * table of its keys (type, default, range, secrecy) for lib/conf, which
 * reads the file and the WXAPP_<KEY> environment overrides.
 */
#ifndef WX_CONFIG_H
#define WX_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/* How WeChat's message push arrives. */
enum push_mode {
	PUSH_PLAIN,
	PUSH_SAFE		/* encrypted with wechat_push_aes_key */
};

/* What content security does when WeChat cannot be asked. */
enum check_fail {
	CHECK_FAIL_CLOSED,	/* refuse the write (503) */
	CHECK_FAIL_OPEN,	/* let it through */
	CHECK_FAIL_QUEUE	/* hold it, and ask again later */
};

/* Which requests a token may pass without its session state. */
enum auth_fail_open {
	AUTH_OPEN_NONE,
	AUTH_OPEN_READ,		/* the read rate class */
	AUTH_OPEN_ALL
};

struct config {
	int		 log_level;	/* enum log_level of lib/log.h */
	char		*log_file;
	int		 access_log;
	long long	 access_log_buffer;
	long long	 access_log_flush_ms;
	long long	 max_requests;
	long long	 max_body_bytes;
	char		*pg_conninfo;
	long long	 pg_connect_timeout;
	long long	 pg_statement_timeout_ms;
	char		*redis_addr;
	char		*redis_password;
	long long	 redis_connect_timeout_ms;
	long long	 redis_command_timeout_ms;
	char		*sql_dir;
	char		*wechat_appid;
	char		*wechat_secret;
	char		*wechat_api_base;
	int		 wechat_token_api;	/* stable_token 0, token 1 */
	long long	 wechat_connect_timeout_ms;
	long long	 wechat_timeout_ms;
	char		*jwt_secret;
	char		*jwt_kid;
	char		*jwt_prev_secret;
	char		*jwt_prev_kid;
	char		*jwt_issuer;
	char		*jwt_audience;
	long long	 jwt_leeway;
	long long	 access_token_ttl;
	long long	 refresh_token_ttl;
	long long	 refresh_grace;
	int		 auth_fail_open;	/* enum auth_fail_open */
	long long	 decrypt_max_age;
	long long	 session_key_ttl;
	long long	 cache_ttl;
	long long	 cache_negative_ttl;
	long long	 cache_lock_wait_ms;
	long long	 cache_local_bytes;
	char		*http_cache_control;
	long long	 preload_pages;
	long long	 preload_page_size;
	int		 ratelimit;
	long long	 ratelimit_login_rate;
	long long	 ratelimit_login_period;
	long long	 ratelimit_login_burst;
	long long	 ratelimit_read_rate;
	long long	 ratelimit_read_period;
	long long	 ratelimit_read_burst;
	long long	 ratelimit_write_rate;
	long long	 ratelimit_write_period;
	long long	 ratelimit_write_burst;
	long long	 ratelimit_lease;
	char		*shm_name;
	long long	 breaker_window_s;
	long long	 breaker_min_calls;
	long long	 breaker_error_pct;
	long long	 breaker_open_ms;
	long long	 breaker_half_open_calls;
	long long	 breaker_timeouts;
	long long	 breaker_slow_pct;
	long long	 breaker_store_open_ms;
	long long	 request_terminate_timeout;
	long long	 keepalive_drain_ms;
	long long	 slow_request_ms;
	int		 metrics;		/* count for GET /metrics */
	char		*status_allow;	/* /status and /metrics: more than
					   loopback (util_cidr_match) */
	long long	 max_requests_jitter;
	long long	 job_concurrency;
	long long	 job_claim_idle_ms;
	long long	 job_retry_base_ms;
	long long	 job_retry_max;
	long long	 job_dedup_ttl;
	long long	 job_stop_timeout;
	long long	 message_user_hourly;
	long long	 message_template_hourly;
	char		*message_item_published_template;
	char		*wechat_push_token;
	char		*wechat_push_aes_key;
	int		 wechat_push_mode;	/* enum push_mode */
	long long	 wechat_push_max_skew;
	int		 content_check_fail;	/* enum check_fail */
	long long	 media_check_timeout;
	char		*message_item_rejected_template;
	char		*otlp_endpoint;		/* "": no spans recorded */
	char		*otlp_headers;
	long long	 otlp_timeout_ms;
	char		*otlp_socket;
	char		*otlp_service_name;
	double		 trace_sample_ratio;
	int		 trace_trust_parent;	/* follow a caller's sampled flag */
	const char	*obsolete;	/* an obsolete key the file set, ignored */
};

#define CONFIG_SECRET_MIN	32	/* bytes of jwt_secret */

/* The default file: $(sysconfdir)/wxapp/wxapp.conf. */
const char	*config_default_path(void);
/* -c beats WXAPP_CONF beats the default. */
const char	*config_pick_path(const char *cli);
/* Defaults, then the file, then WXAPP_<KEY>; 0, or -1 with err set. */
int		 config_load(struct config *, const char *path, char *err,
		    size_t errlen);
void		 config_free(struct config *);
/* What serving needs beyond a valid file: secrets long enough, an appid. */
int		 config_check_serving(const struct config *, char *err,
		    size_t errlen);
/* Write every key = value, secrets masked, to f. */
void		 config_dump(const struct config *, FILE *f);
/* Write every key name, one per line (for the documentation test). */
void		 config_list_keys(FILE *f);

#endif
