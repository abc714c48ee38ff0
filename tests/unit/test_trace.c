/*
 * Unit tests for lib/trace: traceparent and tracestate as the W3C Trace
 * Context spec reads them (its examples and its invalid cases), new
 * traces and spans.
 */
#include "check_run.h"

#include <sys/wait.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trace.h"

#define TP	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

START_TEST(a_valid_traceparent_continues_its_trace)
{
	struct trace	t, c;
	char		h[TRACE_HEADER_LEN + 1];

	ck_assert_int_eq(trace_start(&t, TP), 0);
	ck_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(t.parent_id, "00f067aa0ba902b7");
	ck_assert_uint_eq(strlen(t.span_id), 16);
	ck_assert_str_ne(t.span_id, t.parent_id);
	ck_assert_uint_eq(t.flags, 1);
	trace_header(&t, h);
	ck_assert_uint_eq(strlen(h), TRACE_HEADER_LEN);
	ck_assert_int_eq(strncmp(h, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36),
	    0);
	ck_assert_str_eq(h + 52, "-01");
	ck_assert_int_eq(trace_child(&t, &c), 0);
	ck_assert_str_eq(c.trace_id, t.trace_id);
	ck_assert_str_eq(c.parent_id, t.span_id);
	ck_assert_str_ne(c.span_id, t.span_id);
}
END_TEST

START_TEST(what_the_spec_refuses_starts_a_new_trace)
{
	static const char *const bad[] = {
		NULL, "", "00-xyz",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	struct trace	t;
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(trace_parse(bad[i], &t) == -1, "accepted %s",
		    bad[i] ? bad[i] : "NULL");
		ck_assert_int_eq(trace_start(&t, bad[i]), 0);
		ck_assert_uint_eq(strlen(t.trace_id), 32);
		ck_assert_str_ne(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
		ck_assert_str_eq(t.parent_id, "");
		ck_assert_uint_eq(t.flags, 0);
	}
}
END_TEST

START_TEST(a_later_version_is_read_as_00)
{
	struct trace	t;

	ck_assert_int_eq(trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "00f067aa0ba902b7-09-what-comes-later", &t), 0);
	ck_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	/* Only "sampled" is defined: other flags are not passed on. */
	ck_assert_uint_eq(t.flags, 1);
}
END_TEST

START_TEST(new_traces_differ)
{
	struct trace	a, b;

	ck_assert_int_eq(trace_start(&a, NULL), 0);
	ck_assert_int_eq(trace_start(&b, NULL), 0);
	ck_assert_str_ne(a.trace_id, b.trace_id);
	ck_assert_str_ne(a.span_id, b.span_id);
}
END_TEST

START_TEST(a_forked_process_draws_ids_of_its_own)
{
	struct trace	a, b;
	int		p[2];
	pid_t		pid;

	ck_assert_int_eq(trace_start(&a, NULL), 0);	/* seeded here */
	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		_exit(trace_start(&b, NULL) == 0 &&
		    write(p[1], b.trace_id, 33) == 33 ? 0 : 1);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(trace_start(&a, NULL), 0);
	ck_assert_int_eq(read(p[0], b.trace_id, 33), 33);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	/* Without a new seed, parent and child would draw the same. */
	ck_assert_str_ne(a.trace_id, b.trace_id);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(sampling_keeps_the_parents_decision_and_splits_new_traces)
{
	struct trace	t;
	int		i, sampled = 0;

	/* A caller's decision stands, whatever the ratio. */
	ck_assert_int_eq(trace_start(&t, TP), 0);
	trace_sample(&t, 0);
	ck_assert_uint_eq(t.flags, 1);
	ck_assert_int_eq(trace_start(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "00f067aa0ba902b7-00"), 0);
	trace_sample(&t, 1);
	ck_assert_uint_eq(t.flags, 0);
	/* A new trace: by its id, the same way every time. */
	memcpy(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", 33);
	t.parent_id[0] = '\0';
	/* Its last 56 bits, 0xce929d0e0e4736, are 0.807 of 2^56. */
	trace_sample(&t, 0.81);
	ck_assert_uint_eq(t.flags, 1);
	trace_sample(&t, 0.80);
	ck_assert_uint_eq(t.flags, 0);
	trace_sample(&t, 1);
	ck_assert_uint_eq(t.flags, 1);
	trace_sample(&t, 0);
	ck_assert_uint_eq(t.flags, 0);
	/* Unless the caller is not trusted to decide. */
	ck_assert_int_eq(trace_start(&t, TP), 0);
	trace_sample_any(&t, 0);
	ck_assert_uint_eq(t.flags, 0);
	ck_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	trace_sample_any(&t, 0.81);
	ck_assert_uint_eq(t.flags, 1);
	for (i = 0; i < 10000; i++) {
		ck_assert_int_eq(trace_start(&t, NULL), 0);
		trace_sample(&t, 0.1);
		sampled += (int)t.flags;
	}
	/* 1000 expected; 6 standard deviations (30) either side. */
	ck_assert_int_gt(sampled, 820);
	ck_assert_int_lt(sampled, 1180);
}
END_TEST

START_TEST(a_tracestate_is_checked_as_the_spec_says)
{
	static const char *const good[] = {
		"congo=t61rcWkgMzE",
		"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		" rojo=00f067aa0ba902b7 ,\tcongo=t61rcWkgMzE\t",
		"rojo=1,,congo=2, ,",		/* empty members are allowed */
		"fw529a3039@dt=Zm9v,a1b2@x=y",	/* multi-tenant keys */
		"1tenant@vendor=v",	/* a tenant may start with a digit */
		"k_-*/9=a value with spaces!\"#$%&'()",
		"k=~",
	};
	static const char *const bad[] = {
		"", " ", ",", " , ,",		/* nothing to pass on */
		"Rojo=1",			/* upper case */
		"1rojo=1",		/* a simple key starts with a letter */
		"rojo",				/* no value */
		"rojo=",			/* an empty value */
		"rojo=a=b",			/* '=' in the value */
		"rojo=1,rojo=2",		/* a key twice */
		"ro jo=1",
		"rojo=\x01",
		"rojo=caf\xc3\xa9",		/* not ASCII */
		"t@Vendor=1",
		"t@1vendor=1",
		"t@vendor123456789=1",	/* system-id over 14 */
		"@vendor=1",
	};
	char	 big[TRACE_STATE_MAX + 64], *p;
	size_t	 i;
	int	 n;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(trace_state_valid(good[i]), "refused %s",
		    good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!trace_state_valid(bad[i]), "accepted %s",
		    bad[i]);
	ck_assert(!trace_state_valid(NULL));

	/* 32 members pass, 33 do not. */
	for (p = big, n = 0; n < TRACE_STATE_MEMBERS; n++)
		p += sprintf(p, "%sk%d=v", n > 0 ? "," : "", n);
	ck_assert(trace_state_valid(big));
	strcpy(p, ",k99=v");
	ck_assert(!trace_state_valid(big));
	/* 512 characters pass, 513 do not. */
	memset(big, 'v', sizeof(big));
	memcpy(big, "k=", 2);
	big[256] = '\0';		/* a value of 254: fine */
	ck_assert(trace_state_valid(big));
	memcpy(big + 256, ",j=", 3);
	big[TRACE_STATE_MAX] = '\0';	/* a second of 253: 512 in all */
	ck_assert(trace_state_valid(big));
	big[TRACE_STATE_MAX] = 'v';
	big[TRACE_STATE_MAX + 1] = '\0';
	ck_assert(!trace_state_valid(big));
	/* A value of 257 characters. */
	memset(big, 'v', sizeof(big));
	memcpy(big, "k=", 2);
	big[2 + 257] = '\0';
	ck_assert(!trace_state_valid(big));
}
END_TEST

START_TEST(a_tracestate_goes_only_with_its_traceparent)
{
	struct trace	t, c;

	/* Kept when the traceparent was taken, and on in the children. */
	ck_assert_int_eq(trace_start(&t, TP), 0);
	trace_set_state(&t, "rojo=00f067aa0ba902b7");
	ck_assert_str_eq(t.state, "rojo=00f067aa0ba902b7");
	ck_assert_int_eq(trace_child(&t, &c), 0);
	ck_assert_str_eq(c.state, "rojo=00f067aa0ba902b7");
	/* Invalid: dropped, the trace goes on. */
	trace_set_state(&t, "rojo=1,rojo=2");
	ck_assert_ptr_null(t.state);
	ck_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	/* A traceparent refused, or none: a new trace, and no tracestate. */
	ck_assert_int_eq(trace_start(&t, "00-xyz"), 0);
	trace_set_state(&t, "rojo=1");
	ck_assert_ptr_null(t.state);
	ck_assert_int_eq(trace_start(&t, NULL), 0);
	trace_set_state(&t, "rojo=1");
	ck_assert_ptr_null(t.state);
	/* trace_start forgets what t had. */
	ck_assert_int_eq(trace_start(&t, TP), 0);
	trace_set_state(&t, "rojo=1");
	ck_assert_int_eq(trace_start(&t, TP), 0);
	ck_assert_ptr_null(t.state);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("trace");
	TCase	*tc = tcase_create("trace");

	tcase_add_test(tc, a_valid_traceparent_continues_its_trace);
	tcase_add_test(tc, what_the_spec_refuses_starts_a_new_trace);
	tcase_add_test(tc, a_later_version_is_read_as_00);
	tcase_add_test(tc, new_traces_differ);
	tcase_add_test(tc, a_forked_process_draws_ids_of_its_own);
	tcase_add_test(tc,
	    sampling_keeps_the_parents_decision_and_splits_new_traces);
	tcase_add_test(tc, a_tracestate_is_checked_as_the_spec_says);
	tcase_add_test(tc, a_tracestate_goes_only_with_its_traceparent);
	suite_add_tcase(s, tc);
	return check_run(s);
}
