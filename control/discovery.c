/*
 * discovery.c: DNS-SD through the system's avahi-daemon (libavahi-client,
 * MACHINE.md: not the embedded core).  We publish _arceus._udp with TXT
 * node_id, gossip, http, raft, boot, proto; we browse the same type and
 * resolve each instance (a resolver per peer stays open to see TXT
 * changes).  Discovery only introduces peers: a found peer is handed to
 * SWIM, which probes it; liveness stays SWIM's job (a vanished host is
 * withdrawn by mDNS only after minutes).
 *
 * Avahi runs its own thread (AvahiThreadedPoll); found peers go through a
 * small queue that the loop thread drains (discovery_drain), because SWIM
 * and the UDP socket belong to the loop.
 *
 * States: CONNECTING (no daemon yet: AVAHI_CLIENT_NO_FAIL waits for it)
 * -> RUNNING (registered, browsing) -> COLLISION (renamed, re-registered).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/thread-watch.h>

#include "control.h"
#include "log.h"

#define DISC_TYPE	"_arceus._udp"
#define DISC_PROTO	"1"
#define DISC_QUEUE	64

struct disc_peer {
	uint32_t id;
	uint32_t addr;		/* network order */
	uint16_t port;
};

struct disc {
	struct ctl		*c;
	AvahiThreadedPoll	*tp;
	AvahiClient		*client;
	AvahiEntryGroup		*group;
	AvahiServiceBrowser	*browser;
	char			*name;	/* our instance name (avahi_malloc) */
	pthread_mutex_t		 mu;	/* guards the queue */
	struct disc_peer	 q[DISC_QUEUE];
	int			 nq;
	uint64_t		 found;	/* peers resolved */
};

static void	publish(struct disc *d);

static void
group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *ud)
{
	struct disc *d = ud;
	char *n;

	(void)g;
	switch (state) {
	case AVAHI_ENTRY_GROUP_ESTABLISHED:
		log_info("ctl.disc: published %s as '%s'", DISC_TYPE, d->name);
		break;
	case AVAHI_ENTRY_GROUP_COLLISION:
		n = avahi_alternative_service_name(d->name);
		log_warnx("ctl.disc: name '%s' taken, trying '%s'", d->name, n);
		avahi_free(d->name);
		d->name = n;
		publish(d);
		break;
	case AVAHI_ENTRY_GROUP_FAILURE:
		log_warnx("ctl.disc: publishing failed: %s", avahi_strerror(
		    avahi_client_errno(d->client)));
		break;
	default:
		break;
	}
}

static void
publish(struct disc *d)
{
	const struct nodeconf *nc = d->c->nc;
	char id[32], gp[16], hp[16], rp[16], boot[32];
	int rc;

	if (d->group == NULL &&
	    (d->group = avahi_entry_group_new(d->client, group_cb, d)) == NULL)
		return;
	avahi_entry_group_reset(d->group);
	snprintf(id, sizeof(id), "node_id=%u", d->c->id);
	snprintf(gp, sizeof(gp), "gossip=%lld", (long long)nc->gossip_port);
	snprintf(hp, sizeof(hp), "http=%lld", (long long)nc->http_port);
	snprintf(rp, sizeof(rp), "raft=%lld", (long long)nc->raft_port);
	snprintf(boot, sizeof(boot), "boot=%llu",
	    (unsigned long long)d->c->boot);
	rc = avahi_entry_group_add_service(d->group, AVAHI_IF_UNSPEC,
	    AVAHI_PROTO_INET, 0, d->name, DISC_TYPE, NULL, NULL,
	    (uint16_t)nc->gossip_port, id, gp, hp, rp, boot,
	    "proto=" DISC_PROTO, NULL);
	if (rc == AVAHI_ERR_COLLISION) {
		group_cb(d->group, AVAHI_ENTRY_GROUP_COLLISION, d);
		return;
	}
	if (rc < 0 || (rc = avahi_entry_group_commit(d->group)) < 0)
		log_warnx("ctl.disc: cannot publish: %s", avahi_strerror(rc));
}

/* TXT value of key, or NULL. */
static const char *
txt_get(AvahiStringList *txt, const char *key, char *buf, size_t len)
{
	AvahiStringList *e = avahi_string_list_find(txt, key);
	char *k = NULL, *v = NULL;

	if (e == NULL || avahi_string_list_get_pair(e, &k, &v, NULL) < 0)
		return NULL;
	snprintf(buf, len, "%s", v ? v : "");
	avahi_free(k);
	avahi_free(v);
	return buf;
}

static void
resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
    AvahiResolverEvent ev, const char *name, const char *type,
    const char *domain, const char *host, const AvahiAddress *a,
    uint16_t port, AvahiStringList *txt, AvahiLookupResultFlags flags,
    void *ud)
{
	struct disc *d = ud;
	char buf[64], ip[AVAHI_ADDRESS_STR_MAX];
	const char *v;
	unsigned long id;
	struct disc_peer p;

	(void)iface; (void)proto; (void)type; (void)domain; (void)host;
	(void)flags;
	if (ev != AVAHI_RESOLVER_FOUND || a == NULL ||
	    a->proto != AVAHI_PROTO_INET)
		return;
	/* identity is the TXT node_id: avahi may rename on collision */
	if ((v = txt_get(txt, "node_id", buf, sizeof(buf))) == NULL ||
	    (id = strtoul(v, NULL, 10)) == 0 || id > UINT32_MAX) {
		log_debugx("ctl.disc: '%s' has no node_id, ignored", name);
		return;
	}
	if ((v = txt_get(txt, "proto", buf, sizeof(buf))) == NULL ||
	    strcmp(v, DISC_PROTO) != 0) {
		log_warnx("ctl.disc: node %lu speaks protocol %s, not %s: "
		    "ignored", id, v ? v : "?", DISC_PROTO);
		return;
	}
	if (id == d->c->id)
		return;
	avahi_address_snprint(ip, sizeof(ip), a);
	p.id = (uint32_t)id;
	p.addr = a->data.ipv4.address;
	p.port = port;
	pthread_mutex_lock(&d->mu);
	if (d->nq < DISC_QUEUE)
		d->q[d->nq++] = p;
	d->found++;
	pthread_mutex_unlock(&d->mu);
	log_info("ctl.disc: found node %lu at %s:%u", id, ip, port);
	(void)r;
}

static void
browse_cb(AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
    AvahiBrowserEvent ev, const char *name, const char *type,
    const char *domain, AvahiLookupResultFlags flags, void *ud)
{
	struct disc *d = ud;

	(void)b;
	switch (ev) {
	case AVAHI_BROWSER_NEW:
		if (flags & AVAHI_LOOKUP_RESULT_OUR_OWN)
			break;
		/* kept open (freed with the client) to follow TXT changes */
		if (avahi_service_resolver_new(d->client, iface, proto, name,
		    type, domain, AVAHI_PROTO_INET, 0, resolve_cb, d) == NULL)
			log_warnx("ctl.disc: cannot resolve '%s': %s", name,
			    avahi_strerror(avahi_client_errno(d->client)));
		break;
	case AVAHI_BROWSER_REMOVE:
		log_debugx("ctl.disc: '%s' withdrawn", name);
		break;
	case AVAHI_BROWSER_FAILURE:
		log_warnx("ctl.disc: browsing failed: %s", avahi_strerror(
		    avahi_client_errno(d->client)));
		break;
	default:
		break;
	}
}

static void
client_cb(AvahiClient *cl, AvahiClientState state, void *ud)
{
	struct disc *d = ud;

	d->client = cl;
	switch (state) {
	case AVAHI_CLIENT_S_RUNNING:
		log_info("ctl.disc: avahi-daemon running: publishing and "
		    "browsing %s", DISC_TYPE);
		publish(d);
		if (d->browser == NULL && (d->browser =
		    avahi_service_browser_new(cl, AVAHI_IF_UNSPEC,
		    AVAHI_PROTO_INET, DISC_TYPE, NULL, 0, browse_cb, d)) == NULL)
			log_warnx("ctl.disc: cannot browse: %s", avahi_strerror(
			    avahi_client_errno(cl)));
		break;
	case AVAHI_CLIENT_S_COLLISION:
	case AVAHI_CLIENT_S_REGISTERING:
		if (d->group)
			avahi_entry_group_reset(d->group);
		break;
	case AVAHI_CLIENT_CONNECTING:
		log_info("ctl.disc: waiting for avahi-daemon");
		break;
	case AVAHI_CLIENT_FAILURE:
		log_warnx("ctl.disc: avahi client failed: %s (peers from "
		    "seeds only)", avahi_strerror(avahi_client_errno(cl)));
		break;
	}
}

int
discovery_start(struct ctl *c)
{
	struct disc *d = calloc(1, sizeof(*d));
	char name[64];
	int err;

	if (d == NULL)
		return -ENOMEM;
	d->c = c;
	pthread_mutex_init(&d->mu, NULL);
	snprintf(name, sizeof(name), "arceus-%u", c->id);
	d->name = avahi_strdup(name);
	if ((d->tp = avahi_threaded_poll_new()) == NULL)
		goto fail;
	d->client = avahi_client_new(avahi_threaded_poll_get(d->tp),
	    AVAHI_CLIENT_NO_FAIL, client_cb, d, &err);
	if (d->client == NULL) {
		log_warnx("ctl.disc: %s", avahi_strerror(err));
		goto fail;
	}
	if (avahi_threaded_poll_start(d->tp) < 0)
		goto fail;
	c->disc = d;
	return 0;
fail:
	if (d->client)
		avahi_client_free(d->client);
	if (d->tp)
		avahi_threaded_poll_free(d->tp);
	avahi_free(d->name);
	free(d);
	return -EIO;
}

void
discovery_drain(struct ctl *c, uint64_t now_ms)
{
	struct disc *d = c->disc;
	struct disc_peer q[DISC_QUEUE];
	int n;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	n = d->nq;
	memcpy(q, d->q, sizeof(q[0]) * (size_t)n);
	d->nq = 0;
	pthread_mutex_unlock(&d->mu);
	if (n == 0)
		return;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < n; i++)
		swim_introduce(&c->sw, now_ms, q[i].addr, q[i].port);
	c->discovered += (uint64_t)n;
	pthread_mutex_unlock(&c->mu);
}

void
discovery_stop(struct ctl *c)
{
	struct disc *d = c->disc;

	if (d == NULL)
		return;
	avahi_threaded_poll_stop(d->tp);
	avahi_client_free(d->client);	/* withdraws what we published */
	avahi_threaded_poll_free(d->tp);
	avahi_free(d->name);
	pthread_mutex_destroy(&d->mu);
	free(d);
	c->disc = NULL;
}
