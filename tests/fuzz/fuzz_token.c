/*
 * fuzz_token: access token verification (lib/token).  An input with a
 * newline is a JOSE header and claims, which the harness signs with the
 * key the verifier holds, so that every check behind the signature is
 * reached; any other input is a token as a client would send it.
 */
#include <stdint.h>
#include <string.h>

#include "crypto.h"
#include "token.h"

#define SECRET	"fuzz-secret-of-at-least-32-bytes!!"
#define NOW	1800000000LL

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The base64url form of n bytes at p, then c, appended to b. */
static void
add_part(struct buf *b, const uint8_t *p, size_t n, char c)
{
	char	*enc = arena_alloc(b->a, (n + 2) / 3 * 4 + 1);

	crypto_b64url_encode(p, n, enc);
	buf_adds(b, enc);
	if (c != '\0')
		buf_addc(b, c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct token_opts o = {
		.kid = "k1", .secret = SECRET, .prev_kid = "k0",
		.prev_secret = SECRET "-old", .issuer = "wxapp",
		.audience = "wxapp-miniprogram", .client_id = "wx0123456789abcdef",
		.leeway = 30, .max_ttl = 900
	};
	static struct arena	 a;
	static int		 ready;
	struct token_claims	 cl;
	const uint8_t		*nl;
	unsigned char		 mac[32];
	char			 sig[64];
	struct buf		 b;

	if (!ready) {
		arena_init(&a, 16 * 1024, 1);
		ready = 1;
	}
	buf_init(&b, &a, 2 * size + 64);
	if ((nl = memchr(data, '\n', size)) != NULL) {
		add_part(&b, data, (size_t)(nl - data), '.');
		add_part(&b, nl + 1, size - (size_t)(nl + 1 - data), '\0');
		crypto_hmac_sha256(SECRET, strlen(SECRET), b.p, b.len, mac);
		crypto_b64url_encode(mac, sizeof(mac), sig);
		buf_addc(&b, '.');
		buf_adds(&b, sig);
	} else
		buf_add(&b, data, size);
	(void)token_verify(&o, buf_cstr(&b), NOW, &cl);
	arena_reset(&a);
	return 0;
}
