/* tap.c - a tiny TAP producer. */
#include "tests/unit/tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

static bool __attribute__((format(printf, 4, 0)))
tap_report(bool cond, const char *file, int line, const char *fmt, va_list ap)
{
	tap_count++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

bool
tap_ok(bool cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	bool r;

	va_start(ap, fmt);
	r = tap_report(cond, file, line, fmt, ap);
	va_end(ap);
	return r;
}

bool
tap_is_int(long long got, long long want, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	bool r;

	va_start(ap, fmt);
	r = tap_report(got == want, file, line, fmt, ap);
	va_end(ap);
	if (!r)
		printf("#        got: %lld\n#   expected: %lld\n", got, want);
	return r;
}

bool
tap_is_str(const char *got, const char *want, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	bool same = (got == NULL && want == NULL) ||
	    (got != NULL && want != NULL && strcmp(got, want) == 0);
	bool r;

	va_start(ap, fmt);
	r = tap_report(same, file, line, fmt, ap);
	va_end(ap);
	if (!r)
		printf("#        got: %s%s%s\n#   expected: %s%s%s\n", got ? "'" : "",
		    got ? got : "NULL", got ? "'" : "", want ? "'" : "", want ? want : "NULL",
		    want ? "'" : "");
	return r;
}

void
tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		printf("# %d of %d checks failed\n", tap_failed, tap_count);
	return tap_failed ? 1 : 0;
}
