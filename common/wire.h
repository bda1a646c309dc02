/*
 * wire.h: the fixed header of every message between two nodes.
 *
 * On the wire it is WIRE_HDR_LEN bytes, every field big-endian, followed by
 * `length` payload bytes.  The CRC32C covers the encoded header (with its
 * crc field zero) and then the payload, so a flipped bit anywhere is seen.
 *
 *   off len field
 *     0   4 magic    WIRE_MAGIC ("ARCW")
 *     4   1 version  WIRE_VERSION
 *     5   1 type     enum wire_type
 *     6   2 flags    WIRE_F_*
 *     8   4 epoch    cluster epoch the sender is in (control sets it)
 *    12   4 source   sender's node id
 *    16   4 length   payload bytes, <= WIRE_MAX_PAYLOAD
 *    20   4 group    collective group id (DATA), p2p: 0
 *    24   4 op       operation sequence number in the group (or p2p pair)
 *    28   4 step     ring step of the operation
 *    32   4 chunk    chunk index inside the step's segment
 *    36   4 count    elements the payload decodes to
 *    40   4 codec    enum wire_codec of the payload
 *    44   4 crc      CRC32C
 *
 * Decoding is split in two, so that a stream transport can frame first:
 * wire_decode() checks what the header alone can say (magic, version, type,
 * length) and a stream whose header fails it has lost framing and must be
 * closed; wire_check() then checks epoch and checksum over the payload, and
 * a message failing only that is dropped while the stream goes on.  Bytes
 * from the network never assert: every failure is a returned reason.
 */
#ifndef ARC_WIRE_H
#define ARC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC		0x41524357u	/* "ARCW" */
#define WIRE_VERSION		1
#define WIRE_HDR_LEN		48
#define WIRE_MAX_PAYLOAD	(64u << 20)	/* larger data is chunked */

enum wire_type {
	WIRE_HELLO = 1,		/* first message of a connection: wire_hello */
	WIRE_PING,		/* link heartbeat and RTT probe, arg in count */
	WIRE_PONG,		/* answer to a PING, same count */
	WIRE_DATA,		/* one chunk of a collective */
	WIRE_P2P,		/* one chunk of a point-to-point send */
	WIRE_PROBE,		/* bandwidth probe payload (discarded) */
	WIRE_PROBE_REPORT,	/* receiver's measured probe rate */
	WIRE_BYE,		/* orderly close */
	WIRE_NTYPES
};

#define WIRE_F_LAST	0x0001	/* last chunk of a p2p message or probe */

/* How a DATA/P2P payload encodes its `count` fp32 values. */
enum wire_codec {
	WIRE_CODEC_F32 = 0,	/* raw little-endian fp32 */
	WIRE_CODEC_BF16,	/* bfloat16, round to nearest even */
	WIRE_CODEC_INT8,	/* per 256 values: fp32 scale, then 256 int8 */
	WIRE_CODEC_SPARSE,	/* u32 nnz, nnz u32 indexes, nnz fp32 values */
	WIRE_NCODECS
};

/* Why a header or message was refused (0: it was not). */
enum wire_err {
	WIRE_OK = 0,
	WIRE_ESHORT,		/* fewer than WIRE_HDR_LEN bytes */
	WIRE_EMAGIC,
	WIRE_EVERSION,
	WIRE_ETYPE,
	WIRE_ELENGTH,		/* over WIRE_MAX_PAYLOAD or not as received */
	WIRE_EEPOCH,
	WIRE_ECRC,
	WIRE_ECODEC,		/* codec unknown or count not matching length */
	WIRE_ESOURCE,		/* not from the node it should come from */
	WIRE_ESEQ,		/* step, chunk or count out of the op's range */
	WIRE_NERRS
};

/* The decoded header, host byte order. */
struct wire_hdr {
	uint32_t	magic;
	uint8_t		version;
	uint8_t		type;
	uint16_t	flags;
	uint32_t	epoch;
	uint32_t	source;
	uint32_t	length;
	uint32_t	group;
	uint32_t	op;
	uint32_t	step;
	uint32_t	chunk;
	uint32_t	count;
	uint32_t	codec;
	uint32_t	crc;
};

/* Payload of WIRE_HELLO (big-endian on the wire, like the header). */
struct wire_hello {
	uint32_t	node_id;
	uint32_t	backends;	/* bit per backend the sender can run */
	uint64_t	boot_id;	/* changes at every start of the sender */
};
#define WIRE_HELLO_LEN	16

/*
 * Encodes h into out, with the CRC over out and then payload.  h->magic,
 * version and crc are filled here; h->length must be plen.
 */
void		wire_encode(const struct wire_hdr *h, const void *payload,
		    size_t plen, uint8_t out[WIRE_HDR_LEN]);
/* Checks magic, version, type and length bound; fills h. */
enum wire_err	wire_decode(const uint8_t *buf, size_t len,
		    struct wire_hdr *h);
/*
 * Checks the CRC (over raw, the encoded header, and payload) and the
 * epoch (ignored for the link-level types HELLO, PING, PONG, BYE), and for
 * DATA/P2P that codec and count agree with the length.
 */
enum wire_err	wire_check(const struct wire_hdr *h,
		    const uint8_t raw[WIRE_HDR_LEN], const void *payload,
		    uint32_t epoch);
/*
 * For a receiver that checks the payload as it arrives, piece by piece:
 * wire_crc_hdr is the CRC over raw with its crc field zeroed, to extend
 * with crc32c() over the payload in order; wire_check_crc then does what
 * wire_check does with that sum in place of a pass over the payload.
 */
uint32_t	wire_crc_hdr(const uint8_t raw[WIRE_HDR_LEN]);
enum wire_err	wire_check_crc(const struct wire_hdr *h, uint32_t crc,
		    uint32_t epoch);
/* Encoded size of count values in codec; 0 if the codec is unknown. */
size_t		wire_codec_max(enum wire_codec codec, uint32_t count);
const char	*wire_strerror(enum wire_err e);
const char	*wire_type_name(unsigned type);

void		wire_hello_encode(const struct wire_hello *w,
		    uint8_t out[WIRE_HELLO_LEN]);
int		wire_hello_decode(const void *buf, size_t len,
		    struct wire_hello *w);

#endif /* ARC_WIRE_H */
