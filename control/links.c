/*
 * links.c: the link matrix, from the rows SWIM spreads (swim.h) to the
 * planner's islands.  Pure functions: tests call them alone.
 *
 * - A node's own row: towards each alive member, its dataplane's
 *   measurement (RTT; bandwidth from the last probe, else live traffic)
 *   where the dataplane has one, else SWIM's probe RTT (no bandwidth).
 * - The matrix over a member set: cell (a, b) is a's measurement of b.
 *   For planning it is made symmetric: where only one side measured, the
 *   other side takes its values; where both did, the lower bandwidth and
 *   the higher RTT (the link is as good as its worse direction).  A pair
 *   nobody measured gets LINK_DEFAULT_BW and LINK_DEFAULT_RTT; a pair
 *   with an RTT but no bandwidth gets LINK_DEFAULT_BW.
 * - Islands: members joined by links of at least LINK_ISLAND_RATIO (a
 *   tenth) of the best link's bandwidth, transitively: an order of
 *   magnitude apart, not measurement noise.  Between two islands the
 *   slowest link joining them and the largest RTT; inside an island its
 *   slowest link and largest RTT (a lone member: the best link).
 */
#include <stdlib.h>
#include <string.h>

#include "control.h"

int
links_row(const struct swim *sw, uint64_t now_ms, const struct ctl_link *dl,
    int ndl, double dl_age_s, struct swim_link *row, int max)
{
	int n = 0;

	for (int i = 0; i < sw->nm && n < max; i++) {
		const struct swim_member *m = &sw->m[i];
		const struct ctl_link *d = NULL;
		struct swim_link *r = &row[n];
		double bw = 0.0, rtt = 0.0;

		if (m->state != SWIM_ALIVE && m->state != SWIM_SUSPECT)
			continue;
		for (int k = 0; k < ndl; k++)
			if (dl[k].peer == m->id && dl[k].up)
				d = &dl[k];
		if (d != NULL) {
			bw = d->bw_probe > 0 ? d->bw_probe : d->bw_live;
			rtt = d->rtt_s;
		}
		memset(r, 0, sizeof(*r));
		r->peer = m->id;
		if (d != NULL && (bw > 0 || rtt > 0)) {
			r->src = SWIM_LINK_DATAPLANE;
			if (rtt <= 0 && m->rtt_ms > 0)
				rtt = m->rtt_ms / 1e3;
			r->age_ms = dl_age_s > 0 ? (uint32_t)(dl_age_s * 1e3) : 0;
		} else if (m->rtt_ms > 0) {
			r->src = SWIM_LINK_PROBE;
			rtt = m->rtt_ms / 1e3;
			r->age_ms = now_ms > m->last_heard_ms ?
			    (uint32_t)(now_ms - m->last_heard_ms) : 0;
		} else {
			continue;	/* nothing measured yet */
		}
		r->rtt_us = rtt > 0 ? (uint32_t)(rtt * 1e6 + 0.5) : 0;
		if (r->rtt_us == 0 && rtt > 0)
			r->rtt_us = 1;
		r->bw_kib = bw / 1024.0 > 4e9 ? 4000000000u :
		    (uint32_t)(bw / 1024.0);
		n++;
	}
	return n;
}

static int
index_of(const uint32_t *ids, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return i;
	return -1;
}

int
links_assemble(const uint32_t *ids, int n, const struct swim_link *cells,
    int ncells, struct link_matrix *lm)
{
	size_t nn = (size_t)n * (size_t)n;

	memset(lm, 0, sizeof(*lm));
	lm->n = n;
	lm->id = calloc((size_t)n ? (size_t)n : 1, sizeof(*lm->id));
	lm->bw = calloc(nn ? nn : 1, sizeof(*lm->bw));
	lm->rtt = calloc(nn ? nn : 1, sizeof(*lm->rtt));
	lm->src = calloc(nn ? nn : 1, sizeof(*lm->src));
	if (lm->id == NULL || lm->bw == NULL || lm->rtt == NULL ||
	    lm->src == NULL) {
		links_matrix_free(lm);
		return -1;
	}
	memcpy(lm->id, ids, (size_t)n * sizeof(*ids));
	for (int k = 0; k < ncells; k++) {
		int a = index_of(ids, n, cells[k].origin);
		int b = index_of(ids, n, cells[k].peer);
		size_t at;

		if (a < 0 || b < 0 || a == b)
			continue;
		at = (size_t)a * (size_t)n + (size_t)b;
		lm->bw[at] = cells[k].bw_kib * 1024.0;
		lm->rtt[at] = cells[k].rtt_us / 1e6;
		lm->src[at] = cells[k].src;
	}
	return 0;
}

void
links_matrix_free(struct link_matrix *lm)
{
	free(lm->id);
	free(lm->bw);
	free(lm->rtt);
	free(lm->src);
	memset(lm, 0, sizeof(*lm));
}

void
links_pair(const struct link_matrix *lm, int a, int b, double *bw,
    double *rtt)
{
	size_t ab = (size_t)a * (size_t)lm->n + (size_t)b;
	size_t ba = (size_t)b * (size_t)lm->n + (size_t)a;
	double x = lm->bw[ab], y = lm->bw[ba];
	double r = lm->rtt[ab], s = lm->rtt[ba];

	*bw = x > 0 && y > 0 ? (x < y ? x : y) : x > 0 ? x : y > 0 ? y :
	    LINK_DEFAULT_BW;
	*rtt = r > s ? r : s;
	if (*rtt <= 0)
		*rtt = LINK_DEFAULT_RTT;
}

static int
uf_find(int *up, int x)
{
	while (up[x] != x)
		x = up[x] = up[up[x]];
	return x;
}

int
links_islands(const struct link_matrix *lm, struct plan_device *dev,
    int *nisland, double **ibw, double **irtt)
{
	int n = lm->n, *up = calloc((size_t)n + 1, sizeof(int));
	int *isl = calloc((size_t)n + 1, sizeof(int)), ni = 0;
	double best = 0.0, low_rtt = 0.0, *b = NULL, *r = NULL;

	*ibw = *irtt = NULL;
	*nisland = 0;
	if (up == NULL || isl == NULL)
		goto fail;
	for (int i = 0; i < n; i++)
		up[i] = i;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++) {
			double bw, rtt;

			links_pair(lm, i, j, &bw, &rtt);
			if (bw > best)
				best = bw;
			if (low_rtt == 0.0 || rtt < low_rtt)
				low_rtt = rtt;
		}
	if (best <= 0)
		best = LINK_DEFAULT_BW;
	if (low_rtt <= 0)
		low_rtt = LINK_DEFAULT_RTT;
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++) {
			double bw, rtt;

			links_pair(lm, i, j, &bw, &rtt);
			if (bw >= LINK_ISLAND_RATIO * best)
				up[uf_find(up, i)] = uf_find(up, j);
		}
	/* islands numbered in order of their first member */
	for (int i = 0; i < n; i++)
		isl[i] = -1;
	for (int i = 0; i < n; i++) {
		int root = uf_find(up, i);

		if (isl[root] < 0)
			isl[root] = ni++;
		dev[i].island = isl[root];
	}
	if (ni == 0)
		ni = 1;
	b = calloc((size_t)ni * (size_t)ni, sizeof(*b));
	r = calloc((size_t)ni * (size_t)ni, sizeof(*r));
	if (b == NULL || r == NULL)
		goto fail;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			size_t at = (size_t)dev[i].island * (size_t)ni +
			    (size_t)dev[j].island;
			double bw, rtt;

			if (i == j)
				continue;
			links_pair(lm, i, j, &bw, &rtt);
			if (b[at] == 0.0 || bw < b[at])
				b[at] = bw;
			if (rtt > r[at])
				r[at] = rtt;
		}
	for (int a = 0; a < ni; a++) {
		size_t at = (size_t)a * (size_t)ni + (size_t)a;

		if (b[at] == 0.0)	/* a lone member */
			b[at] = best;
		if (r[at] == 0.0)
			r[at] = low_rtt;
	}
	free(up);
	free(isl);
	*ibw = b;
	*irtt = r;
	*nisland = ni;
	return 0;
fail:
	free(up);
	free(isl);
	free(b);
	free(r);
	return -1;
}
