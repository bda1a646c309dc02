/*
 * report.c: what control shows operators, as human tables, JSON and
 * Prometheus text.  Callers hold c->mu.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control.h"

void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *s;

		while (cap - b->len <= (size_t)n)
			cap *= 2;
		if ((s = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

void
sbuf_json_str(struct sbuf *b, const char *s)
{
	sbuf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			sbuf_printf(b, "\\%c", ch);
		else if (ch < 0x20)
			sbuf_printf(b, "\\u%04x", ch);
		else
			sbuf_printf(b, "%c", ch);
	}
	sbuf_printf(b, "\"");
}

void
sbuf_free(struct sbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

static const char *
ip(uint32_t addr, char *buf)
{
	struct in_addr a = { addr };

	inet_ntop(AF_INET, &a, buf, 16);
	return buf;
}

void
train_record(struct train_state *t, const struct ctl_report *r, double now)
{
	t->have = 1;
	t->last = *r;
	t->at = now;
	t->hist[t->hpos].step = r->step;
	t->hist[t->hpos].loss = r->loss;
	t->hist[t->hpos].tps = r->tokens_per_s;
	t->hpos = (t->hpos + 1) % TRAIN_HISTORY;
	if (t->nhist < TRAIN_HISTORY)
		t->nhist++;
}

static double
num_or_null(double v)
{
	return isfinite(v) ? v : 0.0;
}

void
report_status(struct ctl *c, struct sbuf *b, int json)
{
	double now = ctl_now();
	int alive = swim_count(&c->sw, SWIM_ALIVE);
	int suspect = swim_count(&c->sw, SWIM_SUSPECT);
	int dead = swim_count(&c->sw, SWIM_DEAD);
	int left = swim_count(&c->sw, SWIM_LEFT);

	if (!json) {
		sbuf_printf(b, "node      %u (%s) at %s\n", c->id, c->name,
		    c->addr);
		sbuf_printf(b, "uptime    %.0f s\n", now - c->start);
		sbuf_printf(b, "members   %d alive, %d suspect, %d dead, "
		    "%d left\n", alive, suspect, dead, left);
		sbuf_printf(b, "view      %llu changes\n",
		    (unsigned long long)c->view);
		sbuf_printf(b, "epoch     %llu (term %llu, %s, leader %u, "
		    "%d voters, %d standbys)\n", (unsigned long long)c->epoch,
		    (unsigned long long)c->term, c->role, c->leader,
		    c->nvoters, c->nstandbys);
		sbuf_printf(b, "in epoch ");
		for (int i = 0; i < c->nepoch && i < 64; i++)
			sbuf_printf(b, "%s%u", i ? "," : " ",
			    c->epoch_members[i]);
		sbuf_printf(b, "%s\n", c->nepoch > 64 ? ",..." : "");
		sbuf_printf(b, "ckpt      step %lld committed by all members, "
		    "epoch resumes at %lld\n", (long long)c->ckpt_committed,
		    (long long)c->resume_step);
		sbuf_printf(b, "dataplane %s", c->dp_up ? "up" : "down\n");
		if (c->dp_up) {
			int up = 0;

			for (int i = 0; i < c->nlinks; i++)
				up += c->links[i].up;
			sbuf_printf(b, " (%s, epoch %u, %u workers, %d/%d links "
			    "up)\n", c->dp_backend, c->dp_epoch,
			    c->dp_workers, up, c->nlinks);
		}
		sbuf_printf(b, "profile   %d cores, %.1f GiB, %.1f GFLOP/s; "
		    "training %.2f GFLOP/s measured\n",
		    c->prof.cores, c->prof.mem_bytes / 1073741824.0,
		    c->prof.gflops, c->speed.value);
		sbuf_printf(b, "gossip    rx %llu tx %llu, dropped: %llu bad "
		    "MAC, %llu replayed, %llu malformed\n",
		    (unsigned long long)c->sw.st.rx,
		    (unsigned long long)c->sw.st.tx,
		    (unsigned long long)c->sw.st.bad_mac,
		    (unsigned long long)c->sw.st.replayed,
		    (unsigned long long)c->sw.st.malformed);
		if (c->train.have)
			sbuf_printf(b, "training  step %lld, loss %.4f, %.0f "
			    "tokens/s\n", (long long)c->train.last.step,
			    c->train.last.loss, c->train.last.tokens_per_s);
		else
			sbuf_printf(b, "training  no job reporting\n");
		return;
	}
	sbuf_printf(b, "{\"node_id\":%u,\"name\":", c->id);
	sbuf_json_str(b, c->name);
	sbuf_printf(b, ",\"addr\":\"%s\",\"boot\":%llu,\"uptime_s\":%.3f,"
	    "\"members\":{\"alive\":%d,\"suspect\":%d,\"dead\":%d,"
	    "\"left\":%d},\"view\":%llu,\"epoch\":%llu,\"term\":%llu,"
	    "\"role\":\"%s\",", c->addr, (unsigned long long)c->boot,
	    now - c->start, alive, suspect, dead, left,
	    (unsigned long long)c->view, (unsigned long long)c->epoch,
	    (unsigned long long)c->term, c->role);
	sbuf_printf(b, "\"discovered\":%llu,",
	    (unsigned long long)c->discovered);
	sbuf_printf(b, "\"dataplane\":{\"up\":%s,\"backend\":",
	    c->dp_up ? "true" : "false");
	sbuf_json_str(b, c->dp_up ? c->dp_backend : "");
	sbuf_printf(b, ",\"epoch\":%u,\"workers\":%u,\"arena_bytes\":%llu,"
	    "\"links\":[", c->dp_epoch, c->dp_workers,
	    (unsigned long long)c->dp_arena);
	for (int i = 0; i < c->nlinks; i++) {
		sbuf_printf(b, "%s{\"peer\":%u,\"up\":%s,\"backend\":",
		    i ? "," : "", c->links[i].peer, c->links[i].up ? "true" :
		    "false");
		sbuf_json_str(b, c->links[i].backend);
		sbuf_printf(b, ",\"rtt_s\":%.6g,\"bw_probe\":%.6g,"
		    "\"bw_live\":%.6g}", c->links[i].rtt_s,
		    c->links[i].bw_probe, c->links[i].bw_live);
	}
	sbuf_printf(b, "]},");
	sbuf_printf(b, "\"raft\":{\"leader\":%u,\"voters\":%d,"
	    "\"standbys\":%d,\"auth_ok\":%llu,\"auth_refused\":%llu,"
	    "\"stale_epochs\":%llu},\"resume_step\":%lld,"
	    "\"ckpt_committed\":%lld,\"epoch_members\":[", c->leader,
	    c->nvoters, c->nstandbys, (unsigned long long)c->raft_auth_ok,
	    (unsigned long long)c->raft_auth_refused,
	    (unsigned long long)c->stale_epochs, (long long)c->resume_step,
	    (long long)c->ckpt_committed);
	for (int i = 0; i < c->nepoch && i < 64; i++)
		sbuf_printf(b, "%s%u", i ? "," : "", c->epoch_members[i]);
	sbuf_printf(b, "],");
	sbuf_printf(b, "\"profile\":{\"cores\":%d,\"mem_bytes\":%.0f,"
	    "\"gflops\":%.3f,\"train_gflops\":%.3f},", c->prof.cores,
	    c->prof.mem_bytes, c->prof.gflops, c->speed.value);
	sbuf_printf(b, "\"gossip\":{\"rx\":%llu,\"tx\":%llu,\"rx_bytes\":%llu,"
	    "\"tx_bytes\":%llu,\"bad_mac\":%llu,\"replayed\":%llu,"
	    "\"malformed\":%llu,\"probes\":%llu,\"probe_failures\":%llu,"
	    "\"refuted\":%llu},",
	    (unsigned long long)c->sw.st.rx, (unsigned long long)c->sw.st.tx,
	    (unsigned long long)c->sw.st.rx_bytes,
	    (unsigned long long)c->sw.st.tx_bytes,
	    (unsigned long long)c->sw.st.bad_mac,
	    (unsigned long long)c->sw.st.replayed,
	    (unsigned long long)c->sw.st.malformed,
	    (unsigned long long)c->sw.st.probes,
	    (unsigned long long)c->sw.st.probe_fail,
	    (unsigned long long)c->sw.st.refuted);
	if (c->train.have)
		sbuf_printf(b, "\"train\":{\"step\":%lld,\"loss\":%.6g,"
		    "\"tokens_per_s\":%.6g,\"ckpt_step\":%lld,"
		    "\"ckpt_age_s\":%.3f}}",
		    (long long)c->train.last.step,
		    num_or_null(c->train.last.loss),
		    num_or_null(c->train.last.tokens_per_s),
		    (long long)c->train.last.ckpt_step,
		    c->train.last.ckpt_unix ? (double)time(NULL) -
		    (double)c->train.last.ckpt_unix : -1.0);
	else
		sbuf_printf(b, "\"train\":null}");
}

static void
member_row(struct sbuf *b, const struct swim_member *m, int self,
    double now_ms, int json, int first)
{
	char a[16];

	if (json) {
		sbuf_printf(b, "%s{\"id\":%u,\"addr\":\"%s\",\"gossip_port\":%u,"
		    "\"http_port\":%u,\"raft_port\":%u,\"state\":\"%s\","
		    "\"incarnation\":%u,\"rtt_ms\":%.3f,\"since_s\":%.3f,"
		    "\"gflops\":%.1f,\"train_gflops\":%.1f,"
		    "\"self\":%s}", first ? "" : ",", m->id,
		    self ? "self" : ip(m->addr, a), m->port, m->http_port,
		    m->raft_port, swim_state_name(m->state), m->incarnation,
		    m->rtt_ms, self ? 0.0 : (now_ms - (double)m->since_ms) /
		    1000.0, m->gflops10 / 10.0, m->train_gflops10 / 10.0,
		    self ? "true" : "false");
		return;
	}
	sbuf_printf(b, "%-10u %-15s %-6u %-8s %-5u %8.2f %8.1f %8.1f%s\n",
	    m->id, self ? "(self)" : ip(m->addr, a), m->port,
	    swim_state_name(m->state), m->incarnation, m->rtt_ms,
	    m->gflops10 / 10.0, m->train_gflops10 / 10.0, self ? " *" : "");
}

void
report_members(struct ctl *c, struct sbuf *b, int json)
{
	double now_ms = ctl_now() * 1000.0;
	struct swim_member self = c->sw.self;

	if (json)
		sbuf_printf(b, "[");
	else
		sbuf_printf(b, "%-10s %-15s %-6s %-8s %-5s %8s %8s %8s\n",
		    "ID", "ADDRESS", "PORT", "STATE", "INC", "RTT_MS", "GFLOPS",
		    "TRAIN_GF");
	self.state = c->sw.leaving ? SWIM_LEFT : SWIM_ALIVE;
	member_row(b, &self, 1, now_ms, json, 1);
	for (int i = 0; i < c->sw.nm; i++)
		member_row(b, &c->sw.m[i], 0, now_ms, json, 0);
	if (json)
		sbuf_printf(b, "]");
}

void
report_plan(struct ctl *c, struct sbuf *b, int json)
{
	const char *why = !c->job_running ? "no job running" :
	    c->plan_text == NULL ? "the job's plan is not committed yet" :
	    c->plan_dp == 0 ? "the planner refused (see text)" : NULL;

	if (!json) {
		if (c->plan_text)
			sbuf_printf(b, "epoch %llu\n%s",
			    (unsigned long long)c->epoch, c->plan_text);
		else
			sbuf_printf(b, "no plan: %s\n", why);
		return;
	}
	sbuf_printf(b, "{\"ok\":%s,\"epoch\":%llu,\"job\":", why ? "false" :
	    "true", (unsigned long long)c->epoch);
	sbuf_json_str(b, c->job_running ? c->job : "");
	sbuf_printf(b, ",\"tp\":%d,\"pp\":%d,\"dp\":%d,\"step_s\":%.9g,"
	    "\"why\":", c->plan_tp, c->plan_pp, c->plan_dp, c->plan_step);
	sbuf_json_str(b, why ? why : "");
	sbuf_printf(b, ",\"text\":");
	sbuf_json_str(b, c->plan_text ? c->plan_text : "");
	sbuf_printf(b, "}");
}

/* The live members' ids, self first.  @return how many. */
static int
live_ids(struct ctl *c, uint32_t *ids)
{
	int n = 0;

	ids[n++] = c->id;
	for (int i = 0; i < c->sw.nm; i++)
		if (c->sw.m[i].state == SWIM_ALIVE ||
		    c->sw.m[i].state == SWIM_SUSPECT)
			ids[n++] = c->sw.m[i].id;
	return n;
}

void
report_links(struct ctl *c, struct sbuf *b, int json)
{
	static uint32_t ids[SWIM_MAX_MEMBERS + 1];
	const struct swim_link *l;
	int nl = swim_links(&c->sw, &l), n = live_ids(c, ids), ni = 0;
	uint64_t now = (uint64_t)(ctl_now() * 1000.0);
	struct link_matrix lm;
	struct plan_device *dev = calloc((size_t)n, sizeof(*dev));
	double *ibw = NULL, *irtt = NULL;

	if (dev != NULL && links_assemble(ids, n, l, nl, &lm) == 0) {
		if (links_islands(&lm, dev, &ni, &ibw, &irtt) < 0)
			ni = 0;
		links_matrix_free(&lm);
	}
	if (json)
		sbuf_printf(b, "{\"node\":%u,\"default_bw\":%.0f,"
		    "\"default_rtt_s\":%g,\"pairs\":[", c->id,
		    LINK_DEFAULT_BW, LINK_DEFAULT_RTT);
	else
		sbuf_printf(b, "%-10s %-10s %10s %12s %7s  %s\n", "src", "dst",
		    "rtt_ms", "bw_MB/s", "age_s", "source");
	for (int i = 0; i < nl; i++) {
		double age = (l[i].age_ms + (now > l[i].recv_ms ?
		    now - l[i].recv_ms : 0)) / 1e3;
		const char *src = l[i].src == SWIM_LINK_DATAPLANE ?
		    "dataplane" : "probe";

		if (json)
			sbuf_printf(b, "%s{\"src\":%u,\"dst\":%u,"
			    "\"rtt_s\":%.6f,\"bw\":%.0f,\"age_s\":%.1f,"
			    "\"source\":\"%s\"}", i ? "," : "", l[i].origin,
			    l[i].peer, l[i].rtt_us / 1e6,
			    l[i].bw_kib * 1024.0, age, src);
		else
			sbuf_printf(b, "%-10u %-10u %10.3f %12.1f %7.1f  %s\n",
			    l[i].origin, l[i].peer, l[i].rtt_us / 1e3,
			    l[i].bw_kib * 1024.0 / 1e6, age, src);
	}
	if (json)
		sbuf_printf(b, "],\"islands\":[");
	else
		sbuf_printf(b, "%d pairs; islands:", nl);
	for (int k = 0; k < ni; k++) {
		int first = 1;

		sbuf_printf(b, json ? "%s{\"bw\":%.0f,\"members\":[" :
		    "%s [bw %.1f MB/s:", k && json ? "," : "",
		    json ? ibw[k * ni + k] : ibw[k * ni + k] / 1e6);
		for (int i = 0; i < n; i++)
			if (dev[i].island == k) {
				sbuf_printf(b, json ? "%s%u" : "%s%u",
				    first ? (json ? "" : " ") : (json ? "," :
				    " "), ids[i]);
				first = 0;
			}
		sbuf_printf(b, json ? "]}" : "]");
	}
	sbuf_printf(b, json ? "]}" : "\n");
	free(dev);
	free(ibw);
	free(irtt);
}

void
report_train(struct ctl *c, struct sbuf *b)
{
	struct train_state *t = &c->train;
	int start = (t->hpos - t->nhist + TRAIN_HISTORY) % TRAIN_HISTORY;

	sbuf_printf(b, "{\"points\":[");
	for (int i = 0; i < t->nhist; i++) {
		int k = (start + i) % TRAIN_HISTORY;

		sbuf_printf(b, "%s[%lld,%.6g,%.6g]", i ? "," : "",
		    (long long)t->hist[k].step, num_or_null(t->hist[k].loss),
		    num_or_null(t->hist[k].tps));
	}
	sbuf_printf(b, "]}");
}

void
report_metrics(struct ctl *c, struct sbuf *b)
{
	static const char *const st[] = { "alive", "suspect", "dead", "left" };
	char a[16];

	sbuf_printf(b, "# HELP arceus_members Members by state, as this node "
	    "sees them.\n# TYPE arceus_members gauge\n");
	for (int s = 0; s <= SWIM_LEFT; s++)
		sbuf_printf(b, "arceus_members{state=\"%s\"} %d\n", st[s],
		    swim_count(&c->sw, s));
	sbuf_printf(b, "# HELP arceus_member_up 1 if the member is alive or "
	    "suspect.\n# TYPE arceus_member_up gauge\n");
	sbuf_printf(b, "arceus_member_up{node=\"%u\",addr=\"self\"} 1\n",
	    c->id);
	for (int i = 0; i < c->sw.nm; i++) {
		const struct swim_member *m = &c->sw.m[i];

		sbuf_printf(b, "arceus_member_up{node=\"%u\",addr=\"%s\"} %d\n",
		    m->id, ip(m->addr, a), m->state <= SWIM_SUSPECT);
	}
	sbuf_printf(b, "# HELP arceus_link_rtt_seconds Round trip: this "
	    "node's last probes (peer, source), and the link matrix from "
	    "every node's row (src measured dst).\n"
	    "# TYPE arceus_link_rtt_seconds gauge\n");
	{
		const struct swim_link *l;
		int nl = swim_links(&c->sw, &l);

		for (int i = 0; i < nl; i++)
			if (l[i].rtt_us > 0)
				sbuf_printf(b, "arceus_link_rtt_seconds{src=\"%u\","
				    "dst=\"%u\"} %.6f\n", l[i].origin, l[i].peer,
				    l[i].rtt_us / 1e6);
	}
	for (int i = 0; i < c->sw.nm; i++)
		if (c->sw.m[i].rtt_ms > 0)
			sbuf_printf(b, "arceus_link_rtt_seconds{peer=\"%u\","
			    "source=\"gossip\"} %.6f\n", c->sw.m[i].id,
			    c->sw.m[i].rtt_ms / 1e3);
	for (int i = 0; i < c->nlinks; i++)
		if (c->links[i].rtt_s > 0)
			sbuf_printf(b, "arceus_link_rtt_seconds{peer=\"%u\","
			    "source=\"dataplane\"} %.9f\n", c->links[i].peer,
			    c->links[i].rtt_s);
	{
		const struct swim_link *l;
		int nl = swim_links(&c->sw, &l);

		sbuf_printf(b, "# HELP arceus_link_bandwidth_bytes Link matrix: "
		    "bytes/s src's dataplane measured towards dst.\n"
		    "# TYPE arceus_link_bandwidth_bytes gauge\n");
		for (int i = 0; i < nl; i++)
			if (l[i].bw_kib > 0)
				sbuf_printf(b, "arceus_link_bandwidth_bytes{src="
				    "\"%u\",dst=\"%u\"} %.0f\n", l[i].origin,
				    l[i].peer, l[i].bw_kib * 1024.0);
		sbuf_printf(b, "# HELP arceus_link_rows_total Link row "
		    "sections of gossip, by what became of them.\n"
		    "# TYPE arceus_link_rows_total counter\n"
		    "arceus_link_rows_total{what=\"sent\"} %llu\n"
		    "arceus_link_rows_total{what=\"received\"} %llu\n"
		    "arceus_link_rows_total{what=\"table_full\"} %llu\n",
		    (unsigned long long)c->sw.st.link_tx,
		    (unsigned long long)c->sw.st.link_rx,
		    (unsigned long long)c->sw.st.link_full);
	}
	sbuf_printf(b, "# HELP arceus_dataplane_up 1 if control talks to "
	    "the dataplane.\n# TYPE arceus_dataplane_up gauge\n"
	    "arceus_dataplane_up %d\n", c->dp_up);
	if (c->nlinks > 0) {
		sbuf_printf(b, "# HELP arceus_link_up Dataplane link state.\n"
		    "# TYPE arceus_link_up gauge\n");
		for (int i = 0; i < c->nlinks; i++)
			sbuf_printf(b, "arceus_link_up{peer=\"%u\"} %d\n",
			    c->links[i].peer, c->links[i].up);
		sbuf_printf(b, "# HELP arceus_link_info The backend a link "
		    "sends over.\n# TYPE arceus_link_info gauge\n");
		for (int i = 0; i < c->nlinks; i++)
			sbuf_printf(b, "arceus_link_info{peer=\"%u\",backend="
			    "\"%s\"} 1\n", c->links[i].peer,
			    c->links[i].backend);
		sbuf_printf(b, "# HELP arceus_link_bandwidth_bytes_per_second "
		    "Measured by probes and live traffic.\n"
		    "# TYPE arceus_link_bandwidth_bytes_per_second gauge\n");
		for (int i = 0; i < c->nlinks; i++)
			sbuf_printf(b, "arceus_link_bandwidth_bytes_per_second{"
			    "peer=\"%u\",source=\"probe\"} %.0f\n"
			    "arceus_link_bandwidth_bytes_per_second{peer=\"%u\","
			    "source=\"live\"} %.0f\n", c->links[i].peer,
			    c->links[i].bw_probe, c->links[i].peer,
			    c->links[i].bw_live);
		sbuf_printf(b, "# HELP arceus_link_bytes_total Dataplane bytes "
		    "on the wire.\n# TYPE arceus_link_bytes_total counter\n");
		for (int i = 0; i < c->nlinks; i++)
			sbuf_printf(b, "arceus_link_bytes_total{peer=\"%u\","
			    "dir=\"tx\"} %llu\narceus_link_bytes_total{peer="
			    "\"%u\",dir=\"rx\"} %llu\n", c->links[i].peer,
			    (unsigned long long)c->links[i].tx_bytes,
			    c->links[i].peer,
			    (unsigned long long)c->links[i].rx_bytes);
		sbuf_printf(b, "# HELP arceus_link_dropped_total Dataplane "
		    "messages dropped as invalid.\n"
		    "# TYPE arceus_link_dropped_total counter\n");
		for (int i = 0; i < c->nlinks; i++)
			sbuf_printf(b, "arceus_link_dropped_total{peer=\"%u\"} "
			    "%llu\n", c->links[i].peer,
			    (unsigned long long)c->links[i].rx_bad);
	}
	sbuf_printf(b, "# HELP arceus_epoch Committed epoch.\n"
	    "# TYPE arceus_epoch gauge\narceus_epoch %llu\n"
	    "# HELP arceus_view_changes_total Membership changes seen.\n"
	    "# TYPE arceus_view_changes_total counter\n"
	    "arceus_view_changes_total %llu\n",
	    (unsigned long long)c->epoch, (unsigned long long)c->view);
	sbuf_printf(b, "# HELP arceus_gossip_bytes_total Gossip bytes on the "
	    "wire.\n# TYPE arceus_gossip_bytes_total counter\n"
	    "arceus_gossip_bytes_total{dir=\"rx\"} %llu\n"
	    "arceus_gossip_bytes_total{dir=\"tx\"} %llu\n",
	    (unsigned long long)c->sw.st.rx_bytes,
	    (unsigned long long)c->sw.st.tx_bytes);
	sbuf_printf(b, "# HELP arceus_gossip_messages_total Gossip datagrams."
	    "\n# TYPE arceus_gossip_messages_total counter\n"
	    "arceus_gossip_messages_total{dir=\"rx\"} %llu\n"
	    "arceus_gossip_messages_total{dir=\"tx\"} %llu\n",
	    (unsigned long long)c->sw.st.rx, (unsigned long long)c->sw.st.tx);
	sbuf_printf(b, "# HELP arceus_dropped_total Messages dropped, by "
	    "reason.\n# TYPE arceus_dropped_total counter\n"
	    "arceus_dropped_total{reason=\"bad_mac\"} %llu\n"
	    "arceus_dropped_total{reason=\"replayed\"} %llu\n"
	    "arceus_dropped_total{reason=\"malformed\"} %llu\n"
	    "arceus_dropped_total{reason=\"link_malformed\"} %llu\n"
	    "arceus_dropped_total{reason=\"raft_auth\"} %llu\n",
	    (unsigned long long)c->sw.st.bad_mac,
	    (unsigned long long)c->sw.st.replayed,
	    (unsigned long long)c->sw.st.malformed,
	    (unsigned long long)c->sw.st.link_malformed,
	    (unsigned long long)c->raft_auth_refused);
	sbuf_printf(b, "# HELP arceus_raft_term Current raft term.\n"
	    "# TYPE arceus_raft_term gauge\narceus_raft_term %llu\n"
	    "# HELP arceus_raft_leader Id of the known leader (0: none).\n"
	    "# TYPE arceus_raft_leader gauge\narceus_raft_leader %u\n"
	    "# HELP arceus_quorum 1 if this node's side has a leader (can "
	    "commit).\n# TYPE arceus_quorum gauge\narceus_quorum %d\n"
	    "# HELP arceus_raft_voters Voters in the configuration.\n"
	    "# TYPE arceus_raft_voters gauge\narceus_raft_voters %d\n"
	    "# HELP arceus_epoch_members Members of the committed epoch.\n"
	    "# TYPE arceus_epoch_members gauge\narceus_epoch_members %d\n",
	    (unsigned long long)c->term, c->leader, c->quorum, c->nvoters,
	    c->nepoch);
	sbuf_printf(b, "# HELP arceus_probe_failures_total Probes without "
	    "an ack.\n# TYPE arceus_probe_failures_total counter\n"
	    "arceus_probe_failures_total %llu\n",
	    (unsigned long long)c->sw.st.probe_fail);
	sbuf_printf(b, "# HELP arceus_node_gflops Measured GEMM speed.\n"
	    "# TYPE arceus_node_gflops gauge\narceus_node_gflops %.3f\n",
	    c->prof.gflops);
	sbuf_printf(b, "# HELP arceus_replans_total Epochs this node, as "
	    "leader, committed for measured speed (stragglers).\n"
	    "# TYPE arceus_replans_total counter\n"
	    "arceus_replans_total %llu\n", (unsigned long long)c->replans);
	sbuf_printf(b, "# HELP arceus_node_train_gflops Measured training "
	    "speed (the job's FLOPs over the workers' compute), 0: none.\n"
	    "# TYPE arceus_node_train_gflops gauge\n"
	    "arceus_node_train_gflops %.3f\n", c->speed.value);
	if (c->train.have) {
		sbuf_printf(b, "# HELP arceus_train_step Last reported step.\n"
		    "# TYPE arceus_train_step gauge\narceus_train_step %lld\n"
		    "# HELP arceus_train_loss Last reported loss.\n"
		    "# TYPE arceus_train_loss gauge\narceus_train_loss %.6g\n"
		    "# HELP arceus_train_tokens_per_second Throughput.\n"
		    "# TYPE arceus_train_tokens_per_second gauge\n"
		    "arceus_train_tokens_per_second %.6g\n",
		    (long long)c->train.last.step,
		    num_or_null(c->train.last.loss),
		    num_or_null(c->train.last.tokens_per_s));
		if (c->train.last.ckpt_unix > 0)
			sbuf_printf(b, "# HELP arceus_checkpoint_age_seconds "
			    "Since the last committed checkpoint.\n"
			    "# TYPE arceus_checkpoint_age_seconds gauge\n"
			    "arceus_checkpoint_age_seconds %.0f\n",
			    (double)time(NULL) -
			    (double)c->train.last.ckpt_unix);
	}
}
