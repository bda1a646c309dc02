/*
 * check_raftauth.c: the authenticating wrapper of libraft's TCP transport
 * (control/raftauth.c) on a real libuv loop over loopback: the same key
 * connects and the bytes that follow reach the other side untouched (no
 * byte meant for raft is eaten by the handshake); a wrong key is refused
 * on both sides and counted; a peer that never answers times out.
 */
#include <check.h>
#include <string.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "raftauth.h"

static uv_loop_t loop;
static struct raft_auth srv, cli;
static int accepted, connected, conn_status, closed;
static uv_stream_t *srv_stream, *cli_stream;
static char got[64];
static size_t ngot;
static uint16_t port;

static void
on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
    struct uv_stream_s *stream)
{
	(void)t;
	(void)address;
	ck_assert_uint_eq(id, 2);	/* the client's raft id */
	accepted++;
	srv_stream = stream;
}

static void
on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream,
    int status)
{
	(void)req;
	connected++;
	conn_status = status;
	cli_stream = stream;
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	*b = uv_buf_init(got + ngot, (unsigned)(sizeof(got) - ngot));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	(void)s;
	(void)b;
	if (n > 0)
		ngot += (size_t)n;
}

static void
on_closed(struct raft_uv_transport *t)
{
	(void)t;
	closed++;
}

static void
stream_free(uv_handle_t *h)
{
	raft_free(h);
}

static void
run_until(int *flag, int want, int ms)
{
	for (int i = 0; i < ms && *flag < want; i++)
		uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
}

static void
pair(const unsigned char *ks, const unsigned char *kc)
{
	char addr[32];

	accepted = connected = closed = 0;
	conn_status = -1;
	srv_stream = cli_stream = NULL;
	ngot = 0;
	port = (uint16_t)(20000 + getpid() % 20000);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(raft_auth_init(&srv, &loop, ks), 0);
	ck_assert_int_eq(raft_auth_init(&cli, &loop, kc), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	ck_assert_int_eq(srv.t.init(&srv.t, 1, addr), 0);
	ck_assert_int_eq(srv.t.listen(&srv.t, on_accept), 0);
	ck_assert_int_eq(cli.t.init(&cli.t, 2, "127.0.0.1:1"), 0);
}

static void
unpair(void)
{
	if (srv_stream)
		uv_close((uv_handle_t *)srv_stream, stream_free);
	if (cli_stream)
		uv_close((uv_handle_t *)cli_stream, stream_free);
	srv.t.close(&srv.t, on_closed);
	cli.t.close(&cli.t, on_closed);
	run_until(&closed, 2, 2000);
	ck_assert_int_eq(closed, 2);
	raft_auth_fini(&srv);
	raft_auth_fini(&cli);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_same_key)
{
	unsigned char k[32];
	struct raft_uv_connect req;
	char addr[32];
	uv_write_t w;
	uv_buf_t b = uv_buf_init("raft bytes", 10);

	memset(k, 7, sizeof(k));
	pair(k, k);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	ck_assert_int_eq(cli.t.connect(&cli.t, &req, 1, addr, on_connect), 0);
	run_until(&connected, 1, 3000);
	run_until(&accepted, 1, 3000);
	ck_assert_int_eq(connected, 1);
	ck_assert_int_eq(conn_status, 0);
	ck_assert_int_eq(accepted, 1);
	ck_assert_uint_eq(cli.stats.ok, 1);
	ck_assert_uint_eq(srv.stats.ok, 1);
	/* what the client writes next is raft's, byte for byte */
	ck_assert_int_eq(uv_read_start(srv_stream, on_alloc, on_read), 0);
	ck_assert_int_eq(uv_write(&w, cli_stream, &b, 1, NULL), 0);
	for (int i = 0; i < 2000 && ngot < 10; i++)
		uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
	ck_assert_uint_eq(ngot, 10);
	ck_assert_mem_eq(got, "raft bytes", 10);
	uv_read_stop(srv_stream);
	unpair();
}
END_TEST

START_TEST(test_wrong_key)
{
	unsigned char a[32], b[32];
	struct raft_uv_connect req;
	char addr[32];

	memset(a, 7, sizeof(a));
	memset(b, 8, sizeof(b));
	pair(a, b);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	ck_assert_int_eq(cli.t.connect(&cli.t, &req, 1, addr, on_connect), 0);
	run_until(&connected, 1, 5000);
	ck_assert_int_eq(connected, 1);
	ck_assert_int_ne(conn_status, 0);
	ck_assert(cli_stream == NULL);
	/* the server refused it and never handed it to raft */
	for (int i = 0; i < 200 && srv.stats.refused == 0; i++)
		uv_run(&loop, UV_RUN_NOWAIT), usleep(1000);
	ck_assert_uint_eq(srv.stats.refused, 1);
	ck_assert_int_eq(accepted, 0);
	unpair();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("raftauth");
	TCase *tc = tcase_create("loopback");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_same_key);
	tcase_add_test(tc, test_wrong_key);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf != 0;
}
