/*
 * wire.c: encoding and validation of the inter-node header; see wire.h.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "crc32c.h"
#include "wire.h"

static void
put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

void
wire_encode(const struct wire_hdr *h, const void *payload, size_t plen,
    uint8_t out[WIRE_HDR_LEN])
{
	uint32_t crc;

	put32(out + 0, WIRE_MAGIC);
	out[4] = WIRE_VERSION;
	out[5] = h->type;
	out[6] = (uint8_t)(h->flags >> 8);
	out[7] = (uint8_t)h->flags;
	put32(out + 8, h->epoch);
	put32(out + 12, h->source);
	put32(out + 16, (uint32_t)plen);
	put32(out + 20, h->group);
	put32(out + 24, h->op);
	put32(out + 28, h->step);
	put32(out + 32, h->chunk);
	put32(out + 36, h->count);
	put32(out + 40, h->codec);
	put32(out + 44, 0);
	crc = crc32c(0, out, WIRE_HDR_LEN);
	if (plen > 0)
		crc = crc32c(crc, payload, plen);
	put32(out + 44, crc);
}

enum wire_err
wire_decode(const uint8_t *buf, size_t len, struct wire_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (buf == NULL || len < WIRE_HDR_LEN)
		return WIRE_ESHORT;
	h->magic = get32(buf);
	h->version = buf[4];
	h->type = buf[5];
	h->flags = (uint16_t)(buf[6] << 8 | buf[7]);
	h->epoch = get32(buf + 8);
	h->source = get32(buf + 12);
	h->length = get32(buf + 16);
	h->group = get32(buf + 20);
	h->op = get32(buf + 24);
	h->step = get32(buf + 28);
	h->chunk = get32(buf + 32);
	h->count = get32(buf + 36);
	h->codec = get32(buf + 40);
	h->crc = get32(buf + 44);
	if (h->magic != WIRE_MAGIC)
		return WIRE_EMAGIC;
	if (h->version != WIRE_VERSION)
		return WIRE_EVERSION;
	if (h->type == 0 || h->type >= WIRE_NTYPES)
		return WIRE_ETYPE;
	if (h->length > WIRE_MAX_PAYLOAD)
		return WIRE_ELENGTH;
	return WIRE_OK;
}

size_t
wire_codec_max(enum wire_codec codec, uint32_t count)
{
	switch (codec) {
	case WIRE_CODEC_F32:
		return (size_t)count * 4;
	case WIRE_CODEC_BF16:
		return (size_t)count * 2;
	case WIRE_CODEC_INT8:
		return ((size_t)count + 255) / 256 * 4 + count;
	case WIRE_CODEC_SPARSE:
		return 4 + (size_t)count * 8;
	default:
		return 0;
	}
}

/* Does the payload length fit codec and count? */
static int
codec_length_ok(const struct wire_hdr *h)
{
	size_t nnz;

	if (h->codec >= WIRE_NCODECS)
		return 0;
	if (h->codec != WIRE_CODEC_SPARSE)
		return h->length == wire_codec_max(h->codec, h->count);
	if (h->length < 4 || (h->length - 4) % 8 != 0)
		return 0;
	nnz = (h->length - 4) / 8;
	return nnz <= h->count;
}

uint32_t
wire_crc_hdr(const uint8_t raw[WIRE_HDR_LEN])
{
	uint8_t tmp[WIRE_HDR_LEN];

	memcpy(tmp, raw, WIRE_HDR_LEN);
	memset(tmp + 44, 0, 4);
	return crc32c(0, tmp, WIRE_HDR_LEN);
}

enum wire_err
wire_check_crc(const struct wire_hdr *h, uint32_t crc, uint32_t epoch)
{
	if (crc != h->crc)
		return WIRE_ECRC;
	switch (h->type) {
	case WIRE_HELLO:
	case WIRE_PING:
	case WIRE_PONG:
	case WIRE_BYE:
		return WIRE_OK;
	default:
		break;
	}
	if (h->epoch != epoch)
		return WIRE_EEPOCH;
	if ((h->type == WIRE_DATA || h->type == WIRE_P2P) &&
	    !codec_length_ok(h))
		return WIRE_ECODEC;
	return WIRE_OK;
}

enum wire_err
wire_check(const struct wire_hdr *h, const uint8_t raw[WIRE_HDR_LEN],
    const void *payload, uint32_t epoch)
{
	uint32_t crc = wire_crc_hdr(raw);

	if (h->length > 0)
		crc = crc32c(crc, payload, h->length);
	return wire_check_crc(h, crc, epoch);
}

const char *
wire_strerror(enum wire_err e)
{
	static const char *const names[WIRE_NERRS] = {
		[WIRE_OK] = "ok",
		[WIRE_ESHORT] = "short header",
		[WIRE_EMAGIC] = "bad magic",
		[WIRE_EVERSION] = "unsupported version",
		[WIRE_ETYPE] = "unknown message type",
		[WIRE_ELENGTH] = "bad length",
		[WIRE_EEPOCH] = "wrong epoch",
		[WIRE_ECRC] = "checksum mismatch",
		[WIRE_ECODEC] = "payload does not match codec and count",
		[WIRE_ESOURCE] = "unexpected source node",
		[WIRE_ESEQ] = "step, chunk or count out of range",
	};

	if ((unsigned)e >= WIRE_NERRS)
		return "unknown wire error";
	return names[e];
}

const char *
wire_type_name(unsigned type)
{
	static const char *const names[WIRE_NTYPES] = {
		[WIRE_HELLO] = "hello", [WIRE_PING] = "ping",
		[WIRE_PONG] = "pong", [WIRE_DATA] = "data",
		[WIRE_P2P] = "p2p", [WIRE_PROBE] = "probe",
		[WIRE_PROBE_REPORT] = "probe-report", [WIRE_BYE] = "bye",
	};

	if (type == 0 || type >= WIRE_NTYPES)
		return "unknown";
	return names[type];
}

void
wire_hello_encode(const struct wire_hello *w, uint8_t out[WIRE_HELLO_LEN])
{
	put32(out, w->node_id);
	put32(out + 4, w->backends);
	put32(out + 8, (uint32_t)(w->boot_id >> 32));
	put32(out + 12, (uint32_t)w->boot_id);
}

int
wire_hello_decode(const void *buf, size_t len, struct wire_hello *w)
{
	const uint8_t *p = buf;

	if (len != WIRE_HELLO_LEN)
		return -EBADMSG;
	w->node_id = get32(p);
	w->backends = get32(p + 4);
	w->boot_id = (uint64_t)get32(p + 8) << 32 | get32(p + 12);
	return w->node_id == 0 ? -EBADMSG : 0;
}
