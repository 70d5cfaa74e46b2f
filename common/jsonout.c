/* jsonout.c - the house JSON style (jsonout.h). */
#include "common/jsonout.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

struct json_object *
jsonout_fixed(double v, int decimals)
{
	char buf[64];
	size_t len;

	if (!isfinite(v))
		return json_object_new_double(0);
	if (decimals < 0 || decimals > 9)
		decimals = JSONOUT_DECIMALS;
	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	if (strchr(buf, '.') != NULL) {
		len = strlen(buf);
		while (len > 0 && buf[len - 1] == '0')
			buf[--len] = '\0';
		if (len > 0 && buf[len - 1] == '.')
			buf[--len] = '\0';
	}
	if (strcmp(buf, "-0") == 0)
		snprintf(buf, sizeof(buf), "0");
	return json_object_new_double_s(v, buf);
}

const char *
jsonout_text(struct json_object *o, bool pretty)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
	    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);

	return json_object_to_json_string_ext(o, flags);
}

int
jsonout_print(FILE *f, struct json_object *o, bool pretty)
{
	return fprintf(f, "%s\n", jsonout_text(o, pretty)) < 0 ? -1 : 0;
}

void
jsonout_error(const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	jsonout_print(stdout, o, false);
	json_object_put(o);
}
