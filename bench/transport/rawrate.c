/*
 * rawrate.c: the raw frame rate of a DPDK port, in place of dpdk-testpmd
 * (Debian 12's dpdk package does not ship it): `tx` sends 1500-byte
 * frames as fast as the port takes them, `rx` counts what arrives.  The
 * physical limit the DPDK backend is compared with (bench/transport).
 *
 *   dpdk-rawrate EAL-ARGS -- tx|rx SECONDS [FRAME_BYTES]
 *
 * rx prints `rx_pps=N rx_MBps=M` over the time between its first and
 * last frame; tx prints `tx_pps=N`; both add `cpu_s=` (user + system
 * time, for frames per CPU second: rx counts from its first frame to
 * its last reading, every 1024 frames, and `frames=` up to it; tx adds
 * `sys_s=`, the kernel's part).  rx
 * sleeps 20 us after an empty poll, as the dataplane does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#define BURST	32

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

/* of it in the kernel */
static double
sys_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	struct rte_eth_conf conf;
	struct rte_mempool *pool;
	struct rte_mbuf *pk[BURST];
	uint64_t frames = 0, bytes = 0;
	double secs, t0, t1 = 0, first = 0, c0, s0, cfirst = 0, clast = 0;
	uint64_t fmark = 0;
	uint16_t port = 0, fsize = 1500;
	int n, tx;

	if ((n = rte_eal_init(argc, argv)) < 0) {
		fprintf(stderr, "dpdk-rawrate: EAL init failed\n");
		return 1;
	}
	argc -= n;
	argv += n;
	if (argc < 3 || (strcmp(argv[1], "tx") != 0 &&
	    strcmp(argv[1], "rx") != 0)) {
		fprintf(stderr, "usage: dpdk-rawrate EAL -- tx|rx SECONDS "
		    "[FRAME_BYTES]\n");
		return 1;
	}
	tx = strcmp(argv[1], "tx") == 0;
	secs = atof(argv[2]);
	if (argc > 3)
		fsize = (uint16_t)atoi(argv[3]);
	if (fsize < 60 || fsize > 2000 || rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "dpdk-rawrate: no port, or a frame size not "
		    "in 60..2000\n");
		return 1;
	}
	pool = rte_pktmbuf_pool_create("rawrate", 8191, 256, 0,
	    RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	memset(&conf, 0, sizeof(conf));
	if (pool == NULL || rte_eth_dev_configure(port, 1, 1, &conf) < 0 ||
	    rte_eth_rx_queue_setup(port, 0, 1024, 0, NULL, pool) < 0 ||
	    rte_eth_tx_queue_setup(port, 0, 1024, 0, NULL) < 0 ||
	    rte_eth_dev_start(port) < 0) {
		fprintf(stderr, "dpdk-rawrate: port setup failed\n");
		return 1;
	}
	t0 = now_s();
	c0 = cpu_s();
	s0 = sys_s();
	while (now_s() - t0 < secs) {
		uint16_t k;

		if (tx) {
			for (k = 0; k < BURST; k++) {
				uint8_t *b;

				if ((pk[k] = rte_pktmbuf_alloc(pool)) == NULL)
					break;
				if ((b = (uint8_t *)rte_pktmbuf_append(pk[k],
				    fsize)) == NULL) {
					rte_pktmbuf_free(pk[k]);
					break;
				}
				memset(b, 0xff, 6);		/* broadcast */
				memset(b + 6, 0x02, 6);
				b[12] = 0x88;			/* local */
				b[13] = 0xb5;
			}
			n = rte_eth_tx_burst(port, 0, pk, k);
			frames += (uint64_t)n;
			for (int i = n; i < k; i++)
				rte_pktmbuf_free(pk[i]);
			continue;
		}
		k = rte_eth_rx_burst(port, 0, pk, BURST);
		if (k == 0) {
			/*
			 * nothing: 20 us asleep, as the dataplane's wait
			 * does (on 2 cores a spinning poller starves the
			 * sender); its CPU per frame is then comparable
			 */
			struct timespec ts = { 0, 20000 };

			nanosleep(&ts, NULL);
			continue;
		}
		for (int i = 0; i < k; i++) {
			bytes += rte_pktmbuf_pkt_len(pk[i]);
			rte_pktmbuf_free(pk[i]);
		}
		if (k > 0) {
			if (frames == 0) {
				first = now_s();
				cfirst = cpu_s();
			}
			frames += k;
			t1 = now_s();
			/* the CPU time the frames cost, read now and then */
			if (frames - fmark >= 1024) {
				clast = cpu_s();
				fmark = frames;
			}
		}
	}
	if (tx)
		printf("tx_pps=%.0f frames=%llu cpu_s=%.2f sys_s=%.2f\n",
		    (double)frames / (now_s() - t0),
		    (unsigned long long)frames, cpu_s() - c0, sys_s() - s0);
	else
		/*
		 * rx spins before the first frame and after the last: its
		 * cost is the CPU time from the first frame to the last
		 * reading, over the frames received meanwhile
		 */
		printf("rx_pps=%.0f rx_MBps=%.1f frames=%llu cpu_s=%.3f\n",
		    t1 > first ? (double)frames / (t1 - first) : 0,
		    t1 > first ? (double)bytes / (t1 - first) / 1e6 : 0,
		    (unsigned long long)fmark, clast > cfirst ?
		    clast - cfirst : cpu_s() - c0);
	rte_eth_dev_stop(port);
	rte_eal_cleanup();
	return 0;
}
