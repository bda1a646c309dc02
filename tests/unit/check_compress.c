/*
 * check_compress.c: the wire codecs and error feedback of compress.c:
 * bf16 against an independent nearest-even rounding, int8 and top-k error
 * bounds, sparse round trips and hostile input, and error feedback
 * converging (the sum over steps of what was sent approaches the sum of
 * the true values) for every scheme.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane.h"

static float
frand(unsigned *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)((int)(*s >> 9) - (1 << 22)) / 99991.0f;
}

/* Nearest bf16 by brute force: of the two neighbours, the closer; ties
 * to the even one. */
static uint16_t
bf16_ref(float f)
{
	uint32_t u;
	uint16_t lo, hi;
	float flo, fhi;
	double dlo, dhi;

	memcpy(&u, &f, 4);
	lo = (uint16_t)(u >> 16);
	hi = (uint16_t)(lo + 1);
	flo = comp_bf16_to_f32(lo);
	fhi = comp_bf16_to_f32(hi);
	dlo = fabs((double)f - flo);
	dhi = fabs((double)fhi - f);
	if (dlo < dhi)
		return lo;
	if (dhi < dlo)
		return hi;
	return (lo & 1) ? hi : lo;
}

START_TEST(test_bf16)
{
	unsigned seed = 3;
	float nanf_ = NAN;

	for (int i = 0; i < 200000; i++) {
		float f = frand(&seed) * (i % 7 == 0 ? 1e-30f : 1.0f);
		uint16_t b = comp_f32_to_bf16(f);

		ck_assert_uint_eq(b, bf16_ref(f));
		if (fabsf(f) > 1e-30f)
			ck_assert(fabs(comp_bf16_to_f32(b) - f) <=
			    fabs(f) / 256.0);
	}
	/* exact values survive; ties go to even */
	ck_assert(comp_bf16_to_f32(comp_f32_to_bf16(-3.0f)) == -3.0f);
	ck_assert_uint_eq(comp_f32_to_bf16(1.00390625f), 0x3f80);
	ck_assert_uint_eq(comp_f32_to_bf16(1.01171875f), 0x3f82);
	ck_assert(isnan(comp_bf16_to_f32(comp_f32_to_bf16(nanf_))));
	ck_assert(isinf(comp_bf16_to_f32(comp_f32_to_bf16(INFINITY))));
}
END_TEST

START_TEST(test_codec_round_trips)
{
	enum { N = 1000 };
	unsigned seed = 5;
	float x[N], y[N], z[N];
	uint8_t buf[8 * N + 8];

	for (int i = 0; i < N; i++)
		x[i] = frand(&seed);
	for (int c = WIRE_CODEC_F32; c < WIRE_NCODECS; c++) {
		size_t len = comp_encode(c, x, N, buf);

		ck_assert_uint_le(len, wire_codec_max(c, N));
		ck_assert_int_eq(comp_decode(c, buf, len, N, y, 0), 0);
		for (int b = 0; b < N; b += COMP_INT8_BLOCK) {
			int m = N - b < COMP_INT8_BLOCK ? N - b :
			    COMP_INT8_BLOCK;
			float amax = 0;

			for (int i = b; i < b + m; i++)
				amax = fmaxf(amax, fabsf(x[i]));
			for (int i = b; i < b + m; i++) {
				double e = fabs((double)y[i] - x[i]);

				if (c == WIRE_CODEC_F32 || c == WIRE_CODEC_SPARSE)
					ck_assert(e == 0);
				else if (c == WIRE_CODEC_BF16)
					ck_assert(e <= fabs(x[i]) / 256);
				else	/* half a step, plus rounding */
					ck_assert_msg(e <= amax / 254 * 1.0001,
					    "int8 [%d] %g", i, e);
			}
		}
		/* decode-and-add adds exactly the decoded values */
		for (int i = 0; i < N; i++)
			z[i] = 1.0f;
		ck_assert_int_eq(comp_decode(c, buf, len, N, z, 1), 0);
		for (int i = 0; i < N; i++)
			ck_assert(z[i] == 1.0f + y[i]);
	}
	/* the int8 size: a scale per 256 values, then the values */
	ck_assert_uint_eq(comp_encode(WIRE_CODEC_INT8, x, 257, buf),
	    4 + 256 + 4 + 1);
}
END_TEST

START_TEST(test_decode_hostile)
{
	uint8_t buf[96] = { 0 };
	float y[8];
	uint32_t v;
	float nan_ = NAN;

	/* lengths that do not fit */
	ck_assert_int_eq(comp_decode(WIRE_CODEC_F32, buf, 31, 8, y, 0),
	    -EBADMSG);
	ck_assert_int_eq(comp_decode(WIRE_CODEC_BF16, buf, 15, 8, y, 0),
	    -EBADMSG);
	ck_assert_int_eq(comp_decode(WIRE_NCODECS, buf, 32, 8, y, 0),
	    -EBADMSG);
	/* int8 with a NaN or negative scale */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, &nan_, 4);
	ck_assert_int_eq(comp_decode(WIRE_CODEC_INT8, buf, 12, 8, y, 0),
	    -EBADMSG);
	/* sparse: nnz too big, index out of range, not increasing */
	v = 9;
	memcpy(buf, &v, 4);
	ck_assert_int_eq(comp_decode(WIRE_CODEC_SPARSE, buf, 4 + 72, 8, y, 0),
	    -EBADMSG);
	v = 2;
	memcpy(buf, &v, 4);
	v = 1;
	memcpy(buf + 4, &v, 4);
	v = 8;
	memcpy(buf + 8, &v, 4);
	for (int i = 0; i < 8; i++)
		y[i] = 5;
	ck_assert_int_eq(comp_decode(WIRE_CODEC_SPARSE, buf, 20, 8, y, 0),
	    -EBADMSG);
	for (int i = 0; i < 8; i++)
		ck_assert(y[i] == 5);	/* untouched when refused */
	v = 1;
	memcpy(buf + 8, &v, 4);
	ck_assert_int_eq(comp_decode(WIRE_CODEC_SPARSE, buf, 20, 8, y, 0),
	    -EBADMSG);
	v = 3;
	memcpy(buf + 8, &v, 4);
	ck_assert_int_eq(comp_decode(WIRE_CODEC_SPARSE, buf, 20, 8, y, 0), 0);
}
END_TEST

START_TEST(test_topk_selection)
{
	enum { N = 1001 };
	unsigned seed = 11;
	float g[N], orig[N], res[N], sorted[N];

	for (int trial = 0; trial < 4; trial++) {
		float ratio = trial == 0 ? 0.01f : trial == 1 ? 0.1f :
		    trial == 2 ? 0.5f : 1.0f;
		size_t k = comp_topk_count(N, ratio), kept = 0;
		float thr;

		for (int i = 0; i < N; i++)
			orig[i] = g[i] = i % 10 == 0 ? 2.0f : frand(&seed);
		memset(res, 0, sizeof(res));
		ck_assert_int_eq(comp_feedback(ARC_DP_COMP_TOPK, ratio, g,
		    res, N), 0);
		/* independent: the k-th largest |x| by sorting */
		for (int i = 0; i < N; i++)
			sorted[i] = fabsf(orig[i]);
		for (int i = 1; i < N; i++)
			for (int j = i; j > 0 && sorted[j - 1] < sorted[j];
			    j--) {
				float t = sorted[j];

				sorted[j] = sorted[j - 1];
				sorted[j - 1] = t;
			}
		thr = sorted[k - 1];
		for (int i = 0; i < N; i++) {
			/* every value is either sent or kept back, exactly */
			ck_assert(g[i] + res[i] == orig[i]);
			ck_assert(g[i] == 0 || res[i] == 0);
			if (g[i] != 0) {
				kept++;
				ck_assert(fabsf(g[i]) >= thr);
			} else
				ck_assert(fabsf(orig[i]) <= thr);
		}
		ck_assert_uint_eq(kept, k);
	}
}
END_TEST

/*
 * Error feedback: over T steps, sum of sent values - sum of true values
 * equals minus the final residual, so it stays bounded by one step's
 * compression error, while without feedback it grows.
 */
START_TEST(test_feedback_converges)
{
	enum { N = 512, T = 300 };
	static const int comps[] = { ARC_DP_COMP_BF16, ARC_DP_COMP_INT8,
	    ARC_DP_COMP_TOPK };

	for (size_t c = 0; c < 3; c++) {
		static double sent[N], truth[N], sent_noef[N];
		float g[N], h[N], res[N];
		unsigned seed = 17;
		double err = 0, err_noef = 0;

		memset(sent, 0, sizeof(sent));
		memset(truth, 0, sizeof(truth));
		memset(sent_noef, 0, sizeof(sent_noef));
		memset(res, 0, sizeof(res));
		for (int t = 0; t < T; t++) {
			for (int i = 0; i < N; i++) {
				/* a biased gradient: small steady parts are
				 * what plain compression loses */
				g[i] = h[i] = 0.01f + frand(&seed) * 0.001f *
				    (float)(i % 5);
				truth[i] += g[i];
			}
			comp_feedback(comps[c], 0.05f, g, res, N);
			comp_feedback(comps[c], 0.05f, h, NULL, N);
			for (int i = 0; i < N; i++) {
				sent[i] += g[i];
				sent_noef[i] += h[i];
			}
		}
		for (int i = 0; i < N; i++) {
			err = fmax(err, fabs(sent[i] - truth[i]));
			err_noef = fmax(err_noef, fabs(sent_noef[i] -
			    truth[i]));
			/* the books balance: sent + residual = truth */
			ck_assert_msg(fabs(sent[i] + res[i] - truth[i]) <
			    1e-3, "scheme %d [%d]", comps[c], i);
		}
		/*
		 * Bounded by one step's loss; for top-k a value waits about
		 * 1/ratio steps before it is sent: 20 * 0.012 here.
		 */
		ck_assert_msg(err < (comps[c] == ARC_DP_COMP_TOPK ? 0.5 :
		    0.01), "scheme %d: EF error %g", comps[c], err);
		ck_assert_msg(err * 5 < err_noef || err_noef < 1e-4,
		    "scheme %d: EF %g vs none %g", comps[c], err, err_noef);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("compress");
	TCase *tc = tcase_create("compress");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_bf16);
	tcase_add_test(tc, test_codec_round_trips);
	tcase_add_test(tc, test_decode_hostile);
	tcase_add_test(tc, test_topk_selection);
	tcase_add_test(tc, test_feedback_converges);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
