/* routefmt.c - text, JSON and Postfix renderings of a route. */
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "common/addr.h"
#include "resolver/resolver.h"
#include "resolver/routefmt.h"

int
routefmt_text(const struct route_result *res, FILE *out)
{
	char a[ADDR_STRLEN];

	fprintf(out, "%s\n", res->domain != NULL ? res->domain : "?");
	for (size_t i = 0; i < res->nsteps; i++)
		fprintf(out, "  ; %s\n", res->steps[i]);
	switch (res->status) {
	case ROUTE_LOCAL: fprintf(out, "  local delivery\n"); break;
	case ROUTE_TEMPFAIL:
	case ROUTE_PERMFAIL:
		fprintf(out, "  %s failure: %u %s %s\n", route_status_str(res->status),
		    res->smtp_code, res->dsn, res->reason != NULL ? res->reason : "");
		break;
	case ROUTE_OK:
		for (size_t i = 0; i < res->nhops; i++) {
			const struct route_hop *h = &res->hops[i];

			fprintf(out, "  %5u %s %s", h->preference, h->host,
			    route_source_str(h->source));
			for (size_t j = 0; j < h->naddrs; j++)
				fprintf(out, " %s", addr_host_str(&h->addrs[j], a, sizeof(a)));
			fputc('\n', out);
		}
		break;
	}
	return ferror(out) ? -1 : 0;
}

static struct json_object *
hop_json(const struct route_hop *h)
{
	struct json_object *o = json_object_new_object(), *v = json_object_new_array();
	char a[ADDR_STRLEN];

	if (o == NULL || v == NULL) {
		json_object_put(o);
		json_object_put(v);
		return NULL;
	}
	json_object_object_add(o, "preference", json_object_new_int((int)h->preference));
	json_object_object_add(o, "host", json_object_new_string(h->host));
	json_object_object_add(o, "source", json_object_new_string(route_source_str(h->source)));
	for (size_t j = 0; j < h->naddrs; j++)
		json_object_array_add(
		    v, json_object_new_string(addr_host_str(&h->addrs[j], a, sizeof(a))));
	json_object_object_add(o, "addresses", v);
	return o;
}

struct json_object *
routefmt_json(const struct route_result *res)
{
	struct json_object *o = json_object_new_object();
	struct json_object *hops = json_object_new_array();
	struct json_object *steps = json_object_new_array();

	if (o == NULL || hops == NULL || steps == NULL) {
		json_object_put(o);
		json_object_put(hops);
		json_object_put(steps);
		return NULL;
	}
	json_object_object_add(
	    o, "domain", json_object_new_string(res->domain != NULL ? res->domain : ""));
	json_object_object_add(o, "status", json_object_new_string(route_status_str(res->status)));
	for (size_t i = 0; i < res->nhops; i++)
		json_object_array_add(hops, hop_json(&res->hops[i]));
	json_object_object_add(o, "hops", hops);
	if (res->status == ROUTE_TEMPFAIL || res->status == ROUTE_PERMFAIL) {
		json_object_object_add(o, "dsn", json_object_new_string(res->dsn));
		json_object_object_add(o, "smtp_code", json_object_new_int((int)res->smtp_code));
		json_object_object_add(
		    o, "reason", json_object_new_string(res->reason != NULL ? res->reason : ""));
	}
	for (size_t i = 0; i < res->nsteps; i++)
		json_object_array_add(steps, json_object_new_string(res->steps[i]));
	json_object_object_add(o, "steps", steps);
	return o;
}

/* Append "[x]:port" items for one hop; names for DNS hops, else addresses. */
static size_t
postfix_hop(
    const struct route_hop *h, uint16_t port, char *out, size_t outlen, size_t off, bool *first)
{
	char a[ADDR_STRLEN];
	bool by_name = h->source == ROUTE_SRC_DNS_MX || h->source == ROUTE_SRC_DNS_A ||
	    h->source == ROUTE_SRC_LOCAL_MX || h->source == ROUTE_SRC_GATEWAY;

	if (h->host[0] == '[') /* a literal: use the address */
		by_name = false;
	for (size_t j = 0; j < (by_name ? 1 : h->naddrs) && off < outlen; j++) {
		const char *what = by_name ? h->host : addr_host_str(&h->addrs[j], a, sizeof(a));

		off += (size_t)snprintf(
		    out + off, outlen - off, "%s[%s]:%u", *first ? "" : ", ", what, port);
		*first = false;
	}
	return off;
}

size_t
routefmt_postfix(const struct route_result *res, uint16_t port, char *out, size_t outlen)
{
	size_t off;
	bool first = true;

	switch (res->status) {
	case ROUTE_LOCAL: off = (size_t)snprintf(out, outlen, "OK local:"); break;
	case ROUTE_TEMPFAIL:
		off = (size_t)snprintf(
		    out, outlen, "TEMP %s %s", res->dsn, res->reason != NULL ? res->reason : "");
		break;
	case ROUTE_PERMFAIL:
		off = (size_t)snprintf(out, outlen, "OK error:%s %s", res->dsn,
		    res->reason != NULL ? res->reason : "");
		break;
	default:
		off = (size_t)snprintf(out, outlen, "OK smtp:");
		for (size_t i = 0; i < res->nhops && off < outlen; i++)
			off = postfix_hop(&res->hops[i], port, out, outlen, off, &first);
		break;
	}
	return off < outlen ? off : outlen - 1;
}
