/*
 * check_wire.c: the inter-node header: round trip, and every kind of bad
 * header or message refused with its reason (never a crash).
 */
#include <check.h>
#include <string.h>

#include "crc32c.h"
#include "wire.h"

static struct wire_hdr
sample(void)
{
	struct wire_hdr h = { .type = WIRE_DATA, .flags = 0x0102, .epoch = 7,
	    .source = 3, .group = 9, .op = 0x11223344, .step = 2, .chunk = 5,
	    .count = 4, .codec = WIRE_CODEC_F32 };

	return h;
}

START_TEST(test_round_trip)
{
	struct wire_hdr h = sample(), d;
	float payload[4] = { 1, 2, 3, 4 };
	uint8_t raw[WIRE_HDR_LEN];

	wire_encode(&h, payload, sizeof(payload), raw);
	/* big-endian on the wire */
	ck_assert_uint_eq(raw[0], 0x41);
	ck_assert_uint_eq(raw[3], 0x57);
	ck_assert_uint_eq(raw[24], 0x11);
	ck_assert_int_eq(wire_decode(raw, sizeof(raw), &d), WIRE_OK);
	ck_assert_uint_eq(d.type, WIRE_DATA);
	ck_assert_uint_eq(d.flags, 0x0102);
	ck_assert_uint_eq(d.epoch, 7);
	ck_assert_uint_eq(d.source, 3);
	ck_assert_uint_eq(d.length, sizeof(payload));
	ck_assert_uint_eq(d.group, 9);
	ck_assert_uint_eq(d.op, 0x11223344);
	ck_assert_uint_eq(d.step, 2);
	ck_assert_uint_eq(d.chunk, 5);
	ck_assert_uint_eq(d.count, 4);
	ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_OK);
	/* the CRC is CRC32C over the header with crc 0, then the payload */
	{
		uint8_t z[WIRE_HDR_LEN];
		uint32_t c;

		memcpy(z, raw, sizeof(z));
		memset(z + 44, 0, 4);
		c = crc32c_sw(crc32c_sw(0, z, sizeof(z)), payload,
		    sizeof(payload));
		ck_assert_uint_eq(d.crc, c);
	}
}
END_TEST

START_TEST(test_bad_headers)
{
	struct wire_hdr h = sample(), d;
	float payload[4] = { 1, 2, 3, 4 };
	uint8_t raw[WIRE_HDR_LEN], bad[WIRE_HDR_LEN];

	wire_encode(&h, payload, sizeof(payload), raw);
	ck_assert_int_eq(wire_decode(raw, WIRE_HDR_LEN - 1, &d), WIRE_ESHORT);
	ck_assert_int_eq(wire_decode(NULL, 0, &d), WIRE_ESHORT);
	memcpy(bad, raw, sizeof(bad));
	bad[1] ^= 1;
	ck_assert_int_eq(wire_decode(bad, sizeof(bad), &d), WIRE_EMAGIC);
	memcpy(bad, raw, sizeof(bad));
	bad[4] = WIRE_VERSION + 1;
	ck_assert_int_eq(wire_decode(bad, sizeof(bad), &d), WIRE_EVERSION);
	memcpy(bad, raw, sizeof(bad));
	bad[5] = 0;
	ck_assert_int_eq(wire_decode(bad, sizeof(bad), &d), WIRE_ETYPE);
	bad[5] = WIRE_NTYPES;
	ck_assert_int_eq(wire_decode(bad, sizeof(bad), &d), WIRE_ETYPE);
	memcpy(bad, raw, sizeof(bad));
	bad[16] = 0x7f;		/* length > WIRE_MAX_PAYLOAD */
	ck_assert_int_eq(wire_decode(bad, sizeof(bad), &d), WIRE_ELENGTH);
}
END_TEST

START_TEST(test_bad_messages)
{
	struct wire_hdr h = sample(), d;
	float payload[4] = { 1, 2, 3, 4 };
	uint8_t raw[WIRE_HDR_LEN], bad[WIRE_HDR_LEN];

	wire_encode(&h, payload, sizeof(payload), raw);
	ck_assert_int_eq(wire_decode(raw, sizeof(raw), &d), WIRE_OK);
	/* wrong epoch */
	ck_assert_int_eq(wire_check(&d, raw, payload, 8), WIRE_EEPOCH);
	/* a flipped payload bit, a flipped header bit */
	payload[2] = 3.5f;
	ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_ECRC);
	payload[2] = 3;
	memcpy(bad, raw, sizeof(bad));
	bad[31] ^= 0x80;
	ck_assert_int_eq(wire_decode(bad, sizeof(bad), &d), WIRE_OK);
	ck_assert_int_eq(wire_check(&d, bad, payload, 7), WIRE_ECRC);
	/* count not matching the length for the codec */
	h.count = 5;
	wire_encode(&h, payload, sizeof(payload), raw);
	wire_decode(raw, sizeof(raw), &d);
	ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_ECODEC);
	h.count = 4;
	h.codec = WIRE_NCODECS;
	wire_encode(&h, payload, sizeof(payload), raw);
	wire_decode(raw, sizeof(raw), &d);
	ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_ECODEC);
	/* sparse: nnz must fit count */
	h.codec = WIRE_CODEC_SPARSE;
	h.count = 1;
	wire_encode(&h, payload, 12, raw);	/* nnz 1: 4 + 8 */
	wire_decode(raw, sizeof(raw), &d);
	ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_OK);
	wire_encode(&h, payload, 13, raw);
	wire_decode(raw, sizeof(raw), &d);
	ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_ECODEC);
	/* link messages are accepted in any epoch */
	h = sample();
	h.type = WIRE_PING;
	wire_encode(&h, NULL, 0, raw);
	wire_decode(raw, sizeof(raw), &d);
	ck_assert_int_eq(wire_check(&d, raw, NULL, 99), WIRE_OK);
	for (int e = 0; e < WIRE_NERRS + 2; e++)
		ck_assert_ptr_nonnull(wire_strerror((enum wire_err)e));
}
END_TEST

/*
 * A receiver that sums the payload piece by piece as frames come
 * (wire_crc_hdr, crc32c per piece, wire_check_crc) decides exactly as
 * wire_check over the whole payload: a flipped bit anywhere, in the
 * header or in any piece, is refused.
 */
START_TEST(test_check_by_pieces)
{
	struct wire_hdr h = sample(), d;
	static float payload[3000];
	uint8_t raw[WIRE_HDR_LEN];
	const uint8_t *b = (const uint8_t *)payload;
	size_t len = sizeof(payload);
	uint32_t crc;

	for (size_t i = 0; i < 3000; i++)
		payload[i] = (float)i * 0.25f - 7;
	h.count = 3000;
	wire_encode(&h, payload, len, raw);
	ck_assert_int_eq(wire_decode(raw, sizeof(raw), &d), WIRE_OK);
	for (size_t piece = 1; piece <= 9000; piece = piece * 3 + 7) {
		crc = wire_crc_hdr(raw);
		for (size_t off = 0; off < len; off += piece)
			crc = crc32c(crc, b + off, len - off < piece ?
			    len - off : piece);
		ck_assert_int_eq(wire_check_crc(&d, crc, 7), WIRE_OK);
		ck_assert_int_eq(wire_check_crc(&d, crc, 8), WIRE_EEPOCH);
		ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_OK);
	}
	/* one bit flipped in the last piece, then in the header */
	payload[2999] = 1;
	crc = crc32c(wire_crc_hdr(raw), b, len);
	ck_assert_int_eq(wire_check_crc(&d, crc, 7), WIRE_ECRC);
	ck_assert_int_eq(wire_check(&d, raw, payload, 7), WIRE_ECRC);
	payload[2999] = 2999 * 0.25f - 7;
	raw[33] ^= 0x04;
	crc = crc32c(wire_crc_hdr(raw), b, len);
	ck_assert_int_eq(wire_check_crc(&d, crc, 7), WIRE_ECRC);
	/* the crc field itself is not summed */
	raw[33] ^= 0x04;
	crc = wire_crc_hdr(raw);
	raw[45] ^= 0xff;
	ck_assert_uint_eq(wire_crc_hdr(raw), crc);
	crc = crc32c(wire_crc_hdr(raw), b, len);
	ck_assert_int_eq(wire_check_crc(&d, crc, 7), WIRE_OK);
}
END_TEST

START_TEST(test_hello)
{
	struct wire_hello w = { .node_id = 42, .backends = 5,
	    .boot_id = 0x0123456789abcdefull }, d;
	uint8_t b[WIRE_HELLO_LEN];

	wire_hello_encode(&w, b);
	ck_assert_int_eq(wire_hello_decode(b, sizeof(b), &d), 0);
	ck_assert_uint_eq(d.node_id, 42);
	ck_assert_uint_eq(d.backends, 5);
	ck_assert(d.boot_id == w.boot_id);
	ck_assert_int_lt(wire_hello_decode(b, sizeof(b) - 1, &d), 0);
	memset(b, 0, 4);
	ck_assert_int_lt(wire_hello_decode(b, sizeof(b), &d), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("wire");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_bad_headers);
	tcase_add_test(tc, test_bad_messages);
	tcase_add_test(tc, test_check_by_pieces);
	tcase_add_test(tc, test_hello);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
