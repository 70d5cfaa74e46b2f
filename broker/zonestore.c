/* zonestore.c - publish zone snapshots to query threads; replace RRsets. */
#include "broker/zonestore.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "broker/journal.h"
#include "broker/zone.h"
#include "common/addr.h"
#include "common/log.h"

/* One reader's epoch, alone in its cache line; 0 = not reading. */
struct reader {
	_Atomic uint64_t epoch;
	char pad[64 - sizeof(uint64_t)];
};

struct retired {
	void *p;
	void (*free_fn)(void *);
	uint64_t epoch; /* the global epoch after the swap */
};

/* A replaced RRset, applied again after every reload. */
struct overlay {
	ldns_rdf *owner;
	uint16_t type;
	ldns_rr_list *rrs; /* NULL = deleted */
	unsigned flags;
};

/* What was served of a zone before this process (the state file). */
struct floor {
	char *zone;
	uint32_t serial;
	uint64_t digest; /* zone_digest of what was served with it */
	uint32_t file;   /* the serial of the file loaded at start */
	bool pending;    /* nothing served yet (zonestore_serving) */
};

struct zonestore {
	_Atomic(struct zsnap *) current;
	_Atomic uint64_t epoch;
	struct reader *readers;
	unsigned nreaders;
	struct retired *retired;
	size_t nretired, capretired;
	struct overlay *ov;
	size_t nov;
	struct floor *floors;
	size_t nfloors;
	zonestore_change_fn change_fn;
	void *change_arg;
	struct journal *journal; /* recent serial steps, for IXFR */
};

static bool
serial_gt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) > 0; /* RFC 1982 */
}

struct zonestore *
zonestore_new(unsigned nreaders)
{
	struct zonestore *zs = calloc(1, sizeof(*zs));
	struct zsnap *empty = calloc(1, sizeof(*empty));

	if (zs == NULL || empty == NULL || (zs->journal = journal_new()) == NULL ||
	    posix_memalign((void **)&zs->readers, 64, (nreaders + 1) * sizeof(struct reader))) {
		if (zs != NULL)
			journal_free(zs->journal);
		free(zs);
		free(empty);
		return NULL;
	}
	memset(zs->readers, 0, (nreaders + 1) * sizeof(struct reader));
	zs->nreaders = nreaders;
	atomic_init(&zs->epoch, 1);
	atomic_init(&zs->current, empty);
	return zs;
}

static void
overlay_clear(struct overlay *o)
{
	ldns_rdf_deep_free(o->owner);
	ldns_rr_list_deep_free(o->rrs);
}

void
zonestore_free(struct zonestore *zs)
{
	struct zsnap *s;

	if (zs == NULL)
		return;
	for (size_t i = 0; i < zs->nretired; i++)
		zs->retired[i].free_fn(zs->retired[i].p);
	s = atomic_load(&zs->current);
	for (size_t i = 0; i < s->n; i++)
		zone_free(s->zones[i]);
	free(s);
	for (size_t i = 0; i < zs->nov; i++)
		overlay_clear(&zs->ov[i]);
	for (size_t i = 0; i < zs->nfloors; i++)
		free(zs->floors[i].zone);
	free(zs->floors);
	free(zs->ov);
	free(zs->retired);
	free(zs->readers);
	journal_free(zs->journal);
	free(zs);
}

void
zonestore_on_change(struct zonestore *zs, zonestore_change_fn fn, void *arg)
{
	zs->change_fn = fn;
	zs->change_arg = arg;
}

const struct zsnap *
zonestore_snapshot(const struct zonestore *zs)
{
	return atomic_load_explicit(&zs->current, memory_order_acquire);
}

const struct zone *
zonestore_find(const struct zonestore *zs, const char *name)
{
	const struct zsnap *s = zonestore_snapshot(zs);

	for (size_t i = 0; i < s->n; i++)
		if (strcasecmp(zone_name(s->zones[i]), name) == 0)
			return s->zones[i];
	return NULL;
}

const struct zsnap *
zonestore_enter(struct zonestore *zs, unsigned reader)
{
	uint64_t e = atomic_load(&zs->epoch);

	/* seq_cst store then load: a reclaimer that saw us quiescent swapped first. */
	atomic_store(&zs->readers[reader].epoch, e);
	return atomic_load(&zs->current);
}

void
zonestore_leave(struct zonestore *zs, unsigned reader)
{
	atomic_store_explicit(&zs->readers[reader].epoch, 0, memory_order_release);
}

/* Make room for `n` more retired objects, so that retiring cannot fail. */
static int
retire_reserve(struct zonestore *zs, size_t n)
{
	size_t cap = zs->capretired ? zs->capretired : 16;
	struct retired *v;

	while (cap < zs->nretired + n)
		cap *= 2;
	if (cap == zs->capretired)
		return 0;
	v = reallocarray(zs->retired, cap, sizeof(*v));
	if (v == NULL)
		return -1;
	zs->retired = v;
	zs->capretired = cap;
	return 0;
}

static void
retire(struct zonestore *zs, void *p, void (*fn)(void *), uint64_t epoch)
{
	zs->retired[zs->nretired].p = p;
	zs->retired[zs->nretired].free_fn = fn;
	zs->retired[zs->nretired].epoch = epoch;
	zs->nretired++;
}

void
zonestore_reclaim(struct zonestore *zs)
{
	uint64_t oldest = UINT64_MAX;
	size_t k = 0;

	for (unsigned i = 0; i < zs->nreaders; i++) {
		uint64_t e = atomic_load(&zs->readers[i].epoch);

		if (e != 0 && e < oldest)
			oldest = e;
	}
	for (size_t i = 0; i < zs->nretired; i++) {
		if (zs->retired[i].epoch <= oldest)
			zs->retired[i].free_fn(zs->retired[i].p);
		else
			zs->retired[k++] = zs->retired[i];
	}
	zs->nretired = k;
}

const struct journal *
zonestore_journal(const struct zonestore *zs)
{
	return zs->journal;
}

size_t
zonestore_pending(const struct zonestore *zs)
{
	return zs->nretired;
}

static void
zone_free_cb(void *p)
{
	zone_free(p);
}

/* Swap in a snapshot where `z` replaces the zone of its name (or is added). */
static int
publish(struct zonestore *zs, struct zone *z)
{
	struct zsnap *old = atomic_load(&zs->current), *s;
	struct zone *prev = NULL;
	size_t n = old->n, at = old->n;
	uint64_t e;

	for (size_t i = 0; i < old->n; i++)
		if (strcmp(zone_name(old->zones[i]), zone_name(z)) == 0)
			at = i;
	s = malloc(sizeof(*s) + (n + 1) * sizeof(s->zones[0]));
	if (s == NULL || retire_reserve(zs, 2) == -1) {
		free(s);
		zone_free(z);
		log_warnx("zone store: out of memory");
		return -1;
	}
	memcpy(s->zones, old->zones, n * sizeof(s->zones[0]));
	s->n = at == n ? n + 1 : n;
	if (at < n)
		prev = old->zones[at];
	s->zones[at] = z;
	atomic_store(&zs->current, s);
	e = atomic_fetch_add(&zs->epoch, 1) + 1;
	retire(zs, old, free, e);
	if (prev != NULL)
		retire(zs, prev, zone_free_cb, e);
	if (prev != NULL && zone_serial(prev) != zone_serial(z) &&
	    journal_record(zs->journal, zone_name(z), zone_rrs(prev), zone_rrs(z)) == -1)
		log_info("zone store: %s: serial %u to %u not kept for IXFR (too large or no "
		         "memory): secondaries transfer the whole zone once",
		    zone_name(z), zone_serial(prev), zone_serial(z));
	if (zs->change_fn != NULL && (prev == NULL || zone_serial(prev) != zone_serial(z)))
		zs->change_fn(z, prev != NULL ? zone_serial(prev) : 0, zs->change_arg);
	zonestore_reclaim(zs);
	return 0;
}

int
zonestore_remove_zone(struct zonestore *zs, const char *name)
{
	struct zsnap *old = atomic_load(&zs->current), *s;
	size_t at = old->n;
	uint64_t e;

	for (size_t i = 0; i < old->n; i++)
		if (strcmp(zone_name(old->zones[i]), name) == 0)
			at = i;
	if (at == old->n)
		return 0;
	s = malloc(sizeof(*s) + old->n * sizeof(s->zones[0]));
	if (s == NULL || retire_reserve(zs, 2) == -1) {
		free(s);
		log_warnx("zone store: out of memory");
		return -1;
	}
	memcpy(s->zones, old->zones, at * sizeof(s->zones[0]));
	memcpy(s->zones + at, old->zones + at + 1, (old->n - at - 1) * sizeof(s->zones[0]));
	s->n = old->n - 1;
	atomic_store(&zs->current, s);
	e = atomic_fetch_add(&zs->epoch, 1) + 1;
	retire(zs, old, free, e);
	retire(zs, old->zones[at], zone_free_cb, e);
	journal_drop(zs->journal, name);
	zonestore_reclaim(zs);
	return 0;
}

static bool
owner_in(const struct overlay *o, const struct zone *z)
{
	ldns_rdf *apex = NULL;
	bool in;

	if (ldns_str2rdf_dname(&apex, zone_name(z)) != LDNS_STATUS_OK)
		return false;
	in = ldns_dname_compare(o->owner, apex) == 0 || ldns_dname_is_subdomain(o->owner, apex);
	ldns_rdf_deep_free(apex);
	return in;
}

/* The floor of `zone` while nothing has been served yet, else NULL. */
static struct floor *
floor_of(const struct zonestore *zs, const char *zone)
{
	for (size_t i = 0; i < zs->nfloors; i++)
		if (zs->floors[i].pending && strcmp(zs->floors[i].zone, zone) == 0)
			return &zs->floors[i];
	return NULL;
}

void
zonestore_serving(struct zonestore *zs)
{
	for (size_t i = 0; i < zs->nfloors; i++)
		zs->floors[i].pending = false;
}

int
zonestore_restore_serial(struct zonestore *zs, const char *zone, uint32_t serial, uint64_t digest)
{
	struct floor *v;

	if (floor_of(zs, zone) != NULL)
		return 0;
	v = reallocarray(zs->floors, zs->nfloors + 1, sizeof(*v));
	if (v == NULL)
		return -1;
	zs->floors = v;
	if ((v[zs->nfloors].zone = strdup(zone)) == NULL)
		return -1;
	v[zs->nfloors].serial = serial;
	v[zs->nfloors].digest = digest;
	v[zs->nfloors].file = serial;
	v[zs->nfloors].pending = true;
	zs->nfloors++;
	return 0;
}

/*
 * The serial for `z` (a loaded file with our RRsets on top, still carrying
 * the file's serial) when `served`/`digest` were served before: the file's
 * serial when it is ahead, else the same serial for the same content, else
 * one more than what was served.  Never lower (RFC 1982).
 */
static uint32_t
next_serial(const struct zone *z, uint32_t served, uint64_t digest)
{
	if (serial_gt(zone_serial(z), served))
		return zone_serial(z);
	return zone_digest(z) == digest ? served : served + 1;
}

/* Give z (owned; freed on error) the serial `serial`; NULL on error. */
static struct zone *
with_serial(struct zone *z, uint32_t serial)
{
	char err[512];
	struct zone *next;

	if (zone_serial(z) == serial)
		return z;
	next = zone_apply(z, NULL, 0, serial, err, sizeof(err));
	zone_free(z);
	if (next == NULL)
		log_warnx("%s", err);
	return next;
}

/* Our replaced RRsets that lie in z, as changes for zone_apply. */
static size_t
overlay_changes(
    const struct zonestore *zs, const struct zone *z, struct zone_change *ch, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < zs->nov && n < max; i++)
		if (owner_in(&zs->ov[i], z))
			ch[n++] = (struct zone_change){
			    zs->ov[i].owner, zs->ov[i].type, zs->ov[i].rrs, zs->ov[i].flags};
	return n;
}

int
zonestore_set_zone(struct zonestore *zs, struct zone *z)
{
	struct zone_change ch[64];
	const struct zone *prev = zonestore_find(zs, zone_name(z));
	struct floor *fl = floor_of(zs, zone_name(z));
	size_t n = overlay_changes(zs, z, ch, 64);
	char err[512];

	if (fl != NULL)
		fl->file = zone_serial(z);
	if (n > 0) {
		struct zone *merged = zone_apply(z, ch, n, zone_serial(z), err, sizeof(err));

		zone_free(z);
		if ((z = merged) == NULL) {
			log_warnx("%s", err);
			return -1;
		}
	}
	/* Before serving, what this process built is no one's business: the
	 * last run's serial is the one to continue from. */
	if (fl != NULL)
		z = with_serial(z, next_serial(z, fl->serial, fl->digest));
	else if (prev != NULL)
		z = with_serial(z, next_serial(z, zone_serial(prev), zone_digest(prev)));
	return z != NULL ? publish(zs, z) : -1;
}

static const struct zone *
zone_holding(const struct zonestore *zs, const ldns_rdf *owner)
{
	const struct zsnap *s = zonestore_snapshot(zs);
	const struct zone *best = NULL;
	size_t bestlen = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct overlay o = {.owner = (ldns_rdf *)owner};
		size_t len = strlen(zone_name(s->zones[i]));

		if (owner_in(&o, s->zones[i]) && (best == NULL || len > bestlen)) {
			best = s->zones[i];
			bestlen = len;
		}
	}
	return best;
}

/* Remember (owner, type) -> rrs; takes ownership of owner and rrs. */
static void
overlay_set(struct zonestore *zs, ldns_rdf *owner, uint16_t type, ldns_rr_list *rrs, unsigned flags)
{
	struct overlay *v;

	for (size_t i = 0; i < zs->nov; i++)
		if (zs->ov[i].type == type && ldns_dname_compare(zs->ov[i].owner, owner) == 0) {
			overlay_clear(&zs->ov[i]);
			zs->ov[i] = (struct overlay){owner, type, rrs, flags};
			return;
		}
	v = reallocarray(zs->ov, zs->nov + 1, sizeof(*v));
	if (v == NULL) {
		/* Served now; only a reload would forget it. */
		log_warnx("zone store: out of memory remembering a replaced RRset");
		ldns_rdf_deep_free(owner);
		ldns_rr_list_deep_free(rrs);
		return;
	}
	zs->ov = v;
	zs->ov[zs->nov++] = (struct overlay){owner, type, rrs, flags};
}

/* Check one RRset of a batch; its owner, canonical, goes to *name. */
static int
batch_check(const struct zonestore_rrset *set, ldns_rdf **name)
{
	const ldns_rr_list *rrs = set->rrs;

	*name = NULL;
	if (ldns_str2rdf_dname(name, set->owner) != LDNS_STATUS_OK) {
		log_warnx("zone store: '%s' is not a domain name", set->owner);
		return -1;
	}
	ldns_dname2canonical(*name);
	for (size_t i = 0; rrs != NULL && i < ldns_rr_list_rr_count(rrs); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(rrs, i);

		if ((uint16_t)ldns_rr_get_type(rr) != set->type ||
		    ldns_dname_compare(ldns_rr_owner(rr), *name) != 0) {
			log_warnx("zone store: %s: records of another name or type", set->owner);
			return -1;
		}
	}
	return 0;
}

int
zonestore_replace_batch(struct zonestore *zs, const struct zonestore_rrset *sets, size_t n)
{
	struct zone_change ch[ZONESTORE_BATCH_MAX];
	ldns_rdf *names[ZONESTORE_BATCH_MAX] = {NULL};
	const struct zone *z = NULL;
	struct zone *next = NULL;
	char err[512];
	bool local = true; /* LOCAL RRsets only: the serial stays */
	struct floor *fl;
	size_t i;

	if (n == 0 || n > ZONESTORE_BATCH_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		local &= (sets[i].flags & ZONE_RRSET_LOCAL) != 0;
		if (batch_check(&sets[i], &names[i]) == -1)
			goto fail;
		if (i > 0 && zone_holding(zs, names[i]) != z) {
			log_warnx("zone store: %s and %s lie in different zones", sets[0].owner,
			    sets[i].owner);
			goto fail;
		}
		if ((z = zone_holding(zs, names[i])) == NULL) {
			log_warnx("zone store: no zone holds %s", sets[i].owner);
			goto fail;
		}
		ch[i] = (struct zone_change){names[i], sets[i].type, sets[i].rrs, sets[i].flags};
	}
	if ((fl = floor_of(zs, zone_name(z))) != NULL) {
		/* Not served yet: continue from the last run, as set_zone does. */
		if ((next = zone_apply(z, ch, n, fl->file, err, sizeof(err))) == NULL ||
		    (next = with_serial(next, next_serial(next, fl->serial, fl->digest))) == NULL)
			goto fail_logged;
	} else if ((next = zone_apply(z, ch, n, zone_serial(z) + !local, err, sizeof(err))) ==
	        NULL ||
	    (zone_digest(next) == zone_digest(z) &&
	        (next = with_serial(next, zone_serial(z))) == NULL)) {
		/* A change that leaves the transferred content as it was (LOCAL
		 * RRsets only, or the same data again) keeps the serial. */
		goto fail_logged;
	}
	for (i = 0; i < n; i++)
		overlay_set(zs, names[i], sets[i].type,
		    sets[i].rrs != NULL ? ldns_rr_list_clone(sets[i].rrs) : NULL, sets[i].flags);
	return publish(zs, next);
fail_logged:
	if (err[0] != '\0')
		log_warnx("%s", err);
fail:
	for (i = 0; i < n; i++)
		ldns_rdf_deep_free(names[i]);
	return -1;
}

int
zonestore_replace_rrs(
    struct zonestore *zs, const char *owner, uint16_t type, const ldns_rr_list *rrs, unsigned flags)
{
	struct zonestore_rrset set = {owner, type, rrs, flags};

	return zonestore_replace_batch(zs, &set, 1);
}

static ldns_rr *
addr_rr(const char *owner, uint16_t type, uint32_t ttl, const struct addr *a)
{
	const struct sockaddr *sa = addr_sa(a);
	ldns_rr *rr = ldns_rr_new_frm_type((ldns_rr_type)type);
	ldns_rdf *name = NULL, *data;

	if (rr == NULL || ldns_str2rdf_dname(&name, owner) != LDNS_STATUS_OK) {
		ldns_rr_free(rr);
		return NULL;
	}
	ldns_dname2canonical(name);
	if (type == LDNS_RR_TYPE_A)
		data = ldns_rdf_new_frm_data(
		    LDNS_RDF_TYPE_A, 4, &((const struct sockaddr_in *)sa)->sin_addr);
	else
		data = ldns_rdf_new_frm_data(
		    LDNS_RDF_TYPE_AAAA, 16, &((const struct sockaddr_in6 *)sa)->sin6_addr);
	ldns_rr_set_owner(rr, name);
	ldns_rr_set_ttl(rr, ttl);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	if (data == NULL || !ldns_rr_push_rdf(rr, data)) {
		ldns_rdf_deep_free(data);
		ldns_rr_free(rr);
		return NULL;
	}
	return rr;
}

ldns_rr_list *
zonestore_addr_rrs(
    const char *owner, uint16_t type, uint32_t ttl, const struct addr *addrs, size_t n)
{
	int family = type == LDNS_RR_TYPE_A ? AF_INET : AF_INET6;
	ldns_rr_list *l;

	if (type != LDNS_RR_TYPE_A && type != LDNS_RR_TYPE_AAAA) {
		log_warnx("zone store: %s: only A and AAAA take addresses", owner);
		return NULL;
	}
	l = ldns_rr_list_new();
	for (size_t i = 0; l != NULL && i < n; i++) {
		ldns_rr *rr =
		    addr_family(&addrs[i]) == family ? addr_rr(owner, type, ttl, &addrs[i]) : NULL;

		if (rr == NULL || !ldns_rr_list_push_rr(l, rr)) {
			log_warnx("zone store: %s: address %zu of the wrong family or no memory",
			    owner, i);
			ldns_rr_free(rr);
			ldns_rr_list_deep_free(l);
			return NULL;
		}
	}
	return l;
}

int
zonestore_replace_addrs(struct zonestore *zs, const char *owner, uint16_t type, uint32_t ttl,
    const struct addr *addrs, size_t n, unsigned flags)
{
	ldns_rr_list *l = zonestore_addr_rrs(owner, type, ttl, addrs, n);
	int rc;

	if (l == NULL)
		return -1;
	rc = zonestore_replace_rrs(zs, owner, type, l, flags);
	ldns_rr_list_deep_free(l);
	return rc;
}
