/*
 * main.c: arceus-dataplane.  Arguments, configuration, then one event loop
 * on one thread: epoll over the backend's fd, dataplane.sock and its
 * clients, the workers' doorbells, a tick timer and the signals.
 *
 *   arceus-dataplane [-dnv] [-c file] [-o section.key=value ...]
 *
 * -n checks the configuration and exits; -o overrides one key (tests run
 * several simulated nodes from one file); -d logs at debug level; -v more.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"
#include "nodeconf.h"
#include "dataplane.h"

#define MAX_OVERRIDES	32
#define STATS_EVERY_S	60	/* counters to the log, when they moved */

enum main_tag { TAG_TIMER = 1, TAG_SIGNAL };

static int main_tags[3] = { 0, TAG_TIMER, TAG_SIGNAL };

static void
usage(void)
{
	fprintf(stderr, "usage: arceus-dataplane [-dnv] [-c file] "
	    "[-o section.key=value]\n");
	exit(1);
}

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void
notify(const char *state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = getenv("NOTIFY_SOCKET");
	socklen_t len;
	int fd;

	if (path == NULL || path[0] == '\0' ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len);
	close(fd);
}

static void
log_stats(struct dp *dp, struct dp_stats *last)
{
	if (memcmp(&dp->stats, last, sizeof(*last)) == 0)
		return;
	log_info("dp: ops %llu done, %llu failed; rx %llu bad, %llu stale; "
	    "stash %zu bytes, %llu dropped, %llu of a newer epoch kept; tx "
	    "%llu messages without a copy, %llu copied",
	    (unsigned long long)dp->stats.ops_done,
	    (unsigned long long)dp->stats.ops_failed,
	    (unsigned long long)dp->stats.rx_bad,
	    (unsigned long long)dp->stats.rx_stale, dp->stash_bytes,
	    (unsigned long long)dp->stats.stash_dropped,
	    (unsigned long long)dp->stats.future_kept,
	    (unsigned long long)dp->stats.tx_zerocopy,
	    (unsigned long long)dp->stats.tx_copied);
	*last = dp->stats;
}

/* The default group 1: this node and every static peer, by node id. */
static void
default_group(struct dp *dp)
{
	uint32_t m[DP_MAX_PEERS + 1];
	int n = 0;

	m[n++] = dp->conf.node_id;
	for (int i = 0; i < dp->npeers; i++)
		m[n++] = dp->peers[i]->id;
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && m[j - 1] > m[j]; j--) {
			uint32_t t = m[j];

			m[j] = m[j - 1];
			m[j - 1] = t;
		}
	group_set(dp, 1, m, n);
}

int
main(int argc, char **argv)
{
	const char *conffile = NODECONF_PATH, *over[MAX_OVERRIDES];
	struct epoll_event ev, evs[64];
	struct itimerspec its = { { 0, DP_TICK_MS * 1000000L },
	    { 0, DP_TICK_MS * 1000000L } };
	struct dp_stats last_stats;
	struct conf_errs errs;
	struct nodeconf nc;
	struct dp_conf dc;
	struct arena arena;
	struct local *local;
	struct dp *dp;
	char sockpath[300], names[64];
	int ch, check = 0, level = LOG_LEVEL_INFO, nover = 0, r;
	int epfd, tfd, sfd, quit = 0, watchdog;
	uint64_t ticks = 0;
	sigset_t mask;

	while ((ch = getopt(argc, argv, "c:dno:v")) != -1) {
		switch (ch) {
		case 'c':
			conffile = optarg;
			break;
		case 'd':
		case 'v':
			level = LOG_LEVEL_DEBUG;
			break;
		case 'n':
			check = 1;
			break;
		case 'o':
			if (nover == MAX_OVERRIDES)
				usage();
			over[nover++] = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("arceus-dataplane", level);
	fault_init_env();

	memset(&errs, 0, sizeof(errs));
	r = nodeconf_load(&nc, conffile, &errs);
	for (int i = 0; i < nover && r == 0; i++)
		r = conf_set(nodeconf_keys, &nc, over[i], "-o", &errs);
	if (r < 0 || errs.n > 0) {
		conf_errs_print(&errs, stderr);
		fatalx("%s: configuration refused (%d errors)", conffile,
		    errs.n);
	}
	if (nc.node_id == 0) {
		uint32_t id;
		int rc = nodeconf_read_id(&nc, &id);

		if (rc < 0)
			fatalx("%s: [node] id is 0 and %s/node-id is %s ---> "
			    "HINT: set [node] id, or start arceus-control "
			    "first (it derives one and keeps it there)",
			    conffile, nc.state_dir, rc == -ENOENT ?
			    "missing" : rc == -EINVAL ? "not a node id" :
			    strerror(-rc));
		nc.node_id = id;
	}
	if (check) {
		printf("%s: configuration ok\n", conffile);
		return 0;
	}

	memset(&dc, 0, sizeof(dc));
	dc.node_id = (uint32_t)nc.node_id;
	dc.epoch = 1;
	snprintf(dc.transport, sizeof(dc.transport), "%s", nc.transport);
	snprintf(dc.listen, sizeof(dc.listen), "%s", nc.dp_listen);
	dc.port = (uint16_t)nc.dp_port;
	dc.chunk_bytes = nc.chunk_size;
	dc.peer_timeout_ms = (int)nc.peer_timeout_ms;
	dc.op_timeout_ms = (int)nc.op_timeout_ms;
	dc.tcp_zerocopy = nc.tcp_zerocopy ? 1 : 0;
	snprintf(dc.dpdk_port, sizeof(dc.dpdk_port), "%s", nc.dpdk_port);
	snprintf(dc.dpdk_eal, sizeof(dc.dpdk_eal), "%s", nc.dpdk_eal);
	dc.dpdk_mtu = (int)nc.dpdk_mtu;
	dc.dpdk_zc_min = (int)nc.dpdk_zc_min;
	dc.ndpdk_neigh = nc.ndpdk_neigh;
	for (int i = 0; i < nc.ndpdk_neigh; i++) {
		dc.dpdk_neigh[i].ip = nc.dpdk_neigh[i].ip;
		memcpy(dc.dpdk_neigh[i].mac, nc.dpdk_neigh[i].mac, 6);
	}
	if ((dp = dp_new(&dc)) == NULL)
		fatal("dataplane: engine (chunk_size %llu)",
		    (unsigned long long)nc.chunk_size);
	for (int i = 0; i < nc.npeers; i++)
		if ((r = peer_add(dp, nc.peers[i].id, nc.peers[i].addr,
		    nc.peers[i].port)) < 0)
			fatalx("%s: peer %u: %s", conffile, nc.peers[i].id,
			    strerror(-r));
	default_group(dp);
	dp->probe_done = local_probe_done;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC |
	    TFD_NONBLOCK)) < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
		fatal("dataplane: epoll/signalfd/timerfd");

	if ((r = arena_init(&arena, nc.arena_size, dp->boot_id)) < 0)
		fatalx("dataplane: arena of %llu bytes: %s ---> HINT: lower "
		    "[dataplane] arena_size", (unsigned long long)nc.arena_size,
		    strerror(-r));
	dp_set_memory(dp, arena.base, arena.size);
	if (mkdir(nc.run_dir, 0755) < 0 && errno != EEXIST)
		fatal("dataplane: %s", nc.run_dir);
	snprintf(sockpath, sizeof(sockpath), "%s/%s", nc.run_dir,
	    ARC_DP_SOCK_NAME);
	if ((local = local_new(dp, &arena, sockpath, epfd)) == NULL)
		fatal("dataplane: %s", sockpath);
	if ((r = dp_start(dp)) < 0)
		fatalx("dataplane: transport %s on %s:%u: %s ---> HINT: is "
		    "another dataplane using the port?", nc.transport,
		    nc.dp_listen, dc.port, strerror(-r));

	ev.events = EPOLLIN;
	ev.data.ptr = &main_tags[TAG_TIMER];
	epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
	ev.data.ptr = &main_tags[TAG_SIGNAL];
	epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);
	log_info("node %u: listening on %s:%u (%s), %d peers, socket %s",
	    dc.node_id, dc.listen, dc.port, tp_names(dp->running, names,
	    sizeof(names)), dp->npeers, sockpath);
	notify("READY=1");
	watchdog = getenv("WATCHDOG_USEC") != NULL;
	memset(&last_stats, 0, sizeof(last_stats));

	while (!quit) {
		int n;

		/*
		 * Sleep where the backends can be woken (io_uring, a polled
		 * device, their fds), with our epoll as one of the events.
		 */
		if ((r = dp_wait(dp, epfd, DP_TICK_MS)) < 0)
			fatalx("dataplane: waiting for the transport: %s",
			    strerror(-r));
		n = epoll_wait(epfd, evs, 64, 0);
		if (n < 0 && errno != EINTR)
			fatal("dataplane: epoll_wait");
		for (int i = 0; i < n; i++) {
			int *tag = evs[i].data.ptr;
			struct signalfd_siginfo si;
			uint64_t v;

			if (tag >= main_tags && tag < main_tags + 3) {
				switch (*tag) {
				case TAG_TIMER:
					if (read(tfd, &v, sizeof(v)) > 0)
						ticks += v;
					if (watchdog)
						notify("WATCHDOG=1");
					if (ticks % (STATS_EVERY_S * 1000 /
					    DP_TICK_MS) == 0)
						log_stats(dp, &last_stats);
					break;
				case TAG_SIGNAL:
					while (read(sfd, &si, sizeof(si)) ==
					    sizeof(si))
						if (si.ssi_signo != SIGHUP)
							quit = 1;
					break;
				default:
					break;
				}
				continue;
			}
			local_event(local, tag, evs[i].events);
		}
		while (dp_progress(dp) > 0)
			;
		local_service(local);
	}
	notify("STOPPING=1");
	log_info("node %u: stopping", dc.node_id);
	log_stats(dp, &last_stats);
	dp_free(dp);
	local_free(local);
	arena_fini(&arena);
	close(tfd);
	close(sfd);
	close(epfd);
	return 0;
}
