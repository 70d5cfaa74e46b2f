/* report.h - metric figures as JSON, shared by metricd's /status and metricview --json. */
#ifndef MXB_METRICS_REPORT_H
#define MXB_METRICS_REPORT_H

#include <stdint.h>

struct json_object;
struct metric_values;

/* A thousandths value as a JSON number: at most three decimals (jsonout_fixed). */
struct json_object *metric_json_milli(int64_t v);

/* Add rating, availability, workload and penalty (the formula's terms) to o. */
void metric_json_terms(struct json_object *o, const struct metric_values *v);

#endif
