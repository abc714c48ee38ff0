/*
 * jsonparse: json-c's tokener in strict mode, after a pass of our own.
 */
#include <limits.h>
#include <string.h>

#include "jsonparse.h"

/* A string of the input: where it starts and ends (its quotes excluded). */
struct span {
	size_t	start, end;
};

/* Set err for the byte at of p, in the member named by key (if any). */
static int
fail(struct jsonparse_err *err, const char *p, size_t at, const char *why,
    const struct span *key)
{
	err->at = at;
	err->why = why;
	err->field = key != NULL ? p + key->start : NULL;
	err->fieldlen = key != NULL ? key->end - key->start : 0;
	return -1;
}

/*
 * What json-c accepts and must not be: a NUL byte anywhere (it ends the
 * text early), a raw control character inside a string (RFC 8259 7), and
 * the escape \u0000 (json-c keeps it, but every C string of it stops
 * there: "ok\u0000..." would be stored as "ok", and a member's name cut
 * short).  The member a string belongs to is the last string followed by
 * a colon.  0, or -1 with err set.
 */
static int
lint(const char *p, size_t n, struct jsonparse_err *err)
{
	struct span	 str = { 0, 0 }, key = { 0, 0 };
	size_t		 i, nul = 0, j;
	int		 in = 0, have_key = 0, has_nul = 0;
	unsigned char	 c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (c == '\0')
			return fail(err, p, i, "a NUL byte", have_key ? &key :
			    NULL);
		if (!in) {
			if (c == '"') {
				in = 1;
				has_nul = 0;
				str.start = i + 1;
			} else if (c == ':') {
				key = str;
				have_key = 1;
			}
			continue;
		}
		if (c == '"') {
			in = 0;
			str.end = i;
			if (!has_nul)
				continue;
			/* A name followed by its colon, or a value. */
			for (j = i + 1; j < n && (p[j] == ' ' || p[j] == '\t' ||
			    p[j] == '\n' || p[j] == '\r'); j++)
				;
			if (j < n && p[j] == ':')
				return fail(err, p, nul, "a name holds \\u0000",
				    NULL);
			return fail(err, p, nul, "a string holds \\u0000",
			    have_key ? &key : NULL);
		}
		if (c < 0x20)
			return fail(err, p, i, "a control character in a "
			    "string (escape it)", have_key ? &key : NULL);
		if (c == '\\' && i + 1 < n) {
			if (p[i + 1] == 'u' && i + 5 < n &&
			    memcmp(p + i + 2, "0000", 4) == 0 && !has_nul) {
				has_nul = 1;
				nul = i;
			}
			i++;
		}
	}
	return 0;
}

int
jsonparse_bytes(const char *p, size_t n, struct json_object **out,
    struct jsonparse_err *err)
{
	struct json_tokener	*tok;
	enum json_tokener_error	 jerr;

	*out = NULL;
	if (n > INT_MAX)
		return fail(err, p, 0, "input too large", NULL);
	if (lint(p, n, err) == -1)
		return -1;
	if ((tok = json_tokener_new_ex(JSONPARSE_DEPTH)) == NULL)
		return fail(err, p, 0, "out of memory", NULL);
	/* Strict: no trailing data, no comments, no trailing commas. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	    JSON_TOKENER_VALIDATE_UTF8);
	*out = json_tokener_parse_ex(tok, p, (int)n);
	jerr = json_tokener_get_error(tok);
	err->at = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (*out != NULL)
		return 0;
	if (jerr == json_tokener_continue)
		return fail(err, p, n, "unexpected end of input", NULL);
	return fail(err, p, err->at, json_tokener_error_desc(jerr), NULL);
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
