/*
 * check_reduce.c: the vector reduction kernels against their scalar
 * references, bitwise, at every length and misalignment.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

static float
frand(unsigned *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)((int)(*s >> 9) - (1 << 22)) / 3517.0f;
}

START_TEST(test_sum_matches_reference)
{
	unsigned seed = 1;
	float *a = malloc(5000 * 4 + 64), *b = malloc(5000 * 4 + 64);
	float *r = malloc(5000 * 4 + 64);

	for (size_t n = 0; n < 300; n++)
		for (size_t off = 0; off < 3; off++) {
			for (size_t i = 0; i < n; i++) {
				a[off + i] = frand(&seed);
				b[i] = frand(&seed);
			}
			memcpy(r, a + off, n * 4);
			reduce_sum_f32(a + off, b, n);
			reduce_sum_f32_ref(r, b, n);
			ck_assert_msg(memcmp(a + off, r, n * 4) == 0,
			    "n=%zu off=%zu", n, off);
		}
	/* and a long one */
	for (size_t i = 0; i < 5000; i++) {
		a[i] = frand(&seed);
		b[i] = frand(&seed);
		/* independent: the sum in double, rounded once */
		r[i] = (float)((double)a[i] + (double)b[i]);
	}
	reduce_sum_f32(a, b, 5000);
	ck_assert(memcmp(a, r, 5000 * 4) == 0);
	free(a);
	free(b);
	free(r);
}
END_TEST

START_TEST(test_div_matches_reference)
{
	unsigned seed = 2;
	float *a = malloc(1000 * 4), *r = malloc(1000 * 4);

	for (size_t n = 0; n < 1000; n += 37) {
		for (size_t i = 0; i < n; i++)
			a[i] = frand(&seed);
		memcpy(r, a, n * 4);
		reduce_div_f32(a, n, 3.0f);
		reduce_div_f32_ref(r, n, 3.0f);
		ck_assert(memcmp(a, r, n * 4) == 0);
		for (size_t i = 0; i < n; i++)
			ck_assert(a[i] == (float)((double)r[i]));
	}
	free(a);
	free(r);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("reduce");
	TCase *tc = tcase_create("reduce");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_sum_matches_reference);
	tcase_add_test(tc, test_div_matches_reference);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
