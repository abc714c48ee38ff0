/*
 * log: the process's log stream.  One JSON object per line, written with a
 * single write(2) to an O_APPEND file (or stderr), so lines from several
 * responders sharing a file never interleave.  Owns the level filter, the
 * access line format, the access line buffer and reopening the file on
 * SIGHUP.
 *
 * Access lines may be buffered like nginx's "access_log ... buffer=
 * flush=": written together when the buffer is full, when its oldest line
 * is flush_ms old, before any other line (so the file stays in order), on
 * reopen and close, when the process runs out of work (log_flush), and by
 * log_tick from a timer.  A process killed outright loses what the buffer
 * holds.
 */
#ifndef WX_LOG_H
#define WX_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR
};
/* Their names ("debug" ...), NULL-ended: what the log lines say. */
extern const char *const log_level_names[LOG_LEVEL_ERROR + 2];

struct log_access {
	const char	*request_id;
	const char	*method;
	const char	*path;
	const char	*remote_addr;
	const char	*trace_id;	/* W3C trace-id, or "" */
	const char	*span_id;	/* the request's span, or "" */
	int		 status;
	int64_t		 duration_us;
	size_t		 bytes;
};

/* Log to path (NULL or "" = stderr) at level and above; 0 or -1. */
int	log_open(const char *path, int level, int access);
/*
 * The same for a file that exists already, without access lines: for a
 * tool run by root beside the service, which must not create the
 * service's log file owned by root.  -1 (ENOENT) when there is none.
 */
int	log_attach(const char *path, int level);
/* Buffer up to bytes of access lines, for at most flush_ms; 0 or -1. */
int	log_access_buffer(size_t bytes, long long flush_ms);
/* Write the buffered access lines now. */
void	log_flush(void);
/* Access lines are waiting in the buffer. */
int	log_pending(void);
/*
 * The same from a signal handler: async-signal-safe, and does nothing
 * when it interrupted the process in the middle of the buffer.
 */
void	log_tick(void);
/* Reopen the file after rotation (SIGHUP); 0 or -1. */
int	log_reopen(void);
void	log_close(void);
/* The descriptor lines go to (for an async-signal-safe last word). */
int	log_fd(void);
/*
 * Tag following lines with this request id, and its trace and span ids
 * (W3C; NULL for none); log_set_request(NULL, NULL, NULL) to stop.
 */
void	log_set_request(const char *request_id, const char *trace_id,
	    const char *span_id);
void	log_msg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...)	log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
void	log_access(const struct log_access *);

#endif
