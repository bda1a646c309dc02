/*
 * check_msg.c: local framed records over a unix socket pair: round trips,
 * records split across reads, fd passing, and malformed input.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "msg.h"

static struct msgbuf mb;

/* Reads from fd until one record is there. */
static int
get_one(int fd, struct msg *m)
{
	for (int i = 0; i < 1000; i++) {
		int r = msg_get(&mb, m);

		if (r != 0)
			return r;
		if (msgbuf_read(&mb, fd) == 0)
			return -EPIPE;
	}
	return -ETIMEDOUT;
}

START_TEST(test_round_trip_and_hello)
{
	int sv[2];
	struct msg m;
	struct imsg_hello h;
	const char *why;
	uint8_t big[MSG_MAX_PAYLOAD];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	msgbuf_init(&mb);
	ck_assert_int_eq(msg_send_hello(sv[0], IMSG_ROLE_WORKER, 5, "w0"), 0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_int_eq(msg_check_hello(&m, &h, &why), 0);
	ck_assert_uint_eq(h.node_id, 5);
	ck_assert_str_eq(h.name, "w0");
	/* several records in one read, the largest allowed among them */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(msg_send(sv[0], IMSG_OK, NULL, 0, NULL, 0, 100), 0);
	ck_assert_int_eq(msg_send(sv[0], IMSG_DP_LINKS, big, sizeof(big),
	    NULL, 0, 1000), 0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_uint_eq(m.type, IMSG_OK);
	ck_assert_uint_eq(m.len, 0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_uint_eq(m.type, IMSG_DP_LINKS);
	ck_assert_uint_eq(m.len, sizeof(big));
	ck_assert(memcmp(m.data, big, sizeof(big)) == 0);
	ck_assert_int_eq(msg_send(sv[0], 1, big, sizeof(big) + 1, NULL, 0,
	    100), -EINVAL);
	msgbuf_fini(&mb);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_fd_passing)
{
	int sv[2], p[2], fds[3];
	struct msg m;
	char c = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(pipe(p), 0);
	msgbuf_init(&mb);
	fds[0] = p[1];
	fds[1] = p[0];
	fds[2] = p[1];
	ck_assert_int_eq(msg_send(sv[0], IMSG_DP_ARENA, "x", 1, fds, 3, 100),
	    0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_int_eq(m.nfds, 3);
	/* the received write end works */
	ck_assert_int_eq(write(m.fds[0], "z", 1), 1);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(c, 'z');
	for (int i = 0; i < 3; i++)
		close(m.fds[i]);
	close(p[0]);
	close(p[1]);
	msgbuf_fini(&mb);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_malformed)
{
	int sv[2];
	struct msg m;
	struct msg_hdr h = { .type = 1, .flags = 0, .len = MSG_MAX_PAYLOAD + 1 };
	struct imsg_hello hello;
	const char *why;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	msgbuf_init(&mb);
	/* a record longer than allowed */
	ck_assert_int_eq(write(sv[0], &h, sizeof(h)), (int)sizeof(h));
	ck_assert_int_eq(get_one(sv[1], &m), -EBADMSG);
	msgbuf_init(&mb);
	/* a record announcing an fd that did not come */
	h.len = 0;
	h.flags = 1;
	ck_assert_int_eq(write(sv[0], &h, sizeof(h)), (int)sizeof(h));
	ck_assert_int_eq(get_one(sv[1], &m), -EBADMSG);
	msgbuf_init(&mb);
	/* hellos: wrong type, wrong size, wrong version, no NUL */
	ck_assert_int_eq(msg_send(sv[0], IMSG_OK, NULL, 0, NULL, 0, 100), 0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_int_eq(msg_check_hello(&m, &hello, &why), -EPROTO);
	memset(&hello, 'a', sizeof(hello));
	hello.version = MSG_VERSION;
	ck_assert_int_eq(msg_send(sv[0], IMSG_HELLO, &hello, sizeof(hello),
	    NULL, 0, 100), 0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_int_eq(msg_check_hello(&m, &hello, &why), -EPROTO);
	ck_assert_str_eq(why, "hello name not terminated");
	hello.name[0] = 0;
	hello.version = MSG_VERSION + 1;
	ck_assert_int_eq(msg_send(sv[0], IMSG_HELLO, &hello, sizeof(hello) - 1,
	    NULL, 0, 100), 0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_int_eq(msg_check_hello(&m, &hello, &why), -EPROTO);
	ck_assert_int_eq(msg_send(sv[0], IMSG_HELLO, &hello, sizeof(hello),
	    NULL, 0, 100), 0);
	ck_assert_int_eq(get_one(sv[1], &m), 1);
	ck_assert_int_eq(msg_check_hello(&m, &hello, &why), -EPROTO);
	ck_assert_str_eq(why, "protocol version mismatch");
	/* EOF */
	close(sv[0]);
	ck_assert_int_eq(get_one(sv[1], &m), -EPIPE);
	msgbuf_fini(&mb);
	close(sv[1]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("msg");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_round_trip_and_hello);
	tcase_add_test(tc, test_fd_passing);
	tcase_add_test(tc, test_malformed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
