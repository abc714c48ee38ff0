/*
 * wxpush: WeChat's message push: signatures, the safe mode's envelope and
 * the message's fields (see wxpush.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>
#include <json-c/json.h>

#include "crypto.h"
#include "jsonparse.h"
#include "wxpush.h"

#define SIG_STRINGS	4
#define DEPTH_MAX	8
#define NAME_MAX_LEN	128
#define VALUE_MAX	8192

static int
by_bytes(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
wxpush_signature(const char *const *strs, int n, char out[41])
{
	const char	*sorted[SIG_STRINGS];
	unsigned char	 h[20];
	char		*cat;
	size_t		 len = 0, off = 0;
	int		 i;

	if (n > SIG_STRINGS)
		n = SIG_STRINGS;
	for (i = 0; i < n; i++) {
		sorted[i] = strs[i];
		len += strlen(strs[i]);
	}
	qsort(sorted, (size_t)n, sizeof(sorted[0]), by_bytes);
	if ((cat = malloc(len + 1)) == NULL) {
		out[0] = '\0';
		return;
	}
	for (i = 0; i < n; i++) {
		memcpy(cat + off, sorted[i], strlen(sorted[i]));
		off += strlen(sorted[i]);
	}
	crypto_sha1(cat, len, h);
	free(cat);
	crypto_hex(h, sizeof(h), out);
}

int
wxpush_check(const char *const *strs, int n, const char *given)
{
	char	want[41];

	if (given == NULL || strlen(given) != 40)
		return -1;
	wxpush_signature(strs, n, want);
	return want[0] != '\0' && crypto_equal(want, given, 40) ? 0 : -1;
}

int
wxpush_aes_key(const char *encoding_aes_key, unsigned char key[32])
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char		b64[45];
	const char	*at;
	unsigned char	raw[33];
	size_t		len;

	if (strlen(encoding_aes_key) != 43)
		return -1;
	memcpy(b64, encoding_aes_key, 43);
	/*
	 * The last character carries 2 bits past the 32 bytes; WeChat's own
	 * decoders ignore them, a strict one refuses them: drop them.
	 */
	if ((at = strchr(alphabet, b64[42])) == NULL || b64[42] == '\0')
		return -1;
	b64[42] = alphabet[(at - alphabet) & ~3];
	b64[43] = '=';
	b64[44] = '\0';
	if (crypto_b64_decode(b64, 44, raw, &len) == -1 || len != 32)
		return -1;
	memcpy(key, raw, 32);
	return 0;
}

enum wxpush_status
wxpush_decrypt(const unsigned char key[32], const char *appid,
    const char *encrypt, struct arena *a, const char **msg, size_t *msglen)
{
	unsigned char	*ct, *pt;
	size_t		 n = strlen(encrypt), ctlen, ptlen, i, applen;
	uint32_t	 len;
	unsigned char	 pad, bad = 0;

	ct = arena_alloc(a, n / 4 * 3 + 3);
	if (crypto_b64_decode(encrypt, n, ct, &ctlen) == -1)
		return WXPUSH_BAD_BASE64;
	/* 16 random bytes and a length at least, in whole 32-byte blocks. */
	if (ctlen < 32 || ctlen % 32 != 0)
		return WXPUSH_BAD_LENGTH;
	pt = arena_alloc(a, ctlen + 1);
	if (crypto_aes256cbc_decrypt_raw(key, key, ct, ctlen, pt) !=
	    CRYPTO_AES_OK)
		return WXPUSH_BAD_LENGTH;
	/* PKCS#7 to 32 bytes: 1 to 32 copies of the pad's length. */
	pad = pt[ctlen - 1];
	if (pad < 1 || pad > 32)
		return WXPUSH_BAD_PADDING;
	for (i = 1; i <= pad; i++)
		bad |= pt[ctlen - i] ^ pad;
	if (bad != 0)
		return WXPUSH_BAD_PADDING;
	ptlen = ctlen - pad;
	if (ptlen < 20)
		return WXPUSH_BAD_LENGTH;
	len = (uint32_t)pt[16] << 24 | (uint32_t)pt[17] << 16 |
	    (uint32_t)pt[18] << 8 | (uint32_t)pt[19];
	if (len > ptlen - 20)
		return WXPUSH_BAD_LENGTH;
	applen = ptlen - 20 - len;
	if (applen != strlen(appid) ||
	    !crypto_equal(pt + 20 + len, appid, applen))
		return WXPUSH_BAD_APPID;
	pt[20 + len] = '\0';
	*msg = (const char *)pt + 20;
	*msglen = len;
	return WXPUSH_OK;
}

/* Add name = value to m, unless it is full or has the name already. */
static int
add_field(struct arena *a, struct wxpush_msg *m, const char *name,
    const char *value, size_t vlen)
{
	int	i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->f[i].name, name) == 0)
			return 0;	/* the first of a list */
	if (m->n == WXPUSH_FIELDS)
		return -1;
	m->f[m->n].name = arena_strdup(a, name);
	m->f[m->n].value = arena_strndup(a, value, vlen);
	m->n++;
	return 0;
}

/* The XML reader's state. */
struct xml {
	XML_Parser		 p;
	struct arena		*a;
	struct wxpush_msg	*m;
	char			 path[DEPTH_MAX * (NAME_MAX_LEN + 1)];
	size_t			 plen[DEPTH_MAX + 1];
	int			 depth;
	int			 leaf;		/* no child element yet */
	char			 text[VALUE_MAX];
	size_t			 tlen;
	const char		*why;
};

static void
xml_fail(struct xml *x, const char *why)
{
	if (x->why == NULL)
		x->why = why;
	XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL
xml_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct xml	*x = arg;
	size_t		 n = strlen(name), at;

	(void)attrs;
	if (x->depth == 0 && strcmp(name, "xml") != 0) {
		xml_fail(x, "the root element is not <xml>");
		return;
	}
	if (x->depth == DEPTH_MAX || n > NAME_MAX_LEN) {
		xml_fail(x, "elements nested too deep or named too long");
		return;
	}
	/* The path below <xml>: a.b.c */
	at = x->plen[x->depth];
	if (x->depth > 0) {
		if (at > 0)
			x->path[at++] = '.';
		memcpy(x->path + at, name, n);
		at += n;
	}
	x->path[at] = '\0';
	x->depth++;
	x->plen[x->depth] = at;
	x->leaf = 1;
	x->tlen = 0;
}

static void XMLCALL
xml_end(void *arg, const XML_Char *name)
{
	struct xml	*x = arg;

	(void)name;
	if (x->depth > 1 && x->leaf) {
		x->path[x->plen[x->depth]] = '\0';
		if (add_field(x->a, x->m, x->path, x->text, x->tlen) == -1) {
			xml_fail(x, "too many fields");
			return;
		}
	}
	x->depth--;
	x->leaf = 0;
	x->tlen = 0;
}

static void XMLCALL
xml_text(void *arg, const XML_Char *s, int len)
{
	struct xml	*x = arg;

	if (x->tlen + (size_t)len > sizeof(x->text)) {
		xml_fail(x, "a value is too long");
		return;
	}
	memcpy(x->text + x->tlen, s, (size_t)len);
	x->tlen += (size_t)len;
}

static void XMLCALL
xml_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int internal)
{
	(void)name, (void)sysid, (void)pubid, (void)internal;
	xml_fail(arg, "a DOCTYPE is not allowed");
}

static void XMLCALL
xml_entity(void *arg, const XML_Char *name, int param,
    const XML_Char *value, int vlen, const XML_Char *base,
    const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
	(void)name, (void)param, (void)value, (void)vlen, (void)base;
	(void)sysid, (void)pubid, (void)notation;
	xml_fail(arg, "an entity declaration is not allowed");
}

static enum wxpush_status
parse_xml(struct arena *a, const char *body, size_t len, struct wxpush_msg *m,
    const char **why)
{
	struct xml	*x = arena_calloc(a, 1, sizeof(*x));
	enum XML_Status	 st;

	x->a = a;
	x->m = m;
	if ((x->p = XML_ParserCreate("UTF-8")) == NULL) {
		*why = "out of memory";
		return WXPUSH_BAD_BODY;
	}
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, xml_start, xml_end);
	XML_SetCharacterDataHandler(x->p, xml_text);
	XML_SetStartDoctypeDeclHandler(x->p, xml_doctype);
	XML_SetEntityDeclHandler(x->p, xml_entity);
	st = XML_Parse(x->p, body, (int)len, XML_TRUE);
	if (st != XML_STATUS_OK && x->why == NULL)
		x->why = XML_ErrorString(XML_GetErrorCode(x->p));
	XML_ParserFree(x->p);
	if (x->why != NULL) {
		*why = x->why;
		return WXPUSH_BAD_BODY;
	}
	m->xml = 1;
	return WXPUSH_OK;
}

/* The members of o under prefix, leaves as fields; -1 when too many. */
static int
json_fields(struct arena *a, struct wxpush_msg *m, struct json_object *o,
    const char *prefix, int depth)
{
	struct json_object	*first;
	const char		*name, *v;

	if (depth == DEPTH_MAX)
		return -1;
	json_object_object_foreach(o, key, val) {
		name = prefix[0] != '\0' ? arena_printf(a, "%s.%s", prefix, key) :
		    key;
		/* A list: its first element, as XML's repeated elements. */
		if (json_object_is_type(val, json_type_array)) {
			if (json_object_array_length(val) == 0)
				continue;
			first = json_object_array_get_idx(val, 0);
			val = first;
		}
		if (json_object_is_type(val, json_type_object)) {
			if (json_fields(a, m, val, name, depth + 1) == -1)
				return -1;
			continue;
		}
		if (val == NULL)
			continue;
		v = json_object_get_string(val);
		if (add_field(a, m, name, v, strlen(v)) == -1)
			return -1;
	}
	return 0;
}

enum wxpush_status
wxpush_parse(struct arena *a, const char *body, size_t len,
    struct wxpush_msg *m, const char **why)
{
	struct json_object	*o = NULL;
	struct jsonparse_err	 err;
	size_t			 i = 0;
	int			 rc;

	memset(m, 0, sizeof(*m));
	while (i < len && (body[i] == ' ' || body[i] == '\t' ||
	    body[i] == '\r' || body[i] == '\n'))
		i++;
	if (i < len && body[i] == '<')
		return parse_xml(a, body, len, m, why);
	if (i == len || body[i] != '{') {
		*why = "neither XML nor a JSON object";
		return WXPUSH_BAD_BODY;
	}
	if (jsonparse_bytes(body, len, &o, &err) == -1) {
		*why = err.why;
		return WXPUSH_BAD_BODY;
	}
	rc = json_fields(a, m, o, "", 0);
	json_object_put(o);
	if (rc == -1) {
		*why = "too many fields, or nested too deep";
		return WXPUSH_BAD_BODY;
	}
	return WXPUSH_OK;
}

const char *
wxpush_get(const struct wxpush_msg *m, const char *name)
{
	int	i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->f[i].name, name) == 0)
			return m->f[i].value;
	return NULL;
}

const char *
wxpush_strerror(enum wxpush_status st)
{
	static const char *const why[] = {
		[WXPUSH_OK] = "ok",
		[WXPUSH_BAD_SIGNATURE] = "bad signature",
		[WXPUSH_BAD_BASE64] = "Encrypt is not base64",
		[WXPUSH_BAD_LENGTH] = "bad length",
		[WXPUSH_BAD_PADDING] = "bad padding (wrong EncodingAESKey?)",
		[WXPUSH_BAD_APPID] = "the message is for another appid",
		[WXPUSH_BAD_BODY] = "not a message"
	};

	return (size_t)st < sizeof(why) / sizeof(why[0]) ? why[st] : "?";
}
