/*
 * check_ring.c: the SPSC rings of the arena, in one process and between
 * two processes over a shared mapping, and against corrupt indexes.
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dataplane.h"

#define SLOTS	8

START_TEST(test_single_process)
{
	void *mem = aligned_alloc(64, DP_RING_BYTES(SLOTS, 64));
	struct ring p, c;
	struct dp_req in, out;

	ring_format(mem, SLOTS, sizeof(in));
	ck_assert_int_eq(ring_attach(&p, mem, SLOTS, sizeof(in), 1), 0);
	ck_assert_int_eq(ring_attach(&c, mem, SLOTS, sizeof(in), 0), 0);
	ck_assert_int_eq(ring_attach(&c, mem, 6, sizeof(in), 0), -EINVAL);
	ck_assert_int_eq(ring_dequeue(&c, &out), 0);
	/* fill, overflow, drain in order, several times round */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < SLOTS; i++) {
			memset(&in, 0, sizeof(in));
			in.id = (uint64_t)(round * 100 + i);
			ck_assert_int_eq(ring_enqueue(&p, &in), 0);
		}
		ck_assert_int_eq(ring_enqueue(&p, &in), -ENOBUFS);
		ck_assert_int_eq(ring_count(&c), SLOTS);
		for (int i = 0; i < SLOTS; i++) {
			ck_assert_int_eq(ring_dequeue(&c, &out), 1);
			ck_assert_uint_eq(out.id, (uint64_t)(round * 100 + i));
		}
		ck_assert_int_eq(ring_dequeue(&c, &out), 0);
	}
	free(mem);
}
END_TEST

START_TEST(test_wraparound_indexes)
{
	void *mem = aligned_alloc(64, DP_RING_BYTES(SLOTS, 64));
	struct dp_ring_hdr *h = mem;
	struct ring p, c;
	struct dp_req in = { .id = 7 }, out;

	ring_format(mem, SLOTS, sizeof(in));
	h->prod = h->cons = UINT32_MAX - 2;	/* about to wrap */
	ring_attach(&p, mem, SLOTS, sizeof(in), 1);
	ring_attach(&c, mem, SLOTS, sizeof(in), 0);
	for (uint64_t i = 0; i < 20; i++) {
		in.id = i;
		ck_assert_int_eq(ring_enqueue(&p, &in), 0);
		ck_assert_int_eq(ring_dequeue(&c, &out), 1);
		ck_assert_uint_eq(out.id, i);
	}
	free(mem);
}
END_TEST

/* A hostile producer: indexes that claim more than the ring holds. */
START_TEST(test_corrupt_indexes)
{
	void *mem = aligned_alloc(64, DP_RING_BYTES(SLOTS, 64));
	struct dp_ring_hdr *h = mem;
	struct ring p, c;
	struct dp_req e = { 0 };

	ring_format(mem, SLOTS, sizeof(e));
	ring_attach(&p, mem, SLOTS, sizeof(e), 1);
	ring_attach(&c, mem, SLOTS, sizeof(e), 0);
	h->prod = SLOTS + 1;
	ck_assert_int_eq(ring_dequeue(&c, &e), -EBADMSG);
	ck_assert_int_eq(ring_count(&c), -EBADMSG);
	h->prod = 0;
	h->cons = 5;		/* consumer ahead of producer */
	ck_assert_int_eq(ring_enqueue(&p, &e), -EBADMSG);
	free(mem);
}
END_TEST

/* Producer and consumer in two processes over MAP_SHARED memory. */
START_TEST(test_two_processes)
{
	/* ARCEUS_SMALL (make valgrind): fewer, it is slow there */
	const uint64_t n = getenv("ARCEUS_SMALL") ? 5000 : 200000;
	size_t bytes = DP_RING_BYTES(SLOTS, 64);
	void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct ring r;
	struct dp_req e;
	uint64_t next = 0, sum = 0;
	pid_t pid;
	int st;

	ck_assert_ptr_ne(mem, MAP_FAILED);
	ring_format(mem, SLOTS, sizeof(e));
	if ((pid = fork()) == 0) {
		struct ring p;

		ring_attach(&p, mem, SLOTS, sizeof(e), 1);
		for (uint64_t i = 0; i < n; i++) {
			memset(&e, 0, sizeof(e));
			e.id = i;
			e.off = i * 3;
			while (ring_enqueue(&p, &e) == -ENOBUFS)
				sched_yield();
		}
		_exit(0);
	}
	ring_attach(&r, mem, SLOTS, sizeof(e), 0);
	while (next < n) {
		int k = ring_dequeue(&r, &e);

		ck_assert_int_ge(k, 0);
		if (k == 0) {
			sched_yield();
			continue;
		}
		ck_assert_uint_eq(e.id, next);
		ck_assert_uint_eq(e.off, next * 3);
		sum += e.id;
		next++;
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_uint_eq(sum, n * (n - 1) / 2);
	munmap(mem, bytes);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("ring");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_single_process);
	tcase_add_test(tc, test_wraparound_indexes);
	tcase_add_test(tc, test_corrupt_indexes);
	tcase_add_test(tc, test_two_processes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
