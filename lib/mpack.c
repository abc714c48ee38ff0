/*
 * mpack: JSON as MessagePack (see mpack.h).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>
#include <msgpack.h>

#include "mpack.h"

/* msgpack-c's writer: into the arena buffer. */
static int
put(void *data, const char *p, size_t n)
{
	buf_add(data, p, n);
	return 0;
}

/* Pack o and what it holds; -1 for what MessagePack cannot say (NaN). */
static int
pack(msgpack_packer *pk, struct json_object *o)
{
	struct json_object_iterator	it, end;
	const char			*s;
	size_t				 i, n;

	switch (json_object_get_type(o)) {	/* NULL: json_type_null */
	case json_type_null:
		msgpack_pack_nil(pk);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(o))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case json_type_int:
		/* Past INT64_MAX json-c keeps an unsigned value. */
		if (json_object_get_int64(o) == INT64_MAX)
			msgpack_pack_uint64(pk, json_object_get_uint64(o));
		else
			msgpack_pack_int64(pk, json_object_get_int64(o));
		break;
	case json_type_double:
		/* json-c reads NaN and, from 1e400, infinity: not JSON. */
		if (!isfinite(json_object_get_double(o)))
			return -1;
		msgpack_pack_double(pk, json_object_get_double(o));
		break;
	case json_type_string:
		/* The length, not strlen: a \u0000 stays. */
		s = json_object_get_string(o);
		n = (size_t)json_object_get_string_len(o);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, s, n);
		break;
	case json_type_array:
		n = json_object_array_length(o);
		msgpack_pack_array(pk, n);
		for (i = 0; i < n; i++)
			if (pack(pk, json_object_array_get_idx(o, i)) == -1)
				return -1;
		break;
	case json_type_object:
		msgpack_pack_map(pk, (size_t)json_object_object_length(o));
		it = json_object_iter_begin(o);
		end = json_object_iter_end(o);
		for (; !json_object_iter_equal(&it, &end);
		    json_object_iter_next(&it)) {
			s = json_object_iter_peek_name(&it);
			n = strlen(s);
			msgpack_pack_str(pk, n);
			msgpack_pack_str_body(pk, s, n);
			if (pack(pk, json_object_iter_peek_value(&it)) == -1)
				return -1;
		}
		break;
	}
	return 0;
}

int
mpack_from_json(struct buf *out, const char *json, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	msgpack_packer		 pk;
	size_t			 at;
	int			 rc = -1;

	if (len > INT32_MAX || (tok = json_tokener_new()) == NULL)
		return -1;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, json, (int)len);
	at = json_tokener_get_parse_end(tok);
	/* A number at the very end may go on: a NUL ends it. */
	if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
		o = json_tokener_parse_ex(tok, "", 1);
		at = len;
	}
	/* Whole: one value (null is NULL), and nothing but blanks after. */
	while (at < len && json[at] != '\0' && strchr(" \t\r\n", json[at]) !=
	    NULL)
		at++;
	if (json_tokener_get_error(tok) == json_tokener_success && at == len) {
		msgpack_packer_init(&pk, out, put);
		rc = pack(&pk, o);
	}
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}
