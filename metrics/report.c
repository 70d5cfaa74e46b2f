/* report.c - metric figures as JSON. */
#include "metrics/report.h"

#include <stdio.h>

#include <json-c/json.h>

#include "metrics/proto.h"

struct json_object *
metric_json_milli(int64_t v)
{
	char text[32];

	/* Printed as computed, without binary noise (67.88, not 67.879999...). */
	snprintf(text, sizeof(text), "%.3f", (double)v / 1000.0);
	return json_object_new_double_s((double)v / 1000.0, text);
}

void
metric_json_terms(struct json_object *o, const struct metric_values *v)
{
	json_object_object_add(o, "rating", metric_json_milli(v->rating));
	json_object_object_add(o, "availability", metric_json_milli(v->availability));
	json_object_object_add(o, "workload", metric_json_milli(v->workload));
	json_object_object_add(o, "penalty", metric_json_milli(v->penalty));
}
