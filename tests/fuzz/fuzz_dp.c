/*
 * fuzz_dp.c: libFuzzer harness for everything that decodes bytes from
 * outside: the wire header (wire_decode, wire_check), the local record
 * framing (msg_get), the chunk codecs (comp_decode), and the engine's
 * handling of messages (dp_on_recv into groups and operations in flight).
 *
 * The same input also goes through the DPDK backend's protocol (rdp.c):
 * the frame parser over the whole input, then pieces [ctl][len16][bytes]
 * as frames (ctl & 1: built from the bytes with valid headers, so that
 * they pass the parser) into a receiving stream with reassembly, and as
 * acks into a sending stream with frames in flight.  The whole input
 * and every piece go through the ARP parser too (what it accepts must
 * build back to the same ARP bytes and teach a neighbour entry its MAC).
 *
 * The input is cut into messages: [flags byte][48 header bytes][payload,
 * as long as the header says or what is left].  With flags & 1 the header
 * fields are re-encoded with a correct CRC, so that the fuzzer gets past
 * the checksum into the collectives; otherwise the bytes go in raw.  With
 * flags & 0x40 a message goes in as a datagram backend receives it, in
 * pieces (dp_rxmsg: placed, staged or summed as they come; flags 0x30
 * pick the piece size), its length not forced to what its header says.
 *
 *   make BUILD=build fuzz            (FUZZ_SECONDS, default 600)
 *   build/fuzz/fuzz_dp crash-file    (reproduce)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"
#include "wire.h"
#include "dataplane.h"
#include "rdp.h"

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

static int
rdp_fz_deliver(void *arg, const uint8_t *data, uint16_t len, uint16_t flags)
{
	const uint8_t *m;
	size_t ml;

	if (!(flags & RDP_F_SYN))
		rdp_asm_add(arg, data, len, !!(flags & RDP_F_END), &m, &ml);
	return 0;
}

static void
rdp_fz_release(void *arg, void *handle)
{
	(void)arg;
	(void)handle;
}

static void
rdp_fz_done(void *arg, void *cookie, int res)
{
	(void)arg;
	(void)cookie;
	(void)res;
}

/*
 * The ARP parser on one frame: what it accepts must build back to the
 * same 28 bytes of ARP, and teach a neighbour its MAC.
 */
static void
fuzz_arp(const uint8_t *f, size_t len)
{
	struct rdp_neigh n;
	struct rdp_arp p, q;
	uint8_t out[RDP_ARP_LEN];

	if (rdp_arp_parse(f, len, &p) != RDP_ARP_OK)
		return;
	rdp_arp_build(out, f, &p);
	/* (the Ethernet source may differ from the ARP sender) */
	if (memcmp(out, f, 6) != 0 || memcmp(out + 12, f + 12,
	    RDP_ARP_LEN - 12) != 0 ||
	    rdp_arp_parse(out, sizeof(out), &q) != RDP_ARP_OK ||
	    memcmp(&p, &q, sizeof(p)) != 0)
		abort();
	memset(&n, 0, sizeof(n));
	rdp_neigh_want(&n, p.spa);
	rdp_neigh_due(&n, p.spa);
	if (p.tpa & 1)
		rdp_neigh_set_static(&n, p.tha);
	rdp_neigh_learn(&n, p.sha);
	if (memcmp(n.mac, n.is_static ? p.tha : p.sha, 6) != 0)
		abort();
}

static void
fuzz_rdp(const uint8_t *data, size_t size)
{
	static const struct rdp_addr ad = { .src_ip = 1, .dst_ip = 2,
	    .src_port = 7710, .dst_port = 7710 };
	static uint8_t msg[6000], frame[RDP_OVERHEAD + 2048];
	static struct rdp_asm as;
	static struct rdp_rx rx;
	static struct rdp_tx tx;
	uint8_t sack[RDP_SACK_BYTES] = { 0 };
	const uint8_t *pl;
	struct rdp_addr a;
	struct rdp_hdr h;
	struct rdp_out o;
	uint64_t now = 1000000;
	size_t off = 0;

	rdp_frame_parse(data, size, 7710, &a, &h, &pl);
	fuzz_arp(data, size);
	rdp_asm_init(&as, 1 << 16);
	rdp_rx_init(&rx, rdp_fz_deliver, rdp_fz_release, &as);
	rdp_tx_init(&tx, 1400, rdp_fz_done, NULL);
	rdp_tx_next(&tx, now, &o);			/* the SYN */
	rdp_tx_ack(&tx, 1, sack, sizeof(sack), now);
	rdp_tx_push(&tx, msg, msg, 48, msg + 48, sizeof(msg) - 48);
	while (rdp_tx_next(&tx, now, &o))
		;
	while (size - off >= 3) {
		uint8_t ctl = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		const uint8_t *f = data + off + 3;

		off += 3;
		if (len > size - off)
			len = size - off;
		off += len;
		if ((ctl & 1) && len >= 4) {
			h.type = (uint8_t)(1 + f[0] % 3);
			h.flags = f[1] & RDP_F_ALL;
			h.seq = (uint32_t)f[2] | (uint32_t)(f[3] & 7) << 8;
			h.session = 9;
			h.len = (uint16_t)(len - 4 > 2048 ? 2048 : len - 4);
			if (h.type == RDP_ACK)
				h.len = h.len >= RDP_SACK_BYTES ?
				    RDP_SACK_BYTES : 0;
			rdp_frame_encode(frame, &ad, &h);
			memcpy(frame + RDP_OVERHEAD, f + 4, h.len);
			f = frame;
			len = RDP_OVERHEAD + h.len;
		}
		fuzz_arp(f, len);
		if (rdp_frame_parse(f, len, 7710, &a, &h, &pl) != RDP_OK)
			continue;
		now += 1000;
		/* held frames point into data or frame: copy-free here */
		if (h.type == RDP_DATA && f != frame)
			rdp_rx_data(&rx, h.seq, h.flags, pl, h.len, (void *)f);
		else if (h.type == RDP_DATA &&
		    h.seq == rx.nxt)	/* frame is reused: in order only */
			rdp_rx_data(&rx, h.seq, h.flags, pl, h.len, frame);
		else if (h.type == RDP_ACK)
			rdp_tx_ack(&tx, h.seq, pl, h.len, now);
		rdp_tx_tick(&tx, now);
		while (rdp_tx_next(&tx, now, &o))
			;
	}
	rdp_rx_ack(&rx, &h.seq, sack);
	rdp_rx_reset(&rx);
	rdp_tx_reset(&tx, -ECANCELED);
	rdp_asm_fini(&as);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static float bufs[8000 + 4096];	/* ops, then the codec scratch */
	static struct dp_rxmsg rxm;
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

	fuzz_rdp(data, size);

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
		} else if (h.length != plen && (flags & 0xc0) != 0x40)
			continue;	/* only the pieces below may be short */
		/* the codecs on their own */
		if (h.codec < WIRE_NCODECS && h.count <= 4096)
			comp_decode(h.codec, p, plen, h.count, bufs + 8000,
			    flags & 4);
		peer = dp->peers[(flags >> 3) & 1];
		if ((flags & 0xc0) == 0x40) {
			static const size_t piece[4] = { 7, 64, 1438, 4093 };
			size_t k = piece[(flags >> 4) & 3], o = 0;

			/* a datagram backend's frames: header, then pieces */
			dp_rxmsg_start(dp, peer, &rxm, raw);
			do {
				size_t n = plen - o < k ? plen - o : k;

				dp_rxmsg_add(dp, peer, &rxm, p + o, n,
				    o + n == plen);
				o += n;
			} while (o < plen);
			if (rxm.mode != DP_RXM_NONE)
				abort();	/* the last piece ends it */
			continue;
		}
		if (flags & 0x80)
			dp_on_hello(dp, &h, raw, p);
		else
			dp_on_recv(dp, peer, &h, raw, p);
	}
	coll_reap(dp);
	dp_free(dp);
	dp_rxmsg_fini(&rxm);
	return 0;
}
