/* report.c - metric figures as JSON. */
#include "metrics/report.h"

#include <json-c/json.h>

#include "common/jsonout.h"
#include "metrics/proto.h"

struct json_object *
metric_json_milli(int64_t v)
{
	/* Printed as computed, without binary noise (67.88, not 67.879999...). */
	return jsonout_fixed((double)v / 1000.0, JSONOUT_DECIMALS);
}

void
metric_json_terms(struct json_object *o, const struct metric_values *v)
{
	json_object_object_add(o, "rating", metric_json_milli(v->rating));
	json_object_object_add(o, "availability", metric_json_milli(v->availability));
	json_object_object_add(o, "workload", metric_json_milli(v->workload));
	json_object_object_add(o, "penalty", metric_json_milli(v->penalty));
}
