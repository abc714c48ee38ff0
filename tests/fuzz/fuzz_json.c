/*
 * fuzz_json: JSON bodies and the validators of the fields a client
 * writes (app/data.c), as a write handler applies them; and the same
 * bytes as MessagePack (lib/mpack), as a cached answer is converted.
 */
#include <stdint.h>

#include "data.h"
#include "jsonparse.h"
#include "mpack.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fields[] = { "name", "email", "title",
	    "summary", "cover_url", "category", "status", NULL };
	static struct arena	 a;
	static int		 ready;
	struct jsonparse_err	 err;
	struct json_object	*obj;
	struct resp		 rs;
	struct buf		 mp;
	const char		*s, *out;
	size_t			 i;

	if (!ready) {
		arena_init(&a, 64 * 1024, 2);
		ready = 1;
	}
	buf_init(&mp, &a, 256);
	(void)mpack_from_json(&mp, (const char *)data, size);
	if (jsonparse_bytes((const char *)data, size, &obj, &err) == -1) {
		arena_reset(&a);
		return 0;
	}
	resp_init(&rs, &a);
	if (json_object_is_type(obj, json_type_object)) {
		(void)req_json_only(&rs, obj, fields);
		for (i = 0; fields[i] != NULL; i++) {
			if (req_json_opt_string(&rs, obj, fields[i], &s) == -1 ||
			    s == NULL)
				continue;
			(void)data_valid_text(&a, &rs, fields[i], s, 1, 64, i % 2,
			    &out);
			(void)data_valid_email(&a, &rs, s, &out);
			(void)data_valid_category(&rs, fields[i], s);
		}
	}
	json_object_put(obj);
	arena_reset(&a);
	return 0;
}
