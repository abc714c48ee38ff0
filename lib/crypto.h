/*
 * crypto: the primitives the session and Mini Program data decryption
 * need, over OpenSSL's libcrypto: strict base64 (standard and url-safe),
 * random tokens, SHA-1/SHA-256, HMAC-SHA-256, hex, AES-128-CBC with
 * PKCS#7 padding checked, AES-256-CBC without, AES-256-GCM sealing, and constant-time
 * comparison.
 */
#ifndef WX_CRYPTO_H
#define WX_CRYPTO_H

#include <stddef.h>

enum crypto_aes_result {
	CRYPTO_AES_OK,
	CRYPTO_AES_BAD_LENGTH,	/* ciphertext empty or not whole blocks */
	CRYPTO_AES_BAD_PADDING	/* wrong key or iv, or corrupted data */
};

/*
 * Decode standard base64 (padding required, no whitespace) of n chars into
 * out (room for n / 4 * 3); -1 when in is not valid base64.
 */
int	crypto_b64_decode(const char *in, size_t n, unsigned char *out,
	    size_t *outlen);
/* Encode as standard base64 with padding; out needs 4 * ((n + 2) / 3) + 1. */
void	crypto_b64_encode(const unsigned char *in, size_t n, char *out);
/* Encode as base64url without padding; out needs 4 * ((n + 2) / 3) + 1. */
void	crypto_b64url_encode(const unsigned char *in, size_t n, char *out);
/* Decode base64url without padding; -1 when invalid. */
int	crypto_b64url_decode(const char *in, size_t n, unsigned char *out,
	    size_t *outlen);
/* n random bytes from OpenSSL's CSPRNG, base64url; out needs 4n/3 + 4. */
int	crypto_random_b64url(size_t n, char *out);
/*
 * A random id that sorts by its creation: CRYPTO_TIMED_PREFIX lower-case
 * hex digits of the realtime clock in milliseconds, then n random bytes in
 * base64url (out needs CRYPTO_TIMED_PREFIX + 4n/3 + 4).  A B-tree index
 * over such ids takes each new one at its right edge, on a page that is in
 * memory, where random ids would each touch a page of their own.
 */
#define CRYPTO_TIMED_PREFIX	12
int	crypto_random_timed(size_t n, char *out);
/* Lower-case hex of n bytes; out needs 2n + 1. */
void	crypto_hex(const unsigned char *in, size_t n, char *out);
void	crypto_sha256(const void *in, size_t n, unsigned char out[32]);
void	crypto_sha1(const void *in, size_t n, unsigned char out[20]);
/* HMAC-SHA-256 of n bytes of in under key (keylen bytes). */
void	crypto_hmac_sha256(const void *key, size_t keylen, const void *in,
	    size_t n, unsigned char out[32]);
/* 1 when a and b (n bytes each) are equal, in time independent of content. */
int	crypto_equal(const void *a, const void *b, size_t n);
/* Decrypt AES-128-CBC and strip PKCS#7 padding; out needs n bytes. */
enum crypto_aes_result crypto_aes128cbc_decrypt(const unsigned char key[16],
	    const unsigned char iv[16], const unsigned char *in, size_t n,
	    unsigned char *out, size_t *outlen);
/*
 * Decrypt AES-256-CBC without removing any padding (the caller knows its
 * scheme); out needs n bytes.  Only CRYPTO_AES_BAD_LENGTH can fail.
 */
enum crypto_aes_result crypto_aes256cbc_decrypt_raw(const unsigned char key[32],
	    const unsigned char iv[16], const unsigned char *in, size_t n,
	    unsigned char *out);

/* What AES-256-GCM adds to a sealed message: a 12-byte nonce, a 16-byte tag. */
#define CRYPTO_SEAL_OVERHEAD	28
/*
 * Seal n bytes under key with a random nonce: out (n + CRYPTO_SEAL_OVERHEAD
 * bytes) is nonce, ciphertext, tag.  0 or -1.
 */
int	crypto_seal(const unsigned char key[32], const void *in, size_t n,
	    unsigned char *out);
/* Open what crypto_seal made (n bytes); out needs n - overhead.  0 or -1. */
int	crypto_open(const unsigned char key[32], const unsigned char *in,
	    size_t n, unsigned char *out, size_t *outlen);

#endif
