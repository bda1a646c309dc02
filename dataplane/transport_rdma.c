/*
 * transport_rdma.c: the RDMA verbs backend (librdmacm + libibverbs, RC).
 *
 * Per peer two connections, as in transport_tcp.c: ours (outbound, we
 * only send data on it) and the peer's (inbound, we only receive data).
 * The receiver owns a ring of `ring` bytes, registered once as one memory
 * region with the connection; the sender has a staging ring of the same
 * size at the same offsets (one MR too).  A message is a record: wire
 * header + payload, padded to RDMA_ALIGN; the sender copies it into its
 * staging ring and puts it at the same offset of the receiver's ring with
 * one RDMA WRITE WITH IMMEDIATE.  The immediate (consumed by one posted
 * zero-length RECV) says how long the record is and whether it starts at
 * offset 0 because the rest of the ring was too short (RDMA_IMM_WRAP).
 * A payload that lies in the memory the engine registered (the arena,
 * tp_ops mem_register: one MR, made with the PD) is not copied: the
 * WRITE gathers the header from the staging ring and the payload from
 * the arena (two SGEs).
 * RC delivers in order, so the receiver parses records in completion
 * order, hands each up (the payload is lent from the ring for the call)
 * and then gives the bytes back.
 *
 * Control (SEND/RECV, receiver to sender): CREDIT {consumed bytes,
 * consumed records}, both cumulative.  The sender writes only while
 *   bytes in flight + record <= ring   and   records in flight < RDMA_RQ,
 * so it can neither overwrite unread bytes nor find no RECV posted (no
 * RNR).  The receiver returns what it consumed at once when no CREDIT is
 * in flight, else once a quarter of either has gathered (so a blocked
 * sender always gets credit back, whatever the record size); at most
 * RDMA_CTL CREDITs are in flight, and RNR retries (7: forever) cover the
 * sender's reposting of its RDMA_CTL RECVs.
 *
 * Connection setup (rdma_cm over IP; private data big-endian):
 *   1. active: rdma_resolve_addr, rdma_resolve_route, create QP, post the
 *      CTL RECVs, rdma_connect {magic, version, node id};
 *   2. passive (CONNECT_REQUEST): allocate and register the ring, create
 *      QP, post RDMA_RQ RECVs, rdma_accept {magic, version, ring address,
 *      rkey, ring size};
 *   3. both ESTABLISHED: the active side learns the ring from the
 *      accept's private data, tells the engine (dp_on_connected), whose
 *      HELLO is the first record: it names the peer to the passive side.
 *
 * A connection:
 *
 *   outbound:  RESOLVING_ADDR --ADDR_RESOLVED--> RESOLVING_ROUTE
 *              --ROUTE_RESOLVED--> CONNECTING --ESTABLISHED--> UP
 *   inbound:   (CONNECT_REQUEST) ACCEPTING --rdma_accept--> UP
 *              (the QP is in RTS then: records may complete before
 *              ESTABLISHED is read, which changes nothing)
 *
 *   any --(error, DISCONNECTED, completion error, disconnect())-->
 *   CLOSING: QP moved to ERROR, so that every posted WR completes
 *            (flushed); messages pulled get dp_on_sent(err)
 *   CLOSING --(no WR posted, or RDMA_CLOSE_MS passed)--> freed in poll
 *            (QP, CQ, MR, buffer, cm id; never from an event handler,
 *            because rdma_destroy_id waits for its events' acks)
 *
 * Errors: rdma_cm calls return -1 with errno, verbs calls return a
 * positive errno, completions a status: all become -errno here, and each
 * is reported on its peer (dp_on_down with the verbs' words).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "log.h"
#include "dataplane.h"

/* our state of a peer */
#define PEER_ST(p)	((p)->tp[DP_TP_SLOT(DP_BACKEND_RDMA)])

#define RDMA_RING_MIN	(4u << 20)	/* receive ring, bytes, at least */
#define RDMA_ALIGN	64		/* records start on this */
#define RDMA_RQ		64		/* RECVs posted for records */
#define RDMA_CTL	16		/* control buffers each way */
#define RDMA_CTL_LEN	32		/* bytes of one */
#define RDMA_IMM_WRAP	0x80000000u	/* record starts at offset 0 */
#define RDMA_TIMEOUT_MS	2000		/* address and route resolution */
#define RDMA_CLOSE_MS	2000		/* flushes we wait for at most */
#define RDMA_MAGIC	0x41524344u	/* "ARCD" */
#define RDMA_VERSION	1
#define RDMA_CREDIT	1		/* control message type */

enum rc_state {
	RC_RESOLVING_ADDR = 1,
	RC_RESOLVING_ROUTE,
	RC_CONNECTING,
	RC_ACCEPTING,
	RC_UP,
	RC_CLOSING,
};

/* Private data of rdma_connect and rdma_accept (big-endian). */
struct rdma_req_pd {
	uint32_t	magic;
	uint32_t	version;
	uint32_t	node_id;
};

struct rdma_acc_pd {
	uint32_t	magic;
	uint32_t	version;
	uint64_t	addr;
	uint32_t	rkey;
	uint32_t	pad;
	uint64_t	ring;
};

struct rdma_state;

/* One RC connection and everything that dies with it. */
struct rdma_conn {
	LIST_ENTRY(rdma_conn) entry;
	struct rdma_state *st;
	struct rdma_cm_id *id;
	enum rc_state	 state;
	int		 outbound;
	struct dp_peer	*peer;		/* inbound: NULL before the hello */
	struct ibv_cq	*cq;		/* its own, on the shared channel */
	uint8_t		*buf;		/* ring, then RDMA_CTL * CTL_LEN */
	size_t		 buflen;
	struct ibv_mr	*mr;		/* buf, registered once */
	uint64_t	 ring;		/* bytes, a power of two */
	int		 posted;	/* WRs not completed yet */
	int		 err;		/* first error, -errno */
	uint64_t	 close_ns;	/* CLOSING since */

	/* sender (outbound) */
	uint64_t	 raddr;		/* the receiver's ring */
	uint32_t	 rkey;
	uint64_t	 tx_head;	/* bytes written, pads included */
	uint64_t	 tx_credit;	/* bytes the receiver consumed */
	uint32_t	 tx_recs;	/* records written */
	uint32_t	 tx_recs_credit; /* records the receiver consumed */
	struct tp_msg	*held;		/* pulled, waiting for credit */
	struct tp_msgq	 inflight;	/* written, completion pending */

	/* receiver (inbound) */
	uint64_t	 rx_tail;	/* bytes consumed */
	uint32_t	 rx_recs;	/* records consumed */
	uint64_t	 rx_credited;	/* as last told */
	uint32_t	 rx_recs_credited;
	int		 ctl_sends;	/* CREDITs in flight */
	uint32_t	 ctl_next;	/* next control buffer to send from */
};
LIST_HEAD(rdma_connq, rdma_conn);

struct rdma_state {
	struct dp	*dp;
	struct rdma_event_channel *ech;
	struct ibv_comp_channel *cch;	/* every CQ's; made on first use */
	struct ibv_context *verbs;	/* the device of cch and pd */
	struct ibv_pd	*pd;
	struct rdma_cm_id *listen;
	int		 epfd;		/* ech and cch: tp_ops fd */
	struct rdma_connq conns;
	uint64_t	 ring;		/* bytes of each ring */
	uint8_t		*mem;		/* registered memory (the arena) */
	size_t		 memlen;
	struct ibv_mr	*mem_mr;	/* its MR, once there is a PD */
};

/* The peer's per-peer state: its two connections. */
struct rdma_peer {
	struct rdma_conn *out;
	struct rdma_conn *in;
};

static void	rdma_conn_close(struct rdma_conn *c, int err);
static void	rdma_pump(struct rdma_conn *c);

static int
rdma_wc_errno(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS:		return 0;
	case IBV_WC_WR_FLUSH_ERR:	return -ECANCELED;
	case IBV_WC_RETRY_EXC_ERR:	return -ETIMEDOUT;
	case IBV_WC_RNR_RETRY_EXC_ERR:	return -ENOBUFS;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR:	return -EACCES;
	case IBV_WC_LOC_LEN_ERR:
	case IBV_WC_REM_INV_REQ_ERR:	return -EINVAL;
	case IBV_WC_REM_OP_ERR:		return -EREMOTEIO;
	default:			return -EIO;
	}
}

static struct rdma_peer *
rdma_peer_of(struct dp_peer *p)
{
	if (PEER_ST(p) == NULL)
		PEER_ST(p) = calloc(1, sizeof(struct rdma_peer));
	return PEER_ST(p);
}

static int
rdma_sockaddr(const char *host, uint16_t port, struct sockaddr_in *sa)
{
	struct addrinfo hints, *res;
	int r;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		return 0;
	if (inet_pton(AF_INET, host, &sa->sin_addr) == 1)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0)
		return r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	sa->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

/* The arena's MR, once there are both a PD and an arena. */
static void
rdma_mem_mr(struct rdma_state *st)
{
	if (st->pd == NULL || st->mem == NULL || st->mem_mr != NULL)
		return;
	if ((st->mem_mr = ibv_reg_mr(st->pd, st->mem, st->memlen,
	    IBV_ACCESS_LOCAL_WRITE)) == NULL)
		log_warnx("dp.rdma: ibv_reg_mr of the %zu-byte arena: %s: "
		    "payloads are copied", st->memlen, strerror(errno));
}

static int
rdma_mem_register(void *state, void *base, size_t len)
{
	struct rdma_state *st = state;

	if (st->mem_mr != NULL) {
		ibv_dereg_mr(st->mem_mr);
		st->mem_mr = NULL;
	}
	st->mem = base;
	st->memlen = len;
	rdma_mem_mr(st);
	return 0;
}

/* The PD and completion channel, on the device of the first connection. */
static int
rdma_device(struct rdma_state *st, struct ibv_context *verbs)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (st->verbs != NULL)
		return st->verbs == verbs ? 0 : -EXDEV;
	if ((st->pd = ibv_alloc_pd(verbs)) == NULL)
		return -errno;
	if ((st->cch = ibv_create_comp_channel(verbs)) == NULL)
		goto free_pd;
	if (fcntl(st->cch->fd, F_SETFL, O_NONBLOCK) < 0 ||
	    epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->cch->fd, &ev) < 0)
		goto destroy_cch;
	st->verbs = verbs;
	rdma_mem_mr(st);
	return 0;

destroy_cch:
	ibv_destroy_comp_channel(st->cch);
	st->cch = NULL;
free_pd:
	ibv_dealloc_pd(st->pd);
	st->pd = NULL;
	return -errno;
}

static struct rdma_conn *
rdma_conn_new(struct rdma_state *st, struct rdma_cm_id *id, int outbound)
{
	struct rdma_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->st = st;
	c->id = id;
	c->outbound = outbound;
	c->ring = st->ring;
	TAILQ_INIT(&c->inflight);
	id->context = c;
	LIST_INSERT_HEAD(&st->conns, c, entry);
	return c;
}

static int
rdma_post_recv(struct rdma_conn *c, uint64_t wr_id)
{
	struct ibv_recv_wr wr, *bad;
	struct ibv_sge sge;
	int r;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = wr_id;
	if (c->outbound) {
		/* a CREDIT lands in control buffer wr_id */
		sge.addr = (uintptr_t)(c->buf + c->ring + wr_id * RDMA_CTL_LEN);
		sge.length = RDMA_CTL_LEN;
		sge.lkey = c->mr->lkey;
		wr.sg_list = &sge;
		wr.num_sge = 1;
	}
	if ((r = ibv_post_recv(c->id->qp, &wr, &bad)) != 0)
		return -r;
	c->posted++;
	return 0;
}

/*
 * The buffer, its MR, the CQ and the QP of c, and its RECVs posted.
 * On failure what was made stays in c for rdma_conn_free.
 */
static int
rdma_conn_setup(struct rdma_conn *c)
{
	struct rdma_state *st = c->st;
	struct ibv_qp_init_attr qa;
	int r, nsend, nrecv;

	if ((r = rdma_device(st, c->id->verbs)) < 0)
		return r;
	c->buflen = c->ring + RDMA_CTL * RDMA_CTL_LEN;
	if ((r = posix_memalign((void **)&c->buf, 4096, c->buflen)) != 0) {
		c->buf = NULL;
		return -r;
	}
	memset(c->buf, 0, c->buflen);
	if ((c->mr = ibv_reg_mr(st->pd, c->buf, c->buflen,
	    IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)) == NULL)
		return -errno;
	nsend = c->outbound ? RDMA_RQ + 2 : RDMA_CTL + 2;
	nrecv = c->outbound ? RDMA_CTL : RDMA_RQ;
	if ((c->cq = ibv_create_cq(c->id->verbs, nsend + nrecv, c, st->cch,
	    0)) == NULL)
		return -errno;
	if ((r = ibv_req_notify_cq(c->cq, 0)) != 0)
		return -r;
	memset(&qa, 0, sizeof(qa));
	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = nsend;
	qa.cap.max_recv_wr = nrecv;
	qa.cap.max_send_sge = 2;	/* header, payload from the arena */
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(c->id, st->pd, &qa) < 0)
		return -errno;
	for (int i = 0; i < nrecv; i++)
		if ((r = rdma_post_recv(c, (uint64_t)i)) < 0)
			return r;
	return 0;
}

/* Releases everything of c (CLOSING: its messages are reported). */
static void
rdma_conn_free(struct rdma_conn *c)
{
	LIST_REMOVE(c, entry);
	if (c->id->qp != NULL)
		rdma_destroy_qp(c->id);
	if (c->cq != NULL)
		ibv_destroy_cq(c->cq);
	if (c->mr != NULL)
		ibv_dereg_mr(c->mr);
	free(c->buf);
	rdma_destroy_id(c->id);
	free(c);
}

/*
 * Starts closing c: takes it from its peer, reports the messages it
 * holds as failed (their bytes are in our staging ring: nothing is lent),
 * and moves the QP to ERROR so that everything posted completes, flushed.
 * rdma_poll frees it then.
 */
static void
rdma_conn_close(struct rdma_conn *c, int err)
{
	struct dp_peer *p = c->peer;
	struct ibv_qp_attr qa;
	struct tp_msg *m;

	if (c->state == RC_CLOSING)
		return;
	if (c->err == 0)
		c->err = err;
	c->state = RC_CLOSING;
	c->close_ns = dp_now_ns();
	c->peer = NULL;
	if (p != NULL && PEER_ST(p) != NULL) {
		struct rdma_peer *rp = PEER_ST(p);

		if (rp->out == c)
			rp->out = NULL;
		if (rp->in == c)
			rp->in = NULL;
	}
	if (c->held != NULL) {
		dp_on_sent(c->st->dp, p, c->held, c->err);
		c->held = NULL;
	}
	while ((m = TAILQ_FIRST(&c->inflight)) != NULL) {
		TAILQ_REMOVE(&c->inflight, m, entry);
		dp_on_sent(c->st->dp, p, m, c->err);
	}
	if (c->id->qp != NULL) {
		memset(&qa, 0, sizeof(qa));
		qa.qp_state = IBV_QPS_ERR;
		(void)ibv_modify_qp(c->id->qp, &qa, IBV_QP_STATE);
	}
	/* fails (EINVAL) unless connected: nothing more to tell then */
	(void)rdma_disconnect(c->id);
}

/*
 * c failed: an outbound one that never came up is a failed connect (the
 * engine retries), any other takes the link down (the engine calls
 * rdma_disconnect).
 */
static void
rdma_conn_fail(struct rdma_conn *c, int err, const char *why)
{
	struct dp_peer *p = c->peer;
	int connecting = c->outbound && c->state <= RC_CONNECTING;

	rdma_conn_close(c, err);
	if (p != NULL && connecting)
		dp_on_connect_failed(c->st->dp, p, err, why);
	else if (p != NULL)
		dp_on_down(c->st->dp, p, err, why);
}

static int
rdma_init(struct dp *dp, void **state)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct ibv_device **devs;
	struct rdma_state *st;
	struct sockaddr_in sa;
	size_t need;
	int n, r;

	/*
	 * Without RDMA in the kernel this fails with ENOSYS, and librdmacm
	 * later with ENODEV behind gai words that mean nothing: say it here.
	 */
	if ((devs = ibv_get_device_list(&n)) == NULL) {
		r = -errno;
		log_warnx("dp.rdma: no RDMA: ibv_get_device_list: %s (%s) "
		    "---> HINT: this kernel has no RDMA support "
		    "(CONFIG_INFINIBAND); use transport = tcp or auto",
		    strerror(-r), strerrorname_np(-r));
		return r;
	}
	ibv_free_device_list(devs);
	if (n == 0) {
		log_warnx("dp.rdma: no RDMA device ---> HINT: add one, e.g. "
		    "Soft-RoCE: modprobe rdma_rxe; rdma link add rxe0 type "
		    "rxe netdev eth0");
		return -ENODEV;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->dp = dp;
	LIST_INIT(&st->conns);
	need = 2 * (dp->buf_size + WIRE_HDR_LEN + RDMA_ALIGN);
	if (need < dp->conf.chunk_bytes * 2 + 2 * RDMA_ALIGN + WIRE_HDR_LEN)
		need = dp->conf.chunk_bytes * 2 + 2 * RDMA_ALIGN +
		    WIRE_HDR_LEN;
	for (st->ring = RDMA_RING_MIN; st->ring < need; st->ring <<= 1)
		;
	if ((st->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		r = -errno;
		goto free_st;
	}
	if ((st->ech = rdma_create_event_channel()) == NULL) {
		r = -errno;
		log_warnx("dp.rdma: rdma_create_event_channel: %s",
		    strerror(-r));
		goto close_ep;
	}
	ev.data.ptr = st->ech;
	if (fcntl(st->ech->fd, F_SETFL, O_NONBLOCK) < 0 ||
	    epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->ech->fd, &ev) < 0) {
		r = -errno;
		goto destroy_ech;
	}
	if ((r = rdma_sockaddr(dp->conf.listen, dp->conf.port, &sa)) < 0) {
		log_warnx("dp.rdma: listen address %s: %s", dp->conf.listen,
		    strerror(-r));
		goto destroy_ech;
	}
	if (rdma_create_id(st->ech, &st->listen, NULL, RDMA_PS_TCP) < 0) {
		r = -errno;
		log_warnx("dp.rdma: rdma_create_id: %s", strerror(-r));
		goto destroy_ech;
	}
	if (rdma_bind_addr(st->listen, (struct sockaddr *)&sa) < 0 ||
	    rdma_listen(st->listen, DP_MAX_PEERS) < 0) {
		r = -errno;
		log_warnx("dp.rdma: listen on %s:%u: %s (%s) ---> HINT: "
		    "is the address on an RDMA device (rdma link)?",
		    dp->conf.listen, dp->conf.port, strerror(-r),
		    strerrorname_np(-r));
		goto destroy_id;
	}
	*state = st;
	log_info("dp.rdma: listening on %s:%u, rings of %llu bytes",
	    dp->conf.listen, dp->conf.port, (unsigned long long)st->ring);
	return 0;

destroy_id:
	rdma_destroy_id(st->listen);
destroy_ech:
	rdma_destroy_event_channel(st->ech);
close_ep:
	close(st->epfd);
free_st:
	free(st);
	return r;
}

static void
rdma_fini(void *state)
{
	struct rdma_state *st = state;
	struct rdma_conn *c;

	while ((c = LIST_FIRST(&st->conns)) != NULL) {
		rdma_conn_close(c, -ECANCELED);
		rdma_conn_free(c);
	}
	for (int i = 0; i < st->dp->npeers; i++) {
		free(PEER_ST(st->dp->peers[i]));
		PEER_ST(st->dp->peers[i]) = NULL;
	}
	rdma_destroy_id(st->listen);
	if (st->cch != NULL)
		ibv_destroy_comp_channel(st->cch);
	if (st->mem_mr != NULL)
		ibv_dereg_mr(st->mem_mr);
	if (st->pd != NULL)
		ibv_dealloc_pd(st->pd);
	rdma_destroy_event_channel(st->ech);
	close(st->epfd);
	free(st);
}

static int
rdma_connect_peer(void *state, struct dp_peer *p)
{
	struct rdma_state *st = state;
	struct rdma_peer *rp;
	struct rdma_cm_id *id;
	struct rdma_conn *c;
	struct sockaddr_in sa;
	int r;

	if ((rp = rdma_peer_of(p)) == NULL)
		return -ENOMEM;
	if (rp->out != NULL)
		return -EALREADY;
	if ((r = rdma_sockaddr(p->addr, p->port, &sa)) < 0)
		return r;
	if (rdma_create_id(st->ech, &id, NULL, RDMA_PS_TCP) < 0)
		return -errno;
	if ((c = rdma_conn_new(st, id, 1)) == NULL) {
		rdma_destroy_id(id);
		return -ENOMEM;
	}
	c->peer = p;
	rp->out = c;
	c->state = RC_RESOLVING_ADDR;
	if (rdma_resolve_addr(id, NULL, (struct sockaddr *)&sa,
	    RDMA_TIMEOUT_MS) < 0) {
		r = -errno;
		log_debugx("dp.rdma: peer %u: rdma_resolve_addr %s: %s",
		    p->id, p->addr, strerror(-r));
		rdma_conn_close(c, r);
		return r;
	}
	return 0;
}

/* Tells the sender what we consumed once it is worth a message. */
static void
rdma_credit(struct rdma_conn *c)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	uint8_t *b;
	uint64_t bytes = c->rx_tail - c->rx_credited;
	uint32_t recs = c->rx_recs - c->rx_recs_credited, v32;
	int r;

	/*
	 * Batched (a quarter of either) while CREDITs are in flight; any
	 * amount when none is: a sender may be waiting for just that.
	 */
	if (c->state != RC_UP || c->ctl_sends >= RDMA_CTL ||
	    (bytes == 0 && recs == 0) || (c->ctl_sends > 0 &&
	    bytes < c->ring / 4 && recs < RDMA_RQ / 4))
		return;
	b = c->buf + c->ring + (c->ctl_next % RDMA_CTL) * RDMA_CTL_LEN;
	v32 = htonl(RDMA_CREDIT);
	memcpy(b, &v32, 4);
	v32 = htonl(c->rx_recs);
	memcpy(b + 4, &v32, 4);
	v32 = htonl((uint32_t)(c->rx_tail >> 32));
	memcpy(b + 8, &v32, 4);
	v32 = htonl((uint32_t)c->rx_tail);
	memcpy(b + 12, &v32, 4);
	sge.addr = (uintptr_t)b;
	sge.length = 16;
	sge.lkey = c->mr->lkey;
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 0;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	if ((r = ibv_post_send(c->id->qp, &wr, &bad)) != 0) {
		rdma_conn_fail(c, -r, "ibv_post_send (credit) failed");
		return;
	}
	c->posted++;
	c->ctl_sends++;
	c->ctl_next++;
	c->rx_credited = c->rx_tail;
	c->rx_recs_credited = c->rx_recs;
}

/* Writes what fits; the rest waits for credit. */
/* [p, p + len) lies in the registered arena. */
static int
in_mem(const struct rdma_state *st, const void *p, size_t len)
{
	const uint8_t *b = p;

	return st->mem_mr != NULL && b >= st->mem &&
	    len <= st->memlen && (size_t)(b - st->mem) <= st->memlen - len;
}

static void
rdma_pump(struct rdma_conn *c)
{
	struct dp *dp = c->st->dp;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge[2];
	struct tp_msg *m;
	uint64_t off, pad, rec;
	int r;

	while (c->state == RC_UP) {
		if ((m = c->held) == NULL &&
		    (m = dp_tx_pull(dp, c->peer)) == NULL)
			return;
		c->held = m;
		rec = (WIRE_HDR_LEN + (uint64_t)m->len + RDMA_ALIGN - 1) &
		    ~(uint64_t)(RDMA_ALIGN - 1);
		if (rec > c->ring / 2) {
			c->held = NULL;
			dp_on_sent(dp, c->peer, m, -EMSGSIZE);
			continue;
		}
		off = c->tx_head & (c->ring - 1);
		pad = off + rec > c->ring ? c->ring - off : 0;
		if (c->tx_head + pad + rec - c->tx_credit > c->ring ||
		    c->tx_recs - c->tx_recs_credit >= RDMA_RQ)
			return;		/* no credit: CREDIT will pump */
		c->held = NULL;
		c->tx_head += pad;
		off = c->tx_head & (c->ring - 1);
		memcpy(c->buf + off, m->hdr, WIRE_HDR_LEN);
		memset(&wr, 0, sizeof(wr));
		wr.wr_id = (uintptr_t)m;
		wr.sg_list = sge;
		sge[0].addr = (uintptr_t)(c->buf + off);
		sge[0].lkey = c->mr->lkey;
		if (m->len > 0 && in_mem(c->st, m->payload, m->len)) {
			/* from the arena as it is */
			sge[0].length = WIRE_HDR_LEN;
			sge[1].addr = (uintptr_t)m->payload;
			sge[1].length = m->len;
			sge[1].lkey = c->st->mem_mr->lkey;
			wr.num_sge = 2;
		} else {
			if (m->len > 0)
				memcpy(c->buf + off + WIRE_HDR_LEN, m->payload,
				    m->len);
			sge[0].length = (uint32_t)(WIRE_HDR_LEN + m->len);
			wr.num_sge = 1;
		}
		wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.imm_data = htonl((uint32_t)(rec / RDMA_ALIGN) |
		    (pad > 0 ? RDMA_IMM_WRAP : 0));
		wr.wr.rdma.remote_addr = c->raddr + off;
		wr.wr.rdma.rkey = c->rkey;
		if ((r = ibv_post_send(c->id->qp, &wr, &bad)) != 0) {
			c->held = m;
			rdma_conn_fail(c, -r, "ibv_post_send (write) failed");
			return;
		}
		c->posted++;
		c->tx_head += rec;
		c->tx_recs++;
		if (wr.num_sge == 2)
			dp->stats.tx_zerocopy++;
		else if (m->len > 0)
			dp->stats.tx_copied++;
		TAILQ_INSERT_TAIL(&c->inflight, m, entry);
	}
}

static void
rdma_kick(void *state, struct dp_peer *p)
{
	struct rdma_peer *rp = PEER_ST(p);

	(void)state;
	if (rp != NULL && rp->out != NULL)
		rdma_pump(rp->out);
}

static void
rdma_disconnect_peer(void *state, struct dp_peer *p)
{
	struct rdma_peer *rp = PEER_ST(p);

	(void)state;
	if (rp == NULL)
		return;
	if (rp->out != NULL)
		rdma_conn_close(rp->out, -ECONNRESET);
	if (rp->in != NULL)
		rdma_conn_close(rp->in, -ECONNRESET);
	/* the engine may free p next (peer_remove); connect makes a new one */
	free(rp);
	PEER_ST(p) = NULL;
}

static int
rdma_fd(void *state)
{
	return ((struct rdma_state *)state)->epfd;
}

/* A record arrived on inbound c: imm says where and how long. */
static void
rdma_on_record(struct rdma_conn *c, uint32_t imm)
{
	struct dp *dp = c->st->dp;
	uint64_t rec = (uint64_t)(imm & ~RDMA_IMM_WRAP) * RDMA_ALIGN, off;
	struct wire_hdr h;
	enum wire_err e;
	const uint8_t *raw;

	off = c->rx_tail & (c->ring - 1);
	if (imm & RDMA_IMM_WRAP) {
		c->rx_tail += c->ring - off;
		off = 0;
	}
	if (rec < WIRE_HDR_LEN || off + rec > c->ring) {
		rdma_conn_fail(c, -EBADMSG, "record outside the ring");
		return;
	}
	raw = c->buf + off;
	e = wire_decode(raw, WIRE_HDR_LEN, &h);
	if (e == WIRE_OK && WIRE_HDR_LEN + (uint64_t)h.length > rec)
		e = WIRE_ELENGTH;
	if (e != WIRE_OK) {
		/* the framing is lost: the connection cannot go on */
		dp_on_bad(dp, c->peer, e);
		rdma_conn_fail(c, -EBADMSG, "bad record");
		return;
	}
	if (c->peer != NULL)
		dp_on_recv(dp, c->peer, &h, raw, raw + WIRE_HDR_LEN);
	else if ((c->peer = dp_on_hello(dp, &h, raw, raw + WIRE_HDR_LEN))
	    != NULL) {
		struct rdma_peer *rp = rdma_peer_of(c->peer);

		if (rp == NULL) {
			rdma_conn_close(c, -ENOMEM);
			return;
		}
		if (rp->in != NULL && rp->in != c)
			rdma_conn_close(rp->in, -ECONNRESET);
		rp->in = c;
	} else {
		rdma_conn_close(c, -EPROTO);
		return;
	}
	if (c->state != RC_UP)
		return;		/* closed by the engine meanwhile */
	c->rx_tail += rec;
	c->rx_recs++;
	rdma_credit(c);
}

static void
rdma_on_wc(struct rdma_conn *c, const struct ibv_wc *wc)
{
	struct dp *dp = c->st->dp;
	struct tp_msg *m;
	int err = rdma_wc_errno(wc->status), r;

	c->posted--;
	if (c->state == RC_CLOSING)
		return;		/* flushed; its messages were reported */
	if (err < 0) {
		char why[64];

		snprintf(why, sizeof(why), "completion: %s",
		    ibv_wc_status_str(wc->status));
		rdma_conn_fail(c, err, why);
		return;
	}
	switch (wc->opcode) {
	case IBV_WC_RDMA_WRITE:
		m = (struct tp_msg *)(uintptr_t)wc->wr_id;
		TAILQ_REMOVE(&c->inflight, m, entry);
		dp_on_sent(dp, c->peer, m, 0);
		break;
	case IBV_WC_SEND:
		c->ctl_sends--;
		rdma_credit(c);
		break;
	case IBV_WC_RECV_RDMA_WITH_IMM:
		if (c->state == RC_UP)
			rdma_on_record(c, ntohl(wc->imm_data));
		if (c->state == RC_UP && (r = rdma_post_recv(c, 0)) < 0)
			rdma_conn_fail(c, r, "ibv_post_recv failed");
		break;
	case IBV_WC_RECV: {
		const uint8_t *b = c->buf + c->ring +
		    wc->wr_id * RDMA_CTL_LEN;
		uint32_t v[4];

		if (!c->outbound || wc->byte_len < 16) {
			rdma_conn_fail(c, -EBADMSG, "bad control message");
			break;
		}
		memcpy(v, b, 16);
		if (ntohl(v[0]) != RDMA_CREDIT) {
			rdma_conn_fail(c, -EBADMSG, "bad control message");
			break;
		}
		c->tx_recs_credit = ntohl(v[1]);
		c->tx_credit = (uint64_t)ntohl(v[2]) << 32 | ntohl(v[3]);
		if (c->tx_credit > c->tx_head ||
		    c->tx_recs - c->tx_recs_credit > RDMA_RQ) {
			rdma_conn_fail(c, -EBADMSG, "credit beyond sent");
			break;
		}
		if ((r = rdma_post_recv(c, wc->wr_id)) < 0) {
			rdma_conn_fail(c, r, "ibv_post_recv failed");
			break;
		}
		rdma_pump(c);
		break;
	}
	default:
		break;
	}
}

/*
 * Passive side: a peer connects.  @return 1 when ev->id is to be destroyed
 * (after the event's ack: rdma_destroy_id waits for it).
 */
static int
rdma_on_request(struct rdma_state *st, struct rdma_cm_event *ev)
{
	struct rdma_conn_param cp;
	struct rdma_req_pd req;
	struct rdma_acc_pd acc;
	struct rdma_conn *c;
	int r;

	if (ev->param.conn.private_data_len < sizeof(req)) {
		(void)rdma_reject(ev->id, NULL, 0);
		return 1;
	}
	memcpy(&req, ev->param.conn.private_data, sizeof(req));
	if (ntohl(req.magic) != RDMA_MAGIC ||
	    ntohl(req.version) != RDMA_VERSION ||
	    (c = rdma_conn_new(st, ev->id, 0)) == NULL) {
		(void)rdma_reject(ev->id, NULL, 0);
		return 1;
	}
	c->state = RC_ACCEPTING;
	if ((r = rdma_conn_setup(c)) < 0) {
		log_warnx("dp.rdma: connection from node %u: %s",
		    ntohl(req.node_id), strerror(-r));
		goto reject;
	}
	acc.magic = htonl(RDMA_MAGIC);
	acc.version = htonl(RDMA_VERSION);
	acc.addr = htobe64((uintptr_t)c->buf);
	acc.rkey = htonl(c->mr->rkey);
	acc.pad = 0;
	acc.ring = htobe64(c->ring);
	memset(&cp, 0, sizeof(cp));
	cp.private_data = &acc;
	cp.private_data_len = sizeof(acc);
	cp.responder_resources = 1;
	cp.initiator_depth = 1;
	cp.rnr_retry_count = 7;
	if (rdma_accept(c->id, &cp) < 0) {
		r = -errno;
		log_warnx("dp.rdma: rdma_accept from node %u: %s",
		    ntohl(req.node_id), strerror(-r));
		goto reject;
	}
	/*
	 * rdma_accept left the QP in RTS: records may complete before
	 * ESTABLISHED is read, so take them from now on.
	 */
	c->state = RC_UP;
	return 0;

reject:
	(void)rdma_reject(c->id, NULL, 0);
	rdma_conn_close(c, r);
	return 0;
}

/* Active side: the next step of connecting. */
static int
rdma_step(struct rdma_conn *c, struct rdma_cm_event *ev)
{
	struct rdma_conn_param cp;
	struct rdma_req_pd req;
	struct rdma_acc_pd acc;
	int r;

	switch (ev->event) {
	case RDMA_CM_EVENT_ADDR_RESOLVED:
		c->state = RC_RESOLVING_ROUTE;
		if (rdma_resolve_route(c->id, RDMA_TIMEOUT_MS) < 0)
			return -errno;
		return 0;
	case RDMA_CM_EVENT_ROUTE_RESOLVED:
		if ((r = rdma_conn_setup(c)) < 0)
			return r;
		req.magic = htonl(RDMA_MAGIC);
		req.version = htonl(RDMA_VERSION);
		req.node_id = htonl(c->st->dp->conf.node_id);
		memset(&cp, 0, sizeof(cp));
		cp.private_data = &req;
		cp.private_data_len = sizeof(req);
		cp.responder_resources = 1;
		cp.initiator_depth = 1;
		cp.retry_count = 3;
		cp.rnr_retry_count = 7;
		c->state = RC_CONNECTING;
		if (rdma_connect(c->id, &cp) < 0)
			return -errno;
		return 0;
	case RDMA_CM_EVENT_ESTABLISHED:
		if (ev->param.conn.private_data_len < sizeof(acc))
			return -EPROTO;
		memcpy(&acc, ev->param.conn.private_data, sizeof(acc));
		if (ntohl(acc.magic) != RDMA_MAGIC ||
		    ntohl(acc.version) != RDMA_VERSION ||
		    be64toh(acc.ring) != c->ring)
			return -EPROTO;	/* rings differ: chunk sizes do */
		c->raddr = be64toh(acc.addr);
		c->rkey = ntohl(acc.rkey);
		c->state = RC_UP;
		dp_on_connected(c->st->dp, c->peer);
		return 0;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
		return ev->status < 0 ? ev->status : -EHOSTUNREACH;
	case RDMA_CM_EVENT_UNREACHABLE:
		return -EHOSTUNREACH;
	case RDMA_CM_EVENT_REJECTED:
		return -ECONNREFUSED;
	default:
		return -ECONNABORTED;
	}
}

/* @return 1 when ev->id is to be destroyed after the ack */
static int
rdma_on_cm(struct rdma_state *st, struct rdma_cm_event *ev)
{
	struct rdma_conn *c = ev->id->context;
	int r;

	if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST)
		return rdma_on_request(st, ev);
	if (c == NULL || c->state == RC_CLOSING)
		return 0;	/* the listener, or too late */
	switch (ev->event) {
	case RDMA_CM_EVENT_DISCONNECTED:
		rdma_conn_fail(c, -ECONNRESET, "peer disconnected");
		return 0;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		rdma_conn_fail(c, -ENODEV, "RDMA device removed");
		return 0;
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		return 0;
	default:
		break;
	}
	if (!c->outbound) {
		/* accepted: UP already (rdma_on_request) */
		if (ev->event != RDMA_CM_EVENT_ESTABLISHED)
			rdma_conn_fail(c, -ECONNABORTED,
			    rdma_event_str(ev->event));
		return 0;
	}
	if ((r = rdma_step(c, ev)) < 0) {
		char why[64];

		snprintf(why, sizeof(why), "connect: %s",
		    rdma_event_str(ev->event));
		rdma_conn_fail(c, r, why);
	}
	return 0;
}

static int
rdma_poll(void *state)
{
	struct rdma_state *st = state;
	struct rdma_cm_event *ev;
	struct rdma_conn *c, *next;
	struct ibv_wc wc[16];
	struct ibv_cq *cq;
	void *ctx;
	uint64_t now = dp_now_ns();
	int n = 0, k;

	while (rdma_get_cm_event(st->ech, &ev) == 0) {
		struct rdma_cm_id *gone = rdma_on_cm(st, ev) ? ev->id : NULL;

		rdma_ack_cm_event(ev);
		if (gone != NULL)
			rdma_destroy_id(gone);
		n++;
	}
	while (st->cch != NULL && ibv_get_cq_event(st->cch, &cq, &ctx) == 0) {
		ibv_ack_cq_events(cq, 1);
		(void)ibv_req_notify_cq(cq, 0);
	}
	/* every CQ: the notify above may race with completions */
	LIST_FOREACH(c, &st->conns, entry) {
		if (c->cq == NULL)
			continue;
		while ((k = ibv_poll_cq(c->cq, 16, wc)) > 0) {
			for (int i = 0; i < k; i++)
				rdma_on_wc(c, &wc[i]);
			n += k;
		}
		if (k < 0 && c->state != RC_CLOSING)
			rdma_conn_fail(c, -EIO, "ibv_poll_cq failed");
	}
	/* closed connections whose WRs all completed (or that waited) */
	for (c = LIST_FIRST(&st->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, entry);
		if (c->state != RC_CLOSING || (c->posted > 0 &&
		    now - c->close_ns < (uint64_t)RDMA_CLOSE_MS * 1000000ull))
			continue;
		rdma_conn_free(c);
		n++;
	}
	return n;
}

const struct tp_ops tp_rdma_ops = {
	.name = "rdma",
	.backend = DP_BACKEND_RDMA,
	.caps = TP_CAP_ZEROCOPY_TX | TP_CAP_RELIABLE | TP_CAP_POLLFD,
	.init = rdma_init,
	.fini = rdma_fini,
	.connect = rdma_connect_peer,
	.kick = rdma_kick,
	.disconnect = rdma_disconnect_peer,
	.fd = rdma_fd,
	.wait = NULL,
	.poll = rdma_poll,
	.mem_register = rdma_mem_register,
};
