/*
 * wxpush: WeChat's message push (消息推送), the callback through which
 * WeChat POSTs events to the backend.  Owns the signatures (of the URL
 * check and of every message: sha1 of the sorted strings), the safe
 * mode's envelope (AES-256-CBC under the EncodingAESKey, iv its first 16
 * bytes, PKCS#7 padding to 32-byte blocks; 16 random bytes, a 4-byte
 * big-endian length, the message, the appid), and the message itself,
 * XML or JSON, read into a flat list of fields.
 *
 * XML is read with expat, and a document with a DOCTYPE is refused
 * outright: WeChat never sends one, and without it no entity can be
 * declared, so no entity expansion (billion laughs) and no external
 * resource can happen.
 */
#ifndef WX_WXPUSH_H
#define WX_WXPUSH_H

#include <stddef.h>

#include "arena.h"

#define WXPUSH_FIELDS	64	/* a message has at most this many */

enum wxpush_status {
	WXPUSH_OK,
	WXPUSH_BAD_SIGNATURE,
	WXPUSH_BAD_BASE64,
	WXPUSH_BAD_LENGTH,	/* not whole blocks, or a length past the end */
	WXPUSH_BAD_PADDING,
	WXPUSH_BAD_APPID,
	WXPUSH_BAD_BODY		/* not a flat XML or JSON message */
};

/* One field: a leaf element or member; nested ones as "a.b". */
struct wxpush_field {
	const char	*name;
	const char	*value;
};

struct wxpush_msg {
	struct wxpush_field	f[WXPUSH_FIELDS];
	int			n;
	int			xml;	/* it came as XML */
};

/*
 * The signature of strs[0..n) (token, timestamp, nonce[, Encrypt]):
 * lower-case hex of sha1 of their concatenation, sorted.  out: 41 bytes.
 */
void	wxpush_signature(const char *const *strs, int n, char out[41]);
/* given is the signature of strs, compared in constant time; 0 or -1. */
int	wxpush_check(const char *const *strs, int n, const char *given);
/* The AES key of a 43-character EncodingAESKey; 0, or -1 if malformed. */
int	wxpush_aes_key(const char *encoding_aes_key, unsigned char key[32]);
/*
 * Open a safe-mode Encrypt value: the message (in the arena, NUL added)
 * and its length; WXPUSH_BAD_APPID when it is not for appid.
 */
enum wxpush_status wxpush_decrypt(const unsigned char key[32],
	    const char *appid, const char *encrypt, struct arena *,
	    const char **msg, size_t *len);
/*
 * Read a message, XML (<xml>...</xml>) or a JSON object, into m; values
 * are copied into the arena.  WXPUSH_BAD_BODY with why set otherwise.
 */
enum wxpush_status wxpush_parse(struct arena *, const char *body, size_t len,
	    struct wxpush_msg *m, const char **why);
/* The value of field name, or NULL. */
const char *wxpush_get(const struct wxpush_msg *, const char *name);
/* What went wrong, for a log line. */
const char *wxpush_strerror(enum wxpush_status);

#endif
