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
	rs->envelope_open = 0;
}

void
resp_header(struct resp *rs, const char *name, const char *fmt, ...)
{
	size_t	start;
	va_list	ap;

	buf_adds(&rs->headers, name);
	buf_add(&rs->headers, ": ", 2);
	start = rs->headers.len;
	va_start(ap, fmt);
	buf_vprintf(&rs->headers, fmt, ap);
	va_end(ap);
	/* Never let a value split the header block. */
	for (; start < rs->headers.len; start++)
		if (rs->headers.p[start] == '\r' || rs->headers.p[start] == '\n')
			rs->headers.p[start] = ' ';
	buf_add(&rs->headers, "\r\n", 2);
}

struct buf *
resp_begin(struct resp *rs, int status)
{
	rs->status = status;
	rs->code = API_OK;
	rs->body.len = 0;
	rs->envelope_open = 1;
	buf_adds(&rs->body, "{\"code\":0,\"data\":");
	return &rs->body;
}

void
resp_end(struct resp *rs, const char *message)
{
	buf_adds(&rs->body, ",\"message\":");
	buf_json_str(&rs->body, message, strlen(message));
	buf_addc(&rs->body, '}');
	rs->envelope_open = 0;
}

void
resp_json(struct resp *rs, int status, const char *data, const char *msg)
{
	resp_begin(rs, status);
	buf_adds(&rs->body, data != NULL ? data : "null");
	resp_end(rs, msg);
}

void
resp_error_data(struct resp *rs, enum api_code code, const char *data,
    const char *message)
{
	rs->status = resp_status_of(code);
	rs->code = code;
	rs->body.len = 0;
	rs->envelope_open = 0;
	buf_printf(&rs->body, "{\"code\":%d,\"data\":%s,\"message\":", (int)code,
	    data != NULL ? data : "null");
	buf_json_str(&rs->body, message, strlen(message));
	buf_addc(&rs->body, '}');
}

void
resp_error(struct resp *rs, enum api_code code, const char *fmt, ...)
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
	rs->envelope_open = 0;
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
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
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
	buf_printf(out, "Status: %d %s\r\n", rs->status, resp_reason(rs->status));
	if (!bodyless)
		buf_printf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		    rs->content_type, rs->body.len);
	buf_printf(out, "X-Request-Id: %s\r\n", request_id);
	if (rs->code != API_OK)
		buf_adds(out, "Cache-Control: no-store\r\n");
	buf_add(out, rs->headers.p, rs->headers.len);
	buf_add(out, "\r\n", 2);
	if (!bodyless && !head)
		buf_add(out, rs->body.p, rs->body.len);
}
