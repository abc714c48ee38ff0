/*
 * jsonparse: turning bytes into json-c objects, strictly (no trailing
 * data, valid UTF-8, bounded nesting), with an error that says where.
 * Request bodies, WeChat's answers and token headers all come through it.
 */
#ifndef WX_JSONPARSE_H
#define WX_JSONPARSE_H

#include <stddef.h>

#include <json-c/json.h>

#define JSONPARSE_DEPTH	32

/*
 * Parse n bytes at p; on success *out is the caller's to json_object_put.
 * On failure returns -1 and sets *at to the byte offset and *why to the
 * reason.
 */
int	jsonparse_bytes(const char *p, size_t n, struct json_object **out,
	    size_t *at, const char **why);
/* obj.name when it is a string, else NULL. */
const char *jsonparse_string(struct json_object *obj, const char *name);

#endif
