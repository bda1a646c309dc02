/*
 * check_arena.c: the arena and the worker side end to end: regions and
 * slots, the seals that keep a worker from truncating it, and a real
 * libarceus-dp client attached to a dataplane engine (forked, loop
 * backend): post, complete, refused requests, and the dataplane dying
 * under a pending operation, then re-attaching.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "dataplane.h"

START_TEST(test_regions)
{
	struct arena a;
	uint64_t off[DP_MAX_WORKERS + 1], len;
	int s[DP_MAX_WORKERS + 1];

	ck_assert_int_eq(arena_init(&a, 64u << 20, 1), 0);
	/* a worker may not shrink or grow what the dataplane maps */
	ck_assert_int_ne(ftruncate(a.fd, 4096), 0);
	s[0] = arena_attach(&a, 10u << 20, &off[0], &len);
	ck_assert_int_ge(s[0], 0);
	ck_assert_uint_ge(len, 10u << 20);
	ck_assert_uint_ge(off[0], DP_HEAP_OFF);
	s[1] = arena_attach(&a, 20u << 20, &off[1], &len);
	ck_assert_int_ge(s[1], 0);
	ck_assert_int_ne(s[0], s[1]);
	ck_assert_uint_ge(off[1], off[0] + (10u << 20));
	ck_assert_int_eq(arena_attach(&a, 1ull << 40, &off[2], &len),
	    -ENOMEM);
	/* freed regions merge and are reused */
	arena_detach(&a, s[0], off[0]);
	arena_detach(&a, s[1], off[1]);
	ck_assert_int_eq(a.nregions, 1);
	s[2] = arena_attach(&a, 30u << 20, &off[2], &len);
	ck_assert_int_ge(s[2], 0);
	ck_assert_uint_eq(off[2], off[0]);
	arena_detach(&a, s[2], off[2]);
	/* slots run out before memory does */
	for (int i = 0; i < DP_MAX_WORKERS; i++)
		ck_assert_int_ge(arena_attach(&a, 4096, &off[i], &len), 0);
	ck_assert_int_eq(arena_attach(&a, 4096, &off[0], &len), -ENOSPC);
	arena_fini(&a);
}
END_TEST

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* A dataplane of node 1 (peer 2 never comes) serving sock; never returns. */
static void
run_dataplane(const char *sock)
{
	struct dp_conf c = { .node_id = 1, .epoch = 1, .chunk_bytes = 65536,
	    .peer_timeout_ms = 60000, .op_timeout_ms = 60000 };
	uint32_t g1[1] = { 1 };
	struct epoll_event evs[16];
	struct arena a;
	struct local *l;
	struct dp *dp;
	int epfd;

	signal(SIGTERM, on_term);
	log_init("check_arena", LOG_LEVEL_ERR);
	strcpy(c.transport, "loop");
	loop_reset();
	if ((dp = dp_new(&c)) == NULL || peer_add(dp, 2, "x", 1) < 0 ||
	    dp_start(dp) < 0 || group_set(dp, 1, g1, 1) < 0 ||
	    arena_init(&a, 64u << 20, dp->boot_id) < 0 ||
	    (epfd = epoll_create1(0)) < 0 ||
	    (l = local_new(dp, &a, sock, epfd)) == NULL)
		_exit(3);
	dp->probe_done = local_probe_done;
	while (!stop) {
		int n = epoll_wait(epfd, evs, 16, 5);

		for (int i = 0; i < n; i++)
			local_event(l, evs[i].data.ptr, evs[i].events);
		dp_progress(dp);
		local_service(l);
	}
	dp_free(dp);
	local_free(l);
	arena_fini(&a);
	_exit(0);
}

static pid_t
start_dataplane(const char *sock)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		run_dataplane(sock);
	return pid;
}

static struct arc_dp *
attach_retry(const char *sock, char *err, size_t len)
{
	struct arc_dp *dp = NULL;

	for (int i = 0; i < 200 && dp == NULL; i++) {
		dp = arc_dp_attach(sock, 8u << 20, err, len);
		if (dp == NULL)
			usleep(10000);
	}
	return dp;
}

START_TEST(test_worker_end_to_end)
{
	char sock[64], err[256];
	struct arc_dp_cpl c;
	struct arc_dp *dp;
	float *x, *y, outside[4];
	int64_t id, pend;
	pid_t pid;
	int st;

	snprintf(sock, sizeof(sock), "/tmp/check_arena.%d.sock", getpid());
	pid = start_dataplane(sock);
	dp = attach_retry(sock, err, sizeof(err));
	ck_assert_msg(dp != NULL, "attach: %s", err);
	ck_assert_uint_eq(arc_dp_node_id(dp), 1);
	x = arc_dp_alloc(dp, 1000 * 4);
	y = arc_dp_alloc(dp, 64);
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	ck_assert((uintptr_t)x % DP_ALIGN == 0);
	ck_assert((uint8_t *)y >= (uint8_t *)x + 4000);
	ck_assert_ptr_null(arc_dp_alloc(dp, 1u << 30));
	for (int i = 0; i < 1000; i++)
		x[i] = (float)i;
	/* a group of one: the average is the value over the divisor */
	{
		struct arc_dp_op op = { .opcode = ARC_DP_ALLREDUCE, .group = 1,
		    .buf = x, .count = 1000, .divisor = 4 };

		id = arc_dp_post(dp, &op);
		ck_assert_int_ge(id, 0);
		ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)id, 5000, &c), 0);
		ck_assert_int_eq(c.status, 0);
		for (int i = 0; i < 1000; i++)
			ck_assert(x[i] == (float)i / 4);
		/*
		 * an operation of another epoch (an old plan's) fails with
		 * -ESTALE and leaves the buffer alone; of this one, it runs
		 */
		x[0] = 12;
		arc_dp_set_epoch(dp, 2);
		id = arc_dp_post(dp, &op);
		ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)id, 5000, &c), 0);
		ck_assert_int_eq(c.status, -ESTALE);
		ck_assert(x[0] == 12);
		arc_dp_set_epoch(dp, 1);
		id = arc_dp_post(dp, &op);
		ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)id, 5000, &c), 0);
		ck_assert_int_eq(c.status, 0);
		ck_assert(x[0] == 3);
		x[0] = 0;
		arc_dp_set_epoch(dp, 0);
		/* refused: outside the region (library), unknown group and
		 * unknown peer (dataplane) */
		op.buf = outside;
		ck_assert_int_eq(arc_dp_post(dp, &op), -EFAULT);
		op.buf = x;
		op.group = 77;
		id = arc_dp_post(dp, &op);
		ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)id, 5000, &c), 0);
		ck_assert_int_eq(c.status, -ENOENT);
		op.opcode = ARC_DP_SEND;
		op.peer = 9;
		id = arc_dp_post(dp, &op);
		ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)id, 5000, &c), 0);
		ck_assert_int_eq(c.status, -EHOSTUNREACH);
		/* a receive from a peer that never comes stays pending */
		op.opcode = ARC_DP_RECV;
		op.peer = 2;
		pend = arc_dp_post(dp, &op);
		ck_assert_int_ge(pend, 0);
		ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)pend, 100, &c),
		    -ETIMEDOUT);
	}
	/* the dataplane dies: the pending operation fails, clearly */
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)pend, 5000, &c), 0);
	ck_assert_int_eq(c.status, -ENOTCONN);
	ck_assert_str_eq(arc_dp_strerror(&c, err, sizeof(err)),
	    "dataplane unreachable (Transport endpoint is not connected)");
	ck_assert(!arc_dp_alive(dp));
	ck_assert_int_eq(arc_dp_post(dp, &(struct arc_dp_op){
	    .opcode = ARC_DP_ALLREDUCE, .group = 1, .buf = x, .count = 1 }),
	    -ENOTCONN);
	arc_dp_detach(dp);
	/* it is back: attach again and work */
	pid = start_dataplane(sock);
	dp = attach_retry(sock, err, sizeof(err));
	ck_assert_msg(dp != NULL, "re-attach: %s", err);
	x = arc_dp_alloc(dp, 16);
	x[0] = 8;
	id = arc_dp_post(dp, &(struct arc_dp_op){ .opcode = ARC_DP_ALLREDUCE,
	    .group = 1, .buf = x, .count = 1, .divisor = 2 });
	ck_assert_int_eq(arc_dp_wait(dp, (uint64_t)id, 5000, &c), 0);
	ck_assert_int_eq(c.status, 0);
	ck_assert(x[0] == 4);
	arc_dp_detach(dp);
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink(sock);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("arena");
	SRunner *sr;
	int nf;

	log_init("check_arena", LOG_LEVEL_ERR);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_regions);
	tcase_add_test(tc, test_worker_end_to_end);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
