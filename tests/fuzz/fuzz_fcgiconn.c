/*
 * fuzz_fcgiconn: the FastCGI records a responder of the concurrent loop
 * reads from nginx (lib/fcgiconn), kept connections included.  The first
 * byte of the input is how many bytes each fcgiconn_feed gets (1 to 256);
 * the rest is the connection's bytes.  After each whole request the
 * harness checks what it was handed and, when the request kept the
 * connection, reads the next one from the bytes that follow, as the
 * concurrent loop does after the answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgiconn.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What a READY connection hands over must be whole and terminated. */
static void
check_ready(const struct fcgiconn *c)
{
	size_t	i;

	if (c->envp == NULL || c->body.p[c->body.len] != '\0')
		abort();
	for (i = 0; c->envp[i] != NULL; i++)
		if (strchr(c->envp[i], '=') == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena	a;
	static int		ready;
	struct fcgiconn		c;
	size_t			chunk, k;

	if (size < 1)
		return 0;
	if (!ready) {
		arena_init(&a, 4096, 1);
		ready = 1;
	}
	chunk = (size_t)data[0] + 1;
	data++;
	size--;
	fcgiconn_init(&c, -1, &a, 4096);
	while (size > 0) {
		k = size < chunk ? size : chunk;
		/* Bytes after a whole request are the next one's, if kept. */
		switch (fcgiconn_feed(&c, &a, data, k)) {
		case FCGICONN_READY:
			check_ready(&c);
			/*
			 * The rest of this chunk makes extra set: like the
			 * loop, the harness then drops the connection.
			 */
			arena_reset(&a);
			if (fcgiconn_next(&c, &a) == -1)
				goto done;
			break;
		case FCGICONN_FAILED:
			if (c.error == NULL)
				abort();
			goto done;
		case FCGICONN_READING:
			break;
		}
		data += k;
		size -= k;
	}
done:
	arena_reset(&a);
	return 0;
}
