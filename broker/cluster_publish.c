/* cluster_publish.c - rank the members, publish the answer, fail over. */
#include "broker/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <ldns/ldns.h>

#include "broker/ranker.h"
#include "broker/updater.h"
#include "broker/zone.h"
#include "broker/zonestore.h"
#include "common/clock.h"

const char *
cluster_fam_type(int f)
{
	return f == FAM_V4 ? "A" : "AAAA";
}

static const struct addr *
failover_of(const struct cluster *cl, int f)
{
	const struct addr *a = f == FAM_V4 ? &cl->cfg->failover4 : &cl->cfg->failover6;

	return a->len != 0 ? a : NULL;
}

void
cluster_bprintf(char *buf, size_t cap, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, cap - len, fmt, ap);
	va_end(ap);
}

void
cluster_set_list(char *buf, size_t cap, const struct addr *v, size_t n)
{
	char a[ADDR_STRLEN];

	cluster_bprintf(buf, cap, "{");
	for (size_t i = 0; i < n; i++)
		cluster_bprintf(
		    buf, cap, "%s%s", i ? ", " : "", addr_host_str(&v[i], a, sizeof(a)));
	cluster_bprintf(buf, cap, "}");
}

static bool
set_has(const struct addr *v, size_t n, const struct addr *a)
{
	for (size_t i = 0; i < n; i++)
		if (addr_equal_host(&v[i], a))
			return true;
	return false;
}

static bool
set_equal(const struct addr *a, size_t na, const struct addr *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!set_has(b, nb, &a[i]))
			return false;
	return true;
}

/*
 * Rank the members of family f; the chosen addresses go to out (room for
 * max-members), best first.  Sets every member's rank and why.
 */
static size_t
rank_family(struct cluster *cl, int f, struct addr *out)
{
	size_t nf = 0, chosen;

	for (size_t i = 0; i < cl->n; i++) {
		struct member *m = &cl->m[i];

		if (cluster_fam_index(&m->cm.addr) != f)
			continue;
		cl->idx[nf] = i;
		cl->rm[nf] = (struct ranker_member){
		    m->smoothed, m->cm.weight, cluster_member_eligible(m), m->published};
		nf++;
	}
	chosen = ranker_rank(cl->rm, nf, cl->cfg->policy, cl->cfg->hysteresis, cl->cfg->max_members,
	    cl->order, cl->scores);
	for (size_t r = 0; r < nf; r++) {
		struct member *m = &cl->m[cl->idx[cl->order[r]]];

		m->why = cluster_member_exclusion(m);
		m->rank = m->why == WHY_ANSWER ? r + 1 : 0;
		if (m->why == WHY_ANSWER && r >= chosen)
			m->why = WHY_RANK;
		if (r < chosen)
			out[r] = m->cm.addr;
	}
	return chosen;
}

/* Say what changed in family f and why, e.g. "+127.0.0.12 (rank 2, ...)". */
static void
log_change(struct cluster *cl, int f, const struct addr *next, size_t nn)
{
	const struct pubset *p = &cl->pub[f];
	char line[LOG_LINE_MAX] = "", why[LOG_WHY_MAX], a[ADDR_STRLEN];

	cluster_bprintf(line, sizeof(line), "%s set now ", cluster_fam_type(f));
	cluster_set_list(line, sizeof(line), next, nn);
	cluster_bprintf(line, sizeof(line), " (was ");
	cluster_set_list(line, sizeof(line), p->v, p->n);
	cluster_bprintf(line, sizeof(line), "):");
	for (size_t i = 0; i < nn; i++) {
		const struct member *m = cluster_member_find(cl, &next[i]);

		if (set_has(p->v, p->n, &next[i]))
			continue;
		if (m != NULL)
			cluster_why_text(m, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "failover: no member is up");
		cluster_bprintf(
		    line, sizeof(line), " +%s (%s);", addr_host_str(&next[i], a, sizeof(a)), why);
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct member *m = cluster_member_find(cl, &p->v[i]);

		if (set_has(next, nn, &p->v[i]))
			continue;
		if (m != NULL)
			cluster_why_text(m, why, sizeof(why));
		else if (failover_of(cl, f) != NULL &&
		    addr_equal_host(failover_of(cl, f), &p->v[i]))
			snprintf(why, sizeof(why), "failover no longer needed");
		else
			snprintf(why, sizeof(why), "no longer a member");
		cluster_bprintf(
		    line, sizeof(line), " -%s (%s);", addr_host_str(&p->v[i], a, sizeof(a)), why);
	}
	log_info("cluster %s: %s", cl->name, line);
	snprintf(cl->last_change, sizeof(cl->last_change), "%s", line);
	cl->last_change_at = time(NULL);
	cl->changes++;
}

void
cluster_update_published_flags(struct cluster *cl)
{
	for (size_t i = 0; i < cl->n; i++) {
		struct member *m = &cl->m[i];
		const struct pubset *p = &cl->pub[cluster_fam_index(&m->cm.addr)];

		m->published = set_has(p->v, p->n, &m->cm.addr);
	}
}

/* All down in family f: the failover address, else keep the last set. */
static size_t
all_down(struct cluster *cl, int f, struct addr *next)
{
	const struct addr *fo = failover_of(cl, f);
	struct pubset *p = &cl->pub[f];
	char line[LOG_LINE_MAX] = "";

	if (fo != NULL) {
		next[0] = *fo;
		return 1;
	}
	if (p->n > 0 && !p->held) {
		cluster_set_list(line, sizeof(line), p->v, p->n);
		log_warnx("cluster %s: no member is up and no failover address: keeping the last "
		          "published %s set %s",
		    cl->name, cluster_fam_type(f), line);
		p->held = true;
	}
	return 0;
}

/*
 * While warming up, the placeholder set still leaves out a member the
 * operator drained (an answer must never wait for a drain); the set is
 * kept whole when it would become empty.  True when it changed.
 */
static bool
placeholder_without_drained(struct cluster *cl, int f, struct addr *next)
{
	struct pubset *p = &cl->pub[f];
	size_t nn = 0;

	for (size_t i = 0; i < p->n && nn < cl->cfg->max_members; i++) {
		const struct member *m = cluster_member_find(cl, &p->v[i]);

		if (m == NULL || (!m->ctl_drain && !m->cm.drain))
			next[nn++] = p->v[i];
	}
	if (nn == 0 || nn == p->n)
		return false;
	log_change(cl, f, next, nn);
	memcpy(p->v, next, nn * sizeof(*next));
	p->n = nn;
	if (cl->cs->sf != NULL)
		statefile_set(cl->cs->sf, cl->name, f == FAM_V4 ? AF_INET : AF_INET6, p->v, p->n);
	return true;
}

/* Recompute family f; true when its published set changed. */
static bool
refresh_family(struct cluster *cl, int f, struct addr *next)
{
	struct pubset *p = &cl->pub[f];
	size_t nn = rank_family(cl, f, next);

	if (cl->warm && (cl->restored || nn == 0)) {
		/* Keep what we have until the first verdicts; say so. */
		for (size_t i = 0; i < cl->n; i++)
			if (cluster_fam_index(&cl->m[i].cm.addr) == f &&
			    cl->m[i].why == WHY_ANSWER && !set_has(p->v, p->n, &cl->m[i].cm.addr))
				cl->m[i].why = WHY_WARMING;
		return placeholder_without_drained(cl, f, next);
	}
	if (nn == 0 && (nn = all_down(cl, f, next)) == 0)
		return false;
	p->held = false;
	if (set_equal(next, nn, p->v, p->n))
		return false;
	log_change(cl, f, next, nn);
	memcpy(p->v, next, nn * sizeof(*next));
	p->n = nn;
	p->failover = failover_of(cl, f) != NULL && cluster_member_find(cl, &next[0]) == NULL;
	if (cl->cs->sf != NULL)
		statefile_set(cl->cs->sf, cl->name, f == FAM_V4 ? AF_INET : AF_INET6, p->v, p->n);
	return true;
}

static ldns_rr *
txt_rr(const char *owner, const char *text)
{
	char buf[512];
	ldns_rr *rr = NULL;

	snprintf(buf, sizeof(buf), "%s. 0 IN TXT \"%s\"", owner, text);
	if (ldns_rr_new_frm_str(&rr, buf, 0, NULL, NULL) != LDNS_STATUS_OK)
		return NULL;
	return rr;
}

static void
push_txt(ldns_rr_list *l, const char *owner, const char *text)
{
	ldns_rr *rr = txt_rr(owner, text);

	if (rr != NULL && !ldns_rr_list_push_rr(l, rr))
		ldns_rr_free(rr);
}

/* A hash of the table's texts (FNV-1a), to publish only what changed. */
uint64_t
cluster_table_hash(const ldns_rr_list *l)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);
		const ldns_rdf *rd = ldns_rr_rd_count(rr) > 0 ? ldns_rr_rdf(rr, 0) : NULL;

		for (size_t k = 0; rd != NULL && k < ldns_rdf_size(rd); k++)
			h = (h ^ ldns_rdf_data(rd)[k]) * 1099511628211ULL;
		h = (h ^ 0xff) * 1099511628211ULL; /* row separator */
	}
	return h;
}

/*
 * The ranked table as TXT records at _status.<cluster>: a header row, then one
 * row per member ("rank 1 127.0.0.13 in-answer up rating=90.000 weight=1").
 * A ZONE_RRSET_LOCAL RRset: answered by this broker only, replaced at every
 * refresh whose text differs, never a reason for a serial bump, a NOTIFY or
 * a transfer.
 */
static ldns_rr_list *
build_table(struct cluster *cl)
{
	const struct member **rows = cluster_sorted_rows(cl);
	ldns_rr_list *l = ldns_rr_list_new();
	char text[TABLE_ROW_MAX];
	size_t nrows = cl->n < CLUSTER_TXT_ROWS ? cl->n : CLUSTER_TXT_ROWS;

	if (rows == NULL || l == NULL) {
		free(rows);
		ldns_rr_list_free(l);
		return NULL;
	}
	cluster_table_header(cl, text, sizeof(text));
	push_txt(l, cl->status_name, text);
	for (size_t i = 0; i < nrows; i++) {
		cluster_table_row(rows[i], text, sizeof(text));
		push_txt(l, cl->status_name, text);
	}
	free(rows);
	return l;
}

/*
 * Put what changed into the zone in one step: the A and/or AAAA set of the
 * families in fam[] and the status table when it changed; one rebuild, one
 * serial bump, one NOTIFY.
 */
void
cluster_publish_zone(struct cluster *cl, const bool fam[2])
{
	struct zonestore_rrset sets[3];
	ldns_rr_list *lists[3] = {NULL, NULL, NULL};
	uint64_t h = 0;
	size_t n = 0;

	if (!cl->in_zone)
		return;
	for (int f = 0; f < 2; f++) {
		uint16_t type = f == FAM_V4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA;

		if (!fam[f] || cl->pub[f].n == 0 ||
		    (lists[n] = zonestore_addr_rrs(
		         cl->name, type, cl->cfg->dns_ttl, cl->pub[f].v, cl->pub[f].n)) == NULL)
			continue;
		sets[n] = (struct zonestore_rrset){
		    cl->name, type, lists[n], ZONE_RRSET_ROTATE | ZONE_RRSET_TRIM};
		n++;
	}
	if ((lists[n] = build_table(cl)) != NULL &&
	    (h = cluster_table_hash(lists[n])) != cl->table_hash) {
		sets[n] = (struct zonestore_rrset){
		    cl->status_name, LDNS_RR_TYPE_TXT, lists[n], ZONE_RRSET_LOCAL};
		n++;
	} else {
		ldns_rr_list_deep_free(lists[n]);
		lists[n] = NULL;
		h = cl->table_hash;
	}
	if (n > 0 && zonestore_replace_batch(cl->cs->zs, sets, n) == 0)
		cl->table_hash = h;
	for (size_t i = 0; i < n; i++)
		ldns_rr_list_deep_free(lists[i]);
}

/* How often the masters are compared when nothing changed. */
static uint64_t
verify_period(const struct cluster *cl)
{
	uint64_t ms = (uint64_t)cl->cfg->dns_refresh * 10 * 1000;

	return ms < CLUSTER_VERIFY_MIN_MS ? CLUSTER_VERIFY_MIN_MS : ms;
}

/*
 * Hand the published sets to the updater.  A family with nothing published
 * yet is left alone on the master: an empty set is never pushed.
 */
void
cluster_push_masters(struct cluster *cl)
{
	const struct pubset *p = cl->pub;

	if (p[0].n > 0 || p[1].n > 0)
		updater_set(cl->up, p[0].v, p[0].n, p[0].n > 0, p[1].v, p[1].n, p[1].n > 0,
		    cl->cfg->dns_ttl);
	cl->verify_at = clock_ms() + verify_period(cl);
}

void
cluster_refresh(struct cluster *cl)
{
	struct addr *next = calloc(cl->cfg->max_members + 1, sizeof(*next));
	bool fam[2] = {false, false}, changed;

	if (next == NULL) {
		log_warnx("cluster %s: out of memory ranking", cl->name);
		return;
	}
	for (int f = 0; f < 2; f++)
		fam[f] = cl->pub[f].managed && refresh_family(cl, f, next);
	free(next);
	changed = fam[0] || fam[1];
	cluster_update_published_flags(cl);
	cluster_publish_zone(cl, fam);
	if (changed && cl->cs->sf != NULL)
		statefile_save(cl->cs->sf);
	if (!cl->warm) {
		cl->restored = false; /* the ranked answer stands, whatever it is */
		cl->restored_from = NULL;
	}
	/* Masters are compared on every change, and now and then anyway, so a
	 * primary that lost our records (reloaded its file) gets them back. */
	if (cl->up != NULL && (changed || clock_ms() >= cl->verify_at))
		cluster_push_masters(cl);
}

void
cluster_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cluster_refresh(arg);
}
