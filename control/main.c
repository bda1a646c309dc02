/*
 * main.c: arceus-control, the node's authority (ARCHITECTURE.md §1-2).
 *
 *   arceus-control [-c FILE] [-n] [-v]
 *     -c FILE  configuration (default /etc/arceus/arceus.conf)
 *     -n       check the configuration and the key, print every error as
 *              file:line: reason, and exit (like nginx -t)
 *     -v       verbose (debug) logging
 *
 * One libuv loop runs gossip (SWIM over UDP), control.sock and timers;
 * libmicrohttpd serves HTTP from its own thread; both take c->mu.
 *
 * The control's states (logged on every transition, with view, epoch and
 * term):
 *
 *   STARTING --config, key, sockets ok--> ALONE --a peer answers--> MEMBER
 *                                           ^                          |
 *                                           +----all peers dead/left---+
 *   ALONE | MEMBER --SIGTERM/SIGINT--> LEAVING --leave sent--> STOPPED
 *
 * Member states are SWIM's (swim.h).  SWIM only suspects; raft decides
 * (raftglue.c has its own states): the elected leader commits a new epoch
 * when the alive set changes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include "control.h"
#include "log.h"
#include "nodeconf.h"

#define TICK_MS		5	/* SWIM timer resolution */
#define LEAVE_MS	150	/* time for leave datagrams to go out */

enum ctl_state {
	CTL_STARTING,
	CTL_ALONE,
	CTL_MEMBER,
	CTL_LEAVING,
	CTL_STOPPED,
};

static const char *const state_names[] = { "starting", "alone", "member",
	"leaving", "stopped" };

static struct ctl	 C;
static struct nodeconf	 NC;
static uv_loop_t	 loop;
static uv_udp_t		 udp;
static uv_timer_t	 tick_timer, slow_timer, leave_timer, raft_timer;
static uv_signal_t	 sigterm, sigint;
static enum ctl_state	 state = CTL_STARTING;
static uint64_t		 udp_send_errors;
static uint64_t		 watchdog_usec;

double
ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t
now_ms(void)
{
	return (uint64_t)(ctl_now() * 1000.0);
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
state_set(enum ctl_state s)
{
	if (s == state)
		return;
	log_info("ctl: %s -> %s (view %llu, epoch %llu, term %llu)",
	    state_names[state], state_names[s], (unsigned long long)C.view,
	    (unsigned long long)C.epoch, (unsigned long long)C.term);
	state = s;
}

/* ---- configuration, identity, key ------------------------------------ */

static void
usage(void)
{
	fprintf(stderr, "usage: arceus-control [-c FILE] [-n] [-v]\n"
	    "       arceus-control [-c FILE] --recover --confirm\n"
	    "         (control stopped: this node becomes its cluster's only "
	    "voter)\n");
	exit(1);
}

/*
 * --recover: the forced recovery of a one- or two-node cluster that lost
 * its quorum for good (docs/control.md).  Offline: refuses while this
 * node's control answers on control.sock, and without --confirm.
 */
static uint32_t	node_id_get(const struct nodeconf *);
static int	advertise_get(const struct nodeconf *, char *);

static int
recover(const char *path, int confirmed)
{
	struct sockaddr_un sun;
	char addr[16];
	uint32_t id;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control.sock",
	    NC.run_dir);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0) {
		rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
		close(fd);
		if (rc == 0) {
			fprintf(stderr, "arceus-control: --recover: control is "
			    "running (%s answers); stop it first (systemctl "
			    "stop arceus-control)\n", sun.sun_path);
			return 1;
		}
	}
	if (advertise_get(&NC, addr) < 0) {
		fprintf(stderr, "arceus-control: --recover: no address to "
		    "advertise (set [control] advertise)\n");
		return 1;
	}
	id = node_id_get(&NC);
	if (!confirmed) {
		fprintf(stderr, "arceus-control: --recover makes node %u (%s) "
		    "the only voter of the raft configuration in %s/raft: "
		    "the other members are forgotten, and whatever they "
		    "committed that this node lacks is lost.  Only for a "
		    "cluster of one or two nodes whose other node is gone "
		    "for good; wipe that node's state_dir before it comes "
		    "back.  Add --confirm to do it.\n", id, addr,
		    NC.state_dir);
		return 1;
	}
	(void)path;
	rc = raftglue_recover(&NC, id, addr);
	if (rc < 0) {
		fprintf(stderr, "arceus-control: --recover failed: %s\n",
		    strerror(-rc));
		return 1;
	}
	printf("node %u is now the only voter; start arceus-control and it "
	    "commits on its own\n", id);
	return 0;
}

/* 32 raw bytes, or 64 hex digits and an optional newline. */
static int
key_load(const char *path, unsigned char key[SWIM_KEY_LEN], char *why,
    size_t whylen)
{
	unsigned char buf[130];
	size_t bin = 0;
	ssize_t n;
	struct stat sb;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "%s: %s (hint: create one with "
		    "'head -c 32 /dev/urandom > %s' and copy it to every node)",
		    path, strerror(errno), path);
		return -1;
	}
	if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0)
		log_warnx("key %s is readable by others (mode %o): chmod 600",
		    path, sb.st_mode & 0777);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == SWIM_KEY_LEN) {
		memcpy(key, buf, SWIM_KEY_LEN);
		return 0;
	}
	if ((n == 64 || (n == 65 && buf[64] == '\n')) &&
	    sodium_hex2bin(key, SWIM_KEY_LEN, (char *)buf, 64, NULL, &bin,
	    NULL) == 0 && bin == SWIM_KEY_LEN)
		return 0;
	snprintf(why, whylen, "%s: expected 32 bytes or 64 hex digits, got %zd "
	    "bytes", path, n);
	return -1;
}

/* The configured id, or the one kept in state_dir, or a new one. */
static uint32_t
node_id_get(const struct nodeconf *nc)
{
	char path[512], tmp[520];
	uint32_t id = 0;
	FILE *fp;
	int rc;

	if (nc->node_id != 0)
		return (uint32_t)nc->node_id;
	snprintf(path, sizeof(path), "%s/node-id", nc->state_dir);
	if ((rc = nodeconf_read_id(nc, &id)) == 0)
		return id;
	if (rc != -ENOENT)
		log_warnx("%s: %s, making a new one", path, rc == -EINVAL ?
		    "no valid id in it" : strerror(-rc));
	while (id == 0)
		id = randombytes_random() & 0x7fffffff;
	mkdir(nc->state_dir, 0750);
	/* temp + fsync + rename: a crash never leaves a half-written id */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "w")) == NULL)
		fatal("cannot keep the node id in %s (hint: state_dir in "
		    "[node] must be writable)", path);
	fprintf(fp, "%u\n", id);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0 || fclose(fp) != 0 ||
	    rename(tmp, path) != 0)
		fatal("%s", path);
	return id;
}

/*
 * The boot id, which must grow across restarts (SWIM's anti-replay):
 * wall-clock ns, or the last one + 1 if the clock went backwards; kept in
 * state_dir/boot-id.
 */
static uint64_t
boot_id_next(const struct nodeconf *nc)
{
	char path[512], tmp[520];
	struct timespec ts;
	unsigned long long last = 0;
	uint64_t boot;
	FILE *fp;

	clock_gettime(CLOCK_REALTIME, &ts);
	boot = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	snprintf(path, sizeof(path), "%s/boot-id", nc->state_dir);
	if ((fp = fopen(path, "r")) != NULL) {
		if (fscanf(fp, "%llu", &last) != 1)
			last = 0;
		fclose(fp);
	}
	if (boot <= last) {
		log_warnx("the clock is behind the last boot; boot id %llu "
		    "follows the last one", last + 1);
		boot = last + 1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "w")) == NULL ||
	    fprintf(fp, "%llu\n", (unsigned long long)boot) < 0 ||
	    fflush(fp) != 0 || fsync(fileno(fp)) != 0 || fclose(fp) != 0 ||
	    rename(tmp, path) != 0)
		fatal("cannot keep the boot id in %s (hint: state_dir in "
		    "[node] must be writable)", path);
	return boot;
}

/* The IPv4 address peers reach us at. */
static int
advertise_get(const struct nodeconf *nc, char *out)
{
	struct ifaddrs *ifa, *i;

	if (nc->ctl_advertise[0] != '\0') {
		snprintf(out, 16, "%s", nc->ctl_advertise);
		return 0;
	}
	if (strcmp(nc->ctl_listen, "0.0.0.0") != 0) {
		snprintf(out, 16, "%s", nc->ctl_listen);
		return 0;
	}
	if (getifaddrs(&ifa) < 0)
		return -1;
	for (i = ifa; i != NULL; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !(i->ifa_flags & IFF_LOOPBACK) && (i->ifa_flags & IFF_UP)) {
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
			    out, 16);
			freeifaddrs(ifa);
			return 0;
		}
	freeifaddrs(ifa);
	snprintf(out, 16, "127.0.0.1");
	return 0;
}

/*
 * The key: systemd's credential "cluster.key" when the unit passes one
 * (LoadCredential=, so the file can stay root's), else key_file.
 */
static const char *
key_path(const struct nodeconf *nc)
{
	static char p[512];
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	if (dir != NULL) {
		snprintf(p, sizeof(p), "%s/cluster.key", dir);
		if (access(p, R_OK) == 0)
			return p;
	}
	return nc->key_file;
}

/* Where a key is set in a file (0: not set, its default applies). */
struct keyline {
	const char	*section, *key;
	int		 line;
};

static int
keyline_cb(void *ctx, const char *section, const char *key,
    const char *value, const char *file, int line, struct conf_errs *errs)
{
	struct keyline *k = ctx;

	(void)value;
	(void)file;
	(void)errs;
	if (strcmp(section, k->section) == 0 && strcmp(key, k->key) == 0)
		k->line = line;
	return 0;
}

/* Prints one error as file:line: [section] key: reason. */
static void __attribute__((format(printf, 4, 5)))
check_err(const char *path, const char *section, const char *key,
    const char *fmt, ...)
{
	struct keyline k = { section, key, 0 };
	struct conf_errs errs;
	char msg[512];
	va_list ap;

	memset(&errs, 0, sizeof(errs));
	conf_parse_cb(path, keyline_cb, &k, &errs);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (k.line > 0)
		fprintf(stderr, "%s:%d: [%s] %s: %s\n", path, k.line, section,
		    key, msg);
	else
		fprintf(stderr, "%s: [%s] %s (default): %s\n", path, section,
		    key, msg);
}

/* Checks beyond the key table. @return errors found. */
static int
conf_check_more(const struct nodeconf *nc, const char *path,
    unsigned char key[SWIM_KEY_LEN])
{
	char why[512];
	struct in_addr a;
	int bad = 0;

	if (key_load(key_path(nc), key, why, sizeof(why)) < 0) {
		check_err(path, "node", "key_file", "%s", why);
		bad++;
	}
	if (inet_pton(AF_INET, nc->ctl_listen, &a) != 1) {
		check_err(path, "control", "listen", "'%s' is not an IPv4 "
		    "address", nc->ctl_listen);
		bad++;
	}
	if (nc->ctl_advertise[0] && inet_pton(AF_INET, nc->ctl_advertise,
	    &a) != 1) {
		check_err(path, "control", "advertise", "'%s' is not an IPv4 "
		    "address", nc->ctl_advertise);
		bad++;
	}
	if (nc->http_port && inet_pton(AF_INET, nc->http_listen, &a) != 1) {
		check_err(path, "control", "http_listen", "'%s' is not an "
		    "IPv4 address", nc->http_listen);
		bad++;
	}
	if (nc->voters % 2 == 0) {
		check_err(path, "control", "voters", "%lld is even; use an odd "
		    "number (3 or 5)", (long long)nc->voters);
		bad++;
	}
	if (nc->probe_timeout_ms >= nc->probe_interval_ms) {
		check_err(path, "membership", "probe_timeout_ms", "%lld must be "
		    "less than probe_interval_ms (%lld)",
		    (long long)nc->probe_timeout_ms,
		    (long long)nc->probe_interval_ms);
		bad++;
	}
	if (nc->heartbeat_ms * 2 > nc->election_timeout_ms) {
		check_err(path, "raft", "heartbeat_ms", "%lld is more than half "
		    "of election_timeout_ms (%lld): leaders would lose their "
		    "term", (long long)nc->heartbeat_ms,
		    (long long)nc->election_timeout_ms);
		bad++;
	}
	return bad;
}

/* ---- gossip over UDP --------------------------------------------------- */

static void
gossip_send(void *ctx, uint32_t addr, uint16_t port, const void *buf,
    size_t len)
{
	struct sockaddr_in to;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);

	(void)ctx;
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr.s_addr = addr;
	to.sin_port = htons(port);
	if (uv_udp_try_send(&udp, &b, 1, (struct sockaddr *)&to) < 0)
		udp_send_errors++;
}

static void
member_changed(void *ctx, const struct swim_member *m, int old)
{
	struct ctl *c = ctx;
	char a[16];
	struct in_addr in = { m->addr };

	c->view++;
	inet_ntop(AF_INET, &in, a, sizeof(a));
	if (old == m->state)
		log_info("ctl.member: node %u at %s:%u joined (view %llu, "
		    "epoch %llu, term %llu)", m->id, a, m->port,
		    (unsigned long long)c->view, (unsigned long long)c->epoch,
		    (unsigned long long)c->term);
	else
		log_info("ctl.member: node %u at %s:%u %s -> %s, incarnation "
		    "%u (view %llu, epoch %llu, term %llu)", m->id, a, m->port,
		    swim_state_name(old), swim_state_name(m->state),
		    m->incarnation, (unsigned long long)c->view,
		    (unsigned long long)c->epoch, (unsigned long long)c->term);
}

static void
udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char rbuf[2048];

	(void)h;
	(void)hint;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void
udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
    const struct sockaddr *from, unsigned flags)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)from;

	(void)h;
	if (n <= 0 || from == NULL || from->sa_family != AF_INET)
		return;
	pthread_mutex_lock(&C.mu);
	if (flags & UV_UDP_PARTIAL)
		C.sw.st.malformed++;
	else
		swim_recv(&C.sw, now_ms(), sin->sin_addr.s_addr,
		    ntohs(sin->sin_port), buf->base, (size_t)n);
	pthread_mutex_unlock(&C.mu);
}

/*
 * This node's link row, once a second: its dataplane's measurements, else
 * SWIM's probe RTTs (links.c); SWIM spreads it.  Called under C.mu.
 */
#define LINK_ROW_MS	1000

static void
links_refresh(struct ctl *c, uint64_t now)
{
	static uint64_t next;
	static struct swim_link row[SWIM_MAX_MEMBERS];
	int n;

	if (now < next)
		return;
	next = now + LINK_ROW_MS;
	n = links_row(&c->sw, now, c->links, c->dp_up ? c->nlinks : 0,
	    c->dp_up ? ctl_now() - c->links_at : 0, row, SWIM_MAX_MEMBERS);
	swim_links_set(&c->sw, now, row, n);
}

static void
on_tick(uv_timer_t *t)
{
	int others;

	(void)t;
	discovery_drain(&C, now_ms());
	pthread_mutex_lock(&C.mu);
	swim_tick(&C.sw, now_ms());
	links_refresh(&C, now_ms());
	/* no step measured for long (a standby): the profile again */
	if (speed_expire(&C.speed, ctl_now(), SPEED_TTL_S))
		C.sw.self.train_gflops10 = 0;
	others = swim_count(&C.sw, SWIM_ALIVE) + swim_count(&C.sw,
	    SWIM_SUSPECT) - 1;
	pthread_mutex_unlock(&C.mu);
	if (state == CTL_ALONE && others > 0)
		state_set(CTL_MEMBER);
	else if (state == CTL_MEMBER && others == 0)
		state_set(CTL_ALONE);
}

static void
on_slow(uv_timer_t *t)
{
	(void)t;
	if (watchdog_usec)
		sd_notify(0, "WATCHDOG=1");
}

/* ---- shutdown ----------------------------------------------------------- */

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
raft_stopped(struct ctl *c)
{
	(void)c;
	state_set(CTL_STOPPED);
	ctlsock_stop(&C);
	uv_walk(&loop, close_walk, NULL);
}

static void
on_leave_done(uv_timer_t *t)
{
	(void)t;
	uv_timer_stop(&raft_timer);
	raftglue_stop(&C, raft_stopped);
}

static void
on_raft_tick(uv_timer_t *t)
{
	(void)t;
	raftglue_tick(&C);
}

static void
on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	if (state == CTL_LEAVING)
		return;
	log_info("ctl: signal %d: leaving the cluster", signum);
	sd_notify(0, "STOPPING=1");
	state_set(CTL_LEAVING);
	discovery_stop(&C);		/* withdraw our DNS-SD record */
	pthread_mutex_lock(&C.mu);
	swim_leave(&C.sw, now_ms());
	pthread_mutex_unlock(&C.mu);
	uv_timer_stop(&tick_timer);
	uv_timer_start(&leave_timer, on_leave_done, LEAVE_MS, 0);
}

/* ---- main --------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	const char *path = NODECONF_PATH;
	struct conf_errs errs;
	unsigned char key[SWIM_KEY_LEN];
	struct swim_conf sc;
	struct sockaddr_in sin;
	char sock[512];
	int ch, check = 0, verbose = 0, rc, bad, do_recover = 0, confirm = 0;
	static const struct option lopts[] = {
		{ "recover", no_argument, NULL, 'R' },
		{ "confirm", no_argument, NULL, 'Y' },
		{ NULL, 0, NULL, 0 },
	};

	while ((ch = getopt_long(argc, argv, "c:nvh", lopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'n': check = 1; break;
		case 'v': verbose = 1; break;
		case 'R': do_recover = 1; break;
		case 'Y': confirm = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("arceus-control", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (sodium_init() < 0)
		fatalx("libsodium cannot initialize");
	memset(&errs, 0, sizeof(errs));
	rc = nodeconf_load(&NC, path, &errs);
	if (rc < 0)
		conf_errs_print(&errs, stderr);
	bad = rc < 0 ? errs.n : 0;
	bad += conf_check_more(&NC, path, key);
	if (check) {
		if (bad) {
			fprintf(stderr, "%s: %d error%s\n", path, bad,
			    bad == 1 ? "" : "s");
			return 1;
		}
		printf("%s: configuration ok\n", path);
		return 0;
	}
	if (bad)
		fatalx("%s: %d configuration error%s (hint: arceus-control -n "
		    "-c %s)", path, bad, bad == 1 ? "" : "s", path);
	if (do_recover)
		return recover(path, confirm);
	if (confirm)
		usage();
	signal(SIGPIPE, SIG_IGN);	/* raft and sockets: see MACHINE.md */

	/* identity */
	C.nc = &NC;
	C.start = ctl_now();
	C.id = node_id_get(&NC);
	C.boot = boot_id_next(&NC);
	C.role = "waiting";
	if (NC.name[0])
		snprintf(C.name, sizeof(C.name), "%s", NC.name);
	else
		gethostname(C.name, sizeof(C.name) - 1);
	if (advertise_get(&NC, C.addr) < 0)
		fatal("cannot find an address to advertise (hint: set "
		    "[control] advertise)");
	pthread_mutex_init(&C.mu, NULL);
	profile_measure(&C.prof, getenv("ARCEUS_NO_PROBE") == NULL);
	log_info("node %u (%s) at %s, %d cores, %.1f GiB, %.1f GFLOP/s",
	    C.id, C.name, C.addr, C.prof.cores,
	    C.prof.mem_bytes / 1073741824.0, C.prof.gflops);

	/* membership */
	sc.probe_interval_ms = (uint32_t)NC.probe_interval_ms;
	sc.probe_timeout_ms = (uint32_t)NC.probe_timeout_ms;
	sc.suspect_timeout_ms = (uint32_t)NC.suspect_timeout_ms;
	sc.indirect = (uint32_t)NC.indirect_probes;
	sc.rejoin_interval_ms = (uint32_t)NC.rejoin_interval_ms;
	if (swim_init(&C.sw, &sc, C.id, C.boot, key, (uint16_t)NC.http_port,
	    (uint16_t)NC.raft_port, gossip_send, member_changed, &C) < 0)
		fatalx("out of memory");
	C.sw.clock_us = now_us;
	C.sw.self.dp_port = (uint16_t)NC.dp_port;
	inet_pton(AF_INET, C.addr, &C.sw.self.addr);
	/* our profile rides on every datagram; the leader plans with it.
	 * Memory for the model: [control] model_memory, else half the
	 * node's (until the dataplane reports its arena). */
	C.sw.self.gflops10 = (uint32_t)(C.prof.gflops * 10.0);
	speed_init(&C.speed);
	C.sw.self.mem_mib = (uint32_t)((NC.model_memory ?
	    (double)NC.model_memory : C.prof.mem_bytes / 2) / 1048576.0);
	C.sw.self.port = (uint16_t)NC.gossip_port;
	for (int i = 0; i < NC.nseeds; i++) {
		struct in_addr a;

		inet_pton(AF_INET, NC.seeds[i].addr, &a);
		swim_add_seed(&C.sw, a.s_addr, NC.seeds[i].port);
	}

	/* the loop */
	uv_loop_init(&loop);
	C.loop = &loop;
	uv_udp_init(&loop, &udp);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)NC.gossip_port);
	inet_pton(AF_INET, NC.ctl_listen, &sin.sin_addr);
	if ((rc = uv_udp_bind(&udp, (struct sockaddr *)&sin, 0)) < 0)
		fatalx("gossip: bind %s:%lld: %s (hint: another arceus-control "
		    "on this port? set [control] gossip_port)", NC.ctl_listen,
		    (long long)NC.gossip_port, uv_strerror(rc));
	uv_udp_recv_start(&udp, udp_alloc, udp_recv);
	mkdir(NC.run_dir, 0755);
	snprintf(sock, sizeof(sock), "%s/control.sock", NC.run_dir);
	if ((rc = ctlsock_start(&C, sock)) < 0)
		fatalx("control.sock: %s: %s (hint: [node] run_dir must be "
		    "writable)", sock, uv_strerror(rc));
	if (NC.http_port && (rc = http_start(&C, NC.http_listen,
	    (int)NC.http_port)) < 0)
		fatalx("http: cannot listen on %s:%lld (hint: port in use? set "
		    "[control] http_port, 0 to turn HTTP off)", NC.http_listen,
		    (long long)NC.http_port);
	if ((rc = raftglue_init(&C, key)) < 0)
		fatalx("raft: cannot start in %s/raft (hint: [node] state_dir "
		    "must be writable; see the lines above)", NC.state_dir);
	sodium_memzero(key, sizeof(key));
	uv_timer_init(&loop, &raft_timer);
	uv_timer_start(&raft_timer, on_raft_tick, 100, 100);
	uv_timer_init(&loop, &tick_timer);
	uv_timer_init(&loop, &slow_timer);
	uv_timer_init(&loop, &leave_timer);
	uv_timer_start(&tick_timer, on_tick, TICK_MS, TICK_MS);
	if (sd_watchdog_enabled(0, &watchdog_usec) <= 0)
		watchdog_usec = 0;
	uv_timer_start(&slow_timer, on_slow, watchdog_usec ?
	    watchdog_usec / 2000 : 1000, watchdog_usec ? watchdog_usec / 2000 :
	    1000);
	uv_signal_init(&loop, &sigterm);
	uv_signal_init(&loop, &sigint);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_start(&sigint, on_signal, SIGINT);
	if (dpseam_start(&C) < 0)
		log_warnx("dataplane seam: cannot start its thread");
	if (NC.discovery && discovery_start(&C) < 0)
		log_warnx("discovery: cannot use avahi; peers from the %d "
		    "seed%s only", NC.nseeds, NC.nseeds == 1 ? "" : "s");
	state_set(CTL_ALONE);
	log_info("ready: gossip %s:%lld, http %s:%lld, %s", NC.ctl_listen,
	    (long long)NC.gossip_port, NC.http_listen,
	    (long long)NC.http_port, sock);
	sd_notify(0, "READY=1");

	uv_run(&loop, UV_RUN_DEFAULT);

	dpseam_stop(&C);
	http_stop(&C);
	uv_loop_close(&loop);
	free(C.ctlsrv);
	swim_fini(&C.sw);
	if (udp_send_errors)
		log_info("gossip: %llu send errors",
		    (unsigned long long)udp_send_errors);
	log_info("stopped");
	return 0;
}
