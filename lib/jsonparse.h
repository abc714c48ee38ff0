/*
 * jsonparse: turning bytes into json-c objects, strictly (RFC 8259: no
 * trailing data, valid UTF-8, no raw control character inside a string,
 * bounded nesting), refusing what json-c would silently cut short (a NUL
 * byte, or a \u0000 escape, which ends a C string early), with an error
 * that says where and, for a string, in which field.  Request bodies,
 * WeChat's answers, decrypted data and token headers all come through it.
 */
#ifndef WX_JSONPARSE_H
#define WX_JSONPARSE_H

#include <stddef.h>

#include <json-c/json.h>

#define JSONPARSE_DEPTH	32

/* Why bytes are not JSON. */
struct jsonparse_err {
	size_t		 at;		/* byte offset */
	const char	*why;
	const char	*field;		/* the name of the member, or NULL */
	size_t		 fieldlen;	/* (field points into the input) */
};

/*
 * Parse n bytes at p; on success *out is the caller's to json_object_put.
 * On failure returns -1 and fills err.
 */
int	jsonparse_bytes(const char *p, size_t n, struct json_object **out,
	    struct jsonparse_err *err);
/* obj.name when it is a string, else NULL. */
const char *jsonparse_string(struct json_object *obj, const char *name);

#endif
