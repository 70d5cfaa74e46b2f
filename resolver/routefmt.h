/*
 * routefmt.h - a route_result written out: mxroute's text and JSON forms,
 * and the Postfix transport(5) next hop the socketmap server answers.
 */
#ifndef MXB_ROUTEFMT_H
#define MXB_ROUTEFMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct json_object;
struct route_result;

/* Human form: the domain, then one line per hop (or the failure), with the
 * explain steps first when present.  Returns 0 or -1 (write error). */
int routefmt_text(const struct route_result *res, FILE *out);

/* {"domain", "status", "hops": [{"preference", "host", "source",
 * "addresses"}], "dsn", "smtp_code", "reason", "steps"}; NULL on OOM.
 * The caller owns the object (json_object_put). */
struct json_object *routefmt_json(const struct route_result *res);

/*
 * The socketmap reply for a transport_maps lookup: "OK smtp:[mx1]:25,
 * [mx2]:25" (hops from DNS by name, hosts/literal hops by address),
 * "OK local:", "OK error:5.1.10 text" for a permanent failure, or
 * "TEMP 4.4.3 text".  Written into out (truncated to fit, always
 * terminated); returns the length.
 */
size_t routefmt_postfix(const struct route_result *res, uint16_t port, char *out, size_t outlen);

#endif
