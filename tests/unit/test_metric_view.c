/*
 * test_metric_view.c - metricview's logic (targets, key files, ranking, the
 * plugin state) and metricd's helpers (relay /status parsing, drain file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/jsonout.h"
#include "metrics/drain.h"
#include "metrics/relay.h"
#include "metrics/view.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/test_metric_view.XXXXXX";

static void
test_targets(void)
{
	struct view_host h;
	char err[256], buf[ADDR_STRLEN];

	ok(view_parse_target("127.0.0.11", 4331, &h, err, sizeof(err)) == 0, "bare address");
	is_str(addr_str(&h.addr, buf, sizeof(buf)), "127.0.0.11:4331", "default port");
	ok(view_parse_target("127.0.0.12:9999", 4331, &h, err, sizeof(err)) == 0, "HOST:PORT");
	is_str(addr_str(&h.addr, buf, sizeof(buf)), "127.0.0.12:9999", "port taken");
	is_str(h.name, "127.0.0.12:9999", "name kept as given");
	ok(view_parse_target("[::1]:4000", 4331, &h, err, sizeof(err)) == 0, "[V6]:PORT");
	is_str(addr_str(&h.addr, buf, sizeof(buf)), "[::1]:4000", "v6 with port");
	ok(view_parse_target("::1", 4331, &h, err, sizeof(err)) == 0, "bare v6");
	is_int(addr_port(&h.addr), 4331, "bare v6 gets the default port");
	ok(view_parse_target("localhost:5", 4331, &h, err, sizeof(err)) == 0, "a name resolves");
	ok(view_parse_target("127.0.0.1:0", 4331, &h, err, sizeof(err)) == -1, "port 0 refused");
	ok(view_parse_target("127.0.0.1:99999", 4331, &h, err, sizeof(err)) == -1,
	    "port out of range refused");
	ok(view_parse_target("[::1", 4331, &h, err, sizeof(err)) == -1, "unclosed bracket");
	ok(view_parse_target("no-such-host.invalid", 4331, &h, err, sizeof(err)) == -1,
	    "unresolvable name refused (%s)", err);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static void
test_key_files(void)
{
	struct view_key k;
	char path[256], err[512];

	snprintf(path, sizeof(path), "%s/key.conf", dir);
	write_file(path, "key \"lb-key\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };\n");
	ok(view_load_key(path, NULL, &k, err, sizeof(err)) == 0, "key statement file (%s)", err);
	ok(k.key.secret_len == 6 && memcmp(k.key.secret, "secret", 6) == 0, "secret decoded");
	is_str(k.key.name, "lb-key", "key name");

	snprintf(path, sizeof(path), "%s/key.b64", dir);
	write_file(path, "  c2VjcmV0MQ==\n");
	ok(view_load_key(path, NULL, &k, err, sizeof(err)) == 0, "base64 secret file (%s)", err);
	ok(k.key.secret_len == 7 && memcmp(k.key.secret, "secret1", 7) == 0, "padding handled");

	snprintf(path, sizeof(path), "%s/two.conf", dir);
	write_file(path,
	    "key \"a\" { algorithm hmac-sha256; secret \"YQ==\"; };\n"
	    "key \"b\" { algorithm hmac-sha256; secret \"Yg==\"; };\n"
	    "metrics { key \"b\"; };\n");
	ok(view_load_key(path, NULL, &k, err, sizeof(err)) == 0 && k.key.secret[0] == 'b',
	    "several keys: the metrics key");
	write_file(path,
	    "key \"a\" { algorithm hmac-sha256; secret \"YQ==\"; };\n"
	    "key \"b\" { algorithm hmac-sha256; secret \"Yg==\"; };\n");
	ok(view_load_key(path, NULL, &k, err, sizeof(err)) == -1,
	    "several keys, none chosen: error");
	ok(strstr(err, "--key") != NULL, "the error names --key: %s", err);
	ok(view_load_key(path, "b", &k, err, sizeof(err)) == 0 && k.key.secret[0] == 'b',
	    "--key b picks b (%s)", err);
	is_str(k.key.name, "b", "named b");
	ok(view_load_key(path, "a", &k, err, sizeof(err)) == 0 && k.key.secret[0] == 'a',
	    "--key a picks a");
	ok(view_load_key(path, "c", &k, err, sizeof(err)) == -1 && strstr(err, "\"c\"") != NULL,
	    "--key c: no such key (%s)", err);
	write_file(path, "key \"a\" { algorithm hmac-md5; secret \"YQ==\"; };\n");
	ok(view_load_key(path, NULL, &k, err, sizeof(err)) == -1, "md5 key refused (%s)", err);
	snprintf(path, sizeof(path), "%s/key.b64", dir);
	ok(view_load_key(path, "lb-key", &k, err, sizeof(err)) == -1,
	    "--key with a bare secret: error (%s)", err);
	snprintf(path, sizeof(path), "%s/two.conf", dir);
	write_file(path, "not base64 at all!\n");
	ok(view_load_key(path, NULL, &k, err, sizeof(err)) == -1, "garbage refused");
	snprintf(path, sizeof(path), "%s/missing", dir);
	ok(view_load_key(path, NULL, &k, err, sizeof(err)) == -1, "missing file refused");
}

static void
set_host(struct view_host *h, const char *name, bool answered, int32_t rating, uint16_t flags)
{
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->ok = answered;
	h->done = true;
	h->v.rating = rating;
	h->v.flags = flags;
	if (!answered)
		snprintf(h->error, sizeof(h->error), "no answer (timeout)");
}

static void
test_rank_and_check(void)
{
	static const struct view_check c20 = {20, 10, 120}, c40 = {40, 10, 120};
	static const struct view_check c4035 = {40, 35, 120};
	struct view_host h[4];
	char line[1024];
	FILE *mem;

	set_host(&h[0], "b", true, 30000, 0);
	set_host(&h[1], "dead", false, 0, 0);
	set_host(&h[2], "a", true, 70000, 0);
	set_host(&h[3], "c", true, 30000, 0);
	view_sort(h, 4);
	ok(strcmp(h[0].name, "a") == 0 && strcmp(h[1].name, "b") == 0 &&
	        strcmp(h[2].name, "c") == 0 && strcmp(h[3].name, "dead") == 0,
	    "ranked by rating, ties by name, silent hosts last");

	is_int(view_check_state(h, 3, &c20), VIEW_OK, "all above warn: OK");
	is_int(view_check_state(h, 3, &c40), VIEW_WARNING, "30 below warn 40: WARNING");
	is_int(view_check_state(h, 3, &c4035), VIEW_CRITICAL, "30 below crit 35: CRITICAL");
	is_int(view_check_state(h, 4, &c20), VIEW_UNKNOWN, "a silent host: UNKNOWN");
	set_host(&h[1], "drained", true, 0, METRIC_F_DRAINING);
	is_int(view_check_state(h, 3, &c20), VIEW_OK, "a drained host raises no alarm");

	mem = fmemopen(line, sizeof(line), "w");
	view_print_check(mem, h, 2, &c40);
	fclose(mem);
	line[strcspn(line, "\n")] = '\0';
	is_str(line,
	    "METRIC OK - a rating 70.0, drained rating 0.0 (draining: reason unknown) "
	    "| 'a'=70;40:;10:;0;120 'drained'=0;40:;10:;0;120",
	    "status line with low-is-bad perfdata");
	strcpy(h[1].drain.reason, "kernel update");
	strcpy(h[1].drain.by, "alice");
	strcpy(h[1].drain.at, "2024-05-01T10:00:00Z");
	h[1].drain_known = true;
	set_host(&h[2], "it's", false, 0, 0);
	h[0].v.rating = 37500;
	mem = fmemopen(line, sizeof(line), "w");
	view_print_check(mem, h, 3, &c40);
	fclose(mem);
	line[strcspn(line, "\n")] = '\0';
	is_str(line,
	    "METRIC UNKNOWN - a rating 37.5, drained rating 0.0 (draining: kernel update (by "
	    "alice at 2024-05-01T10:00:00Z)), it's no answer (timeout) | 'a'=37.5;40:;10:;0;120 "
	    "'drained'=0;40:;10:;0;120 'it''s'=U;40:;10:;0;120",
	    "who drained, why and when; a silent host is U, its quote doubled");
	mem = fmemopen(line, sizeof(line), "w");
	view_print_unknown(mem, "key file %s: %s", "/x|y", "Permission denied");
	fclose(mem);
	is_str(line, "METRIC UNKNOWN - key file /x/y: Permission denied\n",
	    "an error is one UNKNOWN line, no '|' before perfdata");
}

static void
test_thresholds(void)
{
	double d = -1;

	ok(view_parse_threshold("40", &d) == 0 && d == 40, "N");
	ok(view_parse_threshold("40:", &d) == 0 && d == 40, "N: (range form)");
	ok(view_parse_threshold("0.5", &d) == 0 && d == 0.5, "a fraction");
	ok(view_parse_threshold("0", &d) == 0 && d == 0, "zero");
	ok(view_parse_threshold("-1", &d) == -1, "negative refused");
	ok(view_parse_threshold("10:20", &d) == -1, "N:M refused (only low is bad)");
	ok(view_parse_threshold("~:5", &d) == -1, "~:N refused");
	ok(view_parse_threshold("@5", &d) == -1, "@N refused");
	ok(view_parse_threshold("abc", &d) == -1, "not a number");
	ok(view_parse_threshold("", &d) == -1, "empty");
	ok(view_parse_threshold("nan", &d) == -1 && view_parse_threshold("inf", &d) == -1,
	    "nan and inf refused");
}

static void
test_key_mismatch_and_unavailable(void)
{
	static const struct view_check c20 = {20, 10, 120};
	struct view_host h[3];
	char line[512];
	FILE *mem;

	set_host(&h[0], "a", true, 70000, 0);
	set_host(&h[1], "b", true, 0, METRIC_F_RELAY | METRIC_F_RELAY_FULL);
	set_host(&h[2], "wrongkey", false, 0, 0);
	h[2].key_mismatch = true;
	snprintf(h[2].error, sizeof(h[2].error), "key mismatch (bad signature)");
	is_int(view_check_state(h, 1, &c20), VIEW_OK, "alone: OK");
	is_int(
	    view_check_state(h, 2, &c20), VIEW_CRITICAL, "an unavailable host rates 0: CRITICAL");
	h[1].v.rating = 50000;
	is_int(view_check_state(h, 2, &c20), VIEW_OK, "(rating 50: OK)");
	is_int(
	    view_check_state(h, 3, &c20), VIEW_CRITICAL, "a key mismatch: CRITICAL, not UNKNOWN");
	is_int(view_exit_status(h, 2), 0, "exit 0 when all answered");
	is_int(view_exit_status(h, 3), 2, "exit 2 for a key mismatch");
	mem = fmemopen(line, sizeof(line), "w");
	view_print_check(mem, h, 3, &c20);
	fclose(mem);
	ok(strstr(line, "b rating 50.0 (unavailable: relay at max-sessions)") != NULL,
	    "status line names the reason: %s", line);
	ok(strstr(line, "wrongkey key mismatch (bad signature)") != NULL, "and the key mismatch");
	mem = fmemopen(line, sizeof(line), "w");
	view_print_table(mem, h, 2);
	fclose(mem);
	ok(strstr(line, "relay,relay-full  unavailable: relay at max-sessions") != NULL,
	    "table: flags and the reason");
	set_host(&h[2], "silent", false, 0, 0);
	is_int(view_exit_status(h, 3), 3, "a silent host: exit 3");
}

static void
test_relay_parse(void)
{
	struct relay_result r;
	static const char good[] = "{\"program\":\"smtp-relayd\",\"sessions\":{\"open\":7,"
	                           "\"max\":100},\"queue\":{}}";

	ok(relay_status_parse(good, strlen(good), &r) == 0 && r.ok, "relay status parses");
	ok(r.open == 7 && r.max == 100, "open 7, max 100");
	ok(relay_status_parse("{\"sessions\":{\"open\":1}}", 23, &r) == -1 && !r.ok,
	    "max missing: refused (%s)", r.error);
	ok(relay_status_parse("{\"sessions\":{\"open\":-1,\"max\":5}}", 32, &r) == -1,
	    "negative count refused");
	ok(relay_status_parse("{\"sessions\":{\"open\":\"3\",\"max\":5}}", 33, &r) == -1,
	    "string count refused");
	ok(relay_status_parse("{\"sessions\":[1,2]}", 18, &r) == -1, "sessions not an object");
	ok(relay_status_parse("{\"sess", 6, &r) == -1, "truncated JSON refused (%s)", r.error);
	ok(relay_status_parse("", 0, &r) == -1, "empty body refused");
	ok(relay_status_parse("[1]", 3, &r) == -1, "not an object refused (%s)", r.error);
}

struct accepting_case {
	const char *json;
	int rc;
	uint16_t unavailable;
	const char *reason, *detail;
};

/* The relay's "accepting" object: every variant smtp-relayd sends, and garbage. */
static void
test_relay_accepting(void)
{
	static const struct accepting_case cases[] = {
	    {"{\"sessions\":{\"open\":7,\"max\":100}}", 0, 0, "", ""},
	    {"{\"sessions\":{\"open\":7,\"max\":100},\"accepting\":{\"ok\":true}}", 0, 0, "", ""},
	    {"{\"sessions\":{\"open\":100,\"max\":100},\"accepting\":{\"ok\":false,"
	     "\"reason\":\"sessions-full\",\"detail\":\"100 of 100\"}}",
	        0, METRIC_F_RELAY_FULL, "sessions-full", "100 of 100"},
	    {"{\"sessions\":{\"open\":1,\"max\":100},\"accepting\":{\"ok\":false,"
	     "\"reason\":\"queue-unwritable\",\"detail\":\"open: Permission denied\"}}",
	        0, METRIC_F_QUEUE_FAIL, "queue-unwritable", "open: Permission denied"},
	    {"{\"sessions\":{\"open\":1,\"max\":100},\"accepting\":{\"ok\":false,"
	     "\"reason\":\"disk-reserve\"}}",
	        0, METRIC_F_DISK_RESERVE, "disk-reserve", ""},
	    {"{\"sessions\":{\"open\":1,\"max\":100},\"accepting\":{\"ok\":false,"
	     "\"reason\":\"paused\",\"detail\":\"hold\\u0001\\nby ops\"}}",
	        0, METRIC_F_PAUSED, "paused", "hold??by ops"},
	    {"{\"sessions\":{\"open\":1,\"max\":100},\"accepting\":{\"ok\":false,"
	     "\"reason\":\"moon-phase\"}}",
	        0, METRIC_F_PAUSED, "moon-phase", ""},
	    {"{\"sessions\":{\"open\":1,\"max\":100},\"accepting\":{\"ok\":false}}", 0,
	        METRIC_F_PAUSED, "", ""},
	    /* An older relay at its limit says nothing, but is full all the same. */
	    {"{\"sessions\":{\"open\":50,\"max\":50}}", 0, METRIC_F_RELAY_FULL, "", ""},
	    {"{\"sessions\":{\"open\":60,\"max\":50},\"accepting\":{\"ok\":true}}", 0,
	        METRIC_F_RELAY_FULL, "", ""},
	    {"{\"sessions\":{\"open\":5,\"max\":0}}", 0, 0, "", ""},
	    {"{\"sessions\":{\"open\":1,\"max\":9},\"accepting\":true}", -1, 0, "", ""},
	    {"{\"sessions\":{\"open\":1,\"max\":9},\"accepting\":{}}", -1, 0, "", ""},
	    {"{\"sessions\":{\"open\":1,\"max\":9},\"accepting\":{\"ok\":\"no\"}}", -1, 0, "", ""},
	    {"{\"sessions\":{\"open\":1,\"max\":9},\"accepting\":{\"ok\":false,\"reason\":7}}", -1,
	        0, "", ""},
	};
	struct relay_result r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct accepting_case *c = &cases[i];
		int rc = relay_status_parse(c->json, strlen(c->json), &r);

		ok(rc == c->rc && r.ok == (c->rc == 0), "case %zu: %s (%s)", i,
		    c->rc == 0 ? "parses" : "refused", rc == 0 ? "ok" : r.error);
		is_int(r.unavailable, c->unavailable, "case %zu: unavailable 0x%04x", i,
		    (unsigned)c->unavailable);
		is_str(r.reason, c->reason, "case %zu: reason", i);
		is_str(r.detail, c->detail, "case %zu: detail", i);
	}
}

static void
test_drain_file(void)
{
	char path[256], text[512];
	struct drain_info d;
	struct stat st;
	struct json_object *o;

	snprintf(path, sizeof(path), "%s/metricd.drain", dir);
	ok(!drain_check(path, &d), "not drained at first");
	umask(077); /* as in metricd: the daemon's user must still read the file */
	setenv("SUDO_USER", "alice", 1);
	ok(drain_set(path, "kernel update\n\x01") == 0, "drain");
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "mode 0644 under umask 077 (%o)",
	    (unsigned)(st.st_mode & 0777));
	ok(drain_check(path, &d), "drained");
	is_str(d.reason, "kernel update", "reason kept, one line");
	is_str(d.by, "alice", "by: SUDO_USER");
	ok(strlen(d.at) == 20 && d.at[10] == 'T' && d.at[19] == 'Z', "at: RFC 3339 UTC (%s)", d.at);
	unsetenv("SUDO_USER");
	ok(drain_set(path, NULL) == 0 && drain_check(path, &d), "drain again, no reason");
	is_str(d.reason, "drained", "default reason");
	ok(d.by[0] != '\0' && strcmp(d.by, "alice") != 0, "by: the login name (%s)", d.by);

	write_file(path, "old style (by root at 2020-01-01T00:00:00Z)\n\x01more\n");
	ok(drain_check(path, &d), "a one-line file drains");
	is_str(d.reason, "old style (by root at 2020-01-01T00:00:00Z)", "its line is the reason");
	ok(d.by[0] != '\0' && strlen(d.at) == 20, "by/at from the file's owner and mtime");
	write_file(path, "");
	ok(drain_check(path, &d) && d.reason[0] == '\0', "touch drains, no reason");
	drain_describe(&d, text, sizeof(text));
	ok(strncmp(text, "drained (by ", 12) == 0, "described: %s", text);

	strcpy(d.reason, "x/y");
	strcpy(d.by, "bob");
	d.at[0] = '\0';
	drain_describe(&d, text, sizeof(text));
	is_str(text, "x/y (by bob)", "unknown parts left out");
	o = drain_to_json(&d);
	is_str(jsonout_text(o, false), "{\"reason\":\"x/y\",\"by\":\"bob\",\"at\":null}",
	    "JSON: no \\/ escapes, unknown is null");
	memset(&d, 'z', sizeof(d));
	ok(drain_from_json(o, &d) == 0, "JSON read back");
	ok(strcmp(d.reason, "x/y") == 0 && strcmp(d.by, "bob") == 0 && d.at[0] == '\0',
	    "the same fields");
	json_object_put(o);
	ok(drain_from_json(NULL, &d) == -1, "null is not drain details");

	ok(drain_clear(path) == 0 && !drain_check(path, NULL), "undrained");
	ok(drain_clear(path) == 0, "undrain twice is fine");
	ok(drain_set("/nonexistent/dir/x", NULL) == -1, "unwritable directory: error");
}

int
main(void)
{
	char cmd[300];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_targets();
	test_key_files();
	test_rank_and_check();
	test_thresholds();
	test_relay_parse();
	test_relay_accepting();
	test_key_mismatch_and_unavailable();
	test_drain_file();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}
