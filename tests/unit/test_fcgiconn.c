/*
 * Unit tests for lib/fcgiconn: FastCGI requests read in one piece and a
 * byte at a time, long name-value lengths, padding, the body; protocol
 * errors; the answer's records, read back.
 */
#include "check_run.h"
#include <sys/socket.h>

#include <sys/wait.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgiconn.h"

static struct arena	a;
static unsigned char	wire[1 << 17];
static size_t		wlen;
static unsigned char	begin_flags;	/* of the requests request() makes */

static void
setup(void)
{
	arena_init(&a, 4096, 1);
	wlen = 0;
	begin_flags = 0;
}

static void
teardown(void)
{
	arena_free(&a);
}

static void
record(int type, int id, const void *p, size_t n, int pad)
{
	unsigned char	*h = wire + wlen;

	h[0] = 1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(n >> 8);
	h[5] = (unsigned char)n;
	h[6] = (unsigned char)pad;
	h[7] = 0;
	memcpy(h + 8, p, n);
	memset(h + 8 + n, 0xAA, (size_t)pad);
	wlen += 8 + n + (size_t)pad;
}

/* A name-value pair; names or values of 128 bytes or more use 4 bytes. */
static size_t
pair(unsigned char *p, const char *name, const char *value)
{
	size_t	nl = strlen(name), vl = strlen(value), o = 0;
	size_t	l[2] = { nl, vl };
	int	i;

	for (i = 0; i < 2; i++) {
		if (l[i] < 128)
			p[o++] = (unsigned char)l[i];
		else {
			p[o++] = (unsigned char)(0x80 | (l[i] >> 24));
			p[o++] = (unsigned char)(l[i] >> 16);
			p[o++] = (unsigned char)(l[i] >> 8);
			p[o++] = (unsigned char)l[i];
		}
	}
	memcpy(p + o, name, nl);
	memcpy(p + o + nl, value, vl);
	return o + nl + vl;
}

/* A whole request: begin, params (in two records), body, ends. */
static void
request(int id, const char *body, const char *longval)
{
	unsigned char	begin[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	unsigned char	p[4096];
	size_t		n = 0;

	begin[2] = begin_flags;
	record(1, id, begin, 8, 0);
	n += pair(p + n, "REQUEST_METHOD", "POST");
	n += pair(p + n, "LONG", longval);
	record(4, id, p, 10, 3);
	record(4, id, p + 10, n - 10, 0);
	record(4, id, "", 0, 0);
	if (*body != '\0')
		record(5, id, body, strlen(body), 5);
	record(5, id, "", 0, 0);
}

static const char *
env(struct fcgiconn *c, const char *name)
{
	size_t	n = strlen(name);
	int	i;

	for (i = 0; c->envp[i] != NULL; i++)
		if (strncmp(c->envp[i], name, n) == 0 && c->envp[i][n] == '=')
			return c->envp[i] + n + 1;
	return NULL;
}

START_TEST(whole_and_byte_by_byte)
{
	struct fcgiconn	c;
	char		lv[300];
	size_t		i;
	int		pass;

	memset(lv, 'v', sizeof(lv) - 1);
	lv[sizeof(lv) - 1] = '\0';
	request(7, "{\"code\":\"x\"}", lv);
	for (pass = 0; pass < 2; pass++) {
		fcgiconn_init(&c, -1, &a, 1024);
		if (pass == 0)
			ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen),
			    FCGICONN_READY);
		else
			for (i = 0; i < wlen; i++)
				fcgiconn_feed(&c, &a, wire + i, 1);
		ck_assert_int_eq(c.state, FCGICONN_READY);
		ck_assert_int_eq(c.id, 7);
		ck_assert_str_eq(env(&c, "REQUEST_METHOD"), "POST");
		ck_assert_str_eq(env(&c, "LONG"), lv);
		ck_assert_uint_eq(c.body.len, 12);
		ck_assert(memcmp(c.body.p, "{\"code\":\"x\"}", 12) == 0);
		ck_assert_ptr_null(c.envp[2]);
	}
}
END_TEST

START_TEST(kept_connections_read_one_request_after_another)
{
	struct fcgiconn	c;
	size_t		first, second;
	int		i;

	/* Without FCGI_KEEP_CONN the connection closes after the answer. */
	request(1, "", "v");
	fcgiconn_init(&c, -1, &a, 1024);
	ck_assert(fcgiconn_idle(&c));
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen), FCGICONN_READY);
	ck_assert(!c.keep);
	ck_assert_int_eq(fcgiconn_next(&c, &a), -1);

	/* With it: three requests in turn, each after the answer. */
	wlen = 0;
	begin_flags = 1;
	request(1, "first", "v1");
	first = wlen;
	request(2, "", "v2");
	second = wlen;
	request(1, "third", "v3");
	fcgiconn_init(&c, 5, &a, 1024);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, first), FCGICONN_READY);
	ck_assert(c.keep);
	ck_assert_str_eq(env(&c, "LONG"), "v1");
	ck_assert(memcmp(c.body.p, "first", 5) == 0);
	ck_assert_int_eq(fcgiconn_next(&c, &a), 0);
	ck_assert_int_eq(c.fd, 5);
	ck_assert(fcgiconn_idle(&c));
	/* The second arrives a byte at a time: not idle once one came. */
	for (i = 0; i < 9; i++)
		fcgiconn_feed(&c, &a, wire + first + i, 1);
	ck_assert(!fcgiconn_idle(&c));
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire + first + 9,
	    second - first - 9), FCGICONN_READY);
	ck_assert_int_eq(c.id, 2);
	ck_assert_str_eq(env(&c, "LONG"), "v2");
	ck_assert_uint_eq(c.body.len, 0);
	ck_assert_int_eq(fcgiconn_next(&c, &a), 0);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire + second, wlen - second),
	    FCGICONN_READY);
	ck_assert_int_eq(c.id, 1);
	ck_assert_str_eq(env(&c, "LONG"), "v3");
	ck_assert(memcmp(c.body.p, "third", 5) == 0);

	/*
	 * Bytes after a request, before its answer: nginx never sends them,
	 * and they would be lost; the connection is not kept.
	 */
	fcgiconn_init(&c, 5, &a, 1024);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, first + 1),
	    FCGICONN_READY);
	ck_assert_int_eq(fcgiconn_next(&c, &a), -1);
}
END_TEST

/*
 * A body past the limit is read to its end, in any pieces, and kept only
 * to the limit and its slack: the request is whole, to be answered (413).
 */
START_TEST(a_body_past_the_limit_is_read_and_cut)
{
	struct fcgiconn	c;
	char		big[4000];
	size_t		i;
	int		pass;

	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	begin_flags = 1;	/* FCGI_KEEP_CONN: the next one is read */
	request(3, big, "v");
	for (pass = 0; pass < 2; pass++) {
		fcgiconn_init(&c, -1, &a, 100);
		if (pass == 0)
			ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen),
			    FCGICONN_READY);
		else
			for (i = 0; i < wlen; i++)
				ck_assert_int_eq(fcgiconn_feed(&c, &a, wire + i,
				    1), i + 1 < wlen ? FCGICONN_READING :
				    FCGICONN_READY);
		ck_assert_uint_eq(c.body.len, 100 + 1024);
		ck_assert_int_eq(memcmp(c.body.p, big, c.body.len), 0);
		ck_assert_str_eq(env(&c, "REQUEST_METHOD"), "POST");
		ck_assert_int_eq(fcgiconn_next(&c, &a), 0);
	}
	/* Under the limit, the whole body. */
	wlen = 0;
	request(4, "{\"a\":1}", "v");
	fcgiconn_init(&c, -1, &a, 100);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen), FCGICONN_READY);
	ck_assert_uint_eq(c.body.len, 7);
}
END_TEST

/* A request with the pairs p (n bytes) must fail: the error. */
static const char *
bad_params(const char *p, size_t n)
{
	static const unsigned char	begin[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	static struct fcgiconn		c;

	wlen = 0;
	record(1, 1, begin, 8, 0);
	record(4, 1, p, n, 0);
	record(4, 1, "", 0, 0);
	fcgiconn_init(&c, -1, &a, 100);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen), FCGICONN_FAILED);
	return c.error;
}

START_TEST(errors)
{
	struct fcgiconn	c;
	unsigned char	begin[8] = { 0, 2, 0, 0, 0, 0, 0, 0 };	/* authorizer */

	/* Not version 1. */
	request(1, "", "v");
	wire[0] = 2;
	fcgiconn_init(&c, -1, &a, 1024);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen), FCGICONN_FAILED);
	/* Not a responder. */
	wlen = 0;
	record(1, 1, begin, 8, 0);
	fcgiconn_init(&c, -1, &a, 1024);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen), FCGICONN_FAILED);
	/* Parameters of another request id. */
	wlen = 0;
	request(1, "", "v");
	wire[8 + 8 + 3] = 9;	/* the first FCGI_PARAMS record's id */
	fcgiconn_init(&c, -1, &a, 1024);
	ck_assert_int_eq(fcgiconn_feed(&c, &a, wire, wlen), FCGICONN_FAILED);
	/* A name-value length past the record's end. */
	ck_assert_str_eq(bad_params("\x05\x7fNAME", 6), "malformed parameters");
	/* A NUL in a value, a '=' in a name: the string would lie. */
	ck_assert_str_eq(bad_params("\x01\x03" "Ab\0c", 5),
	    "malformed parameters");
	ck_assert_str_eq(bad_params("\x03\x01" "A=Bc", 5),
	    "malformed parameters");
	/* The peer closed half-way. */
	{
		int	sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		ck_assert_int_eq(write(sv[1], wire, 8), 8);
		close(sv[1]);
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		fcgiconn_init(&c, sv[0], &a, 100);
		ck_assert_int_eq(fcgiconn_read(&c, &a), FCGICONN_FAILED);
		close(sv[0]);
	}
}
END_TEST

START_TEST(answer_records)
{
	struct fcgiconn	c;
	unsigned char	in[1 << 18];
	char		*big;
	size_t		n = 0, got = 0, k;
	ssize_t		r;
	int		sv[2], stdout_records = 0, ended = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcgiconn_init(&c, sv[0], &a, 100);
	c.id = 3;
	big = malloc(70000);
	memset(big, 'x', 70000);
	ck_assert_int_eq(fcgiconn_answer(&c, big, 70000, 1000), 0);
	close(sv[0]);
	while ((r = read(sv[1], in + n, sizeof(in) - n)) > 0)
		n += (size_t)r;
	close(sv[1]);
	for (k = 0; k + 8 <= n; ) {
		size_t	len = ((size_t)in[k + 4] << 8) | in[k + 5];

		ck_assert_int_eq(in[k], 1);
		ck_assert_int_eq((in[k + 2] << 8) | in[k + 3], 3);
		if (in[k + 1] == 6) {
			stdout_records++;
			got += len;
		} else if (in[k + 1] == 3) {
			ck_assert_uint_eq(len, 8);
			ck_assert_int_eq(in[k + 8 + 4], 0);	/* complete */
			ended = 1;
		}
		k += 8 + len + in[k + 6];
	}
	ck_assert_uint_eq(k, n);
	ck_assert_uint_eq(got, 70000);
	ck_assert_int_eq(stdout_records, 3);	/* 65535 + 4465 + the empty */
	ck_assert(ended);

	/* Past the records of one writev: 10 full ones, then the rest. */
	big = realloc(big, 10 * 65535 + 7);
	memset(big, 'y', 10 * 65535 + 7);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcgiconn_init(&c, sv[0], &a, 100);
	c.id = 4;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (fork() == 0) {
		close(sv[0]);
		n = 0;
		while ((r = read(sv[1], in, sizeof(in))) > 0)
			n += (size_t)r;
		_exit(n == 10 * 65535 + 7 + 13 * 8 + 8 ? 0 : 1);
	}
	close(sv[1]);
	ck_assert_int_eq(fcgiconn_answer(&c, big, 10 * 65535 + 7, 5000), 0);
	close(sv[0]);
	{
		int	status;

		ck_assert_int_ne(wait(&status), -1);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	free(big);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("fcgiconn");
	TCase	*tc = tcase_create("fcgiconn");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, whole_and_byte_by_byte);
	tcase_add_test(tc, kept_connections_read_one_request_after_another);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, a_body_past_the_limit_is_read_and_cut);
	tcase_add_test(tc, answer_records);
	suite_add_tcase(s, tc);
	return check_run(s);
}
