/*
 * transport_dpdk.c: the kernel-bypass backend: our reliable datagram
 * protocol (rdp.[ch]) in UDP/IPv4 frames on one DPDK port.
 *
 * The port comes from arceus.conf: [dataplane] dpdk_port is a PCI address
 * (a real NIC) or a vdev spec (net_af_packet0,iface=eth0; net_af_xdp,
 * net_memif, net_tap); dpdk_eal adds EAL arguments.  When dpdk_eal says
 * nothing about memory, free huge pages mean --in-memory and none mean
 * --no-huge -m 256 with a file prefix of our own.  Our address is
 * [dataplane] listen (0.0.0.0: accept any), the UDP port is [dataplane]
 * port, and a peer's IPv4 address is its static peer entry.  Neighbours:
 * a static entry ([dataplane] dpdk_neighbor = IPv4 MAC) is used as is;
 * any other peer's MAC is resolved with ARP requests (at connect, retried
 * with a doubling backoff, again when a frame of the peer comes from
 * another MAC: it restarted); frames go to the broadcast MAC only until
 * the answer comes.  We answer ARP requests for our own address.
 *
 * Per peer two streams, like the tcp backend's two connections:
 *
 *   ours (tx):   connect() -> SYN sent (CONNECTING) -> SYN acked ->
 *                dp_on_connected (OPEN) -> disconnect() or RST -> closed
 *   theirs (rx): their SYN (new session) -> first message = HELLO ->
 *                dp_on_hello -> dp_on_recv ... -> disconnect(): RST sent,
 *                the session is forgotten; its later frames get RST
 *
 * A message pulled from the engine (dp_tx_pull) is cut into frames.  A
 * frame whose payload lies in the arena (registered with the device once,
 * mem_register), or any payload on a virtual device (it copies by virtual
 * address), leaves without a copy where the PMD sends chained mbufs:
 * the Ethernet/IP/UDP/rdp headers in a small mbuf, the payload slice an
 * external buffer attached to a second one.  Other frames are copied into
 * one mbuf.  Each message has a reference count (struct zmsg, the shared
 * info of its external buffers): one reference held by the protocol until
 * its last frame is acknowledged, one per mbuf attached to it until the
 * PMD frees that mbuf; dp_on_sent comes when both are gone, so the arena
 * is never reused under a frame the device still reads.  Received frames are handed up in order; a message of one
 * frame goes up straight from the mbuf, larger ones through the
 * reassembly buffer.
 *
 * The fault seam acts on received frames: FAULT_NET_DROP loses one,
 * FAULT_NET_DUP handles it twice, FAULT_NET_REORDER holds it back behind
 * the next one; FAULT_NET_CORRUPT flips a bit of a message's CRC.
 *
 * The port has no interrupts here (af_packet): the loop polls, and the
 * wait op sleeps 20 us between polls while traffic flows, 1 ms when idle
 * (on 2 cores a spinning poller starves everyone, MACHINE.md).
 */
/* rte_dev_dma_map is experimental in 22.11 */
#define ALLOW_EXPERIMENTAL_API 1

#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/queue.h>

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>

#include "fault.h"
#include "log.h"
#include "dataplane.h"

/* our state of a peer */
#define PEER_ST(p)	((p)->tp[DP_TP_SLOT(DP_BACKEND_DPDK)])
#include "rdp.h"

#define DPDK_BURST		128
#define DPDK_NB_MBUF		8191
#define DPDK_MBUF_CACHE		256
#define DPDK_RX_DESC		1024
#define DPDK_TX_DESC		1024
#define DPDK_MAX_ARGS		64
#define DPDK_ARG_LEN		320
#define DPDK_TICK_NS		1000000ull	/* retransmission timers */
#define DPDK_IDLE_NS		10000000ull	/* then sleep 1 ms per wait */
#define DPDK_RST_GAP_NS		20000000ull	/* RSTs to one peer, at most */
#define DPDK_HOLD_MIN_FREE	2048	/* mbufs left before we hold frames */
#define DPDK_MTU_MAX		9000	/* dpdk_mtu 0: up to this */
#define DPDK_AFP_FRAMESZ_DEF	2048	/* af_packet's default framesz */
#define DPDK_AFP_FRAMESZ_JUMBO	10240	/* ours for jumbo frames */
#define DPDK_AFP_FRAME_OVERHEAD	128	/* tpacket header, alignment */
#define DPDK_MEMIF_BSIZE_DEF	2048
#define DPDK_ZC_MIN		256	/* shorter payload slices: copied */
/*
 * On a virtual device, which copies every frame into its ring anyway:
 * a slice of a 1500-byte frame (1438 bytes) costs less copied into the
 * header's mbuf than attached as an external buffer (a second mbuf, its
 * chaining and reference counts, a segment more for the PMD to walk and
 * free): the probe's rate was higher copied in 5 of 5 alternated rounds
 * over af_packet.  Jumbo frames' slices still go as external buffers.
 */
#define DPDK_ZC_MIN_VDEV	2048
/*
 * af_packet ring frames (default 512; the window is half of it).  256:
 * the rings are walked whole by the PMD's copies, the kernel's frame
 * lookups and copies and the receiver, and the smaller they are, the
 * less each frame costs the sender (packet_lookup_frame alone fell from
 * 11.7% to 6.7% of it from 2048 to 1024 frames).  Probe medians in one
 * rotated A/B (load 1.6-2.2): rings of 1024 frames 285 MB/s, 512 320,
 * 256 354.  The window, 128 frames, lasts about 0.6 ms at 1500 bytes:
 * a receiver away longer stalls the sender, which cost less than the
 * bigger rings' footprint at loads 1-3.  (The raw tool's sender gains as
 * much from a small ring, but its receiver, with no window to hold the
 * sender back, then drops what overflows: the rate it counts stays.)
 */
#define DPDK_AFP_FRAMECNT	256
#define DPDK_ACK_FRAMES		64	/* an ACK at least every this many */
#define DPDK_ACK_DELAY_NS	200000ull /* or this long after a frame */

struct dpdk_state;
struct dpdk_peer;

/*
 * A message in flight: the cookie the protocol holds, and the shared
 * info (reference count, free callback) of the external buffers that
 * point into its payload.
 */
struct zmsg {
	struct rte_mbuf_ext_shared_info sh;	/* refcnt: protocol + mbufs */
	TAILQ_ENTRY(zmsg) entry;	/* live, or free */
	struct dpdk_state *st;
	struct dpdk_peer *d;
	struct tp_msg	*m;
	int		 res;		/* from the protocol */
	int		 reported;	/* dp_on_sent said */
	int		 pmd_done;	/* the count hit 0 inside the PMD */
};
TAILQ_HEAD(zmsgq, zmsg);

struct dpdk_peer {
	struct dpdk_state *st;
	struct dp_peer	*p;
	uint32_t	 ip;		/* host order */
	uint16_t	 port;
	struct rdp_neigh nb;		/* its MAC: static or by ARP */
	/* our stream to it */
	uint64_t	 tx_session;	/* 0: closed */
	int		 connecting;	/* SYN not acknowledged yet */
	int		 open;		/* dp_on_connected said */
	uint64_t	 connect_ns;
	struct rdp_tx	 tx;
	/* its stream to us */
	uint64_t	 rx_session;	/* 0: none */
	int		 hello_seen;
	uint32_t	 gen;		/* bumped by disconnect (stop delivery) */
	uint32_t	 unacked;	/* frames since our last ACK */
	uint64_t	 unacked_ns;	/* when the first of them came */
	uint64_t	 last_rst_ns;
	struct rdp_rx	 rx;
	struct rdp_asm	 as;
	/* the message being received, when it spans frames (rx_deliver) */
	struct dp_rxmsg	 rxm;
};

struct dpdk_state {
	struct dp	*dp;
	uint16_t	 port;
	int		 started;
	struct rte_mempool *pool;
	uint8_t		 mac[6];
	uint32_t	 ip;		/* ours, host order; 0: any */
	uint16_t	 udp_port;
	uint16_t	 mtu;
	uint16_t	 mss;
	int		 tx_multiseg;	/* the PMD sends chained mbufs */
	int		 tx_by_va;	/* a vdev: it reads any payload by VA */
	uint32_t	 zc_min;		/* shorter payload slices: copied */
	uint32_t	 wmax;		/* frames in flight per stream */
	int		 last_n;	/* what the last poll did */
	uint64_t	 last_tick_ns;
	uint64_t	 last_busy_ns;
	uint64_t	 rng;
	struct rte_mbuf	*held;		/* FAULT_NET_REORDER */
	/* zero copy */
	struct rte_mempool *ext_pool;	/* mbufs without data, for extbufs */
	uint8_t		*zc_base;	/* the registered arena; NULL: none */
	size_t		 zc_len;
	rte_iova_t	 zc_iova;	/* of zc_base, or RTE_BAD_IOVA */
	struct zmsgq	 zlive;		/* messages in flight */
	struct zmsgq	 zfree;
	int		 zdone;		/* some in zlive finished in the PMD */
	uint64_t	 tx_zc;		/* frames sent with an external buffer */
	uint64_t	 tx_zc_arena;	/* of which from the registered arena */
	uint64_t	 tx_zc_rexmit;	/* of those, retransmissions */
	uint64_t	 tx_copied;	/* frames with a payload copied */
	uint64_t	 rx_whole;	/* messages received in one piece */
	struct dpdk_peer *all[DP_MAX_PEERS * 2];	/* to free at fini */
	int		 nall;
	/* counters */
	uint64_t	 rx_frames;
	uint64_t	 rx_bad;
	uint64_t	 rx_foreign;	/* not ours (other protocols) */
	uint64_t	 tx_frames;
	uint64_t	 tx_bcast;	/* data/control frames to broadcast */
	uint64_t	 arp_rx;	/* ARP packets received */
	uint64_t	 arp_replies;	/* we answered */
	uint64_t	 arp_bad;
	uint32_t	 bad_logged;	/* bit per enum rdp_err */
	uint32_t	 arp_logged;	/* bit per enum rdp_arp_err */
};

/* EAL runs once per process. 0 not tried, 1 up, <0 failed (-errno). */
static int eal_state;
/* af_packet's ring frame size and count as the EAL got them (0: not
 * af_packet) */
static long afp_framesz, afp_framecnt;

static uint64_t
rnd64(struct dpdk_state *st)
{
	/* xorshift64*, seeded from the boot id */
	st->rng ^= st->rng >> 12;
	st->rng ^= st->rng << 25;
	st->rng ^= st->rng >> 27;
	return st->rng * 2685821657736338717ull;
}

/* ------------------------------------------------------------------ */
/* EAL and port.                                                       */

static int
is_pci(const char *s)
{
	int colons = 0, dots = 0;

	for (; *s != '\0'; s++) {
		if (*s == ':')
			colons++;
		else if (*s == '.')
			dots++;
		else if (!isxdigit((unsigned char)*s))
			return 0;
	}
	return colons >= 1 && dots == 1;
}

static int
hugepages_free(void)
{
	char line[128];
	FILE *f;
	long n = 0;

	if ((f = fopen("/proc/meminfo", "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	fclose(f);
	return n >= 128;	/* 256 MiB of 2 MiB pages */
}

/* The value of key=N in a vdev spec ("name,k=v,..."), or -1. */
static long
spec_num(const char *spec, const char *key)
{
	size_t kl = strlen(key);

	for (const char *c = strchr(spec, ','); c != NULL;
	    c = strchr(c + 1, ','))
		if (strncmp(c + 1, key, kl) == 0 && c[1 + kl] == '=')
			return strtol(c + 2 + kl, NULL, 10);
	return -1;
}

static int
spec_is(const char *spec, const char *driver)
{
	return strncmp(spec, driver, strlen(driver)) == 0 ||
	    (strncmp(driver, "net_", 4) == 0 && strncmp(spec, "eth_", 4) ==
	    0 && strncmp(spec + 4, driver + 4, strlen(driver + 4)) == 0);
}

/* The kernel MTU of af_packet's iface= (0: unknown). */
static int
spec_iface_mtu(const char *spec)
{
	const char *c = strstr(spec, ",iface=");
	struct ifreq ifr;
	size_t len;
	int s, mtu = 0;

	if (c == NULL)
		return 0;
	c += 7;
	len = strcspn(c, ",");
	if (len == 0 || len >= sizeof(ifr.ifr_name))
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, c, len);
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	if (ioctl(s, SIOCGIFMTU, &ifr) == 0)
		mtu = ifr.ifr_mtu;
	close(s);
	return mtu;
}

/*
 * The largest frame the device can carry, from what its driver does, not
 * from its ethdev MTU: Debian 22.11's net_af_packet and net_memif both
 * report max_rx_pktlen 1518 (RTE_ETHER_MAX_LEN, fixed in their
 * dev_infos_get) so that ethdev refuses any MTU above 1500, yet neither
 * looks at the MTU on its data path: af_packet copies whatever fits a
 * ring frame (framesz minus its 32-byte header on transmit, minus the
 * tpacket header and alignment on receive) and the kernel interface's MTU
 * bounds what it sends; memif copies whatever fits its buffers (bsize;
 * 22.11 corrupts larger frames).  Sets *why.  @return an MTU, or 0 when
 * the ethdev MTU is the limit (a real NIC).
 */
static int
spec_mtu_limit(const char *spec, const char **why, char *buf, size_t bufl)
{
	if (spec_is(spec, "net_af_packet")) {
		long fs = afp_framesz > 0 ? afp_framesz : DPDK_AFP_FRAMESZ_DEF;
		int kmtu = spec_iface_mtu(spec), lim;

		lim = (int)fs - DPDK_AFP_FRAME_OVERHEAD - RTE_ETHER_HDR_LEN;
		if (kmtu > 0 && kmtu < lim)
			lim = kmtu;
		snprintf(buf, bufl, "the interface's MTU %d, af_packet "
		    "framesz %ld", kmtu, fs);
		*why = buf;
		return lim;
	}
	if (spec_is(spec, "net_memif")) {
		long bs = spec_num(spec, "bsize");

		if (bs <= 0)
			bs = DPDK_MEMIF_BSIZE_DEF;
		snprintf(buf, bufl, "memif bsize %ld", bs);
		*why = buf;
		return (int)bs - RTE_ETHER_HDR_LEN;
	}
	return 0;
}

/*
 * The EAL arguments, built from the configuration into store (one string
 * per argument).  @return argc
 */
static int
eal_args(const struct dp *dp, char store[][DPDK_ARG_LEN], char **argv)
{
	const char *eal = dp->conf.dpdk_eal, *spec = dp->conf.dpdk_port;
	char cpus[96] = "", tok[DPDK_ARG_LEN];
	int n = 0, mem_given;
	cpu_set_t set;

	snprintf(store[n++], DPDK_ARG_LEN, "arceus-dataplane");
	/* one lcore, allowed on the CPUs we may run on (no pinning) */
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		size_t len = 0;

		for (int c = 0; c < CPU_SETSIZE && len + 8 < sizeof(cpus); c++)
			if (CPU_ISSET(c, &set))
				len += (size_t)snprintf(cpus + len,
				    sizeof(cpus) - len, "%s%d", len ? "," : "",
				    c);
	}
	if (cpus[0] != '\0')
		snprintf(store[n++], DPDK_ARG_LEN, "--lcores=0@(%s)", cpus);
	else
		snprintf(store[n++], DPDK_ARG_LEN, "-l0");
	snprintf(store[n++], DPDK_ARG_LEN, "--no-telemetry");
	snprintf(store[n++], DPDK_ARG_LEN, "--log-level=*:error");
	if (is_pci(spec)) {
		snprintf(store[n++], DPDK_ARG_LEN, "-a");
		snprintf(store[n++], DPDK_ARG_LEN, "%s", spec);
	} else {
		snprintf(store[n++], DPDK_ARG_LEN, "--no-pci");
		/*
		 * af_packet: ring frames big enough for jumbo frames when
		 * the interface's MTU allows them (the operator's framesz
		 * wins), and a deeper ring than its default 512 frames
		 */
		int kmtu = spec_is(spec, "net_af_packet") ?
		    spec_iface_mtu(spec) : 0;
		int want = dp->conf.dpdk_mtu > 0 ? dp->conf.dpdk_mtu :
		    DPDK_MTU_MAX;

		char cnt[32] = "";

		if (kmtu > 0) {
			afp_framesz = spec_num(spec, "framesz") > 0 ?
			    spec_num(spec, "framesz") : DPDK_AFP_FRAMESZ_DEF;
			afp_framecnt = spec_num(spec, "framecnt");
			if (afp_framecnt <= 0) {
				afp_framecnt = DPDK_AFP_FRAMECNT;
				snprintf(cnt, sizeof(cnt), ",framecnt=%d",
				    DPDK_AFP_FRAMECNT);
			}
		}
		if (kmtu > RTE_ETHER_MTU && want > RTE_ETHER_MTU &&
		    spec_num(spec, "framesz") < 0 &&
		    spec_num(spec, "blocksz") < 0) {
			afp_framesz = DPDK_AFP_FRAMESZ_JUMBO;
			snprintf(store[n++], DPDK_ARG_LEN, "--vdev=%s,"
			    "framesz=%d,blocksz=%d%s", spec,
			    DPDK_AFP_FRAMESZ_JUMBO, 2 * DPDK_AFP_FRAMESZ_JUMBO,
			    cnt);
		} else if (kmtu > 0)
			snprintf(store[n++], DPDK_ARG_LEN, "--vdev=%s%s", spec,
			    cnt);
		else if (spec_is(spec, "net_memif") &&
		    strstr(spec, ",socket=") != NULL &&
		    strstr(spec, "socket-abstract") == NULL)
			/* 22.11 makes socket= abstract by default: a file
			 * crosses network namespaces, an abstract one not */
			snprintf(store[n++], DPDK_ARG_LEN, "--vdev=%s,"
			    "socket-abstract=no", spec);
		else
			snprintf(store[n++], DPDK_ARG_LEN, "--vdev=%s", spec);
	}
	mem_given = strstr(eal, "huge") != NULL ||
	    strstr(eal, "in-memory") != NULL ||
	    strstr(eal, "file-prefix") != NULL;
	if (!mem_given && hugepages_free())
		snprintf(store[n++], DPDK_ARG_LEN, "--in-memory");
	else if (!mem_given) {
		snprintf(store[n++], DPDK_ARG_LEN, "--no-huge");
		snprintf(store[n++], DPDK_ARG_LEN, "-m256");
		snprintf(store[n++], DPDK_ARG_LEN, "--file-prefix=arceus-dp%u-%d",
		    dp->conf.node_id, (int)getpid());
	}
	/* then the operator's, split on blanks */
	while (*eal != '\0' && n < DPDK_MAX_ARGS - 1) {
		size_t len;

		while (*eal == ' ' || *eal == '\t')
			eal++;
		len = strcspn(eal, " \t");
		if (len == 0)
			break;
		if (len >= sizeof(tok))
			len = sizeof(tok) - 1;
		memcpy(tok, eal, len);
		tok[len] = '\0';
		snprintf(store[n++], DPDK_ARG_LEN, "%s", tok);
		eal += strcspn(eal, " \t");
	}
	for (int i = 0; i < n; i++)
		argv[i] = store[i];
	argv[n] = NULL;
	return n;
}

static int
eal_start(const struct dp *dp)
{
	static char store[DPDK_MAX_ARGS][DPDK_ARG_LEN];
	char *argv[DPDK_MAX_ARGS + 1], line[1024];
	size_t len = 0;
	int argc;

	if (eal_state != 0)
		return eal_state > 0 ? 0 : eal_state;
	argc = eal_args(dp, store, argv);
	for (int i = 1; i < argc && len + 2 < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s",
		    argv[i]);
	log_debugx("dp.dpdk: EAL%s", line);
	if (rte_eal_init(argc, argv) < 0) {
		int e = rte_errno ? rte_errno : EINVAL;

		eal_state = -e;
		log_warnx("dp.dpdk: EAL init failed: %s (arguments:%s) ---> "
		    "HINT: DPDK needs root (or CAP_NET_RAW, CAP_IPC_LOCK); "
		    "check [dataplane] dpdk_eal", rte_strerror(e), line);
		return -e;
	}
	eal_state = 1;
	return 0;
}

static int
port_find(const char *spec, uint16_t *port)
{
	char name[128];
	size_t len = strcspn(spec, ",");
	uint16_t pid;

	if (len >= sizeof(name))
		len = sizeof(name) - 1;
	memcpy(name, spec, len);
	name[len] = '\0';
	if (rte_eth_dev_get_port_by_name(name, port) == 0)
		return 0;
	RTE_ETH_FOREACH_DEV(pid) {
		*port = pid;
		return 0;
	}
	return -ENODEV;
}

/*
 * The MTU to run: [dataplane] dpdk_mtu, or (0) the largest the device
 * takes up to 9000, as ethdev validates it (MTU + overhead must fit the
 * driver's max_rx_pktlen, and the MTU its max_mtu).
 */
static uint16_t
mtu_choose(struct dpdk_state *st, const struct rte_eth_dev_info *info,
    int quiet)
{
	int want = st->dp->conf.dpdk_mtu > 0 ? st->dp->conf.dpdk_mtu :
	    DPDK_MTU_MAX;
	uint32_t over = RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN, allowed;

	if (info->max_mtu != UINT16_MAX && info->max_rx_pktlen > info->max_mtu)
		over = info->max_rx_pktlen - info->max_mtu;
	allowed = info->max_rx_pktlen > over ? info->max_rx_pktlen - over :
	    RTE_ETHER_MTU;
	if (allowed > info->max_mtu)
		allowed = info->max_mtu;
	if ((uint32_t)want <= allowed)
		return (uint16_t)want;
	if (allowed < RTE_ETHER_MTU)
		allowed = RTE_ETHER_MTU;
	if (quiet)
		return (uint16_t)allowed;
	(st->dp->conf.dpdk_mtu > 0 ? log_warnx : log_info)("dp.dpdk: port "
	    "%u (%s): MTU %d is more than the device takes: its driver "
	    "reports max_rx_pktlen %u, max_mtu %u (frames of at most %u "
	    "bytes with %u of Ethernet overhead); using MTU %u",
	    st->port, info->driver_name, want, info->max_rx_pktlen,
	    info->max_mtu, info->max_rx_pktlen, over, allowed);
	return (uint16_t)allowed;
}

/* Does a kernel interface here hold our address (host order)? */
static int
kernel_has_ip(uint32_t ip)
{
	struct ifaddrs *ifs, *i;
	int found = 0;

	if (getifaddrs(&ifs) < 0)
		return 1;	/* cannot tell: as if it did */
	for (i = ifs; i != NULL && !found; i = i->ifa_next)
		found = i->ifa_addr != NULL &&
		    i->ifa_addr->sa_family == AF_INET &&
		    ntohl(((struct sockaddr_in *)(void *)i->ifa_addr)->
		    sin_addr.s_addr) == ip;
	freeifaddrs(ifs);
	return found;
}

/*
 * af_packet shares its interface with the kernel: frames sent to the
 * interface's own MAC climb the receiving kernel's IP stack (route
 * lookup, an ICMP error path, then a drop), which on a veth pair runs
 * in the sender's system call (perf: 13-16% of the sender's CPU).  So
 * the backend takes a MAC of its own, the interface's with bit 7 of the
 * first octet flipped (locally administered, unicast): its peers learn
 * it by ARP, the receiving kernel sees frames for another host and drops
 * them at once (ip_rcv), and the promiscuous packet socket still gets
 * them.  Not when the port is not promiscuous, nor when a kernel
 * interface here holds our address (the kernel answers ARP for it too,
 * with the interface's MAC).
 */
static void
afp_own_mac(struct dpdk_state *st)
{
	uint8_t own[6];

	if (!spec_is(st->dp->conf.dpdk_port, "net_af_packet"))
		return;
	if (rte_eth_promiscuous_get(st->port) != 1) {
		log_info("dp.dpdk: port %u: not promiscuous: frames go to the "
		    "interface's MAC (and through the kernel's IP stack)",
		    st->port);
		return;
	}
	if (kernel_has_ip(st->ip)) {
		log_info("dp.dpdk: port %u: the kernel holds our address too "
		    "(it answers ARP): frames go to the interface's MAC",
		    st->port);
		return;
	}
	memcpy(own, st->mac, 6);
	own[0] = (uint8_t)(((own[0] ^ 0x80) | 0x02) & ~0x01);
	log_info("dp.dpdk: port %u: our MAC %02x:%02x:%02x:%02x:%02x:%02x, "
	    "not the interface's (the receiving kernel drops frames for "
	    "another host before its IP stack)", st->port, own[0], own[1],
	    own[2], own[3], own[4], own[5]);
	memcpy(st->mac, own, 6);
}

static int
port_start(struct dpdk_state *st)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	uint16_t nrx = DPDK_RX_DESC, ntx = DPDK_TX_DESC, mtu;
	int sock = rte_eth_dev_socket_id(st->port), r, lim, fmtu = 0;
	const char *why = "";
	char wb[96];
	size_t room;

	if (sock < 0)
		sock = 0;
	if ((r = rte_eth_dev_info_get(st->port, &info)) < 0) {
		log_warnx("dp.dpdk: port %u: device info: %s", st->port,
		    rte_strerror(-r));
		return r;
	}
	/* the frames we send; the ethdev MTU where the driver has its own */
	lim = spec_mtu_limit(st->dp->conf.dpdk_port, &why, wb, sizeof(wb));
	mtu = mtu_choose(st, &info, lim > 0);
	if (lim > 0) {
		int want = st->dp->conf.dpdk_mtu > 0 ?
		    st->dp->conf.dpdk_mtu : DPDK_MTU_MAX;

		fmtu = want < lim ? want : lim;
		if (fmtu < 576)
			fmtu = 576;
		if (want > lim)
			(st->dp->conf.dpdk_mtu > 0 ? log_warnx : log_info)(
			    "dp.dpdk: port %u (%s): MTU %d is more than the "
			    "device carries (%s): using %d", st->port,
			    info.driver_name, want, why, fmtu);
		if (fmtu > mtu)
			log_info("dp.dpdk: port %u (%s): frames of MTU %d "
			    "(%s); its ethdev MTU stays %u: the driver "
			    "reports max_rx_pktlen %u and does not enforce "
			    "it", st->port, info.driver_name, fmtu, why, mtu,
			    info.max_rx_pktlen);
		if (fmtu < mtu)
			mtu = (uint16_t)fmtu;
	}
	memset(&conf, 0, sizeof(conf));
	conf.rxmode.mtu = mtu;
	if ((r = rte_eth_dev_configure(st->port, 1, 1, &conf)) < 0 &&
	    mtu > RTE_ETHER_MTU) {
		log_warnx("dp.dpdk: port %u (%s): configure with MTU %u: %s; "
		    "falling back to MTU %u", st->port, info.driver_name, mtu,
		    rte_strerror(-r), RTE_ETHER_MTU);
		conf.rxmode.mtu = mtu = RTE_ETHER_MTU;
		r = rte_eth_dev_configure(st->port, 1, 1, &conf);
	}
	if (r < 0 || (r = rte_eth_dev_adjust_nb_rx_tx_desc(st->port, &nrx,
	    &ntx)) < 0) {
		log_warnx("dp.dpdk: port %u: configure: %s", st->port,
		    rte_strerror(-r));
		return r;
	}
	/* an mbuf holds a whole frame: no chained mbufs on receive */
	if (fmtu == 0)
		fmtu = mtu;
	room = (size_t)fmtu + RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN;
	if (room < RTE_MBUF_DEFAULT_DATAROOM)
		room = RTE_MBUF_DEFAULT_DATAROOM;
	/* af_packet wants an mbuf to hold a whole ring frame */
	if (afp_framesz > 0 && room < (size_t)afp_framesz)
		room = (size_t)afp_framesz;
	room = RTE_ALIGN_CEIL(room, 64);
	st->pool = rte_pktmbuf_pool_create("arceus_rdp", DPDK_NB_MBUF,
	    DPDK_MBUF_CACHE, 0, (uint16_t)(room + RTE_PKTMBUF_HEADROOM),
	    (unsigned)sock);
	if (st->pool == NULL) {
		log_warnx("dp.dpdk: mbuf pool of %u x %zu bytes: %s ---> HINT: "
		    "more EAL memory (-m) in [dataplane] dpdk_eal, or a "
		    "smaller dpdk_mtu", DPDK_NB_MBUF, room,
		    rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* data-less mbufs: external buffers (payloads in the arena) */
	st->ext_pool = rte_pktmbuf_pool_create("arceus_rdp_ext", DPDK_NB_MBUF,
	    DPDK_MBUF_CACHE, 0, 0, (unsigned)sock);
	if (st->ext_pool == NULL)
		log_info("dp.dpdk: no pool for external buffers (%s): payloads "
		    "are copied", rte_strerror(rte_errno));
	if ((r = rte_eth_rx_queue_setup(st->port, 0, nrx, (unsigned)sock,
	    NULL, st->pool)) < 0 ||
	    (r = rte_eth_tx_queue_setup(st->port, 0, ntx, (unsigned)sock,
	    NULL)) < 0) {
		log_warnx("dp.dpdk: port %u: queues: %s", st->port,
		    rte_strerror(-r));
		return r;
	}
	if ((r = rte_eth_dev_start(st->port)) < 0) {
		log_warnx("dp.dpdk: port %u: start: %s", st->port,
		    rte_strerror(-r));
		return r;
	}
	st->started = 1;
	/*
	 * A virtual device (af_packet, memif, ...) copies frames into its
	 * ring by virtual address, no DMA: every payload slice may go as an
	 * external buffer (the engine lends each payload until dp_on_sent),
	 * not only those in the registered arena, which a NIC needs
	 */
	st->tx_by_va = !is_pci(st->dp->conf.dpdk_port);
	st->zc_min = st->dp->conf.dpdk_zc_min > 0 ?
	    (uint32_t)st->dp->conf.dpdk_zc_min : st->tx_by_va ?
	    DPDK_ZC_MIN_VDEV : DPDK_ZC_MIN;
	st->tx_multiseg = st->ext_pool != NULL && !!(info.tx_offload_capa &
	    RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
	/*
	 * A stream keeps fewer frames in flight than the receiver's queue
	 * holds (af_packet drops what overflows its ring).
	 */
	st->wmax = nrx / 2 < RDP_WINDOW ? nrx / 2 : RDP_WINDOW;
	if (afp_framecnt > 0)	/* af_packet: its ring, not descriptors */
		st->wmax = afp_framecnt / 2 < RDP_WINDOW ?
		    (uint32_t)afp_framecnt / 2 : RDP_WINDOW;
	if (st->wmax < 2 * RDP_CWND_MIN)
		st->wmax = 2 * RDP_CWND_MIN;
	rte_eth_promiscuous_enable(st->port);	/* best effort */
	if (rte_eth_macaddr_get(st->port, &mac) == 0)
		memcpy(st->mac, mac.addr_bytes, 6);
	afp_own_mac(st);
	st->mtu = (uint16_t)fmtu;
	st->mss = (uint16_t)(st->mtu - RDP_IP_LEN - RDP_UDP_LEN - RDP_HDR_LEN);
	if ((size_t)st->mss + RDP_OVERHEAD > room)
		st->mss = (uint16_t)(room - RDP_OVERHEAD);
	if (st->mss > RDP_MAX_MSS)
		st->mss = RDP_MAX_MSS;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Frames out.                                                         */

static struct dpdk_peer *dpeer(struct dpdk_state *st, struct dp_peer *p);

static void
addr_fill(struct dpdk_state *st, struct dpdk_peer *d, struct rdp_addr *a)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	memcpy(a->dst_mac, d->nb.known ? d->nb.mac : bcast, 6);
	memcpy(a->src_mac, st->mac, 6);
	a->src_ip = st->ip;
	a->dst_ip = d->ip;
	a->src_port = st->udp_port;
	a->dst_port = d->port;
}

/* A control frame (ACK, RST) now. @return 0 or -ENOBUFS */
static int
send_ctl(struct dpdk_state *st, struct dpdk_peer *d, uint8_t type,
    uint64_t session, uint32_t seq, const uint8_t *payload, uint16_t len)
{
	struct rdp_hdr h = { .type = type, .src = st->dp->conf.node_id,
	    .dst = d->p->id, .session = session, .seq = seq, .len = len };
	struct rdp_addr a;
	struct rte_mbuf *m;
	uint8_t *b;

	if ((m = rte_pktmbuf_alloc(st->pool)) == NULL)
		return -ENOBUFS;
	if ((b = (uint8_t *)rte_pktmbuf_append(m, RDP_OVERHEAD + len)) ==
	    NULL) {
		rte_pktmbuf_free(m);
		return -ENOBUFS;
	}
	addr_fill(st, d, &a);
	rdp_frame_encode(b, &a, &h);
	if (len > 0)
		memcpy(b + RDP_OVERHEAD, payload, len);
	if (rte_eth_tx_burst(st->port, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		return -ENOBUFS;
	}
	st->tx_frames++;
	if (!d->nb.known)
		st->tx_bcast++;
	return 0;
}

/* An ARP packet now (a request: broadcast). @return 0 or -ENOBUFS */
static int
send_arp(struct dpdk_state *st, uint16_t op, const uint8_t dst[6],
    uint32_t tpa)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct rdp_arp p = { .op = op, .spa = st->ip, .tpa = tpa };
	struct rte_mbuf *m;
	uint8_t *b;

	memcpy(p.sha, st->mac, 6);
	if (op == RDP_ARP_REPLY)
		memcpy(p.tha, dst, 6);
	if ((m = rte_pktmbuf_alloc(st->pool)) == NULL)
		return -ENOBUFS;
	if ((b = (uint8_t *)rte_pktmbuf_append(m, RDP_ARP_LEN)) == NULL) {
		rte_pktmbuf_free(m);
		return -ENOBUFS;
	}
	rdp_arp_build(b, op == RDP_ARP_REQUEST ? bcast : dst, &p);
	if (rte_eth_tx_burst(st->port, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		return -ENOBUFS;
	}
	return 0;
}

/* Asks for the MACs of peers being resolved whose request is due. */
static void
arp_tick(struct dpdk_state *st, uint64_t now)
{
	struct dp *dp = st->dp;

	for (int i = 0; i < dp->npeers; i++) {
		struct dpdk_peer *d = PEER_ST(dp->peers[i]);

		if (d != NULL && d->ip != 0 && rdp_neigh_due(&d->nb, now))
			send_arp(st, RDP_ARP_REQUEST, NULL, d->ip);
	}
}

static void
send_ack(struct dpdk_state *st, struct dpdk_peer *d)
{
	uint8_t sack[RDP_SACK_BYTES];
	uint32_t cum;

	rdp_rx_ack(&d->rx, &cum, sack);
	if (send_ctl(st, d, RDP_ACK, d->rx_session, cum, sack,
	    sizeof(sack)) < 0)
		d->rx.ack_due = 1;	/* next poll */
	else
		d->unacked = 0;
}

static void
send_rst(struct dpdk_state *st, struct dpdk_peer *d, uint64_t session,
    uint64_t now)
{
	if (now - d->last_rst_ns < DPDK_RST_GAP_NS)
		return;
	d->last_rst_ns = now;
	send_ctl(st, d, RDP_RST, session, 0, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Messages in flight and their references.                           */

static void
zmsg_recycle(struct zmsg *z)
{
	TAILQ_REMOVE(&z->st->zlive, z, entry);
	TAILQ_INSERT_HEAD(&z->st->zfree, z, entry);
}

/* The last reference went: the engine hears of it now. */
static void
zmsg_report(struct zmsg *z)
{
	struct dpdk_state *st = z->st;

	if (!z->reported) {
		z->reported = 1;
		dp_on_sent(st->dp, z->d->p, z->m, z->res);
	}
	zmsg_recycle(z);
}

/*
 * The PMD freed the last mbuf pointing into the message (maybe inside
 * rte_eth_tx_burst, under flush): report it later, from poll.
 */
static void
zmsg_free_cb(void *addr, void *opaque)
{
	struct zmsg *z = opaque;

	(void)addr;
	z->pmd_done = 1;
	z->st->zdone = 1;
}

/* Reports every message whose count hit 0 in the PMD. */
static void
zmsg_drain(struct dpdk_state *st)
{
	struct zmsg *z, *next;

	if (!st->zdone)
		return;
	st->zdone = 0;
	/*
	 * From the head again after each report: dp_on_sent may come back
	 * here (a disconnect) and recycle what a saved next pointed to
	 */
	do {
		for (z = TAILQ_FIRST(&st->zlive); z != NULL; z = next) {
			next = TAILQ_NEXT(z, entry);
			if (z->pmd_done)
				break;
		}
		if (z != NULL)
			zmsg_report(z);
	} while (z != NULL);
}

static struct zmsg *
zmsg_get(struct dpdk_state *st, struct dpdk_peer *d, struct tp_msg *m)
{
	struct zmsg *z;

	if ((z = TAILQ_FIRST(&st->zfree)) != NULL)
		TAILQ_REMOVE(&st->zfree, z, entry);
	else if ((z = malloc(sizeof(*z))) == NULL)
		return NULL;
	memset(z, 0, sizeof(*z));
	z->st = st;
	z->d = d;
	z->m = m;
	z->sh.free_cb = zmsg_free_cb;
	z->sh.fcb_opaque = z;
	rte_mbuf_ext_refcnt_set(&z->sh, 1);	/* the protocol's */
	TAILQ_INSERT_TAIL(&st->zlive, z, entry);
	return z;
}

/* The protocol is done with the message (acknowledged, or reset). */
static void
zmsg_done(struct zmsg *z, int res)
{
	z->res = res;
	if (rte_mbuf_ext_refcnt_update(&z->sh, -1) == 0)
		zmsg_report(z);		/* no mbuf left: now */
	/* else the PMD's last free reports it (zmsg_free_cb) */
}

/*
 * The peer goes away (its dp_peer may be freed after disconnect): its
 * messages that mbufs still hold are reported now; the mbufs' frees only
 * recycle them later.
 */
static void
zmsg_orphan(struct dpdk_state *st, struct dpdk_peer *d)
{
	struct zmsg *z, *next;

	rte_eth_tx_done_cleanup(st->port, 0, 0);	/* best effort */
	zmsg_drain(st);
	/* from the head after each report (dp_on_sent may come back) */
	do {
		for (z = TAILQ_FIRST(&st->zlive); z != NULL; z = next) {
			next = TAILQ_NEXT(z, entry);
			if (z->d == d && !z->reported)
				break;
		}
		if (z != NULL) {
			z->reported = 1;
			dp_on_sent(st->dp, d->p, z->m, z->res ? z->res :
			    -ECONNRESET);
		}
	} while (z != NULL);
}

/* Is [p, p + len) inside the registered arena? */
static int
in_arena(const struct dpdk_state *st, const uint8_t *p, size_t len)
{
	return st->zc_base != NULL && p >= st->zc_base &&
	    len <= st->zc_len && (size_t)(p - st->zc_base) <= st->zc_len - len;
}

/*
 * A frame with its payload slice (the last piece, in the arena) as an
 * external buffer chained behind a header mbuf.  @return the frame, or
 * NULL (out of mbufs).
 */
static struct rte_mbuf *
frame_zc(struct dpdk_state *st, struct zmsg *z, const struct rdp_addr *a,
    const struct rdp_hdr *h, const uint8_t *head_piece, uint16_t head_len,
    const uint8_t *ext, uint16_t ext_len)
{
	struct rte_mbuf *hd, *x;
	uint8_t *b;

	if ((hd = rte_pktmbuf_alloc(st->pool)) == NULL)
		return NULL;
	if ((x = rte_pktmbuf_alloc(st->ext_pool)) == NULL ||
	    (b = (uint8_t *)rte_pktmbuf_append(hd, RDP_OVERHEAD +
	    head_len)) == NULL) {
		rte_pktmbuf_free(x);
		rte_pktmbuf_free(hd);
		return NULL;
	}
	rdp_frame_encode(b, a, h);
	if (head_len > 0)
		memcpy(b + RDP_OVERHEAD, head_piece, head_len);
	rte_mbuf_ext_refcnt_update(&z->sh, 1);
	rte_pktmbuf_attach_extbuf(x, (void *)(uintptr_t)ext,
	    st->zc_iova == RTE_BAD_IOVA ? RTE_BAD_IOVA :
	    st->zc_iova + (rte_iova_t)(ext - st->zc_base), ext_len, &z->sh);
	x->data_len = ext_len;
	x->pkt_len = ext_len;
	if (rte_pktmbuf_chain(hd, x) != 0) {
		rte_pktmbuf_free(hd);
		rte_pktmbuf_free(x);
		return NULL;
	}
	return hd;
}

/* Fills the window from the engine's queue and transmits what may go. */
static int
flush(struct dpdk_state *st, struct dpdk_peer *d, uint64_t now)
{
	struct rte_mbuf *pk[DPDK_BURST];
	uint32_t seqs[DPDK_BURST];
	struct rdp_addr a;
	struct tp_msg *m;
	int total = 0;

	if (d->tx_session == 0)
		return 0;
	addr_fill(st, d, &a);
	for (;;) {
		struct rdp_out o;
		uint16_t n = 0, sent;

		while (d->open && !rdp_tx_busy(&d->tx) &&
		    (m = dp_tx_pull(st->dp, d->p)) != NULL) {
			struct zmsg *z;

			if (fault_hit(FAULT_NET_CORRUPT) < 0)
				m->hdr[44] ^= 0x01;	/* the CRC sees it */
			if ((z = zmsg_get(st, d, m)) == NULL) {
				dp_on_sent(st->dp, d->p, m, -ENOMEM);
				continue;
			}
			rdp_tx_push(&d->tx, z, m->hdr, WIRE_HDR_LEN,
			    m->payload, m->len);
		}
		while (n < DPDK_BURST && rdp_tx_next(&d->tx, now, &o)) {
			struct rdp_hdr h = { .type = RDP_DATA,
			    .flags = o.flags, .src = st->dp->conf.node_id,
			    .dst = d->p->id, .session = d->tx_session,
			    .seq = o.seq, .len = o.len };
			struct rte_mbuf *mb = NULL;
			const uint8_t *last = o.l2 > 0 ? o.p2 : o.p1;
			uint16_t lastlen = o.l2 > 0 ? o.l2 : o.l1;
			uint8_t *b;

			/* the payload slice from the arena: no copy */
			if (st->tx_multiseg && o.cookie != NULL &&
			    lastlen >= st->zc_min &&
			    (st->tx_by_va || in_arena(st, last, lastlen))) {
				if ((mb = frame_zc(st, o.cookie, &a, &h,
				    o.l2 > 0 ? o.p1 : NULL, o.l2 > 0 ? o.l1 : 0,
				    last, lastlen)) == NULL) {
					rdp_tx_lost(&d->tx, o.seq);
					break;
				}
				st->tx_zc++;
				if (in_arena(st, last, lastlen)) {
					st->tx_zc_arena++;
					if (o.ntx > 1)
						st->tx_zc_rexmit++;
				}
				seqs[n] = o.seq;
				pk[n++] = mb;
				continue;
			}
			if ((mb = rte_pktmbuf_alloc(st->pool)) == NULL ||
			    (b = (uint8_t *)rte_pktmbuf_append(mb,
			    RDP_OVERHEAD + o.len)) == NULL) {
				rte_pktmbuf_free(mb);
				rdp_tx_lost(&d->tx, o.seq);
				break;
			}
			rdp_frame_encode(b, &a, &h);
			if (o.l1 > 0)
				memcpy(b + RDP_OVERHEAD, o.p1, o.l1);
			if (o.l2 > 0)
				memcpy(b + RDP_OVERHEAD + o.l1, o.p2, o.l2);
			if (o.len > 0)
				st->tx_copied++;
			seqs[n] = o.seq;
			pk[n++] = mb;
		}
		if (n == 0)
			break;
		sent = rte_eth_tx_burst(st->port, 0, pk, n);
		/*
		 * A burst takes af_packet about 0.5 ms (its sendto runs the
		 * receiving side too): the next frames' send times are now,
		 * and a stall of the window starts after it
		 */
		now = dp_now_ns();
		if (d->tx.stall_from != 0)
			d->tx.stall_from = now | 1;
		st->tx_frames += sent;
		if (!d->nb.known)
			st->tx_bcast += sent;
		total += sent;
		for (uint16_t i = sent; i < n; i++) {
			rdp_tx_lost(&d->tx, seqs[i]);
			rte_pktmbuf_free(pk[i]);
		}
		if (sent < n)
			break;
	}
	return total;
}

/* ------------------------------------------------------------------ */
/* Streams.                                                            */

static void
tx_done(void *arg, void *cookie, int res)
{
	(void)arg;
	zmsg_done(cookie, res);
}

/* A frame in order from the peer's stream. @return nonzero: stop */
static int
rx_deliver(void *arg, const uint8_t *data, uint16_t len, uint16_t flags)
{
	struct dpdk_peer *d = arg;
	struct dp *dp = d->st->dp;
	uint32_t gen = d->gen;
	int end = !!(flags & RDP_F_END);
	struct wire_hdr wh;
	const uint8_t *msg;
	enum wire_err e;
	size_t ml;
	int r;

	if (flags & RDP_F_SYN)
		return 0;
	/*
	 * A message over several frames (the sender cuts at least 64 bytes
	 * per frame, so its first holds the header): summed frame by frame
	 * into its place.  The hello, a message of one frame, or an odd
	 * first frame: whole, through the reassembly buffer (a message of
	 * one aligned frame goes up from the frame itself), checked whole.
	 */
	if (d->rxm.mode == DP_RXM_NONE && d->hello_seen && !end &&
	    len >= WIRE_HDR_LEN && d->as.len == 0 && !d->as.skipping) {
		dp_rxmsg_start(dp, d->p, &d->rxm, data);
		dp_rxmsg_add(dp, d->p, &d->rxm, data + WIRE_HDR_LEN,
		    len - WIRE_HDR_LEN, end);
		return d->gen != gen;
	}
	if (d->rxm.mode != DP_RXM_NONE) {
		dp_rxmsg_add(dp, d->p, &d->rxm, data, len, end);
		return d->gen != gen;
	}
	if ((r = rdp_asm_add(&d->as, data, len, end, &msg, &ml)) <= 0) {
		if (r < 0)
			dp_on_bad(dp, d->hello_seen ? d->p : NULL,
			    WIRE_ELENGTH);
		return 0;
	}
	d->st->rx_whole++;
	e = wire_decode(msg, ml, &wh);
	if (e == WIRE_OK && (size_t)wh.length != ml - WIRE_HDR_LEN)
		e = WIRE_ELENGTH;
	if (e != WIRE_OK) {
		dp_on_bad(dp, d->hello_seen ? d->p : NULL, e);
		return 0;
	}
	if (!d->hello_seen) {
		struct dp_peer *q = dp_on_hello(dp, &wh, msg,
		    msg + WIRE_HDR_LEN);

		if (q == d->p)
			d->hello_seen = 1;
		else if (q != NULL)
			dp_on_bad(dp, NULL, WIRE_ESOURCE);
		return d->gen != gen;
	}
	dp_on_recv(dp, d->p, &wh, msg, msg + WIRE_HDR_LEN);
	return d->gen != gen;
}

static void
rx_release(void *arg, void *handle)
{
	(void)arg;
	rte_pktmbuf_free(handle);
}

static struct dpdk_peer *
dpeer(struct dpdk_state *st, struct dp_peer *p)
{
	struct dpdk_peer *d = PEER_ST(p);
	struct in_addr in;

	if (d != NULL)
		return d;
	if (st->nall == (int)(sizeof(st->all) / sizeof(st->all[0])))
		return NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->st = st;
	d->p = p;
	d->port = p->port;
	if (inet_pton(AF_INET, p->addr, &in) == 1)
		d->ip = ntohl(in.s_addr);
	for (int i = 0; i < st->dp->conf.ndpdk_neigh; i++)
		if (st->dp->conf.dpdk_neigh[i].ip == d->ip && d->ip != 0)
			rdp_neigh_set_static(&d->nb,
			    st->dp->conf.dpdk_neigh[i].mac);
	rdp_rx_init(&d->rx, rx_deliver, rx_release, d);
	rdp_asm_init(&d->as, WIRE_HDR_LEN + WIRE_MAX_PAYLOAD);
	st->all[st->nall++] = d;
	PEER_ST(p) = d;
	return d;
}

/* Closes our stream to the peer (its messages fail with err). */
static void
tx_close(struct dpdk_peer *d, int err)
{
	if (d->tx_session == 0)
		return;
	d->tx_session = 0;
	d->connecting = d->open = 0;
	rdp_tx_reset(&d->tx, err);	/* dp_on_sent for each */
}

/* Forgets the peer's stream to us. */
static void
rx_close(struct dpdk_peer *d)
{
	d->gen++;
	d->rx_session = 0;
	d->hello_seen = 0;
	rdp_rx_reset(&d->rx);
	rdp_asm_reset(&d->as);
	dp_rxmsg_reset(&d->rxm);
}

static void
on_data(struct dpdk_state *st, struct dpdk_peer *d, const struct rdp_hdr *h,
    const uint8_t *pl, struct rte_mbuf *m, uint64_t now)
{
	enum rdp_rx_res res;

	if (h->session != d->rx_session) {
		if (!(h->flags & RDP_F_SYN)) {
			/* a stream we do not know (we closed it, or restarted) */
			send_rst(st, d, h->session, now);
			rte_pktmbuf_free(m);
			return;
		}
		/* the peer (re)connected: the old stream goes */
		if (d->rx_session != 0)
			rx_close(d);
		d->rx_session = h->session;
	}
	/* short of mbufs: do not hold frames out of order, drop them */
	if (h->seq != d->rx.nxt &&
	    rte_mempool_avail_count(st->pool) < DPDK_HOLD_MIN_FREE) {
		rte_pktmbuf_free(m);
		return;
	}
	if (d->unacked++ == 0)
		d->unacked_ns = now;
	res = rdp_rx_data(&d->rx, h->seq, h->flags, pl, h->len, m);
	if (res != RDP_RX_HELD)
		rte_pktmbuf_free(m);
}

static void
on_ack(struct dpdk_state *st, struct dpdk_peer *d, const struct rdp_hdr *h,
    const uint8_t *pl, uint64_t now)
{
	if (d->tx_session == 0 || h->session != d->tx_session)
		return;		/* an ack of a stream closed since */
	rdp_tx_ack(&d->tx, h->seq, pl, h->len, now);
	if (d->connecting && rdp_tx_connected(&d->tx)) {
		d->connecting = 0;
		d->open = 1;
		dp_on_connected(st->dp, d->p);
	}
}

static void
on_rst(struct dpdk_state *st, struct dpdk_peer *d, const struct rdp_hdr *h)
{
	if (d->tx_session == 0 || h->session != d->tx_session)
		return;
	dp_on_down(st->dp, d->p, -ECONNRESET, "reset by peer");
}

static void
count_bad(struct dpdk_state *st, enum rdp_err e, const char *why)
{
	st->rx_bad++;
	st->dp->stats.rx_bad++;
	if (!(st->bad_logged & (1u << e)))
		log_warnx("dp.dpdk: dropped a frame: %s (logged once; "
		    "counted)", why != NULL ? why : rdp_strerror(e));
	st->bad_logged |= 1u << e;
}

/* The peer whose address is ip, or NULL. */
static struct dpdk_peer *
dpeer_by_ip(struct dpdk_state *st, uint32_t ip)
{
	struct dp *dp = st->dp;

	for (int i = 0; i < dp->npeers; i++) {
		struct dpdk_peer *d = dpeer(st, dp->peers[i]);

		if (d != NULL && d->ip == ip)
			return d;
	}
	return NULL;
}

/*
 * An ARP packet: a peer's sender address is learnt (requests too: a
 * restarted peer asking for us tells its new MAC); a request for our
 * address is answered.
 */
static void
on_arp(struct dpdk_state *st, struct rte_mbuf *m)
{
	struct dpdk_peer *d;
	struct rdp_arp p;
	enum rdp_arp_err e;

	st->arp_rx++;
	if (m->nb_segs != 1)
		e = RDP_ARP_ESHORT;
	else
		e = rdp_arp_parse(rte_pktmbuf_mtod(m, const uint8_t *),
		    rte_pktmbuf_data_len(m), &p);
	if (e != RDP_ARP_OK) {
		st->arp_bad++;
		if (!(st->arp_logged & (1u << e)))
			log_warnx("dp.dpdk: dropped an ARP packet: %s (logged "
			    "once; counted)", rdp_arp_strerror(e));
		st->arp_logged |= 1u << e;
		return;
	}
	if ((d = dpeer_by_ip(st, p.spa)) != NULL) {
		int known = d->nb.known;

		if (rdp_neigh_learn(&d->nb, p.sha) && known)
			log_info("dp.dpdk: peer %u (%s): MAC now "
			    "%02x:%02x:%02x:%02x:%02x:%02x", d->p->id,
			    d->p->addr, p.sha[0], p.sha[1], p.sha[2],
			    p.sha[3], p.sha[4], p.sha[5]);
	}
	if (p.op == RDP_ARP_REQUEST && p.tpa == st->ip && st->ip != 0 &&
	    send_arp(st, RDP_ARP_REPLY, p.sha, p.spa) == 0)
		st->arp_replies++;
}

static void
on_frame(struct dpdk_state *st, struct rte_mbuf *m, uint64_t now)
{
	const uint8_t *pl;
	struct dpdk_peer *d;
	struct dp_peer *p;
	struct rdp_addr a;
	struct rdp_hdr h;
	enum rdp_err e;

	st->rx_frames++;
	if (rte_pktmbuf_data_len(m) >= RDP_ETH_LEN &&
	    rte_pktmbuf_mtod(m, const uint8_t *)[12] == 0x08 &&
	    rte_pktmbuf_mtod(m, const uint8_t *)[13] == 0x06) {
		on_arp(st, m);
		rte_pktmbuf_free(m);
		return;
	}
	if (m->nb_segs != 1) {
		count_bad(st, RDP_ESHORT, "chained mbuf");
		rte_pktmbuf_free(m);
		return;
	}
	e = rdp_frame_parse(rte_pktmbuf_mtod(m, const uint8_t *),
	    rte_pktmbuf_data_len(m), st->udp_port, &a, &h, &pl);
	if (e == RDP_ENOTOURS || (e == RDP_OK &&
	    (h.dst != st->dp->conf.node_id ||
	    (st->ip != 0 && a.dst_ip != st->ip)))) {
		st->rx_foreign++;	/* broadcast, flooding, other traffic */
		rte_pktmbuf_free(m);
		return;
	}
	if (e != RDP_OK) {
		count_bad(st, e, NULL);
		rte_pktmbuf_free(m);
		return;
	}
	if ((p = peer_find(st->dp, h.src)) == NULL ||
	    (d = dpeer(st, p)) == NULL || a.src_ip != d->ip) {
		count_bad(st, RDP_NERRS, "unknown source node or address");
		rte_pktmbuf_free(m);
		return;
	}
	/*
	 * From another MAC than the one we send to: the peer restarted
	 * (or moved); ask again, keep the old one until the answer.
	 */
	if (!d->nb.is_static && !d->nb.asking && (!d->nb.known ||
	    memcmp(d->nb.mac, a.src_mac, 6) != 0))
		rdp_neigh_want(&d->nb, now);
	switch (h.type) {
	case RDP_DATA:
		on_data(st, d, &h, pl, m, now);
		return;		/* m is taken care of */
	case RDP_ACK:
		on_ack(st, d, &h, pl, now);
		break;
	default:
		on_rst(st, d, &h);
		break;
	}
	rte_pktmbuf_free(m);
}

/* ------------------------------------------------------------------ */
/* The ops.                                                            */

static int
dpdk_connect(void *state, struct dp_peer *p)
{
	struct dpdk_state *st = state;
	struct dpdk_peer *d;

	if ((d = dpeer(st, p)) == NULL)
		return -ENOMEM;
	if (d->ip == 0) {
		log_warnx("dp.dpdk: peer %u: %s is not an IPv4 address (no "
		    "resolver on a DPDK port)", p->id, p->addr);
		return -EHOSTUNREACH;
	}
	tx_close(d, -ECONNRESET);
	/* (re)resolve its MAC: it may have restarted on another port */
	rdp_neigh_want(&d->nb, dp_now_ns());
	arp_tick(st, dp_now_ns());
	do
		d->tx_session = rnd64(st);
	while (d->tx_session == 0);
	rdp_tx_init(&d->tx, st->mss, tx_done, d);
	d->tx.wmax = st->wmax;
	d->connecting = 1;
	d->connect_ns = dp_now_ns();
	flush(st, d, d->connect_ns);	/* the SYN */
	return 0;
}

static void
dpdk_kick(void *state, struct dp_peer *p)
{
	struct dpdk_state *st = state;

	if (PEER_ST(p) != NULL)
		flush(st, PEER_ST(p), dp_now_ns());
}

static void
dpdk_disconnect(void *state, struct dp_peer *p)
{
	struct dpdk_state *st = state;
	struct dpdk_peer *d = PEER_ST(p);

	if (d == NULL)
		return;
	if (d->rx_session != 0)	/* tell the peer its stream is gone */
		send_ctl(st, d, RDP_RST, d->rx_session, 0, NULL, 0);
	rx_close(d);
	tx_close(d, -ECONNRESET);
	zmsg_orphan(st, d);	/* nothing about p may come after this */
}

static void
tick(struct dpdk_state *st, uint64_t now)
{
	uint64_t conn_to = (uint64_t)st->dp->conf.peer_timeout_ms * 1000000ull;
	struct dp *dp = st->dp;

	for (int i = 0; i < dp->npeers; i++) {
		struct dpdk_peer *d = PEER_ST(dp->peers[i]);

		if (d == NULL || d->tx_session == 0)
			continue;
		if (d->connecting && now - d->connect_ns > conn_to) {
			tx_close(d, -ETIMEDOUT);
			dp_on_connect_failed(dp, d->p, -ETIMEDOUT,
			    "connect: no answer");
			continue;
		}
		rdp_tx_tick(&d->tx, now);
	}
}

static void
handle(struct dpdk_state *st, struct rte_mbuf *m, uint64_t now)
{
	struct rte_mbuf *dup;

	if (fault_hit(FAULT_NET_DROP) < 0) {
		rte_pktmbuf_free(m);
		return;
	}
	if (fault_hit(FAULT_NET_DUP) < 0 &&
	    (dup = rte_pktmbuf_copy(m, st->pool, 0, UINT32_MAX)) != NULL)
		on_frame(st, dup, now);
	if (st->held == NULL && fault_hit(FAULT_NET_REORDER) < 0) {
		st->held = m;		/* goes after the next frame */
		return;
	}
	on_frame(st, m, now);
	if ((m = st->held) != NULL) {
		st->held = NULL;
		on_frame(st, m, now);
	}
}

static int
dpdk_poll(void *state)
{
	struct dpdk_state *st = state;
	struct rte_mbuf *pk[DPDK_BURST];
	struct dp *dp = st->dp;
	uint64_t now = dp_now_ns();
	uint16_t nb;
	int n = 0;

	nb = rte_eth_rx_burst(st->port, 0, pk, DPDK_BURST);
	for (uint16_t i = 0; i < nb; i++)
		handle(st, pk[i], now);
	if (nb < DPDK_BURST && st->held != NULL) {
		struct rte_mbuf *m = st->held;

		st->held = NULL;
		on_frame(st, m, now);
	}
	n += nb;
	for (int i = 0; i < dp->npeers; i++) {
		struct dpdk_peer *d = PEER_ST(dp->peers[i]);

		/*
		 * Delayed: every DPDK_ACK_FRAMES frames, DPDK_ACK_DELAY_NS
		 * after the first unacknowledged one, at once while frames
		 * are held out of order (the sender's fast retransmit) or
		 * for a SYN; each ACK costs af_packet a system call.
		 */
		if (d != NULL && d->rx.ack_due && d->rx_session != 0 &&
		    (d->unacked >= DPDK_ACK_FRAMES || d->rx.nheld > 0 ||
		    d->rx.nxt <= 1 || now - d->unacked_ns >= DPDK_ACK_DELAY_NS))
			send_ack(st, d);
	}
	/*
	 * Again: a frame handled above may have made the engine answer (a
	 * ping, say), and its kick flushed data frames stamped later than
	 * the now of the poll's start (rdp clamps such ages at 0 too)
	 */
	now = dp_now_ns();
	if (now - st->last_tick_ns >= DPDK_TICK_NS) {
		st->last_tick_ns = now;
		tick(st, now);
		arp_tick(st, now);
	}
	for (int i = 0; i < dp->npeers; i++) {
		struct dpdk_peer *d = PEER_ST(dp->peers[i]);

		if (d != NULL)
			n += flush(st, d, now);
	}
	zmsg_drain(st);
	if (n > 0)
		st->last_busy_ns = now;
	st->last_n = n;
	return n;
}

static int
dpdk_wait(void *state, int fd, int timeout_ms)
{
	struct dpdk_state *st = state;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec ts = { 0, 20000 };

	(void)timeout_ms;
	/*
	 * The last poll did work: no sleep.  Traffic lately: back in 20 us;
	 * idle: 1 ms, the retransmission tick.
	 */
	if (st->last_n > 0)
		ts.tv_nsec = 0;
	else if (dp_now_ns() - st->last_busy_ns > DPDK_IDLE_NS)
		ts.tv_nsec = 1000000;
	/*
	 * The 20 us naps need not watch fd (its events wait 20 us at most):
	 * nanosleep costs the receiver less than ppoll on the epoll fd
	 * (perf: ppoll, do_sys_poll and fdget were 12% of it at 1500 B)
	 */
	if (ts.tv_nsec == 0)
		return 0;	/* busy: the caller polls its fd anyway */
	if (fd < 0 || ts.tv_nsec < 1000000)
		nanosleep(&ts, NULL);
	else
		ppoll(&pfd, 1, &ts, NULL);
	return 0;
}

/*
 * The arena, once: registered as external memory (no IOVA table: the
 * pages' IOVAs are unknown to a process without VFIO) and DMA-mapped for
 * a device that does DMA, with IOVA = VA (IOVA-as-VA mode); a virtual
 * device (af_packet, memif) reads payloads by virtual address and its bus
 * has no DMA map (ENOTSUP): nothing more is needed.
 */
static int
dpdk_mem_register(void *state, void *base, size_t len)
{
	struct dpdk_state *st = state;
	struct rte_eth_dev_info info;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	const char *how;
	int e;

	if (st->zc_base != NULL || base == NULL || len == 0)
		return -EINVAL;
	if (((uintptr_t)base % pg) != 0 || len % pg != 0) {
		log_info("dp.dpdk: arena %p+%zu not page aligned: payloads are "
		    "copied", base, len);
		return -EINVAL;
	}
	if (rte_extmem_register(base, len, NULL, 0, pg) < 0 &&
	    rte_errno != EEXIST) {
		e = rte_errno;
		log_warnx("dp.dpdk: arena of %zu bytes: rte_extmem_register: "
		    "%s: payloads are copied", len, rte_strerror(e));
		return -e;
	}
	if (rte_eth_dev_info_get(st->port, &info) < 0 || info.device == NULL)
		how = "no device to map for";
	else if (rte_dev_dma_map(info.device, base,
	    (uint64_t)(uintptr_t)base, len) == 0) {
		if (rte_eal_iova_mode() != RTE_IOVA_VA) {
			rte_dev_dma_unmap(info.device, base,
			    (uint64_t)(uintptr_t)base, len);
			rte_extmem_unregister(base, len);
			log_info("dp.dpdk: arena: the EAL is not in IOVA-as-VA "
			    "mode: payloads are copied");
			return -ENOTSUP;
		}
		st->zc_iova = (rte_iova_t)(uintptr_t)base;
		how = "rte_dev_dma_map done, IOVA = VA";
	} else if (rte_errno == ENOTSUP)
		how = "no DMA map needed: the driver copies by virtual address";
	else {
		e = rte_errno;
		rte_extmem_unregister(base, len);
		log_warnx("dp.dpdk: arena: rte_dev_dma_map: %s: payloads are "
		    "copied", rte_strerror(e));
		return -e;
	}
	st->zc_base = base;
	st->zc_len = len;
	log_info("dp.dpdk: arena of %zu MiB registered (%s); payloads of "
	    "%u bytes and more leave from it %s", len >> 20, how, st->zc_min,
	    st->tx_multiseg ? "without a copy" : "copied all the same: the "
	    "PMD sends no chained mbufs");
	return 0;
}

static void
dpdk_fini(void *state)
{
	struct dpdk_state *st = state;
	struct dp *dp = st->dp;
	uint64_t rexmits = 0, timeouts = 0, dups = 0, areq = 0, ares = 0;
	uint64_t held = 0, nm[DP_RXM_NMODES] = { 0 };
	uint64_t achg = 0, nstatic = 0;
	uint64_t stall = 0, stall_cwnd = 0, stall_max = 0, stalls = 0;
	struct zmsg *z;

	for (int i = 0; i < st->nall; i++) {
		struct dpdk_peer *d = st->all[i];

		rexmits += d->tx.rexmits;
		timeouts += d->tx.timeouts;
		held += d->tx.rto_held;
		dups += d->rx.dups;
		areq += d->nb.requests;
		ares += d->nb.resolved;
		achg += d->nb.changes;
		nstatic += d->nb.is_static;
		stall += d->tx.stall_ns;
		stall_cwnd += d->tx.stall_cwnd_ns;
		stalls += d->tx.stalls_1ms;
		if (d->tx.stall_max_ns > stall_max)
			stall_max = d->tx.stall_max_ns;
	}
	log_info("dp.dpdk: arp: requests %llu, resolved %llu, changed %llu, "
	    "static %llu, received %llu, replied %llu, bad %llu; frames to "
	    "broadcast %llu", (unsigned long long)areq,
	    (unsigned long long)ares, (unsigned long long)achg,
	    (unsigned long long)nstatic, (unsigned long long)st->arp_rx,
	    (unsigned long long)st->arp_replies,
	    (unsigned long long)st->arp_bad,
	    (unsigned long long)st->tx_bcast);
	log_info("dp.dpdk: zero-copy frames %llu (from the arena %llu, of "
	    "them retransmitted %llu), copied %llu (payload slices under %u "
	    "bytes); arena %s",
	    (unsigned long long)st->tx_zc,
	    (unsigned long long)st->tx_zc_arena,
	    (unsigned long long)st->tx_zc_rexmit,
	    (unsigned long long)st->tx_copied, st->zc_min,
	    st->zc_base == NULL ?
	    "not registered" : !st->tx_multiseg ? "registered, but the PMD "
	    "sends no chained mbufs" : "registered");
	for (int i = 0; i < st->nall; i++)
		for (int k = 0; k < DP_RXM_NMODES; k++)
			nm[k] += st->all[i]->rxm.n[k];
	log_info("dp.dpdk: messages received whole %llu; over frames: placed "
	    "%llu, staged %llu, summed only %llu, lost %llu, refused %llu",
	    (unsigned long long)st->rx_whole,
	    (unsigned long long)nm[DP_RXM_PLACE],
	    (unsigned long long)nm[DP_RXM_STAGE],
	    (unsigned long long)nm[DP_RXM_SINK],
	    (unsigned long long)nm[DP_RXM_LOST],
	    (unsigned long long)nm[DP_RXM_SKIP]);
	log_info("dp.dpdk: frames rx %llu tx %llu, retransmitted %llu, "
	    "timeouts %llu (after %llu the peer held later frames: only "
	    "the oldest went again), duplicates %llu, bad %llu",
	    (unsigned long long)st->rx_frames,
	    (unsigned long long)st->tx_frames, (unsigned long long)rexmits,
	    (unsigned long long)timeouts, (unsigned long long)held,
	    (unsigned long long)dups,
	    (unsigned long long)st->rx_bad);
	log_info("dp.dpdk: window full %.1f ms (of it under a congestion "
	    "window below the largest %.1f ms), %llu times 1 ms or more, the "
	    "longest %.1f ms", (double)stall / 1e6, (double)stall_cwnd / 1e6,
	    (unsigned long long)stalls, (double)stall_max / 1e6);
	for (int i = 0; i < dp->npeers; i++) {
		struct dpdk_peer *d = PEER_ST(dp->peers[i]);

		if (d != NULL) {
			if (d->rx_session != 0)
				send_ctl(st, d, RDP_RST, d->rx_session, 0,
				    NULL, 0);
			rx_close(d);
			tx_close(d, -ECANCELED);
		}
		PEER_ST(dp->peers[i]) = NULL;
	}
	if (st->held != NULL)
		rte_pktmbuf_free(st->held);
	if (st->started) {
		rte_eth_dev_stop(st->port);	/* frees what the PMD held */
		rte_eth_dev_close(st->port);
	}
	/* every message is reported, whatever a PMD kept */
	zmsg_drain(st);
	while ((z = TAILQ_FIRST(&st->zlive)) != NULL) {
		if (!z->reported)
			dp_on_sent(dp, z->d->p, z->m, z->res ? z->res :
			    -ECANCELED);
		TAILQ_REMOVE(&st->zlive, z, entry);
		free(z);
	}
	while ((z = TAILQ_FIRST(&st->zfree)) != NULL) {
		TAILQ_REMOVE(&st->zfree, z, entry);
		free(z);
	}
	for (int i = 0; i < st->nall; i++) {
		rdp_asm_fini(&st->all[i]->as);
		dp_rxmsg_fini(&st->all[i]->rxm);
		free(st->all[i]);
	}
	if (st->zc_base != NULL)
		rte_extmem_unregister(st->zc_base, st->zc_len);
	rte_mempool_free(st->pool);
	rte_mempool_free(st->ext_pool);
	free(st);
	/* the EAL stays: it cannot start twice in one process */
}

static int
dpdk_init(struct dp *dp, void **state)
{
	struct dpdk_state *st;
	struct in_addr in;
	int r;

	if (dp->conf.dpdk_port[0] == '\0') {
		if (strcmp(dp->conf.transport, "dpdk") == 0)
			log_warnx("dp.dpdk: no port: [dataplane] dpdk_port is "
			    "not set ---> HINT: a PCI address, or a vdev such "
			    "as net_af_packet0,iface=eth0");
		else
			log_info("dp.dpdk: no port: [dataplane] dpdk_port is "
			    "not set");
		return -ENODEV;
	}
	if (inet_pton(AF_INET, dp->conf.listen, &in) != 1 ||
	    in.s_addr == 0) {
		log_warnx("dp.dpdk: [dataplane] listen %s: must be this "
		    "node's IPv4 address (the source of its frames)",
		    dp->conf.listen);
		return -EINVAL;
	}
	if ((r = eal_start(dp)) < 0)
		return r;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	st->dp = dp;
	TAILQ_INIT(&st->zlive);
	TAILQ_INIT(&st->zfree);
	st->zc_iova = RTE_BAD_IOVA;
	st->ip = ntohl(in.s_addr);
	st->udp_port = dp->conf.port;
	st->rng = dp->boot_id | 1;
	if (port_find(dp->conf.dpdk_port, &st->port) < 0) {
		log_warnx("dp.dpdk: no DPDK port for %s ---> HINT: a vdev "
		    "needs its interface (and root for af_packet); a NIC "
		    "needs vfio-pci", dp->conf.dpdk_port);
		free(st);
		return -ENODEV;
	}
	if ((r = port_start(st)) < 0) {
		if (st->started)
			rte_eth_dev_stop(st->port);
		rte_mempool_free(st->pool);
		rte_mempool_free(st->ext_pool);
		free(st);
		return r;
	}
	log_info("dp.dpdk: port %u (%s): mac %02x:%02x:%02x:%02x:%02x:%02x, "
	    "MTU %u, %u payload bytes per frame, udp %u", st->port,
	    dp->conf.dpdk_port, st->mac[0], st->mac[1], st->mac[2],
	    st->mac[3], st->mac[4], st->mac[5], st->mtu, st->mss,
	    st->udp_port);
	*state = st;
	return 0;
}

const struct tp_ops tp_dpdk_ops = {
	.name = "dpdk",
	.backend = DP_BACKEND_DPDK,
	.caps = TP_CAP_RELIABLE,
	.init = dpdk_init,
	.fini = dpdk_fini,
	.connect = dpdk_connect,
	.kick = dpdk_kick,
	.disconnect = dpdk_disconnect,
	.fd = NULL,
	.wait = dpdk_wait,
	.poll = dpdk_poll,
	.mem_register = dpdk_mem_register,
};
