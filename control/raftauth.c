/*
 * raftauth.c: an authenticating wrapper around libraft's TCP transport
 * (raft_uv_tcp), because that transport trusts any socket (MACHINE.md: a
 * plain socket injected an entry, a malformed frame crashed a node).
 *
 * After raft's own handshake (protocol, id, address) on each new
 * connection, both ends prove they hold the cluster key before the stream
 * is handed to raft:
 *
 *   server -> client   "ARA1" nonce_s[32]
 *   client -> server   "ARA1" nonce_c[32] mac_c[32]
 *                      mac_c = HMAC(key, "c" nonce_s nonce_c id_c)
 *   server -> client   mac_s[32]
 *                      mac_s = HMAC(key, "s" nonce_c nonce_s id_c)
 *
 * id_c is the raft id the client claimed in raft's handshake, so a key
 * holder cannot be impersonated under another id either.  HMAC is
 * libsodium's crypto_auth.  Reads are of exact sizes, so no byte meant
 * for raft is consumed; a handshake that fails or takes longer than
 * AUTH_TIMEOUT_MS closes the stream and is counted.  This authenticates
 * connections, not each message: TCP carries the rest.
 *
 * Rules from libraft (MACHINE.md): raft_uv_init() overwrites
 * transport->data, so our state lives in impl; streams handed to raft
 * come from raft_malloc (the inner transport's); raft overwrites
 * stream->data once it has the stream.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>
#include <sodium.h>
#include <uv.h>

#include "log.h"
#include "raftauth.h"

#define AUTH_MAGIC	"ARA1"
#define AUTH_NONCE	32
#define AUTH_MAC	crypto_auth_BYTES
#define AUTH_TIMEOUT_MS	3000

struct hs {
	struct raft_auth	*a;
	uv_stream_t		*stream;
	int			 client;
	raft_id			 id;		/* the client's raft id */
	char			 address[64];	/* server side: the client's */
	struct raft_uv_connect	*req;		/* client side: raft's */
	raft_uv_connect_cb	 cb;
	struct raft_uv_connect	 inner_req;
	uint8_t			 ns[AUTH_NONCE], nc[AUTH_NONCE];
	uint8_t			 rbuf[4 + AUTH_NONCE + AUTH_MAC];
	size_t			 need, got;
	uint8_t			 wbuf[4 + AUTH_NONCE + AUTH_MAC];
	uv_write_t		 w[2];		/* one per write, never reused */
	int			 nw;
	int			 last_write;	/* server: hand over when done */
	uv_timer_t		 timer;
	int			 refs;		/* timer, inner connect,
						 * writes in flight */
	int			 finished;
	int			 inner_pending;	/* inner connect in flight */
	struct hs		*next, *prev;
};

static void	hs_read_start(struct hs *h, size_t need);

static void
hs_link(struct raft_auth *a, struct hs *h)
{
	h->next = a->hs;
	if (a->hs)
		a->hs->prev = h;
	a->hs = h;
}

static void
hs_unlink(struct raft_auth *a, struct hs *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		a->hs = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->next = h->prev = NULL;
}

static void
mac(const struct raft_auth *a, uint8_t out[AUTH_MAC], char who,
    const uint8_t *n1, const uint8_t *n2, raft_id id)
{
	uint8_t m[1 + 2 * AUTH_NONCE + 8];

	m[0] = (uint8_t)who;
	memcpy(m + 1, n1, AUTH_NONCE);
	memcpy(m + 1 + AUTH_NONCE, n2, AUTH_NONCE);
	for (int i = 0; i < 8; i++)
		m[1 + 2 * AUTH_NONCE + i] = (uint8_t)(id >> (56 - 8 * i));
	crypto_auth(out, m, sizeof(m), a->key);
}

static void
hs_unref(struct hs *h)
{
	if (--h->refs == 0)
		free(h);
}

static void
timer_closed(uv_handle_t *handle)
{
	hs_unref(handle->data);
}

static void
stream_closed(uv_handle_t *handle)
{
	raft_free(handle);
}

/* Ends a handshake: ok hands the stream over, else closes it. */
static void
hs_finish(struct hs *h, int ok, int status)
{
	struct raft_auth *a = h->a;

	if (h->finished)
		return;
	h->finished = 1;
	log_debugx("ctl.raft.auth: %s %s node %llu: %s (status %d)",
	    h->client ? "to" : "from", h->client ? "" : h->address,
	    (unsigned long long)h->id, ok ? "authenticated" : "refused",
	    status);
	hs_unlink(a, h);
	uv_timer_stop(&h->timer);
	if (h->stream != NULL)
		uv_read_stop(h->stream);
	if (ok) {
		a->stats.ok++;
		if (h->client)
			h->cb(h->req, h->stream, 0);
		else
			a->accept_cb(a->outer, h->id, h->address, h->stream);
	} else {
		if (status != RAFT_CANCELED)
			a->stats.refused++;
		if (h->stream != NULL)
			uv_close((uv_handle_t *)h->stream, stream_closed);
		if (h->client)
			h->cb(h->req, NULL, status);
	}
	h->timer.data = h;
	uv_close((uv_handle_t *)&h->timer, timer_closed);
}

static void
on_timeout(uv_timer_t *t)
{
	hs_finish(t->data, 0, RAFT_NOCONNECTION);
}

static void
on_write(uv_write_t *w, int status)
{
	struct hs *h = w->data;

	if (status != 0 && !h->finished)
		hs_finish(h, 0, RAFT_NOCONNECTION);
	else if (status == 0 && h->last_write && !h->finished)
		hs_finish(h, 1, 0);	/* our proof is out: raft's now */
	hs_unref(h);
}

static int
hs_write(struct hs *h, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)h->wbuf, (unsigned)len);
	uv_write_t *w;
	int rc;

	if (h->nw == 2)
		return UV_EINVAL;	/* the protocol has two writes */
	w = &h->w[h->nw++];
	w->data = h;
	if ((rc = uv_write(w, h->stream, &b, 1, on_write)) == 0)
		h->refs++;
	return rc;
}

/* The step after `need` bytes have arrived. */
static void
hs_step(struct hs *h)
{
	struct raft_auth *a = h->a;
	uint8_t want[AUTH_MAC];

	if (h->client && h->need == 4 + AUTH_NONCE) {
		/* got the server's nonce: answer with ours and our MAC */
		if (memcmp(h->rbuf, AUTH_MAGIC, 4) != 0) {
			hs_finish(h, 0, RAFT_NOCONNECTION);
			return;
		}
		memcpy(h->ns, h->rbuf + 4, AUTH_NONCE);
		randombytes_buf(h->nc, AUTH_NONCE);
		memcpy(h->wbuf, AUTH_MAGIC, 4);
		memcpy(h->wbuf + 4, h->nc, AUTH_NONCE);
		mac(a, h->wbuf + 4 + AUTH_NONCE, 'c', h->ns, h->nc, h->id);
		if (hs_write(h, 4 + AUTH_NONCE + AUTH_MAC) != 0) {
			hs_finish(h, 0, RAFT_NOCONNECTION);
			return;
		}
		hs_read_start(h, AUTH_MAC);
		return;
	}
	if (h->client) {
		/* the server's proof */
		mac(a, want, 's', h->nc, h->ns, h->id);
		hs_finish(h, sodium_memcmp(want, h->rbuf, AUTH_MAC) == 0,
		    RAFT_NOCONNECTION);
		return;
	}
	/* server: the client's nonce and proof */
	if (memcmp(h->rbuf, AUTH_MAGIC, 4) != 0) {
		hs_finish(h, 0, RAFT_NOCONNECTION);
		return;
	}
	memcpy(h->nc, h->rbuf + 4, AUTH_NONCE);
	mac(a, want, 'c', h->ns, h->nc, h->id);
	if (sodium_memcmp(want, h->rbuf + 4 + AUTH_NONCE, AUTH_MAC) != 0) {
		hs_finish(h, 0, RAFT_NOCONNECTION);
		return;
	}
	mac(a, h->wbuf, 's', h->nc, h->ns, h->id);
	h->last_write = 1;
	if (hs_write(h, AUTH_MAC) != 0)
		hs_finish(h, 0, RAFT_NOCONNECTION);
}

static void
on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf)
{
	struct hs *h = handle->data;

	(void)hint;
	*buf = uv_buf_init((char *)h->rbuf + h->got,
	    (unsigned)(h->need - h->got));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct hs *h = s->data;

	(void)buf;
	if (h->finished)
		return;
	if (n < 0) {
		hs_finish(h, 0, RAFT_NOCONNECTION);
		return;
	}
	h->got += (size_t)n;
	if (h->got == h->need) {
		uv_read_stop(s);
		hs_step(h);
	}
}

static void
hs_read_start(struct hs *h, size_t need)
{
	h->need = need;
	h->got = 0;
	h->stream->data = h;
	if (uv_read_start(h->stream, on_alloc, on_read) != 0)
		hs_finish(h, 0, RAFT_NOCONNECTION);
}

static struct hs *
hs_new(struct raft_auth *a, uv_stream_t *stream, int client)
{
	struct hs *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->a = a;
	h->stream = stream;
	h->client = client;
	h->refs = 1;			/* the timer */
	uv_timer_init(a->loop, &h->timer);
	h->timer.data = h;
	uv_timer_start(&h->timer, on_timeout, AUTH_TIMEOUT_MS, 0);
	hs_link(a, h);
	return h;
}

/* ---- the transport methods --------------------------------------------- */

static void
inner_accept(struct raft_uv_transport *inner, raft_id id,
    const char *address, struct uv_stream_s *stream)
{
	struct raft_auth *a = inner->data;
	struct hs *h;

	if (a->closing || (h = hs_new(a, stream, 0)) == NULL) {
		uv_close((uv_handle_t *)stream, stream_closed);
		return;
	}
	h->id = id;
	snprintf(h->address, sizeof(h->address), "%s", address);
	randombytes_buf(h->ns, AUTH_NONCE);
	memcpy(h->wbuf, AUTH_MAGIC, 4);
	memcpy(h->wbuf + 4, h->ns, AUTH_NONCE);
	stream->data = h;
	if (hs_write(h, 4 + AUTH_NONCE) != 0) {
		hs_finish(h, 0, RAFT_NOCONNECTION);
		return;
	}
	hs_read_start(h, 4 + AUTH_NONCE + AUTH_MAC);
}

static void
inner_connected(struct raft_uv_connect *ireq, struct uv_stream_s *stream,
    int status)
{
	struct hs *h = ireq->data;

	h->inner_pending = 0;
	if (h->finished) {		/* timed out or closed meanwhile */
		if (status == 0 && stream != NULL)
			uv_close((uv_handle_t *)stream, stream_closed);
		hs_unref(h);
		return;
	}
	if (status != 0) {
		hs_unref(h);
		hs_finish(h, 0, status);
		return;
	}
	hs_unref(h);			/* the timer still holds it */
	h->stream = stream;
	hs_read_start(h, 4 + AUTH_NONCE);
}

static int
auth_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct raft_auth *a = t->impl;

	a->id = id;
	return a->inner.init(&a->inner, id, address);
}

static int
auth_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct raft_auth *a = t->impl;

	a->accept_cb = cb;
	return a->inner.listen(&a->inner, inner_accept);
}

static int
auth_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
    raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct raft_auth *a = t->impl;
	struct hs *h;
	int rc;

	(void)id;
	if ((h = hs_new(a, NULL, 1)) == NULL)
		return RAFT_NOMEM;
	h->id = a->id;		/* we are the client: our id */
	h->req = req;
	h->cb = cb;
	h->inner_req.data = h;
	h->inner_pending = 1;
	h->refs++;
	rc = a->inner.connect(&a->inner, &h->inner_req, id, address,
	    inner_connected);
	if (rc != 0) {
		/* nothing was started: undo without calling back */
		h->inner_pending = 0;
		h->refs--;
		h->finished = 1;
		hs_unlink(a, h);
		uv_timer_stop(&h->timer);
		uv_close((uv_handle_t *)&h->timer, timer_closed);
	}
	return rc;
}

static void
inner_closed(struct raft_uv_transport *inner)
{
	struct raft_auth *a = inner->data;

	if (a->close_cb)
		a->close_cb(a->outer);
}

static void
auth_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct raft_auth *a = t->impl;

	a->closing = 1;
	a->close_cb = cb;
	while (a->hs != NULL) {
		struct hs *h = a->hs;

		/* a connect still in the inner transport is called back
		 * (CANCELED) by it when it closes; h waits for that */
		hs_finish(h, 0, RAFT_CANCELED);
	}
	a->inner.close(&a->inner, inner_closed);
}

int
raft_auth_init(struct raft_auth *a, uv_loop_t *loop,
    const unsigned char key[RAFT_AUTH_KEY_LEN])
{
	int rc;

	memset(a, 0, sizeof(*a));
	if ((rc = raft_uv_tcp_init(&a->inner, loop)) != 0)
		return rc;
	a->inner.data = a;
	a->loop = loop;
	memcpy(a->key, key, RAFT_AUTH_KEY_LEN);
	a->outer = &a->t;
	a->t.impl = a;
	a->t.init = auth_init;
	a->t.listen = auth_listen;
	a->t.connect = auth_connect;
	a->t.close = auth_close;
	return 0;
}

void
raft_auth_fini(struct raft_auth *a)
{
	raft_uv_tcp_close(&a->inner);
	sodium_memzero(a->key, sizeof(a->key));
}
