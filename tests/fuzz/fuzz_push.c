/*
 * fuzz_push: message push (lib/wxpush).  The first byte chooses: odd, the
 * rest is a message body (XML or JSON) read as the push endpoint reads
 * one; even, the rest is an Encrypt value opened under a fixed key, and
 * what it holds is read as a message.  Signatures are checked over the
 * input too.
 */
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "wxpush.h"

#define ENC_KEY	"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define APPID	"wx1234567890abcdef"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena	 a;
	static int		 ready;
	static unsigned char	 key[32];
	struct wxpush_msg	 m;
	const char		*why, *msg, *s, *strs[4];
	size_t			 len;

	if (!ready) {
		arena_init(&a, 64 * 1024, 2);
		if (wxpush_aes_key(ENC_KEY, key) == -1)
			return 0;
		ready = 1;
	}
	if (size == 0)
		return 0;
	s = arena_strndup(&a, (const char *)data + 1, size - 1);
	if (data[0] & 1)
		(void)wxpush_parse(&a, (const char *)data + 1, size - 1, &m,
		    &why);
	else if (wxpush_decrypt(key, APPID, s, &a, &msg, &len) == WXPUSH_OK)
		(void)wxpush_parse(&a, msg, len, &m, &why);
	strs[0] = strs[1] = strs[2] = strs[3] = s;
	(void)wxpush_check(strs, 4, s);
	arena_reset(&a);
	return 0;
}
