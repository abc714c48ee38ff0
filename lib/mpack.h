/*
 * mpack: MessagePack, the compact representation of the same answers
 * (msgpack-c does the encoding).  Owns how JSON maps to it: null, true
 * and false, integers (int64), other numbers (float64), strings (their
 * exact bytes, a \u0000 included), arrays, and objects as maps with their
 * members in order (member names end at a \u0000, as json-c keeps them).
 */
#ifndef WX_MPACK_H
#define WX_MPACK_H

#include <stddef.h>

#include "arena.h"

#define MPACK_CONTENT_TYPE	"application/msgpack"

/*
 * The JSON text json (len bytes) as MessagePack, appended to out: 0, or
 * -1 when json is not valid JSON (nothing useful in out then).
 */
int	mpack_from_json(struct buf *out, const char *json, size_t len);

#endif
