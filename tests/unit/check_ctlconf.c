/*
 * check_ctlconf.c: the control sections of arceus.conf (common/nodeconf.c
 * keys added by control/): defaults, seeds, every error with file:line,
 * and the commented example configs/arceus.conf loads as it is.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nodeconf.h"

static char path[64];

static int
load(const char *text, struct nodeconf *nc, struct conf_errs *e)
{
	FILE *fp;

	snprintf(path, sizeof(path), "/tmp/check_ctlconf_%d.conf", getpid());
	fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	memset(e, 0, sizeof(*e));
	return nodeconf_load(nc, path, e);
}

START_TEST(test_defaults)
{
	struct nodeconf nc;
	struct conf_errs e;

	ck_assert_int_eq(load("", &nc, &e), 0);
	ck_assert_int_eq(nc.gossip_port, 7700);
	ck_assert_int_eq(nc.raft_port, 7701);
	ck_assert_int_eq(nc.http_port, 7780);
	ck_assert_int_eq(nc.voters, 3);
	ck_assert_int_eq(nc.discovery, 1);
	ck_assert_int_eq(nc.probe_interval_ms, 100);
	ck_assert_int_lt(nc.probe_timeout_ms, nc.probe_interval_ms);
	ck_assert_int_eq(nc.nseeds, 0);
	ck_assert_int_eq(nc.bootstrap_expect, 3);
	ck_assert_uint_eq(nc.model_memory, 0);
	ck_assert_double_eq(nc.replan_gain, 0.15);
	ck_assert_double_eq(nc.replan_interval_s, 15);
	ck_assert_double_eq(nc.replan_hold_s, 3);
	ck_assert_int_lt(nc.heartbeat_ms, nc.election_timeout_ms);
	ck_assert_str_eq(nc.ctl_listen, "0.0.0.0");
	unlink(path);
}
END_TEST

START_TEST(test_seeds)
{
	struct nodeconf nc;
	struct conf_errs e;

	ck_assert_int_eq(load("[control]\nseed = 10.0.0.1:7700\n"
	    "seed = 10.0.0.2:7800\ndiscovery = no\n[membership]\n"
	    "probe_interval_ms = 200\n", &nc, &e), 0);
	ck_assert_int_eq(nc.nseeds, 2);
	ck_assert_str_eq(nc.seeds[1].addr, "10.0.0.2");
	ck_assert_int_eq(nc.seeds[1].port, 7800);
	ck_assert_int_eq(nc.discovery, 0);
	ck_assert_int_eq(nc.probe_interval_ms, 200);
	unlink(path);
}
END_TEST

START_TEST(test_errors_all_at_once)
{
	struct nodeconf nc;
	struct conf_errs e;

	ck_assert_int_eq(load("[control]\nseed = 10.0.0:7700\n"
	    "seed = 10.0.0.1:0\ngossip_port = 70000\nvoters = x\n"
	    "[membership]\nsuspect_timeout_ms = 1\nnope = 2\n", &nc, &e), -1);
	ck_assert_int_eq(e.n, 6);
	ck_assert_msg(strstr(e.msg[0], ":2: ") != NULL, "%s", e.msg[0]);
	ck_assert_msg(strstr(e.msg[1], ":3: ") != NULL, "%s", e.msg[1]);
	ck_assert_msg(strstr(e.msg[2], ":4: ") != NULL, "%s", e.msg[2]);
	ck_assert_msg(strstr(e.msg[3], ":5: ") != NULL, "%s", e.msg[3]);
	ck_assert_msg(strstr(e.msg[4], ":7: ") != NULL, "%s", e.msg[4]);
	ck_assert_msg(strstr(e.msg[5], ":8: ") != NULL, "%s", e.msg[5]);
	unlink(path);
}
END_TEST

/* replanning on speed: set, off, and bad values named with their line */
START_TEST(test_replan_keys)
{
	struct nodeconf nc;
	struct conf_errs e;

	ck_assert_int_eq(load("[control]\nreplan_gain = 0.3\n"
	    "replan_interval_s = 0\nreplan_hold_s = 1.5\n", &nc, &e), 0);
	ck_assert_double_eq(nc.replan_gain, 0.3);
	ck_assert_double_eq(nc.replan_interval_s, 0);
	ck_assert_double_eq(nc.replan_hold_s, 1.5);
	unlink(path);
	ck_assert_int_eq(load("[control]\nreplan_gain = 0\n"
	    "replan_interval_s = -1\nreplan_hold_s = soon\n"
	    "replan_gain = 2\n", &nc, &e), -1);
	ck_assert_int_eq(e.n, 4);
	for (int i = 0; i < 4; i++) {
		char at[8];

		snprintf(at, sizeof(at), ":%d: ", i + 2);
		ck_assert_msg(strstr(e.msg[i], at) != NULL, "%s", e.msg[i]);
		ck_assert_msg(strstr(e.msg[i], "replan_") != NULL, "%s",
		    e.msg[i]);
	}
	unlink(path);
}
END_TEST

START_TEST(test_example_loads)
{
	struct nodeconf nc;
	struct conf_errs e;

	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(nodeconf_load(&nc, "configs/arceus.conf", &e), 0);
	ck_assert_int_eq(nc.gossip_port, 7700);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("ctlconf");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_seeds);
	tcase_add_test(tc, test_replan_keys);
	tcase_add_test(tc, test_errors_all_at_once);
	tcase_add_test(tc, test_example_loads);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf != 0;
}
