/*
 * response: the API envelope and the bytes of a FastCGI answer.  Owns the
 * envelope codes of the library (a program defines its own beside them),
 * the mapping from code to HTTP status, and the serialization of status line, headers and body into
 * one buffer with a correct Content-Length.
 *
 * Every answer is {"code": <int>, "data": <value|null>, "message": "<text>"}.
 * A code is the HTTP status times 100 plus a detail, so the status is
 * always code / 100 (0 means 200).
 */
#ifndef WX_RESPONSE_H
#define WX_RESPONSE_H

#include "arena.h"

/*
 * The codes this library answers with.  A program adds its own details of
 * the same form (status * 100 + detail) and passes them as int.
 */
enum api_code {
	API_OK			= 0,
	API_BAD_REQUEST		= 40000,
	API_MALFORMED_JSON	= 40001,
	API_VALIDATION		= 40002,
	API_UNAUTHORIZED	= 40100,
	API_FORBIDDEN		= 40300,
	API_NOT_FOUND		= 40400,
	API_METHOD_NOT_ALLOWED	= 40500,
	API_CONFLICT		= 40900,
	API_TOO_LARGE		= 41300,
	API_UNSUPPORTED_MEDIA	= 41500,
	API_RATE_LIMITED	= 42900,
	API_INTERNAL		= 50000,
	API_UNAVAILABLE		= 50300
};

struct resp {
	struct arena	*a;
	int		 status;
	int		 code;
	const char	*content_type;
	struct buf	 headers;	/* extra "Name: value\r\n" lines */
	struct buf	 body;
};

void	resp_init(struct resp *, struct arena *);
/* Add a header line; name and value must not contain CR or LF. */
/* The same for a plain string and for a number (no printf). */
void	resp_header_str(struct resp *, const char *name, const char *value);
void	resp_header_ll(struct resp *, const char *name, long long value);
void	resp_header(struct resp *, const char *name, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Start {"code":0,"data": and let the caller append the data JSON. */
struct buf *resp_begin(struct resp *, int status);
/* Close the envelope with its message. */
void	resp_end(struct resp *, const char *message);
/* A whole envelope with data already serialized as JSON (NULL = null). */
void	resp_json(struct resp *, int status, const char *data, const char *msg);
/* An error envelope; the status follows from the code. */
void	resp_error(struct resp *, int code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* An error envelope carrying data (a JSON value) as well. */
void	resp_error_data(struct resp *, int code, const char *data,
	    const char *message);
/* An answer whose body (an envelope) is already serialized. */
void	resp_raw(struct resp *, int status, const char *body, size_t len);
/* True once an error (or any answer) has been set. */
int	resp_is_set(const struct resp *);
/* HTTP status for an envelope code. */
int	resp_status_of(int code);
/* Reason phrase for a status. */
const char *resp_reason(int status);
/* Serialize: Status, Content-Type, Content-Length, X-Request-Id, headers, body. */
void	resp_serialize(const struct resp *, const char *request_id, int head,
	    struct buf *out);

#endif
