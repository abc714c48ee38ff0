/*
 * jsonparse: json-c's tokener in strict mode.
 */
#include <limits.h>

#include "jsonparse.h"

int
jsonparse_bytes(const char *p, size_t n, struct json_object **out, size_t *at,
    const char **why)
{
	struct json_tokener	*tok;
	enum json_tokener_error	 jerr;

	*out = NULL;
	if (n > INT_MAX) {
		*at = 0;
		*why = "input too large";
		return -1;
	}
	if ((tok = json_tokener_new_ex(JSONPARSE_DEPTH)) == NULL) {
		*at = 0;
		*why = "out of memory";
		return -1;
	}
	/* Strict: no trailing data, no comments, no trailing commas. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	*out = json_tokener_parse_ex(tok, p, (int)n);
	jerr = json_tokener_get_error(tok);
	*at = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (*out != NULL)
		return 0;
	if (jerr == json_tokener_continue) {
		*at = n;
		*why = "unexpected end of input";
	} else
		*why = json_tokener_error_desc(jerr);
	return -1;
}

const char *
jsonparse_string(struct json_object *obj, const char *name)
{
	struct json_object	*v;

	if (obj == NULL || !json_object_object_get_ex(obj, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}
