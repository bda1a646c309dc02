/*
 * fuzz_ctl.c: libFuzzer harness of control's decoders (tests/fuzz/
 * ctl_fuzz.sh runs it).  The first byte picks the target:
 *   0: a SWIM datagram with a valid MAC (the harness signs it), so that
 *      the decoder and the state machine behind it are reached;
 *   1: a raw SWIM datagram (MAC, length checks);
 *   2: a raft log entry applied to the FSM (epochs, jobs, checkpoints);
 *   3: a raft snapshot restored into the FSM;
 *   4: a cluster description file (arceusctl plan --cluster), then a plan;
 *   5: an epoch's layout as the leader reads back the plan in force
 *      (replan.c), evaluated and replanned on a small cluster.
 * Nothing may crash, leak or read out of bounds; the state machines are
 * ticked between inputs so that timers run on what was learned.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "control.h"
#include "raftfsm.h"
#include "swim.h"

static struct swim sw;
static struct cluster_fsm fsm;
static uint64_t now = 1000;
static unsigned char key[SWIM_KEY_LEN];

static void
nosend(void *ctx, uint32_t addr, uint16_t port, const void *buf, size_t len)
{
	(void)ctx;
	(void)addr;
	(void)port;
	(void)buf;
	(void)len;
}

static void
setup(void)
{
	static const struct swim_conf conf = { 100, 40, 300, 3, 1000 };
	static int done;

	if (done)
		return;
	done = 1;
	memset(key, 0x5a, sizeof(key));
	if (swim_init(&sw, &conf, 1, 1, key, 80, 81, nosend, NULL, NULL) < 0)
		abort();
	cluster_fsm_init(&fsm, NULL, NULL);
}

static void
cluster_file(const uint8_t *d, size_t n)
{
	char path[] = "/tmp/fuzz_ctl_XXXXXX";
	struct cluster_desc cd;
	struct conf_errs errs;
	static struct plan_model m;
	struct plan_job j = { 8, 2 };
	struct plan p;
	int fd = mkstemp(path);

	if (fd < 0)
		return;
	if (write(fd, d, n) != (ssize_t)n) {
		close(fd);
		unlink(path);
		return;
	}
	close(fd);
	memset(&errs, 0, sizeof(errs));
	if (cluster_load(&cd, path, &errs) == 0) {
		if (cd.c.ndev <= 64) {
			plan_model_gpt(&m, 2, 2, 64, 16, 256);
			plan_compute(&m, &j, &cd.c, NULL, &p);
			plan_fini(&p);
		}
		cluster_free(&cd);
	}
	unlink(path);
}

/* 5: tp, pp, dp bytes, then layout words; two devices, ids 1 and 2 */
static void
layout_plan(const uint8_t *d, size_t n)
{
	static struct plan_model m;
	struct plan_job j = { 8, 4, 1, 1 };
	struct plan_device dev[2] = { { 1, 0, 10, 1e9 }, { 2, 0, 5, 1e9 } };
	double bw = 1e9, rtt = 1e-4;
	struct plan_cluster c = { 2, dev, 1, &bw, &rtt };
	uint32_t words[64];
	struct plan run, fresh;
	int nw;

	if (n < 3)
		return;
	nw = (int)((n - 3) / 4 > 64 ? 64 : (n - 3) / 4);
	memcpy(words, d + 3, (size_t)nw * 4);
	if (plan_from_layout(words, nw, d[0], d[1], d[2], 8, 4, &run) < 0)
		return;
	plan_model_gpt(&m, 2, 2, 64, 16, 256);
	if (plan_eval(&m, &j, &c, &run) == 0 && run.ok) {
		struct replan_conf rc = { 0.15, 1, 0 };
		struct replan_state rs = { 0, -1 };
		char why[256];

		plan_compute(&m, &j, &c, &run, &fresh);
		replan_decide(&rc, &rs, 10, &run, &fresh, why, sizeof(why));
		plan_fini(&fresh);
	}
	plan_fini(&run);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[SWIM_MAX_DGRAM + 64];
	struct raft_buffer rb;
	void *result;

	setup();
	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0:
		if (size - 1 + SWIM_MAC_LEN > sizeof(buf))
			return 0;
		memcpy(buf, data + 1, size - 1);
		crypto_auth(buf + size - 1, buf, size - 1, key);
		swim_recv(&sw, now, 0x0100000a, 7700, buf,
		    size - 1 + SWIM_MAC_LEN);
		break;
	case 1:
		swim_recv(&sw, now, 0x0200000a, 7700, data + 1, size - 1);
		break;
	case 2:
		rb.base = (void *)(data + 1);
		rb.len = size - 1;
		fsm.fsm.apply(&fsm.fsm, &rb, &result);
		break;
	case 3:
		/* restore takes the buffer: give it a raft_malloc'd copy */
		if ((rb.base = raft_malloc(size)) == NULL)
			return 0;
		memcpy(rb.base, data + 1, size - 1);
		rb.len = size - 1;
		if (fsm.fsm.restore(&fsm.fsm, &rb) != 0)
			raft_free(rb.base);
		break;
	case 4:
		cluster_file(data + 1, size - 1);
		break;
	case 5:
		layout_plan(data + 1, size - 1);
		break;
	}
	now += 7;
	swim_tick(&sw, now);
	return 0;
}
