/*
 * check_common.c: common/: the INI reader (every kind of error, reported
 * as file:line: reason, all at once), crc32c, the fault seam, nodeconf.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "crc32c.h"
#include "fault.h"
#include "nodeconf.h"

struct tconf {
	int64_t		i;
	uint64_t	sz;
	double		d;
	int		b;
	char		s[8];
};

static const struct conf_key tkeys[] = {
	{ "a", "i", CONF_INT, offsetof(struct tconf, i), 0, -5, 100, "1",
	    "", NULL, 0 },
	{ "a", "sz", CONF_SIZE, offsetof(struct tconf, sz), 0, 0, 1e12, "4K",
	    "", NULL, 0 },
	{ "b", "d", CONF_DOUBLE, offsetof(struct tconf, d), 0, 0, 1, "0.5",
	    "", NULL, 0 },
	{ "b", "b", CONF_BOOL, offsetof(struct tconf, b), 0, 0, 0, "no", "",
	    NULL, 0 },
	{ "b", "s", CONF_STR, offsetof(struct tconf, s), 8, 0, 0, "x", "",
	    NULL, 0 },
	{ NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0 },
};

static char tmpl[64];

static const char *
write_tmp(const char *text)
{
	int fd;

	strcpy(tmpl, "/tmp/check_conf.XXXXXX");
	fd = mkstemp(tmpl);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return tmpl;
}

/* Loads text; @return the errors (caller inspects). */
static struct conf_errs *
load(const char *text, struct tconf *c)
{
	static struct conf_errs e;
	const char *p = write_tmp(text);

	memset(&e, 0, sizeof(e));
	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(conf_defaults(tkeys, c, &e), 0);
	conf_load(tkeys, c, p, &e);
	unlink(p);
	return &e;
}

static void
expect_err(const struct conf_errs *e, int idx, int line, const char *needle)
{
	char prefix[128];

	ck_assert_msg(e->n > idx, "expected an error %d ('%s'), got %d", idx,
	    needle, e->n);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", tmpl, line);
	ck_assert_msg(strncmp(e->msg[idx], prefix, strlen(prefix)) == 0,
	    "error '%s' does not start with '%s'", e->msg[idx], prefix);
	ck_assert_msg(strstr(e->msg[idx], needle) != NULL,
	    "error '%s' does not say '%s'", e->msg[idx], needle);
}

START_TEST(test_conf_ok)
{
	struct tconf c;
	struct conf_errs *e = load("# comment\n[a]\ni = -5\nsz = 2M  # x\n"
	    "\n[b]\n; other comment\nd = 1e-1\nb = yes\ns = \"hi\"\n", &c);

	ck_assert_int_eq(e->n, 0);
	ck_assert_int_eq(c.i, -5);
	ck_assert_uint_eq(c.sz, 2u << 20);
	ck_assert_double_eq_tol(c.d, 0.1, 1e-12);
	ck_assert_int_eq(c.b, 1);
	ck_assert_str_eq(c.s, "hi");
}
END_TEST

START_TEST(test_conf_defaults)
{
	struct tconf c;
	struct conf_errs *e = load("", &c);

	ck_assert_int_eq(e->n, 0);
	ck_assert_int_eq(c.i, 1);
	ck_assert_uint_eq(c.sz, 4096);
	ck_assert_str_eq(c.s, "x");
}
END_TEST

/* Every kind of error, each with its line, all in one pass. */
START_TEST(test_conf_errors)
{
	struct tconf c;
	struct conf_errs *e = load(
	    "i = 3\n"			/* 1: outside any section */
	    "[a\n"			/* 2: unterminated header */
	    "[a]\n"
	    "i = 12x\n"			/* 4: not an integer */
	    "sz = 2T\n"			/* 5: out of bounds */
	    "nope = 1\n"		/* 6: unknown key */
	    "this line has no equals\n"	/* 7: syntax */
	    "[zzz]\n"
	    "q = 1\n"			/* 9: unknown section */
	    "[b]\n"
	    "d = 2\n"			/* 11: out of bounds */
	    "b = maybe\n"		/* 12: not a boolean */
	    "s = toolongvalue\n"	/* 13: too long */
	    "[a]\n"
	    "i = 2\n",			/* 15: duplicate */
	    &c);
	const char *why;
	double d;
	uint64_t u;

	ck_assert_int_eq(e->n, 11);
	expect_err(e, 0, 1, "outside of any [section]");
	expect_err(e, 1, 2, "without ']'");
	expect_err(e, 2, 4, "not an integer");
	expect_err(e, 3, 5, "out of bounds");
	expect_err(e, 4, 6, "unknown key 'nope'");
	expect_err(e, 5, 7, "expected 'key = value'");
	expect_err(e, 6, 9, "unknown section [zzz]");
	expect_err(e, 7, 11, "out of bounds");
	expect_err(e, 8, 12, "not a boolean");
	expect_err(e, 9, 13, "longer than 7 bytes");
	expect_err(e, 10, 15, "duplicate key a.i (first set on line 4)");
	ck_assert_int_eq(conf_parse_double("nan", &d, &why), -1);
	ck_assert_int_eq(conf_parse_double("1e999", &d, &why), -1);
	ck_assert_int_eq(conf_parse_size("3Q", &u, &why), -1);
	ck_assert_int_eq(conf_parse_size("-1", &u, &why), -1);
	ck_assert_int_eq(conf_parse_size("99999999999T", &u, &why), -1);
	ck_assert_int_eq(conf_parse_size("3MiB", &u, &why), 0);
	ck_assert_uint_eq(u, 3u << 20);
}
END_TEST

START_TEST(test_conf_missing_file)
{
	struct conf_errs e = { 0 };
	struct tconf c;

	ck_assert_int_eq(conf_load(tkeys, &c, "/nonexistent/x.conf", &e), -1);
	ck_assert_int_eq(e.n, 1);
	ck_assert_msg(strstr(e.msg[0], "/nonexistent/x.conf: cannot open")
	    != NULL, "%s", e.msg[0]);
}
END_TEST

START_TEST(test_conf_binary_garbage)
{
	struct tconf c;
	char junk[3000];
	struct conf_errs *e;

	for (size_t i = 0; i < sizeof(junk) - 1; i++)
		junk[i] = (char)(1 + (i * 7919) % 255);
	junk[sizeof(junk) - 1] = '\0';
	e = load(junk, &c);	/* must not crash; must complain */
	ck_assert_int_gt(e->n, 0);
}
END_TEST

START_TEST(test_conf_set)
{
	struct conf_errs e = { 0 };
	struct tconf c;

	conf_defaults(tkeys, &c, &e);
	ck_assert_int_eq(conf_set(tkeys, &c, "a.i=42", "--set", &e), 0);
	ck_assert_int_eq(c.i, 42);
	ck_assert_int_eq(conf_set(tkeys, &c, "a.zz=1", "--set", &e), -1);
	ck_assert_int_eq(conf_set(tkeys, &c, "novalue", "--set", &e), -1);
	ck_assert_int_eq(conf_set(tkeys, &c, "b.d=7", "--set", &e), -1);
	ck_assert_int_eq(e.n, 3);
	ck_assert_msg(strstr(e.msg[0], "--set: unknown key 'a.zz'"), "%s",
	    e.msg[0]);
	ck_assert_msg(strstr(e.msg[1], "section.key=value"), "%s", e.msg[1]);
	ck_assert_msg(strstr(e.msg[2], "out of bounds"), "%s", e.msg[2]);
}
END_TEST

START_TEST(test_nodeconf)
{
	struct conf_errs e = { 0 };
	struct nodeconf nc;
	const char *p = write_tmp("[node]\nid = 7\n[dataplane]\n"
	    "transport = tcp\npeer = 2@10.0.0.2:7710\npeer = 3@10.0.0.3:7711\n"
	    "peer = 3@10.0.0.4:1\npeer = x@y\ntransport = warp\n");

	nodeconf_load(&nc, p, &e);
	unlink(p);
	ck_assert_int_eq(nc.node_id, 7);
	ck_assert_int_eq(nc.npeers, 2);
	ck_assert_uint_eq(nc.peers[1].id, 3);
	ck_assert_str_eq(nc.peers[1].addr, "10.0.0.3");
	ck_assert_uint_eq(nc.peers[1].port, 7711);
	ck_assert_int_eq(e.n, 3);
	ck_assert_msg(strstr(e.msg[0], ":7: ") && strstr(e.msg[0],
	    "duplicate peer id"), "%s", e.msg[0]);
	ck_assert_msg(strstr(e.msg[1], ":8: "), "%s", e.msg[1]);
	ck_assert_msg(strstr(e.msg[2], ":9: ") && strstr(e.msg[2],
	    "duplicate key"), "%s", e.msg[2]);
}
END_TEST

/* dpdk_neighbor and dpdk_mtu: parsed, and refused with file:line. */
START_TEST(test_nodeconf_dpdk)
{
	struct conf_errs e = { 0 };
	struct nodeconf nc;
	const char *p = write_tmp("[dataplane]\n"
	    "dpdk_neighbor = 10.0.0.2 02:aa:00:00:00:02\n"
	    "dpdk_neighbor = 10.0.0.3   0a:bB:cc:dd:ee:ff\n"
	    "dpdk_neighbor = 10.0.0.2 02:00:00:00:00:09\n"
	    "dpdk_neighbor = 10.0.0.4\n"
	    "dpdk_neighbor = 10.0.0.5 01:00:5e:00:00:01\n"
	    "dpdk_neighbor = 10.0.0.6 02:00:00:00:00\n"
	    "dpdk_neighbor = 10.0.0.7 02:00:00:00:00:07 x\n"
	    "dpdk_neighbor = 300.0.0.1 02:00:00:00:00:07\n"
	    "dpdk_mtu = 9001\n"
	    "dpdk_zc_min = 65536\n");

	nodeconf_load(&nc, p, &e);
	unlink(p);
	ck_assert_int_eq(nc.ndpdk_neigh, 2);
	ck_assert_uint_eq(nc.dpdk_neigh[0].ip, 0x0a000002);
	ck_assert_uint_eq(nc.dpdk_neigh[0].mac[1], 0xaa);
	ck_assert_uint_eq(nc.dpdk_neigh[1].ip, 0x0a000003);
	ck_assert_uint_eq(nc.dpdk_neigh[1].mac[1], 0xbb);
	ck_assert_uint_eq(nc.dpdk_neigh[1].mac[5], 0xff);
	ck_assert_int_eq(nc.dpdk_mtu, 0);		/* the default */
	ck_assert_int_eq(nc.dpdk_zc_min, 0);		/* the default */
	ck_assert_int_eq(e.n, 8);
	ck_assert_msg(strstr(e.msg[0], ":4: ") && strstr(e.msg[0],
	    "duplicate neighbour"), "%s", e.msg[0]);
	ck_assert_msg(strstr(e.msg[1], ":5: ") && strstr(e.msg[1], "MAC"),
	    "%s", e.msg[1]);
	ck_assert_msg(strstr(e.msg[2], ":6: ") && strstr(e.msg[2],
	    "unicast"), "%s", e.msg[2]);
	ck_assert_msg(strstr(e.msg[3], ":7: ") && strstr(e.msg[3], "MAC"),
	    "%s", e.msg[3]);
	ck_assert_msg(strstr(e.msg[4], ":8: ") && strstr(e.msg[4], "MAC"),
	    "%s", e.msg[4]);
	ck_assert_msg(strstr(e.msg[5], ":9: ") && strstr(e.msg[5], "IPv4"),
	    "%s", e.msg[5]);
	ck_assert_msg(strstr(e.msg[6], ":10: ") && strstr(e.msg[6],
	    "576..9000"), "%s", e.msg[6]);
	ck_assert_msg(strstr(e.msg[7], ":11: ") && strstr(e.msg[7],
	    "dpdk_zc_min"), "%s", e.msg[7]);
	p = write_tmp("[dataplane]\ndpdk_mtu = 9000\ndpdk_zc_min = 4096\n");
	memset(&e, 0, sizeof(e));
	nodeconf_load(&nc, p, &e);
	unlink(p);
	ck_assert_int_eq(e.n, 0);
	ck_assert_int_eq(nc.dpdk_mtu, 9000);
	ck_assert_int_eq(nc.dpdk_zc_min, 4096);
}
END_TEST

/* The node id control keeps in state_dir, as the dataplane reads it. */
START_TEST(test_nodeconf_read_id)
{
	struct nodeconf nc;
	char dir[] = "/tmp/check_nid.XXXXXX", path[64];
	uint32_t id = 0;
	FILE *fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&nc, 0, sizeof(nc));
	snprintf(nc.state_dir, sizeof(nc.state_dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/node-id", dir);
	ck_assert_int_eq(nodeconf_read_id(&nc, &id), -ENOENT);
	const char *bad[] = { "", "0\n", "abc\n", "12x\n", "99999999999\n" };
	for (size_t i = 0; i < 5; i++) {
		fp = fopen(path, "w");
		fputs(bad[i], fp);
		fclose(fp);
		ck_assert_msg(nodeconf_read_id(&nc, &id) == -EINVAL, "'%s'",
		    bad[i]);
	}
	fp = fopen(path, "w");
	fputs("4242\n", fp);
	fclose(fp);
	ck_assert_int_eq(nodeconf_read_id(&nc, &id), 0);
	ck_assert_uint_eq(id, 4242);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* Known CRC-32C values (RFC 3720 B.4), and hardware == table. */
START_TEST(test_crc32c)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32];
	char buf[1000];

	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	ck_assert_uint_eq(crc32c(0, zeros, 32), 0x8A9136AA);
	ck_assert_uint_eq(crc32c(0, ones, 32), 0x62A8AB43);
	ck_assert_uint_eq(crc32c(0, inc, 32), 0x46DD794E);
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31 + 7);
	for (size_t n = 0; n < sizeof(buf); n += 37) {
		uint32_t whole = crc32c(0, buf, n);

		ck_assert_uint_eq(whole, crc32c_sw(0, buf, n));
		ck_assert_uint_eq(whole, crc32c(crc32c(0, buf, n / 3),
		    buf + n / 3, n - n / 3));
	}
}
END_TEST

/* Long buffers take the three-stream path: same values as the table. */
START_TEST(test_crc32c_long)
{
	size_t n = 100000;
	unsigned char *buf = malloc(n);
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	for (size_t len = 3000; len < n; len = len * 3 / 2 + 17)
		for (size_t off = 0; off < 9; off += 4) {
			uint32_t seed = (uint32_t)(len * 2654435761u);

			ck_assert_uint_eq(crc32c(seed, buf + off, len - off),
			    crc32c_sw(seed, buf + off, len - off));
		}
	ck_assert_uint_eq(crc32c(0, buf, n), crc32c(crc32c(0, buf, 4097),
	    buf + 4097, n - 4097));
	free(buf);
}
END_TEST

/*
 * Every length around the folding path's edges (its 128-byte rounds, its
 * 16-byte tail, its start at CRC_FOLD_MIN) and unaligned starts: the
 * folding, crc32-instruction and table versions agree.
 */
START_TEST(test_crc32c_fold)
{
	size_t n = 4096 + 64;
	unsigned char *buf = malloc(n);
	uint64_t x = 2463534242ull;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	for (size_t len = 0; len <= 4096; len += len < 700 ? 1 : 61)
		for (size_t off = 0; off < 4; off++) {
			uint32_t seed = (uint32_t)(len * 40503u + off);
			uint32_t ref = crc32c_sw(seed, buf + off, len);

			ck_assert_uint_eq(crc32c(seed, buf + off, len), ref);
			ck_assert_uint_eq(crc32c_nofold(seed, buf + off, len),
			    ref);
		}
	free(buf);
}
END_TEST

/*
 * crc32c_copy: the same sum as crc32c, and exactly the bytes copied (no
 * byte before or after dst[len) touched), at every length around the
 * folding path's edges and unaligned ends.
 */
START_TEST(test_crc32c_copy)
{
	size_t n = 4096 + 64;
	unsigned char *buf = malloc(n), *dst = malloc(n + 16);
	unsigned char *pat = malloc(n + 16);
	uint64_t x = 977ull;

	memset(pat, 0xa5, n + 16);

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
	for (size_t len = 0; len <= 4096; len += len < 700 ? 1 : 61)
		for (size_t off = 0; off < 4; off++) {
			uint32_t seed = (uint32_t)(len * 7919u + off);
			uint32_t ref = crc32c_sw(seed, buf + off, len);

			memset(dst, 0xa5, n + 16);
			ck_assert_uint_eq(crc32c_copy(seed, dst + 3 + off,
			    buf + off, len), ref);
			ck_assert_int_eq(memcmp(dst + 3 + off, buf + off, len),
			    0);
			ck_assert_int_eq(memcmp(dst, pat, 3 + off), 0);
			ck_assert_int_eq(memcmp(dst + 3 + off + len, pat,
			    n + 16 - 3 - off - len), 0);
		}
	free(pat);
	free(dst);
	free(buf);
}
END_TEST

START_TEST(test_fault_countdown)
{
	const char *why;

	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), 0);
	fault_arm(FAULT_CKPT_WRITE, 3, ENOSPC, 0);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), 0);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_FSYNC), 0);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), 0);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), -ENOSPC);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), 0);	/* transient */
	ck_assert_uint_eq(fault_injected(FAULT_CKPT_WRITE), 1);
	fault_arm(FAULT_CKPT_FSYNC, 1, EIO, 1);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(fault_hit(FAULT_CKPT_FSYNC), -EIO);
	fault_disarm_all();
	ck_assert_int_eq(fault_hit(FAULT_CKPT_FSYNC), 0);

	ck_assert_int_eq(fault_parse("ckpt_write:2:ENOSPC:persistent,"
	    "net_drop:rate=0.5", &why), 0);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), 0);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), -ENOSPC);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), -ENOSPC);
	int drops = 0;
	for (int i = 0; i < 1000; i++)
		drops += fault_hit(FAULT_NET_DROP) != 0;
	ck_assert_msg(drops > 400 && drops < 600, "%d drops of 1000", drops);
	fault_disarm_all();
	ck_assert_int_eq(fault_parse("bogus:1", &why), -1);
	ck_assert_int_eq(fault_parse("ckpt_write:0", &why), -1);
	ck_assert_int_eq(fault_parse("ckpt_write:1:EWHAT", &why), -1);
	ck_assert_int_eq(fault_parse("ckpt_write:1:EIO:forever", &why), -1);
	ck_assert_int_eq(fault_parse("net_drop:rate=2", &why), -1);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), 0);

	/* a slow machine: a factor, alone or with other items */
	ck_assert_double_eq(fault_slowdown(), 1.0);
	ck_assert_int_eq(fault_parse("slow:2.5", &why), 0);
	ck_assert_double_eq(fault_slowdown(), 2.5);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), 0);
	ck_assert_int_eq(fault_parse("slow:0.5", &why), -1);
	ck_assert_str_eq(why, "slow takes one factor in [1, 1000]");
	ck_assert_int_eq(fault_parse("slow:2:EIO", &why), -1);
	ck_assert_int_eq(fault_parse("slow:fast", &why), -1);
	ck_assert_double_eq(fault_slowdown(), 2.5);	/* refused: unchanged */
	fault_disarm_all();
	ck_assert_double_eq(fault_slowdown(), 1.0);
	ck_assert_int_eq(fault_parse("slow:3,ckpt_write:1", &why), 0);
	ck_assert_double_eq(fault_slowdown(), 3.0);
	ck_assert_int_eq(fault_hit(FAULT_CKPT_WRITE), -EIO);
	fault_disarm_all();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("common");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_conf_ok);
	tcase_add_test(tc, test_conf_defaults);
	tcase_add_test(tc, test_conf_errors);
	tcase_add_test(tc, test_conf_missing_file);
	tcase_add_test(tc, test_conf_binary_garbage);
	tcase_add_test(tc, test_conf_set);
	tcase_add_test(tc, test_nodeconf);
	tcase_add_test(tc, test_nodeconf_read_id);
	tcase_add_test(tc, test_nodeconf_dpdk);
	tcase_add_test(tc, test_crc32c);
	tcase_add_test(tc, test_crc32c_long);
	tcase_add_test(tc, test_crc32c_fold);
	tcase_add_test(tc, test_crc32c_copy);
	tcase_add_test(tc, test_fault_countdown);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
