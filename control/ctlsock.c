/*
 * ctlsock.c: control.sock, the local socket of arceusctl and workers.
 * Each connection sends one IMSG_CTL_QUERY (answered with IMSG_CTL_DATA
 * chunks and IMSG_CTL_END; "share", a worker's, with one IMSG_CTL_SHARE)
 * or IMSG_CTL_REPORT records (each answered with IMSG_CTL_END).  A malformed record drops that connection, counted; it
 * never disturbs the daemon.  The socket is 0660: root and the group the
 * three services share (systemd/arceus-control.service) may use it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "control.h"
#include "log.h"

struct client {
	uv_pipe_t	 pipe;
	struct ctl	*c;
	uint8_t		 buf[CTL_HDR_LEN + sizeof(struct ctl_job) + 64];
	size_t		 len;
	int		 closing;
};

struct ctlsrv {
	uv_pipe_t	 pipe;
	char		 path[256];
};

static void
client_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
client_close(struct client *cl)
{
	if (cl->closing)
		return;
	cl->closing = 1;
	uv_close((uv_handle_t *)&cl->pipe, client_closed);
}

static void
write_done(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

/* Queues one record; the buffer is freed when written. */
static void
client_send(struct client *cl, uint16_t type, const void *p, uint32_t len)
{
	uv_write_t *w = malloc(sizeof(*w));
	uint8_t *m = malloc(CTL_HDR_LEN + len);
	struct ctl_hdr h = { type, 0, len };
	uv_buf_t b;

	if (w == NULL || m == NULL) {
		free(w);
		free(m);
		return;
	}
	memcpy(m, &h, CTL_HDR_LEN);
	memcpy(m + CTL_HDR_LEN, p, len);
	w->data = m;
	b = uv_buf_init((char *)m, CTL_HDR_LEN + len);
	if (uv_write(w, (uv_stream_t *)&cl->pipe, &b, 1, write_done) != 0) {
		free(m);
		free(w);
	}
}

static void
client_end(struct client *cl, int status)
{
	struct ctl_end e = { status, 0 };

	client_send(cl, IMSG_CTL_END, &e, sizeof(e));
}

/* "share": this node's part of the committed plan, for its workers */
static void
answer_share(struct client *cl)
{
	struct ctl *c = cl->c;
	struct ctl_share sh;

	memset(&sh, 0, sizeof(sh));
	sh.version = CTL_VERSION;
	pthread_mutex_lock(&c->mu);
	sh.epoch = c->epoch;
	snprintf(sh.job, sizeof(sh.job), "%s", c->job);
	if (!c->job_running)
		sh.status = ENOENT;
	else if (c->layout == NULL && c->plan_text != NULL && c->plan_dp == 0)
		sh.status = ENOSPC;	/* the planner refused: no plan fits */
	else
		layout_share(c->layout, c->layout_len, c->plan_tp, c->plan_pp,
		    c->plan_dp, c->id, c->epoch_members, c->nepoch < 64 ?
		    c->nepoch : 64, &sh);
	sh.global_batch = 0;
	for (uint32_t r = 0; sh.status == 0 && r < sh.dp; r++)
		sh.global_batch += sh.shares[r];
	pthread_mutex_unlock(&c->mu);
	client_send(cl, IMSG_CTL_SHARE, &sh, sizeof(sh));
	client_end(cl, 0);
}

static void
answer(struct client *cl, const struct ctl_query *q)
{
	struct ctl *c = cl->c;
	struct sbuf b;
	int status = 0;

	if (strcmp(q->what, "share") == 0) {
		answer_share(cl);
		return;
	}
	memset(&b, 0, sizeof(b));
	pthread_mutex_lock(&c->mu);
	if (strcmp(q->what, "status") == 0)
		report_status(c, &b, q->json);
	else if (strcmp(q->what, "members") == 0)
		report_members(c, &b, q->json);
	else if (strcmp(q->what, "metrics") == 0)
		report_metrics(c, &b);
	else if (strcmp(q->what, "plan") == 0)
		report_plan(c, &b, q->json);
	else if (strcmp(q->what, "links") == 0)
		report_links(c, &b, q->json);
	else
		status = EINVAL;
	pthread_mutex_unlock(&c->mu);
	if (q->json && status == 0)
		sbuf_printf(&b, "\n");
	if (b.oom)
		status = ENOMEM;
	for (size_t off = 0; status == 0 && off < b.len;
	    off += CTL_MAX_PAYLOAD) {
		size_t n = b.len - off;

		client_send(cl, IMSG_CTL_DATA, b.s + off,
		    (uint32_t)(n > CTL_MAX_PAYLOAD ? CTL_MAX_PAYLOAD : n));
	}
	client_end(cl, status);
	sbuf_free(&b);
}

/* @return bytes used, 0 for more, -1 to drop the connection. */
static int
client_record(struct client *cl)
{
	struct ctl_hdr h;
	struct ctl_query q;
	struct ctl_report r;
	struct ctl_reepoch re;

	if (cl->len < CTL_HDR_LEN)
		return 0;
	memcpy(&h, cl->buf, CTL_HDR_LEN);
	if (h.type == IMSG_CTL_QUERY && h.len == sizeof(q)) {
		if (cl->len < CTL_HDR_LEN + sizeof(q))
			return 0;
		memcpy(&q, cl->buf + CTL_HDR_LEN, sizeof(q));
		if (q.version != CTL_VERSION ||
		    memchr(q.what, '\0', sizeof(q.what)) == NULL)
			return -1;
		answer(cl, &q);
		return CTL_HDR_LEN + sizeof(q);
	}
	if (h.type == IMSG_CTL_JOB && h.len == sizeof(struct ctl_job)) {
		struct ctl_job j;
		char msg[160];
		uint32_t leader;
		int rc;

		if (cl->len < CTL_HDR_LEN + sizeof(j))
			return 0;
		memcpy(&j, cl->buf + CTL_HDR_LEN, sizeof(j));
		if (j.version != CTL_VERSION ||
		    memchr(j.name, '\0', sizeof(j.name)) == NULL)
			return -1;
		rc = raftglue_job(cl->c, &j, &leader);
		if (rc == 0)
			snprintf(msg, sizeof(msg), "job '%s' %s: proposed; the "
			    "next epoch carries its plan\n", j.name,
			    j.running ? "start" : "stop");
		else if (rc == -EAGAIN && leader)
			snprintf(msg, sizeof(msg), "this node does not lead: "
			    "ask node %u (the leader)\n", leader);
		else if (rc == -EAGAIN)
			snprintf(msg, sizeof(msg), "no leader yet (is the "
			    "cluster formed? see arceusctl status)\n");
		else
			snprintf(msg, sizeof(msg), "cannot propose: %s\n",
			    strerror(-rc));
		client_send(cl, IMSG_CTL_DATA, msg, (uint32_t)strlen(msg));
		client_end(cl, rc < 0 ? -rc : 0);
		return CTL_HDR_LEN + sizeof(j);
	}
	if (h.type == IMSG_CTL_REEPOCH && h.len == sizeof(re)) {
		if (cl->len < CTL_HDR_LEN + sizeof(re))
			return 0;
		memcpy(&re, cl->buf + CTL_HDR_LEN, sizeof(re));
		if (re.version != CTL_VERSION)
			return -1;
		pthread_mutex_lock(&cl->c->mu);
		if (re.epoch != 0 && re.epoch == cl->c->epoch &&
		    cl->c->sw.self.reepoch != re.epoch) {
			cl->c->sw.self.reepoch = re.epoch;
			log_info("ctl: a worker failed in epoch %llu; asking "
			    "the leader for a fresh one",
			    (unsigned long long)re.epoch);
		}
		pthread_mutex_unlock(&cl->c->mu);
		client_end(cl, 0);
		return CTL_HDR_LEN + sizeof(re);
	}
	if (h.type == IMSG_CTL_REPORT && h.len == sizeof(r)) {
		if (cl->len < CTL_HDR_LEN + sizeof(r))
			return 0;
		memcpy(&r, cl->buf + CTL_HDR_LEN, sizeof(r));
		if (r.version != CTL_VERSION)
			return -1;
		pthread_mutex_lock(&cl->c->mu);
		train_record(&cl->c->train, &r, ctl_now());
		/* the measured speed: the job's FLOPs per token over the
		 * compute per token (flop/ns = GFLOP/s); it rides on SWIM */
		if (r.compute_ns_per_token > 0 &&
		    cl->c->job_flops_per_token > 0 && speed_add(&cl->c->speed,
		    cl->c->epoch, r.step, cl->c->job_flops_per_token /
		    r.compute_ns_per_token, ctl_now())) {
			double v = cl->c->speed.value * 10.0;

			cl->c->sw.self.train_gflops10 = v >= 4e9 ? 4000000000u :
			    v < 1 ? 1 : (uint32_t)v;
		}
		/* our last complete checkpoint rides on SWIM to the leader */
		if (r.ckpt_step > 0 &&
		    (uint64_t)r.ckpt_step > cl->c->sw.self.ckpt_step)
			cl->c->sw.self.ckpt_step = (uint64_t)r.ckpt_step;
		pthread_mutex_unlock(&cl->c->mu);
		client_end(cl, 0);
		return CTL_HDR_LEN + sizeof(r);
	}
	return -1;
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct client *cl = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)cl->buf + cl->len,
	    (unsigned)(sizeof(cl->buf) - cl->len));
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *cl = s->data;
	int used;

	(void)buf;
	if (n < 0) {
		client_close(cl);
		return;
	}
	cl->len += (size_t)n;
	while ((used = client_record(cl)) > 0) {
		memmove(cl->buf, cl->buf + used, cl->len - (size_t)used);
		cl->len -= (size_t)used;
	}
	if (used < 0 || cl->len == sizeof(cl->buf)) {
		pthread_mutex_lock(&cl->c->mu);
		cl->c->sock_errors++;
		pthread_mutex_unlock(&cl->c->mu);
		log_warnx("ctl.sock: malformed record, connection dropped");
		client_close(cl);
	}
}

static void
on_connect(uv_stream_t *srv, int status)
{
	struct ctl *c = srv->data;
	struct client *cl;

	if (status < 0)
		return;
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return;
	cl->c = c;
	uv_pipe_init(srv->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	if (uv_accept(srv, (uv_stream_t *)&cl->pipe) != 0 ||
	    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read) != 0)
		client_close(cl);
}

int
ctlsock_start(struct ctl *c, const char *path)
{
	struct ctlsrv *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	snprintf(s->path, sizeof(s->path), "%s", path);
	unlink(path);		/* a stale socket of a dead control */
	uv_pipe_init(c->loop, &s->pipe, 0);
	s->pipe.data = c;
	if ((rc = uv_pipe_bind(&s->pipe, path)) < 0 ||
	    (rc = chmod(path, 0660) < 0 ? -errno : 0) < 0 ||
	    (rc = uv_listen((uv_stream_t *)&s->pipe, 16, on_connect)) < 0) {
		uv_close((uv_handle_t *)&s->pipe, NULL);
		c->ctlsrv = s;
		return rc;
	}
	c->ctlsrv = s;
	return 0;
}

void
ctlsock_stop(struct ctl *c)
{
	struct ctlsrv *s = c->ctlsrv;

	if (s == NULL)
		return;
	if (!uv_is_closing((uv_handle_t *)&s->pipe))
		uv_close((uv_handle_t *)&s->pipe, NULL);
	unlink(s->path);
}
