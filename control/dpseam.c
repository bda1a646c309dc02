/*
 * dpseam.c: control's side of dataplane.sock (the dataplane's local
 * protocol, common/msg.h, through its client helpers in arceus_dp.h).
 *
 * A thread of its own, so that a slow or wedged dataplane never stalls
 * the loop that runs SWIM (its timers are tens of milliseconds).  Every
 * DPSEAM_PERIOD_MS it:
 *   - connects (again) if needed, as IMSG_ROLE_CONTROL;
 *   - sends the committed epoch's peer table (IMSG_DP_PEERS) when the
 *     epoch changed, so the dataplane drops what belongs to the old one;
 *   - reads the link table (IMSG_DP_LINKS) and the status, which /metrics,
 *     /api/status and this node's link row (links.c) use;
 *   - asks for one link's bandwidth probe (IMSG_DP_PROBE), each link
 *     every PROBE_EVERY_S, a new one at once.
 * States: DOWN (no dataplane.sock, retried) <-> UP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arceus_dp.h"
#include "control.h"
#include "log.h"
#include "msg.h"

#define DPSEAM_PERIOD_MS	1000
#define PROBE_EVERY_S		30	/* each link's bandwidth probe */
#define PROBE_RETRY_S		3	/* ... or after one that measured 0 */
#define PROBE_MIB		2	/* bytes a probe sends, MiB */

struct dpseam {
	struct ctl	*c;
	pthread_t	 th;
	volatile int	 stop;
	char		 path[512];
	struct { uint32_t peer; double at; } probed[CTL_MAX_LINKS];
	int		 nprobed;
};

/*
 * Bandwidth: the dataplane measures it from live traffic and from probes
 * it is asked for.  One link per period, the one probed longest ago (a
 * new link first), each again every PROBE_EVERY_S.  @return 0, or -errno
 * when the connection is no longer usable.
 */
static int
probe_one(struct dpseam *s, int fd, const struct imsg_dp_link *l, int n)
{
	double now = ctl_now(), oldest = now;
	uint32_t peer = 0;
	int r, at = -1;

	for (int i = 0; i < n; i++) {
		double t = 0.0;
		int k;

		if (l[i].state != IMSG_DP_LINK_UP)
			continue;
		for (k = 0; k < s->nprobed; k++)
			if (s->probed[k].peer == l[i].peer)
				break;
		if (k < s->nprobed)
			t = s->probed[k].at;
		/* a probe that measured nothing (the link dropped under
		 * it) is retried sooner */
		if (t < oldest && (now - t >= PROBE_EVERY_S ||
		    (l[i].bw_probe == 0 && now - t >= PROBE_RETRY_S))) {
			oldest = t;
			peer = l[i].peer;
			at = k;
		}
	}
	if (peer == 0)
		return 0;
	if (at == s->nprobed) {
		if (s->nprobed == CTL_MAX_LINKS) {
			/* forget the links that are gone */
			s->nprobed = 0;
			return 0;
		}
		s->nprobed++;
	}
	s->probed[at].peer = peer;
	s->probed[at].at = now;
	r = arc_dp_probe(fd, peer, PROBE_MIB);
	if (r < 0)
		s->probed[at].at = 0;	/* again next period */
	if (r == -ETIMEDOUT || r == -EPIPE || r == -ECONNRESET ||
	    r == -EPROTO)
		return r;
	if (r < 0)
		log_debug("ctl.dp: probe of link %u: %s", peer, strerror(-r));
	return 0;
}

static void
nap(struct dpseam *s, int ms)
{
	for (int i = 0; i < ms / 50 && !s->stop; i++) {
		struct timespec ts = { 0, 50 * 1000000L };

		nanosleep(&ts, NULL);
	}
}

/* The committed epoch's members as the dataplane's peer table. */
static int
peers_of_epoch(struct ctl *c, struct imsg_dp_peer *p, uint64_t *epoch)
{
	int n = 0;

	pthread_mutex_lock(&c->mu);
	*epoch = c->epoch;
	for (int i = 0; i < c->nepoch && i < 64 && n < IMSG_DP_MAX_PEERS;
	    i++) {
		const struct swim_member *m = swim_find(&c->sw,
		    c->epoch_members[i]);

		if (m == NULL || m->addr == 0 || m->dp_port == 0)
			continue;
		p[n].id = m->id;
		p[n].addr = m->addr;
		p[n].port = m->dp_port;
		p[n].pad = 0;
		n++;
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}

/*
 * The plan's collective groups this node is in (raftfsm.c,
 * layout_groups), after the epoch's peers.  @return groups sent, -errno.
 */
static int
send_groups(int fd, struct ctl *c)
{
	struct layout_group g[2 * PLAN_MAX_TP * 8];
	int n, r;

	pthread_mutex_lock(&c->mu);
	n = c->layout == NULL ? 0 : layout_groups(c->layout, c->layout_len,
	    c->plan_tp, c->plan_pp, c->plan_dp, c->id, g,
	    (int)(sizeof(g) / sizeof(g[0])));
	pthread_mutex_unlock(&c->mu);
	if (n < 0) {
		log_warnx("ctl.dp: the epoch's layout does not match its plan");
		return 0;
	}
	for (int i = 0; i < n; i++)
		if ((r = arc_dp_set_group(fd, g[i].id, g[i].members,
		    g[i].n)) < 0) {
			log_warnx("ctl.dp: group %u refused: %s", g[i].id,
			    strerror(-r));
			return r;
		}
	return n;
}

static void
set_down(struct ctl *c)
{
	pthread_mutex_lock(&c->mu);
	c->dp_up = 0;
	c->nlinks = 0;
	pthread_mutex_unlock(&c->mu);
}

static void *
dpseam_run(void *arg)
{
	struct dpseam *s = arg;
	struct ctl *c = s->c;
	struct imsg_dp_peer peers[IMSG_DP_MAX_PEERS];
	struct imsg_dp_link links[CTL_MAX_LINKS];
	struct imsg_dp_peer sent_peers[IMSG_DP_MAX_PEERS];
	struct imsg_dp_status st;
	uint64_t sent = 0, epoch;
	int sent_n = 0;
	char err[128];
	int fd = -1, down_logged = 0;

	while (!s->stop) {
		int n, r;

		if (fd < 0) {
			fd = arc_dp_connect(s->path, IMSG_ROLE_CONTROL, err,
			    sizeof(err));
			if (fd < 0) {
				if (!down_logged)
					log_info("ctl.dp: no dataplane at %s "
					    "(%s); retrying", s->path, err);
				down_logged = 1;
				set_down(c);
				nap(s, DPSEAM_PERIOD_MS);
				continue;
			}
			log_info("ctl.dp: connected to %s", s->path);
			down_logged = 0;
			sent = 0;
		}
		n = peers_of_epoch(c, peers, &epoch);
		/*
		 * Send again when the epoch's peers change within it: a
		 * member whose address gossip had not brought yet (a node
		 * restarted from its raft state applies the epoch before
		 * SWIM hears from the others) is added once it is known.
		 */
		if (epoch != 0 && (epoch != sent || n != sent_n ||
		    memcmp(peers, sent_peers, sizeof(*peers) * (size_t)n))) {
			int ng;

			if ((r = arc_dp_set_peers(fd, (uint32_t)epoch, peers,
			    n)) < 0) {
				log_warnx("ctl.dp: epoch %llu refused: %s",
				    (unsigned long long)epoch, strerror(-r));
				goto reconnect;
			}
			if ((ng = send_groups(fd, c)) < 0)
				goto reconnect;
			log_info("ctl.dp: epoch %llu: %d peers, %d groups sent",
			    (unsigned long long)epoch, n, ng);
			sent = epoch;
			sent_n = n;
			memcpy(sent_peers, peers, sizeof(*peers) * (size_t)n);
		}
		if ((n = arc_dp_links(fd, links, CTL_MAX_LINKS)) < 0 ||
		    arc_dp_status(fd, &st) < 0)
			goto reconnect;
		pthread_mutex_lock(&c->mu);
		c->dp_up = 1;
		c->nlinks = n;
		c->links_at = ctl_now();
		for (int i = 0; i < n; i++) {
			struct ctl_link *l = &c->links[i];

			l->peer = links[i].peer;
			l->up = links[i].state == IMSG_DP_LINK_UP;
			memcpy(l->backend, links[i].backend,
			    sizeof(l->backend));
			l->backend[sizeof(l->backend) - 1] = '\0';
			l->rtt_s = links[i].rtt_ns / 1e9;
			l->bw_probe = (double)links[i].bw_probe;
			l->bw_live = (double)links[i].bw_live;
			l->tx_bytes = links[i].tx_bytes;
			l->rx_bytes = links[i].rx_bytes;
			l->rx_bad = links[i].rx_bad;
			l->downs = links[i].downs;
		}
		c->dp_workers = st.nworkers;
		c->dp_epoch = st.epoch;
		c->dp_arena = st.arena_size;
		memcpy(c->dp_backend, st.backend, sizeof(st.backend));
		c->dp_backend[sizeof(c->dp_backend) - 1] = '\0';
		pthread_mutex_unlock(&c->mu);
		if (probe_one(s, fd, links, n) < 0)
			goto reconnect;
		nap(s, DPSEAM_PERIOD_MS);
		continue;
reconnect:
		log_warnx("ctl.dp: dataplane connection lost; reconnecting");
		close(fd);
		fd = -1;
		set_down(c);
		nap(s, DPSEAM_PERIOD_MS);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

int
dpseam_start(struct ctl *c)
{
	struct dpseam *s = calloc(1, sizeof(*s));
	int r;

	if (s == NULL)
		return -ENOMEM;
	s->c = c;
	snprintf(s->path, sizeof(s->path), "%s/%s", c->nc->run_dir,
	    ARC_DP_SOCK_NAME);
	if ((r = pthread_create(&s->th, NULL, dpseam_run, s)) != 0) {
		free(s);
		return -r;
	}
	c->dpseam = s;
	return 0;
}

void
dpseam_stop(struct ctl *c)
{
	struct dpseam *s = c->dpseam;

	if (s == NULL)
		return;
	s->stop = 1;
	pthread_join(s->th, NULL);
	free(s);
	c->dpseam = NULL;
}
