/* dnsmsg.c - DNS query building and reply validation with ldns. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/dnsmsg.h"

bool
dns_status_is_temporary(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
	case DNS_NODATA:
	case DNS_NXDOMAIN:
	case DNS_CNAME: return false;
	default: return true;
	}
}

const char *
dns_status_str(enum dns_status s)
{
	switch (s) {
	case DNS_OK: return "answer";
	case DNS_NODATA: return "no records of that type (NODATA)";
	case DNS_NXDOMAIN: return "name does not exist (NXDOMAIN)";
	case DNS_CNAME: return "alias without data";
	case DNS_SERVFAIL: return "server failure (SERVFAIL)";
	case DNS_REFUSED: return "query refused";
	case DNS_TIMEOUT: return "timed out";
	case DNS_NETERR: return "network error";
	case DNS_CONNREFUSED: return "connection refused";
	case DNS_MALFORMED: return "malformed reply";
	case DNS_TRUNCATED: return "truncated reply";
	}
	return "unknown";
}

void
dns_answer_clear(struct dns_answer *a)
{
	if (a->rrs != NULL)
		ldns_rr_list_deep_free(a->rrs);
	a->rrs = NULL;
}

int
dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
	*dst = *src;
	dst->rrs = NULL;
	if (src->rrs == NULL)
		return 0;
	dst->rrs = ldns_rr_list_clone(src->rrs);
	return dst->rrs == NULL ? -1 : 0;
}

int
dnsmsg_name_normalize(const char *in, char *out, size_t outlen)
{
	size_t len = strlen(in), label = 0, i;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || len >= outlen)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

/* Presentation form of a dname rdf, lower case, no trailing dot. */
static void
rdf_to_name(const ldns_rdf *rdf, char *out, size_t outlen)
{
	char *s = ldns_rdf2str(rdf);
	size_t len;

	out[0] = '\0';
	if (s == NULL)
		return;
	len = strlen(s);
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len < outlen) {
		for (size_t i = 0; i < len; i++)
			out[i] = (char)tolower((unsigned char)s[i]);
		out[len] = '\0';
	}
	free(s);
}

int
dnsmsg_build_query(const char *name, uint16_t type, uint16_t id, uint16_t edns_size, bool dnssec,
    uint8_t *buf, size_t buflen)
{
	char fqdn[DNSMSG_NAME_MAX + 1];
	ldns_rdf *owner = NULL;
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	int ret = -1;

	snprintf(fqdn, sizeof(fqdn), "%s.", name);
	if (ldns_str2rdf_dname(&owner, fqdn) != LDNS_STATUS_OK)
		goto out;
	pkt = ldns_pkt_query_new(owner, type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (pkt == NULL) {
		ldns_rdf_deep_free(owner);
		goto out;
	}
	ldns_pkt_set_id(pkt, id);
	if (edns_size > 0)
		ldns_pkt_set_edns_udp_size(pkt, edns_size);
	if (dnssec) {
		if (edns_size == 0)
			ldns_pkt_set_edns_udp_size(pkt, DNSMSG_EDNS_SIZE);
		ldns_pkt_set_edns_do(pkt, true);
		ldns_pkt_set_ad(pkt, true);
	}
	if (ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK || len > buflen)
		goto out;
	memcpy(buf, wire, len);
	ret = (int)len;
out:
	free(wire);
	ldns_pkt_free(pkt);
	return ret;
}

/* RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM). */
static bool
negative_ttl(const ldns_pkt *pkt, uint32_t *ttl)
{
	ldns_rr_list *auth = ldns_pkt_authority(pkt);

	for (size_t i = 0; auth != NULL && i < ldns_rr_list_rr_count(auth); i++) {
		ldns_rr *rr = ldns_rr_list_rr(auth, i);
		ldns_rdf *min;
		uint32_t t;

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7)
			continue;
		min = ldns_rr_rdf(rr, 6);
		t = ldns_rr_ttl(rr);
		if (ldns_rdf2native_int32(min) < t)
			t = ldns_rdf2native_int32(min);
		*ttl = t;
		return true;
	}
	return false;
}

static bool
question_matches(const ldns_pkt *pkt, const char *name, uint16_t type)
{
	ldns_rr_list *q = ldns_pkt_question(pkt);
	char qname[DNSMSG_NAME_MAX];
	ldns_rr *rr;

	if (q == NULL || ldns_rr_list_rr_count(q) != 1)
		return false;
	rr = ldns_rr_list_rr(q, 0);
	if (ldns_rr_get_type(rr) != type || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
		return false;
	rdf_to_name(ldns_rr_owner(rr), qname, sizeof(qname));
	return strcasecmp(qname, name) == 0;
}

/*
 * Walk the answer section from `out->canon`: follow CNAMEs owned by the
 * current name (bounded), then collect the records of the asked type.
 */
static int
collect_answer(const ldns_pkt *pkt, struct dns_answer *out)
{
	ldns_rr_list *ans = ldns_pkt_answer(pkt);
	size_t n = ans != NULL ? ldns_rr_list_rr_count(ans) : 0;
	uint32_t ttl = DNSMSG_TTL_MAX;
	char owner[DNSMSG_NAME_MAX];
	int hops = 0;
	bool moved = true;

	while (moved && hops <= DNSMSG_CNAME_MAX) {
		moved = false;
		for (size_t i = 0; i < n; i++) {
			ldns_rr *rr = ldns_rr_list_rr(ans, i);

			if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME ||
			    out->qtype == LDNS_RR_TYPE_CNAME)
				continue;
			rdf_to_name(ldns_rr_owner(rr), owner, sizeof(owner));
			if (strcmp(owner, out->canon) != 0 || ldns_rr_rd_count(rr) < 1)
				continue;
			rdf_to_name(ldns_rr_rdf(rr, 0), out->canon, sizeof(out->canon));
			out->via_cname = true;
			if (ldns_rr_ttl(rr) < ttl)
				ttl = ldns_rr_ttl(rr);
			moved = true;
			hops++;
			break;
		}
	}
	if (hops > DNSMSG_CNAME_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(ans, i);
		ldns_rr *copy;

		if (ldns_rr_get_type(rr) != out->qtype || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
			continue;
		rdf_to_name(ldns_rr_owner(rr), owner, sizeof(owner));
		if (strcmp(owner, out->canon) != 0)
			continue;
		if (out->rrs == NULL && (out->rrs = ldns_rr_list_new()) == NULL)
			return -1;
		if ((copy = ldns_rr_clone(rr)) == NULL || !ldns_rr_list_push_rr(out->rrs, copy)) {
			ldns_rr_free(copy);
			return -1;
		}
		if (ldns_rr_ttl(rr) < ttl)
			ttl = ldns_rr_ttl(rr);
	}
	out->ttl = ttl;
	return 0;
}

/* Classify a NOERROR reply once its answer section is collected. */
static void
classify_noerror(const ldns_pkt *pkt, struct dns_answer *out)
{
	uint32_t neg = 0;

	if (out->rrs != NULL && ldns_rr_list_rr_count(out->rrs) > 0) {
		out->status = DNS_OK;
		return;
	}
	out->cacheable = negative_ttl(pkt, &neg);
	if (out->cacheable && neg < out->ttl)
		out->ttl = neg;
	/*
	 * A chain that stops at a name with no data: a recursive server (RA)
	 * has already chased it, so that is NODATA; an authoritative server
	 * may simply not hold the target, so the caller asks again for it.
	 */
	if (out->via_cname && !ldns_pkt_ra(pkt)) {
		out->status = DNS_CNAME;
		out->cacheable = true;
		return;
	}
	out->status = DNS_NODATA;
}

int
dnsmsg_parse_reply(const uint8_t *wire, size_t len, uint16_t id, const char *name, uint16_t type,
    struct dns_answer *out)
{
	ldns_pkt *pkt = NULL;

	memset(out, 0, sizeof(*out));
	if (ldns_wire2pkt(&pkt, wire, len) != LDNS_STATUS_OK)
		return -1;
	if (!ldns_pkt_qr(pkt) || ldns_pkt_id(pkt) != id ||
	    ldns_pkt_get_opcode(pkt) != LDNS_PACKET_QUERY || !question_matches(pkt, name, type)) {
		ldns_pkt_free(pkt);
		return -1;
	}
	out->qtype = type;
	out->rcode = ldns_pkt_get_rcode(pkt);
	snprintf(out->qname, sizeof(out->qname), "%s", name);
	snprintf(out->canon, sizeof(out->canon), "%s", name);
	out->ttl = 0;
	if (ldns_pkt_tc(pkt)) {
		out->status = DNS_TRUNCATED;
	} else if (out->rcode == LDNS_RCODE_NOERROR || out->rcode == LDNS_RCODE_NXDOMAIN) {
		if (collect_answer(pkt, out) == -1) {
			dns_answer_clear(out);
			out->status = DNS_MALFORMED;
		} else if (out->rcode == LDNS_RCODE_NXDOMAIN) {
			out->status = DNS_NXDOMAIN;
			dns_answer_clear(out);
			out->cacheable = negative_ttl(pkt, &out->ttl);
		} else {
			classify_noerror(pkt, out);
		}
	} else if (out->rcode == LDNS_RCODE_SERVFAIL) {
		out->status = DNS_SERVFAIL;
	} else {
		out->status = DNS_REFUSED;
	}
	if (out->status == DNS_OK)
		out->cacheable = true;
	out->secure = ldns_pkt_ad(pkt) &&
	    (out->status == DNS_OK || out->status == DNS_NODATA || out->status == DNS_NXDOMAIN);
	if (out->ttl > DNSMSG_TTL_MAX)
		out->ttl = DNSMSG_TTL_MAX;
	ldns_pkt_free(pkt);
	return 0;
}

int
dnsmsg_tlsa(const ldns_rr *rr, uint8_t *usage, uint8_t *selector, uint8_t *mtype,
    const uint8_t **data, size_t *len)
{
	const ldns_rdf *f[4];

	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TLSA || ldns_rr_rd_count(rr) != 4)
		return -1;
	for (size_t i = 0; i < 4; i++)
		if ((f[i] = ldns_rr_rdf(rr, i)) == NULL)
			return -1;
	if (ldns_rdf_size(f[0]) != 1 || ldns_rdf_size(f[1]) != 1 || ldns_rdf_size(f[2]) != 1 ||
	    ldns_rdf_size(f[3]) == 0)
		return -1;
	*usage = ldns_rdf_data(f[0])[0];
	*selector = ldns_rdf_data(f[1])[0];
	*mtype = ldns_rdf_data(f[2])[0];
	*data = ldns_rdf_data(f[3]);
	*len = ldns_rdf_size(f[3]);
	return 0;
}
