/* sysstat.c - /proc/stat and /proc/meminfo parsing for the rating inputs. */
#include "metrics/sysstat.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fields of a /proc/stat cpu line, in order (proc(5)). */
enum {
	CPU_USER,
	CPU_NICE,
	CPU_SYSTEM,
	CPU_IDLE,
	CPU_IOWAIT,
	CPU_IRQ,
	CPU_SOFTIRQ,
	CPU_STEAL,
	CPU_NFIELDS
};

/* Parse up to CPU_NFIELDS decimal counters after "cpu"; at least 4 needed. */
static int
parse_cpu_fields(const char *p, uint64_t v[CPU_NFIELDS])
{
	size_t n = 0;

	memset(v, 0, CPU_NFIELDS * sizeof(v[0]));
	while (n < CPU_NFIELDS) {
		char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!isdigit((unsigned char)*p))
			break;
		errno = 0;
		v[n] = strtoull(p, &end, 10);
		if (errno != 0)
			return -1;
		p = end;
		n++;
	}
	return n >= 4 ? 0 : -1;
}

int
sysstat_parse_stat(const char *text, struct cpu_times *times, unsigned *ncpu)
{
	uint64_t v[CPU_NFIELDS];
	bool found = false;
	unsigned cpus = 0;

	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *next = strchr(line, '\n');

		if (strncmp(line, "cpu ", 4) == 0) {
			if (parse_cpu_fields(line + 3, v) == -1)
				return -1;
			found = true;
		} else if (strncmp(line, "cpu", 3) == 0 && isdigit((unsigned char)line[3])) {
			cpus++;
		}
		line = next != NULL ? next + 1 : NULL;
	}
	if (!found)
		return -1;
	if (times != NULL) {
		times->busy = v[CPU_USER] + v[CPU_NICE] + v[CPU_SYSTEM] + v[CPU_IRQ] +
		    v[CPU_SOFTIRQ] + v[CPU_STEAL];
		times->total = times->busy + v[CPU_IDLE] + v[CPU_IOWAIT];
	}
	if (ncpu != NULL)
		*ncpu = cpus;
	return 0;
}

/* The kB value of "Name:   123 kB" at the start of a line; -1 if absent. */
static int
meminfo_field(const char *text, const char *name, uint64_t *kb)
{
	size_t nlen = strlen(name);

	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *next = strchr(line, '\n');

		if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
			char *end;

			errno = 0;
			*kb = strtoull(line + nlen + 1, &end, 10);
			if (errno != 0 || end == line + nlen + 1)
				return -1;
			return 0;
		}
		line = next != NULL ? next + 1 : NULL;
	}
	return -1;
}

int
sysstat_parse_meminfo(const char *text, uint64_t *avail_bytes)
{
	uint64_t avail, mfree, buffers, cached;

	if (meminfo_field(text, "MemAvailable", &avail) == 0) {
		*avail_bytes = avail * 1024;
		return 0;
	}
	if (meminfo_field(text, "MemFree", &mfree) == -1)
		return -1;
	if (meminfo_field(text, "Buffers", &buffers) == -1)
		buffers = 0;
	if (meminfo_field(text, "Cached", &cached) == -1)
		cached = 0;
	*avail_bytes = (mfree + buffers + cached) * 1024;
	return 0;
}

double
sysstat_busy_percent(const struct cpu_times *prev, const struct cpu_times *cur)
{
	uint64_t dt, db;

	if (cur->total <= prev->total || cur->busy < prev->busy)
		return 0.0;
	dt = cur->total - prev->total;
	db = cur->busy - prev->busy;
	if (db > dt)
		return 100.0;
	return 100.0 * (double)db / (double)dt;
}
