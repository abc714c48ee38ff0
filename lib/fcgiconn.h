/*
 * fcgiconn: the responder's side of one FastCGI connection, without
 * blocking: bytes are fed in as they arrive (from a non-blocking socket),
 * and once a request is whole -- its parameters and its body -- it is
 * handed over as an environment (envp) and a body buffer.  The answer is
 * written back as FCGI_STDOUT records and FCGI_END_REQUEST.
 *
 * This is what lets one process hold many connections from nginx at once
 * (libfcgi's FCGX_Accept_r reads one request at a time, blocking).  A
 * request whose FCGI_BEGIN_REQUEST has FCGI_KEEP_CONN (nginx's
 * fastcgi_keep_conn on) leaves the connection open for the next one:
 * fcgiconn_next starts reading it.  One request at a time per connection,
 * as nginx sends them (it multiplexes none).  Limits: parameters up to
 * FCGICONN_MAX_PARAMS bytes (more is an error and the connection is
 * dropped); of a body, a little more than the max_body given is kept and
 * the rest read and discarded, so that the request is still answered (a
 * 413, by its Content-Length).
 */
#ifndef WX_FCGICONN_H
#define WX_FCGICONN_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define FCGICONN_MAX_PARAMS	(64 * 1024)

enum fcgiconn_state {
	FCGICONN_READING,	/* more bytes are needed */
	FCGICONN_READY,		/* a whole request: see envp and body */
	FCGICONN_FAILED		/* a protocol error, or too large */
};

struct fcgiconn {
	int			 fd;
	enum fcgiconn_state	 state;
	uint16_t		 id;		/* the request's id */
	int			 began;		/* FCGI_BEGIN_REQUEST seen */
	int			 keep;		/* FCGI_KEEP_CONN: no close after */
	int			 extra;		/* bytes came after the request */
	int			 params_done;
	unsigned char		 hdr[8];	/* the record header read so far */
	size_t			 hlen;
	uint8_t			 type;		/* of the record being read */
	size_t			 left;		/* its content bytes still to come */
	size_t			 pad;		/* then its padding */
	struct buf		 params;	/* raw name-value pairs */
	struct buf		 body;		/* FCGI_STDIN */
	size_t			 max_body;
	char			**envp;		/* when READY */
	const char		*error;		/* when FAILED */
};

/* Start reading a new connection; memory comes from a. */
void	fcgiconn_init(struct fcgiconn *, int fd, struct arena *a,
	    size_t max_body);
/*
 * The answer is written and the request had FCGI_KEEP_CONN: read the
 * next request of the connection, with memory from a (reset by the
 * caller).  -1 when it cannot be kept (bytes came after the request:
 * nginx sends the next request only after the answer); close it then.
 */
int	fcgiconn_next(struct fcgiconn *, struct arena *a);
/* No byte of a request has arrived yet: an idle kept connection. */
int	fcgiconn_idle(const struct fcgiconn *);
/*
 * Take n bytes that arrived on the connection.  Returns the state: READY
 * once the request is whole (bytes after it are ignored), FAILED with
 * error set.
 */
enum fcgiconn_state fcgiconn_feed(struct fcgiconn *, struct arena *,
	    const unsigned char *p, size_t n);
/*
 * Read what the socket has (non-blocking) and feed it; FAILED also when
 * the peer closed before the request was whole.
 */
enum fcgiconn_state fcgiconn_read(struct fcgiconn *, struct arena *);
/*
 * Write the answer (the CGI-style headers and body in p) as FCGI_STDOUT
 * records, then FCGI_END_REQUEST, in one writev(2) when the socket takes
 * it; waits (poll) while the socket is full, at most timeout_ms in all.
 * 0, or -1 when the peer went away.
 */
int	fcgiconn_answer(struct fcgiconn *, const char *p, size_t n,
	    int timeout_ms);

#endif
