/*
 * test_deliver.c - the queue runner's scheduler (due order, concurrency,
 * flush, done, forget), destination slow start (scheduler_window) and the
 * delivery configuration statements.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/config.h"
#include "smtp-relay/scheduler.h"
#include "tests/unit/tap.h"

struct runs {
	char ids[16][17];
	bool forced[16];
	int n;
};

static void
run_cb(const char *id, bool forced, void *arg)
{
	struct runs *r = arg;

	if (r->n < 16) {
		snprintf(r->ids[r->n], sizeof(r->ids[0]), "%s", id);
		r->forced[r->n++] = forced;
	}
}

static void
test_scheduler(void)
{
	struct event_base *base = event_base_new();
	struct runs r = {.n = 0};
	struct scheduler *s = scheduler_new(base, 2, run_cb, &r);
	time_t now = time(NULL);

	ok(scheduler_add(s, "000000000000000c", now + 3600) == 0, "add a later one");
	ok(scheduler_add(s, "000000000000000b", 0) == 0, "add due");
	ok(scheduler_add(s, "000000000000000a", 0) == 0, "add due");
	is_int(r.n, 2, "two run at once (max 2)");
	is_str(r.ids[0], "000000000000000b", "first come first run");
	is_str(r.ids[1], "000000000000000a", "then the next");
	is_int((long long)scheduler_active(s), 2, "two active");
	is_int((long long)scheduler_count(s), 3, "three known");
	ok(scheduler_add(s, "000000000000000a", 0) == 0, "adding a running one is harmless");
	is_int(r.n, 2, "nothing more runs");

	scheduler_done(s, "000000000000000b", 0);
	is_int((long long)scheduler_count(s), 2, "done with 0: forgotten");
	is_int(r.n, 2, "the later one is not due");
	ok(scheduler_flush(s, "000000000000000a") == 0, "flush a running message");
	scheduler_done(s, "000000000000000a", now + 7200);
	is_int(r.n, 3, "flushed while running: runs again at once");
	is_str(r.ids[2], "000000000000000a", "the flushed one");
	ok(r.forced[2], "forced");
	ok(scheduler_flush(s, "ffffffffffffffff") == -1, "flush of an unknown ID");
	ok(scheduler_flush(s, NULL) == 0, "flush all");
	is_int(r.n, 4, "the waiting one runs now");
	is_str(r.ids[3], "000000000000000c", "c");
	ok(r.forced[3], "forced by the flush");
	scheduler_done(s, "000000000000000c", now + 60);
	scheduler_forget(s, "000000000000000c");
	is_int((long long)scheduler_count(s), 1, "forgotten");
	scheduler_done(s, "000000000000000a", 0);
	is_int((long long)scheduler_count(s), 0, "empty");
	is_int((long long)scheduler_active(s), 0, "nothing active");

	/* Many messages: they come out in ID order when due at once. */
	r.n = 0;
	scheduler_set_max(s, 1);
	for (int i = 9; i >= 0; i--) {
		char id[17];

		snprintf(id, sizeof(id), "00000000000000%02d", i);
		scheduler_add(s, id, i == 9 ? 0 : now - i);
	}
	is_str(r.ids[0], "0000000000000009", "the first added ran at once");
	for (int i = 1; i < 10 && r.n == i; i++)
		scheduler_done(s, r.ids[i - 1], 0);
	is_int(r.n, 10, "all ran one at a time");
	is_str(r.ids[1], "0000000000000008", "then the oldest due time first");
	scheduler_done(s, r.ids[9], 0);
	scheduler_free(s);
	scheduler_free(NULL);
	event_base_free(base);
}

static struct config *
load(const char *text)
{
	char path[] = "/tmp/test_deliver.XXXXXX", err[512];
	int fd = mkstemp(path);
	struct config *cfg;

	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return NULL;
	close(fd);
	cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL)
		tap_diag("%s", err);
	unlink(path);
	return cfg;
}

static void
test_config(void)
{
	struct config *cfg = load("relay { hold-delivery yes; retry-interval 10m; "
	                          "max-retry-interval 2h; queue-lifetime 1d; remote-port 2525; "
	                          "max-deliveries 7; max-deliveries-per-destination 3; };\n");

	ok(cfg != NULL, "delivery statements parse");
	if (cfg != NULL) {
		ok(cfg->relay.hold_delivery, "hold-delivery yes");
		is_int(cfg->relay.retry_interval, 600, "retry-interval");
		is_int(cfg->relay.max_retry_interval, 7200, "max-retry-interval");
		is_int(cfg->relay.queue_lifetime, 86400, "queue-lifetime");
		is_int(cfg->relay.remote_port, 2525, "remote-port");
		is_int(cfg->relay.max_deliveries, 7, "max-deliveries");
		is_int(cfg->relay.max_per_destination, 3, "max-deliveries-per-destination");
	}
	config_free(cfg);
	cfg = load("relay { };\n");
	ok(cfg != NULL && !cfg->relay.hold_delivery, "hold-delivery defaults to no");
	ok(cfg != NULL && cfg->relay.connection_reuse_time == 2 &&
	        cfg->relay.connection_reuse_limit == 100 &&
	        cfg->relay.initial_destination_concurrency == 2 &&
	        cfg->relay.destination_rate_delay == 0,
	    "reuse 2 s / 100 messages, slow start from 2, no rate delay by default");
	config_free(cfg);
	ok(load("relay { hold-delivery maybe; };\n") == NULL, "hold-delivery takes yes/no");
}

static void
test_window(void)
{
	struct scheduler_window w;

	scheduler_window_init(&w, 2, 4, 0);
	is_int(w.limit, 2, "slow start: initial 2");
	ok(scheduler_window_has_room(&w, 1) && !scheduler_window_has_room(&w, 2), "room for 2");
	for (int i = 0; i < 5; i++)
		scheduler_window_grow(&w, 0);
	is_int(w.limit, 4, "grows to the cap, not past it");
	scheduler_window_shrink(&w);
	is_int(w.limit, 3, "a failure: one less");
	for (int i = 0; i < 5; i++)
		scheduler_window_shrink(&w);
	is_int(w.limit, 1, "never below 1");
	ok(scheduler_window_has_room(&w, 0) && !scheduler_window_has_room(&w, 1), "room for 1");
	scheduler_window_grow(&w, 0);
	is_int(w.limit, 2, "grows again");
	scheduler_window_init(&w, 9, 3, 0);
	is_int(w.limit, 3, "initial above the cap: the cap");
	scheduler_window_init(&w, 0, 3, 0);
	is_int(w.limit, 1, "initial 0: 1");
	scheduler_window_init(&w, 2, 4, 5);
	is_int(w.limit, 1, "a rate delay: 1");
	scheduler_window_grow(&w, 5);
	is_int(w.limit, 1, "a rate delay: stays 1");
}

int
main(void)
{
	test_scheduler();
	test_window();
	test_config();
	return tap_done();
}
