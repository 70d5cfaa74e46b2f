/*
 * jsonout.h - one JSON style for every `--json` output and every /status
 * document: a top-level object, numbers rounded where people read them
 * (3 decimals for ratings), no "\/" escapes, and errors as {"error": "..."}.
 */
#ifndef MXB_COMMON_JSONOUT_H
#define MXB_COMMON_JSONOUT_H

#include <stdbool.h>
#include <stdio.h>

struct json_object;

#define JSONOUT_DECIMALS 3 /* ratings, loads, seconds with milliseconds */

/*
 * A JSON number printed with at most `decimals` decimals (trailing zeros
 * dropped: 72.5, not 72.500000000001); NULL when out of memory.
 */
struct json_object *jsonout_fixed(double v, int decimals);

/*
 * The text of `o` in the house style (pretty: indented, else one line);
 * borrowed from `o`, valid until it changes or is freed.
 */
const char *jsonout_text(struct json_object *o, bool pretty);

/* Print `o` and a newline to `f` in the house style; 0 or -1. */
int jsonout_print(FILE *f, struct json_object *o, bool pretty);

/* Print {"error": "<formatted message>"} and a newline to stdout. */
void jsonout_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
