/*
 * response: envelope building and serialization.
 */
#include <stdarg.h>
#include <string.h>

#include "response.h"

void
resp_init(struct resp *rs, struct arena *a)
{
	rs->a = a;
	rs->status = 0;
	rs->code = API_OK;
	rs->content_type = "application/json; charset=utf-8";
	buf_init(&rs->headers, a, 256);
	buf_init(&rs->body, a, 1024);
}

/* End the header whose value starts at start: one line, whatever it holds. */
static void
header_end(struct resp *rs, size_t start)
{
	for (; start < rs->headers.len; start++)
		if (rs->headers.p[start] == '\r' || rs->headers.p[start] == '\n')
			rs->headers.p[start] = ' ';
	buf_add(&rs->headers, "\r\n", 2);
}

/* "Name: " into the header block; where the value starts. */
static size_t
header_begin(struct resp *rs, const char *name)
{
	buf_adds(&rs->headers, name);
	buf_add(&rs->headers, ": ", 2);
	return rs->headers.len;
}

void
resp_header(struct resp *rs, const char *name, const char *fmt, ...)
{
	size_t	start = header_begin(rs, name);
	va_list	ap;

	va_start(ap, fmt);
	buf_vprintf(&rs->headers, fmt, ap);
	va_end(ap);
	header_end(rs, start);
}

void
resp_header_str(struct resp *rs, const char *name, const char *value)
{
	size_t	start = header_begin(rs, name);

	buf_adds(&rs->headers, value);
	header_end(rs, start);
}

void
resp_header_ll(struct resp *rs, const char *name, long long value)
{
	header_begin(rs, name);
	buf_addll(&rs->headers, value);
	buf_add(&rs->headers, "\r\n", 2);
}

struct buf *
resp_begin(struct resp *rs, int status)
{
	rs->status = status;
	rs->code = API_OK;
	rs->body.len = 0;
	buf_adds(&rs->body, "{\"code\":0,\"data\":");
	return &rs->body;
}

void
resp_end(struct resp *rs, const char *message)
{
	buf_adds(&rs->body, ",\"message\":");
	buf_json_str(&rs->body, message, strlen(message));
	buf_addc(&rs->body, '}');
}

void
resp_json(struct resp *rs, int status, const char *data, const char *msg)
{
	resp_begin(rs, status);
	buf_adds(&rs->body, data != NULL ? data : "null");
	resp_end(rs, msg);
}

void
resp_error_data(struct resp *rs, int code, const char *data,
    const char *message)
{
	rs->status = resp_status_of(code);
	rs->code = code;
	rs->body.len = 0;
	buf_printf(&rs->body, "{\"code\":%d,\"data\":%s,\"message\":", code,
	    data != NULL ? data : "null");
	buf_json_str(&rs->body, message, strlen(message));
	buf_addc(&rs->body, '}');
}

void
resp_error(struct resp *rs, int code, const char *fmt, ...)
{
	struct buf	msg;
	va_list		ap;

	buf_init(&msg, rs->a, 128);
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	resp_error_data(rs, code, NULL, buf_cstr(&msg));
}

void
resp_raw(struct resp *rs, int status, const char *body, size_t len)
{
	rs->status = status;
	rs->code = status < 400 ? API_OK : status * 100;
	rs->body.len = 0;
	buf_add(&rs->body, body, len);
}

int
resp_is_set(const struct resp *rs)
{
	return rs->status != 0;
}

int
resp_status_of(int code)
{
	return code == API_OK ? 200 : code / 100;
}

const char *
resp_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

/*
 * The whole answer in one buffer.  204 and 304 carry no body by definition;
 * HEAD gets the headers (and Content-Length) of the GET it stands for.
 */
void
resp_serialize(const struct resp *rs, const char *request_id, int head,
    struct buf *out)
{
	int	bodyless = rs->status == 204 || rs->status == 304;

	buf_init(out, rs->a, rs->headers.len + rs->body.len + 256);
	buf_adds(out, "Status: ");
	buf_addll(out, rs->status);
	buf_addc(out, ' ');
	buf_adds(out, resp_reason(rs->status));
	if (!bodyless) {
		buf_adds(out, "\r\nContent-Type: ");
		buf_adds(out, rs->content_type);
		buf_adds(out, "\r\nContent-Length: ");
		buf_addll(out, (long long)rs->body.len);
	}
	buf_adds(out, "\r\nX-Request-Id: ");
	buf_adds(out, request_id);
	buf_add(out, "\r\n", 2);
	if (rs->code != API_OK)
		buf_adds(out, "Cache-Control: no-store\r\n");
	buf_add(out, rs->headers.p, rs->headers.len);
	buf_add(out, "\r\n", 2);
	if (!bodyless && !head)
		buf_add(out, rs->body.p, rs->body.len);
}
