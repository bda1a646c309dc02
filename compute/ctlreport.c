/*
 * ctlreport.c: the worker tells its node's arceus-control how training
 * goes (ARCHITECTURE.md §4 step 4): step, loss, tokens/s, its compute
 * time per token (for the leader's straggler replans) and its last
 * complete checkpoint, as IMSG_CTL_REPORT records on one connection to
 * control.sock (common/ctlmsg.h).  Control shows them (status, /metrics,
 * the dashboard) and gossips the checkpoint step, so that the cluster
 * knows which step every member can resume from.
 *
 * Training never waits for control: the socket is non-blocking, answers
 * are drained and dropped, a record that does not fit the socket buffer
 * is skipped, and a control that is down or restarting is tried again at
 * most once a second (said once when lost, once when back).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "compute.h"
#include "ctlmsg.h"
#include "fault.h"
#include "log.h"

#define REPORT_RETRY_S	1.0

static int
rp_connect(struct reporter *r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(r->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, r->path, strlen(r->path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	r->fd = fd;
	return 0;
}

static void
rp_lost(struct reporter *r, int err)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->next_try = now_s() + REPORT_RETRY_S;
	if (!r->down_said)
		log_warnx("control at %s: %s; training goes on, reports "
		    "resume when it is back", r->path, strerror(-err));
	r->down_said = 1;
}

void
report_path(const struct job *j, char *out, size_t len)
{
	const char *slash;

	out[0] = '\0';
	if (strcmp(j->dist_control, "off") == 0)
		return;
	if (j->dist_control[0] != '\0') {
		snprintf(out, len, "%s", j->dist_control);
		return;
	}
	if (j->dist_dataplane[0] == '\0')
		return;
	if ((slash = strrchr(j->dist_dataplane, '/')) == NULL)
		snprintf(out, len, "control.sock");
	else
		snprintf(out, len, "%.*s/control.sock",
		    (int)(slash - j->dist_dataplane), j->dist_dataplane);
}

void
report_open(struct reporter *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	snprintf(r->path, sizeof(r->path), "%s", path);
}

void
report_compute_start(struct reporter *r)
{
	r->comp_t0 = now_s();
	r->ns_per_token = 0;
}

void
report_compute_end(struct reporter *r, long tokens)
{
	double dt = now_s() - r->comp_t0, f = fault_slowdown(), ns;

	r->ns_per_token = 0;
	if (r->comp_t0 <= 0 || tokens <= 0 || dt <= 0)
		return;
	if (f > 1.0) {		/* a slow machine, for the tests */
		struct timespec ts;
		double s = (f - 1.0) * dt;

		ts.tv_sec = (time_t)s;
		ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		dt = now_s() - r->comp_t0;
	}
	ns = dt * 1e9 / (double)tokens;
	r->ns_per_token = ns >= UINT32_MAX ? UINT32_MAX : ns < 1 ? 1 :
	    (uint32_t)ns;
}

void
report_send(struct reporter *r, int64_t step, double loss, double tps,
    int64_t ckpt_step, int64_t ckpt_unix)
{
	struct {
		struct ctl_hdr h;
		struct ctl_report rep;
	} m;
	uint8_t junk[256];
	ssize_t n;
	int e;

	if (r->path[0] == '\0')
		return;
	if (r->fd < 0) {
		if (now_s() < r->next_try)
			return;
		if ((e = rp_connect(r)) < 0) {
			rp_lost(r, e);
			return;
		}
		if (r->down_said)
			log_info("control at %s: reporting again", r->path);
		r->down_said = 0;
	}
	/* the answers (IMSG_CTL_END) of earlier records: nothing to act on */
	while ((n = recv(r->fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		rp_lost(r, n == 0 ? -ECONNRESET : -errno);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.h.type = IMSG_CTL_REPORT;
	m.h.len = sizeof(m.rep);
	m.rep.version = CTL_VERSION;
	m.rep.compute_ns_per_token = r->ns_per_token;
	r->ns_per_token = 0;	/* one record per measured step */
	m.rep.step = step;
	m.rep.loss = loss;
	m.rep.tokens_per_s = tps;
	m.rep.ckpt_step = ckpt_step;
	m.rep.ckpt_unix = ckpt_unix;
	n = send(r->fd, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == (ssize_t)sizeof(m)) {
		r->sent++;
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		r->skipped++;	/* control is slow: this one is skipped */
		return;
	}
	/* a short write would desynchronise the records: start over */
	rp_lost(r, n < 0 ? -errno : -EPIPE);
}

void
report_close(struct reporter *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* Reads exactly len bytes within the deadline. @return 0 or -errno */
static int
read_full(int fd, void *buf, size_t len, double deadline)
{
	uint8_t *p = buf;

	while (len > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		double left = deadline - now_s();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return -errno;
		if ((n = recv(fd, p, len, MSG_DONTWAIT)) == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ctl_share_get(const char *path, struct ctl_share *sh, char *err,
    size_t errlen)
{
	struct {
		struct ctl_hdr h;
		struct ctl_query q;
	} m;
	struct reporter r;
	struct ctl_hdr h;
	double deadline = now_s() + 5.0;
	int e;

	report_open(&r, path);
	if ((e = rp_connect(&r)) < 0) {
		snprintf(err, errlen, "control at %s: %s", path, strerror(-e));
		return e;
	}
	memset(&m, 0, sizeof(m));
	m.h.type = IMSG_CTL_QUERY;
	m.h.len = sizeof(m.q);
	m.q.version = CTL_VERSION;
	snprintf(m.q.what, sizeof(m.q.what), "share");
	if (send(r.fd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		e = -errno;
		goto fail;
	}
	if ((e = read_full(r.fd, &h, sizeof(h), deadline)) < 0)
		goto fail;
	if (h.type != IMSG_CTL_SHARE || h.len != sizeof(*sh)) {
		/* an older control answers END (EINVAL): no shares there */
		snprintf(err, errlen, "control at %s does not hand out plan "
		    "shares (answer type %u)", path, h.type);
		report_close(&r);
		return -EPROTO;
	}
	if ((e = read_full(r.fd, sh, sizeof(*sh), deadline)) < 0)
		goto fail;
	report_close(&r);
	if (sh->version != CTL_VERSION || sh->dp > CTL_SHARE_MAX ||
	    sh->nstandby > CTL_SHARE_MAX - sh->dp || sh->pp > CTL_SHARE_MAX ||
	    (uint64_t)sh->dp * (sh->pp ? sh->pp : 1) > CTL_SHARE_MAX) {
		snprintf(err, errlen, "control at %s: a share of version %u "
		    "with %u replicas", path, sh->version, sh->dp);
		return -EPROTO;
	}
	return 0;
fail:
	snprintf(err, errlen, "control at %s: %s", path, strerror(-e));
	report_close(&r);
	return e;
}

int
ctl_reepoch_ask(const char *path, uint64_t epoch)
{
	struct {
		struct ctl_hdr h;
		struct ctl_reepoch re;
	} m;
	struct reporter r;
	struct ctl_hdr h;
	int e;

	report_open(&r, path);
	if ((e = rp_connect(&r)) < 0)
		return e;
	memset(&m, 0, sizeof(m));
	m.h.type = IMSG_CTL_REEPOCH;
	m.h.len = sizeof(m.re);
	m.re.version = CTL_VERSION;
	m.re.epoch = epoch;
	if (send(r.fd, &m, sizeof(m), MSG_NOSIGNAL) != (ssize_t)sizeof(m))
		e = -errno;
	else if ((e = read_full(r.fd, &h, sizeof(h), now_s() + 2.0)) == 0 &&
	    h.type != IMSG_CTL_END)
		e = -EPROTO;
	report_close(&r);
	return e;
}
