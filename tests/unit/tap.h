/*
 * tap.h - a tiny TAP producer for the C unit tests.
 *
 * Each check prints "ok N - name" or "not ok N - name" with the place and the
 * values that differed; tap_done prints the plan and returns the exit status.
 */
#ifndef MXB_TAP_H
#define MXB_TAP_H

#include <stdbool.h>

bool tap_ok(bool cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool tap_is_int(long long got, long long want, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
bool tap_is_str(const char *got, const char *want, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Print "# text" (diagnostics). */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the plan; returns 0 when every check passed, else 1. */
int tap_done(void);

#define ok(cond, ...)          tap_ok((cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) tap_is_int((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)

#endif
