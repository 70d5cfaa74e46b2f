/*
 * test_metric_rating.c - the rating formula (session room scales the
 * workload), load smoothing and /proc parsing.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/fileio.h"
#include "metrics/rating.h"
#include "metrics/sysstat.h"
#include "tests/unit/tap.h"

static bool
near(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

static void
test_formula(void)
{
	struct rating_input in = {.capacity = 100,
	    .sessions = 25,
	    .cpu_rating = 50,
	    .load = 25.0,
	    .free_pages = 1000000,
	    .goal_pages = 0};
	struct rating_result r;

	rating_compute(&in, &r);
	ok(near(r.room, 0.75), "room (100-25)/100 = 0.75 (%g)", r.room);
	ok(near(r.availability, 15.0), "availability 20*0.75 = 15 (%g)", r.availability);
	ok(near(r.workload, 30.0), "workload 0.75*50*100/125 = 30 (%g)", r.workload);
	ok(near(r.penalty, 0.0), "plenty of memory: no penalty (%g)", r.penalty);
	ok(near(r.rating, 45.0), "rating 15 + 30 = 45, 0.75 of the idle 60 (%g)", r.rating);

	in.sessions = 0;
	in.load = 0;
	in.cpu_rating = 100;
	rating_compute(&in, &r);
	ok(near(r.rating, 120.0), "idle host, cpu-rating 100: 120 (%g)", r.rating);

	in.load = 100;
	rating_compute(&in, &r);
	ok(near(r.workload, 50.0), "fully busy halves the workload (%g)", r.workload);
}

static void
test_penalty(void)
{
	struct rating_input in = {
	    .capacity = 10, .sessions = 0, .cpu_rating = 10, .load = 0, .goal_pages = 2048};
	struct rating_result r;

	in.free_pages = 0;
	rating_compute(&in, &r);
	ok(near(r.penalty, 40.0), "no free memory: full penalty 40 (%g)", r.penalty);
	ok(near(r.rating, 0.0), "rating clamps at 0 (20 + 10 - 40) (%g)", r.rating);

	in.free_pages = 2048; /* half of goal + 2048 */
	rating_compute(&in, &r);
	ok(near(r.penalty, 20.0), "half the room: penalty 20 (%g)", r.penalty);
	ok(near(r.rating, 10.0), "rating 20 + 10 - 20 = 10 (%g)", r.rating);

	in.free_pages = 4096;
	rating_compute(&in, &r);
	ok(near(r.penalty, 0.0), "free = goal + 2048: no penalty (%g)", r.penalty);
	in.free_pages = 1000000;
	rating_compute(&in, &r);
	ok(near(r.penalty, 0.0), "negative penalty is not applied (%g)", r.penalty);
	ok(near(r.rating, 30.0), "and does not raise the rating (%g)", r.rating);

	in.goal_pages = 0;
	in.free_pages = 1024;
	rating_compute(&in, &r);
	ok(near(r.penalty, 20.0), "goal 0 still keeps 2048 pages of slack (%g)", r.penalty);
}

static void
test_ranges(void)
{
	struct rating_input in = {
	    .capacity = 0, .sessions = 5, .cpu_rating = 40, .load = 0, .free_pages = 1 << 30};
	struct rating_result r;

	rating_compute(&in, &r);
	ok(near(r.availability, 0.0), "capacity 0: availability 0, no division (%g)",
	    r.availability);
	ok(near(r.rating, 40.0), "capacity 0: rating is the workload (%g)", r.rating);

	in.capacity = 10;
	in.sessions = 50;
	rating_compute(&in, &r);
	ok(near(r.availability, 0.0), "sessions above capacity: availability 0 (%g)",
	    r.availability);
	ok(near(r.workload, 0.0) && near(r.rating, 0.0), "and workload and rating 0 (%g, %g)",
	    r.workload, r.rating);

	in.sessions = 0;
	in.cpu_rating = 0;
	in.load = -5;
	rating_compute(&in, &r);
	ok(near(r.workload, 1.0), "cpu-rating clamps to 1, load to 0 (%g)", r.workload);
	in.cpu_rating = 500;
	in.load = 250;
	rating_compute(&in, &r);
	ok(near(r.workload, 50.0), "cpu-rating clamps to 100, load to 100 (%g)", r.workload);

	in.draining = true;
	rating_compute(&in, &r);
	ok(near(r.rating, 0.0), "draining: rating 0 (%g)", r.rating);
	ok(near(r.availability, 20.0), "draining: the terms are still reported (%g)",
	    r.availability);
	in.draining = false;
	in.unavailable = true;
	rating_compute(&in, &r);
	ok(near(r.rating, 0.0) && near(r.workload, 50.0),
	    "unavailable: rating 0, terms reported (%g, %g)", r.rating, r.workload);
}

static double
rate(unsigned sessions, unsigned capacity, unsigned cpu, double load)
{
	struct rating_input in = {.capacity = capacity,
	    .sessions = sessions,
	    .cpu_rating = cpu,
	    .load = load,
	    .free_pages = 1 << 30};
	struct rating_result r;

	rating_compute(&in, &r);
	return r.rating;
}

/* The reason for the rework: session load must move a member. */
static void
test_sessions_move_the_rating(void)
{
	double idle = rate(0, 100, 60, 20), busy = rate(90, 100, 60, 20);
	double light = rate(10, 100, 60, 20);
	unsigned off = 0;

	ok(near(idle, 70.0), "idle: 20 + 60*100/120 = 70 (%g)", idle);
	ok(near(light, 0.9 * idle), "10%% sessions: 0.9 of idle (%g)", light);
	ok(near(busy, 0.1 * idle), "90%% sessions: 0.1 of idle (%g)", busy);
	ok(busy * 5 < light, "90%% sessions rates far below 10%% on equal CPU (%g vs %g)", busy,
	    light);
	for (unsigned s = 0; s <= 100; s += 10)
		if (!near(rate(s, 100, 60, 20), (1.0 - s / 100.0) * idle)) {
			tap_diag("%u%% sessions: %g", s, rate(s, 100, 60, 20));
			off++;
		}
	is_int(off, 0, "rating = (1 - sessions/capacity) x idle rating, 0..100%% in steps of 10");
	ok(near(rate(100, 100, 100, 0), 0.0), "at max-sessions: 0 whatever the CPU");
	ok(rate(250, 256, 100, 0) < rate(0, 256, 25, 80),
	    "the biggest idle CPU at 98%% sessions ranks below the smallest busy one with room "
	    "(%g < %g)",
	    rate(250, 256, 100, 0), rate(0, 256, 25, 80));
	ok(rate(45, 50, 100, 0) < rate(5, 50, 100, 0) && rate(5, 50, 100, 0) < rate(0, 50, 100, 0),
	    "ordered by free sessions on equal CPU");
}

static void
test_load_and_cpu(void)
{
	double load = 0;

	load = rating_load_step(load, 100);
	ok(near(load, 2.1), "one busy second: 0.021 * 100 (%g)", load);
	load = rating_load_step(50, 50);
	ok(near(load, 50.0), "steady state stays (%g)", load);
	load = 0;
	for (int i = 0; i < 300; i++)
		load = rating_load_step(load, 100);
	ok(load > 99.0 && load <= 100.0, "converges to 100 after 300 s (%g)", load);
	ok(near(rating_load_step(10, 500), 0.979 * 10 + 2.1), "busy sample clamped to 100");

	is_int(rating_cpu_derive(0), 25, "0 CPUs counted as 1");
	is_int(rating_cpu_derive(1), 25, "1 CPU: 25");
	is_int(rating_cpu_derive(2), 50, "2 CPUs: 50");
	is_int(rating_cpu_derive(4), 100, "4 CPUs: 100");
	is_int(rating_cpu_derive(64), 100, "64 CPUs: capped at 100");
}

static const char stat1[] = "cpu  100 10 50 1000 40 5 5 0 7 0\n"
                            "cpu0 50 5 25 500 20 3 2 0 0 0\n"
                            "cpu1 50 5 25 500 20 2 3 0 0 0\n"
                            "intr 12345 0 0\n"
                            "ctxt 999\n"
                            "btime 1700000000\n";
static const char stat2[] = "cpu  200 10 100 1100 40 5 5 0 7 0\n"
                            "cpu0 100 5 50 550 20 3 2 0 0 0\n"
                            "cpu1 100 5 50 550 20 2 3 0 0 0\n";

static void
test_proc_stat(void)
{
	struct cpu_times a, b;
	unsigned ncpu = 0;

	ok(sysstat_parse_stat(stat1, &a, &ncpu) == 0, "parse /proc/stat");
	is_int((long long)a.busy, 170, "busy = user+nice+system+irq+softirq+steal");
	is_int((long long)a.total, 1210, "total adds idle and iowait");
	is_int(ncpu, 2, "two cpuN lines");
	ok(sysstat_parse_stat(stat2, &b, NULL) == 0, "second sample");
	ok(near(sysstat_busy_percent(&a, &b), 60.0), "150 busy of 250 ticks: 60%% (%g)",
	    sysstat_busy_percent(&a, &b));
	ok(near(sysstat_busy_percent(&b, &a), 0.0), "counters going back: 0");
	ok(near(sysstat_busy_percent(&a, &a), 0.0), "empty interval: 0");
	ok(sysstat_parse_stat("cpu0 1 2 3 4\n", &a, NULL) == -1, "no aggregate line: error");
	ok(sysstat_parse_stat("cpu  1 2\n", &a, NULL) == -1, "too few fields: error");
	ok(sysstat_parse_stat("cpu  1 2 3 4", &a, &ncpu) == 0 && a.total == 10,
	    "old kernels: four fields, no newline");
	ok(sysstat_parse_stat("", &a, NULL) == -1, "empty text: error");
}

static void
test_meminfo(void)
{
	uint64_t avail = 0;

	ok(sysstat_parse_meminfo("MemTotal:       16303916 kB\nMemFree:          512000 kB\n"
	                         "MemAvailable:    8000000 kB\nBuffers:  100 kB\n",
	       &avail) == 0,
	    "parse meminfo");
	is_int((long long)avail, 8000000LL * 1024, "MemAvailable in bytes");
	ok(sysstat_parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\n"
	                         "Cached: 20 kB\nSwapCached: 999 kB\n",
	       &avail) == 0,
	    "old kernel meminfo");
	is_int((long long)avail, 35 * 1024, "MemFree + Buffers + Cached (not SwapCached)");
	ok(sysstat_parse_meminfo("MemTotal: 100 kB\n", &avail) == -1, "nothing usable: error");
	ok(sysstat_parse_meminfo("MemAvailable: lots\n", &avail) == -1, "garbage value: error");
}

static void
test_read_file(void)
{
	char small[4], buf[SYSSTAT_BUF_MAX];

	ok(file_read_buf("/proc/stat", buf, sizeof(buf)) > 0, "read the real /proc/stat");
	ok(sysstat_parse_stat(buf, NULL, NULL) == 0, "and parse it");
	ok(file_read_buf("/proc/meminfo", small, sizeof(small)) == -1,
	    "too small a buffer is an error");
	ok(file_read_buf("/nonexistent/x", buf, sizeof(buf)) == -1, "missing file");
}

int
main(void)
{
	test_formula();
	test_penalty();
	test_ranges();
	test_sessions_move_the_rating();
	test_load_and_cpu();
	test_proc_stat();
	test_meminfo();
	test_read_file();
	return tap_done();
}
