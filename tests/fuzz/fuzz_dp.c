/*
 * fuzz_dp.c: libFuzzer harness for everything that decodes bytes from
 * outside: the wire header (wire_decode, wire_check), the local record
 * framing (msg_get), the chunk codecs (comp_decode), and the engine's
 * handling of messages (dp_on_recv into groups and operations in flight).
 *
 * The input is cut into messages: [flags byte][48 header bytes][payload,
 * as long as the header says or what is left].  With flags & 1 the header
 * fields are re-encoded with a correct CRC, so that the fuzzer gets past
 * the checksum into the collectives; otherwise the bytes go in raw.
 *
 *   make BUILD=build fuzz            (FUZZ_SECONDS, default 600)
 *   build/fuzz/fuzz_dp crash-file    (reproduce)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"
#include "wire.h"
#include "dataplane.h"

static void
on_done(struct dp_op *op, void *arg)
{
	(void)op;
	(void)arg;
}

static struct dp *
engine(float *bufs)
{
	struct dp_conf c = { .node_id = 1, .epoch = 3, .chunk_bytes = 4096,
	    .peer_timeout_ms = 1000, .op_timeout_ms = 1000 };
	uint32_t m[3] = { 1, 2, 3 };
	struct dp *dp;

	strcpy(c.transport, "loop");
	loop_reset();
	if ((dp = dp_new(&c)) == NULL)
		abort();
	peer_add(dp, 2, "x", 1);
	peer_add(dp, 3, "x", 1);
	if (dp_start(dp) < 0)
		abort();
	group_set(dp, 1, m, 3);
	m[0] = 3;
	m[1] = 1;
	group_set(dp, 2, m, 2);
	{
		struct dp_op_args a[] = {
			{ .opcode = ARC_DP_ALLREDUCE, .group = 1,
			    .buf = bufs, .count = 3001 },
			{ .opcode = ARC_DP_BROADCAST, .group = 2, .peer = 3,
			    .buf = bufs + 3001, .count = 2000 },
			{ .opcode = ARC_DP_RECV, .peer = 2,
			    .buf = bufs + 5001, .count = 1500 },
			{ .opcode = ARC_DP_ALLGATHER, .group = 1,
			    .comp = ARC_DP_COMP_INT8, .buf = bufs + 6501,
			    .count = 999 },
			{ .opcode = ARC_DP_ALLREDUCE, .group = 2,
			    .buf = bufs + 7500, .count = 100 },	/* small */
		};

		for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
			dp_post(dp, &a[i], on_done, NULL, i);
	}
	/* both links up, as if hellos had come */
	for (int i = 0; i < dp->npeers; i++)
		dp->peers[i]->in_up = 1;
	return dp;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static float bufs[8000 + 4096];	/* ops, then the codec scratch */
	static struct msgbuf mb;
	static int inited;
	struct dp *dp;
	size_t off = 0;

	if (!inited) {
		log_init("fuzz_dp", -1);
		inited = 1;
	}
	/* the local framing, over the whole input */
	msgbuf_init(&mb);
	memcpy(mb.buf, data, size < sizeof(mb.buf) ? size : sizeof(mb.buf));
	mb.len = size < sizeof(mb.buf) ? size : sizeof(mb.buf);
	for (;;) {
		struct msg m;
		struct imsg_hello h;
		const char *why;

		if (msg_get(&mb, &m) <= 0)
			break;
		msg_check_hello(&m, &h, &why);
	}

	memset(bufs, 0, sizeof(bufs));
	dp = engine(bufs);
	while (size - off >= 1 + WIRE_HDR_LEN) {
		uint8_t flags = data[off], raw[WIRE_HDR_LEN];
		const uint8_t *p;
		struct wire_hdr h;
		struct dp_peer *peer;
		size_t plen;

		memcpy(raw, data + off + 1, WIRE_HDR_LEN);
		off += 1 + WIRE_HDR_LEN;
		p = data + off;
		if (wire_decode(raw, WIRE_HDR_LEN, &h) != WIRE_OK &&
		    !(flags & 1))
			continue;
		plen = h.length <= size - off ? h.length : size - off;
		off += plen;
		if (flags & 1) {
			/* fix the header up: right magic, length and CRC */
			h.length = (uint32_t)plen;
			if (h.type == 0 || h.type >= WIRE_NTYPES)
				h.type = WIRE_DATA;
			if (flags & 2)
				h.epoch = 3;
			wire_encode(&h, p, plen, raw);
			if (wire_decode(raw, WIRE_HDR_LEN, &h) != WIRE_OK)
				continue;
		} else if (h.length != plen)
			continue;
		/* the codecs on their own */
		if (h.codec < WIRE_NCODECS && h.count <= 4096)
			comp_decode(h.codec, p, plen, h.count, bufs + 8000,
			    flags & 4);
		peer = dp->peers[(flags >> 3) & 1];
		if (flags & 0x80)
			dp_on_hello(dp, &h, raw, p);
		else
			dp_on_recv(dp, peer, &h, raw, p);
	}
	coll_reap(dp);
	dp_free(dp);
	return 0;
}
