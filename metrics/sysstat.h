/*
 * sysstat.h - the Linux figures the rating needs, parsed from /proc text.
 *
 * The parsers are pure functions over a NUL-terminated string, so unit tests
 * feed them fixed /proc/stat and /proc/meminfo contents; the agent reads the
 * files with file_read_buf (common/fileio.h).
 */
#ifndef MXB_METRICS_SYSSTAT_H
#define MXB_METRICS_SYSSTAT_H

#include <stddef.h>
#include <stdint.h>

/* Enough for /proc/stat on a few hundred CPUs; longer files are an error. */
#define SYSSTAT_BUF_MAX 65536

/* Cumulative CPU time of the aggregate "cpu" line, in USER_HZ ticks. */
struct cpu_times {
	uint64_t busy;  /* user nice system irq softirq steal */
	uint64_t total; /* busy + idle + iowait */
};

/*
 * Parse /proc/stat text: the aggregate "cpu" line into `times` and the number
 * of "cpuN" lines into `ncpu` (either may be NULL).  Guest time is already
 * counted in user/nice and is not added twice.  Returns 0, or -1 when the
 * "cpu" line is missing or malformed.
 */
int sysstat_parse_stat(const char *text, struct cpu_times *times, unsigned *ncpu);

/*
 * Parse /proc/meminfo text into the bytes of memory available to new work:
 * MemAvailable, or (kernels before 3.14) MemFree + Buffers + Cached.
 * Returns 0, or -1 when neither is present.
 */
int sysstat_parse_meminfo(const char *text, uint64_t *avail_bytes);

/*
 * Percentage (0..100) of the interval between two samples the CPUs were
 * busy.  A counter that went backwards or an empty interval gives 0.
 */
double sysstat_busy_percent(const struct cpu_times *prev, const struct cpu_times *cur);

#endif
