/* test_config.c - the configuration reader: every value type, every error path. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/config.h"
#include "common/log.h"
#include "tests/unit/tap.h"

static char err[1024];

static struct config *
load(const char *text)
{
	err[0] = '\0';
	return config_load_string("t.conf", text, err, sizeof(err));
}

/* The text must be refused with an error that starts with `prefix`. */
static void
refused(const char *text, const char *prefix, const char *what)
{
	struct config *cfg = load(text);

	ok(cfg == NULL, "refused: %s", what);
	ok(strncmp(err, prefix, strlen(prefix)) == 0, "error for %s: '%s' starts with '%s'", what,
	    err, prefix);
	config_free(cfg);
}

static void
test_reference_example(void)
{
	struct config *cfg = config_load("docs/examples/mxbroker.conf", err, sizeof(err));
	char buf[ADDR_STRLEN];
	const struct config_cluster *cl;

	ok(cfg != NULL, "reference example loads (%s)", err);
	if (cfg == NULL)
		return;
	is_str(cfg->options.directory, "/var/lib/mxbroker", "options directory");
	is_str(cfg->options.user, "mxbroker", "options user");
	is_int((long long)cfg->nkeys, 1, "one key");
	is_str(cfg->keys[0].name, "lb-key", "key name");
	is_int(cfg->keys[0].algorithm, CONFIG_HMAC_SHA256, "key algorithm");
	is_int((long long)cfg->keys[0].secret_len, 25, "key secret decoded");
	ok(memcmp(cfg->keys[0].secret, "merge me into a real key\n", 25) == 0, "secret bytes");
	ok(cfg->broker.present, "broker present");
	is_int((long long)cfg->broker.listen.n, 2, "broker listens twice");
	is_str(addr_str(&cfg->broker.listen.v[0], buf, sizeof(buf)), "127.0.0.1:5353", "listen 0");
	is_str(addr_str(&cfg->broker.listen.v[1], buf, sizeof(buf)), "[::1]:5353", "listen 1");
	is_int(cfg->broker.threads, 2, "threads");
	is_str(addr_str(&cfg->broker.status_listen, buf, sizeof(buf)), "127.0.0.1:8053",
	    "status-listen");
	is_int((long long)cfg->broker.nzones, 1, "one zone");
	is_str(cfg->broker.zones[0].name, "mail.example.test", "zone name");
	is_str(cfg->broker.zones[0].file, "/var/lib/mxbroker/mail.example.test.zone",
	    "zone file resolved against directory");
	is_int((long long)cfg->broker.zones[0].allow_transfer.n, 1, "allow-transfer");
	is_int(cfg->broker.zones[0].allow_transfer.v[0].net.prefix, 32, "host prefix /32");
	is_str(addr_str(&cfg->broker.zones[0].also_notify.v[0], buf, sizeof(buf)), "127.0.0.1:5399",
	    "also-notify port");
	is_str(cfg->broker.state_file, "/var/lib/mxbroker/brokerd.state", "default state file");
	ok(config_zone_find(cfg, "MAIL.example.test.") == &cfg->broker.zones[0], "zone find");
	is_int((long long)cfg->nclusters, 1, "one cluster");
	cl = &cfg->clusters[0];
	is_str(cl->name, "smtp.mail.example.test", "cluster name");
	is_int(cl->dns_ttl, 45, "dns-ttl");
	is_int(cl->max_members, 2, "max-members");
	is_int((long long)cl->nmembers, 3, "members");
	is_str(addr_host_str(&cl->members[2].addr, buf, sizeof(buf)), "127.0.0.13", "member 3");
	is_int(cl->members[0].weight, 1, "default weight");
	is_str(addr_host_str(&cl->failover4, buf, sizeof(buf)), "127.0.0.19", "failover");
	is_int(cl->failover6.len, 0, "no v6 failover");
	is_int(cl->metric_port, 4331, "metric-port");
	ok(cl->key == &cfg->keys[0], "cluster key resolved");
	is_int(cl->fall, 3, "default fall");
	ok(cfg->metrics.present, "metrics present");
	is_int(cfg->metrics.compute_interval, 10, "compute-interval");
	is_int(cfg->metrics.cpu_rating, 50, "cpu-rating");
	is_str(addr_str(&cfg->metrics.relay_status, buf, sizeof(buf)), "127.0.0.11:8025",
	    "relay-status");
	ok(cfg->metrics.key == &cfg->keys[0], "metrics key");
	is_str(addr_str(&cfg->resolver.nameservers.v[0], buf, sizeof(buf)), "127.0.0.1:5300",
	    "nameserver");
	is_str(cfg->resolver.local_mx, "/var/lib/mxbroker/local-mx.txt", "local-mx path");
	is_str(cfg->resolver.hosts, "/etc/hosts", "hosts absolute path kept");
	is_str(cfg->resolver.zones.v[0], "example.test", "zones");
	is_str(cfg->resolver.gateway, "relay.example.test", "gateway");
	is_int(cfg->resolver.timeout, 5, "timeout 5s");
	is_int(cfg->resolver.attempts, 2, "attempts");
	is_str(cfg->relay.hostname, "relay1.mail.example.test", "relay hostname");
	is_str(cfg->relay.local_aliases.v[0], "mail.example.test", "local-aliases");
	is_int((long long)cfg->relay.trusted_networks.n, 2, "trusted-networks");
	is_int(cfg->relay.trusted_networks.v[1].prefix, 8, "10.0.0.0/8");
	is_str(cfg->relay.queue_directory, "/var/lib/mxbroker/spool", "queue-directory");
	ok(cfg->relay.max_message_size == 10ULL << 20, "max-message-size 10M");
	is_int(cfg->relay.retry_interval, 1800, "retry-interval 30m");
	is_int(cfg->relay.max_retry_interval, 4 * 3600, "max-retry-interval 4h");
	is_int(cfg->relay.queue_lifetime, 5 * 86400, "queue-lifetime 5d");
	is_int(cfg->relay.remote_port, 25, "remote-port");
	is_str(cfg->relay.postmaster, "postmaster@mail.example.test", "postmaster");
	is_str(cfg->relay.control_socket, "/var/lib/mxbroker/smtp-relayd.sock", "control-socket");
	config_free(cfg);
}

static void
test_openvms_file(void)
{
	struct config *cfg = config_load("docs/examples/TCPIP$LBROKER.CONF", err, sizeof(err));

	ok(cfg != NULL, "TCPIP$LBROKER.CONF loads (%s)", err);
	if (cfg == NULL)
		return;
	is_int((long long)cfg->nclusters, 2, "two clusters");
	is_int((long long)cfg->clusters[0].nmembers, 6, "six members");
	is_int((long long)cfg->clusters[0].masters.n, 1, "masters");
	is_int(cfg->clusters[1].dns_ttl, 0, "dns-ttl 0 allowed");
	ok(!cfg->broker.present && !cfg->relay.present, "no other sections");
	is_int((long long)cfg->broker.listen.n, 2, "default broker listen");
	config_free(cfg);
}

static void
test_comments_and_strings(void)
{
	struct config *cfg = load(
	    "# hash\n// slashes\n/* block\n spanning */ options { directory \"/a b/\\\"q\\\"\"; "
	    "};\n"
	    "relay { hostname \"Relay.Example.TEST.\"; local-aliases { \"A.test\"; b.test; }; };");

	ok(cfg != NULL, "comments and strings (%s)", err);
	if (cfg == NULL)
		return;
	is_str(cfg->options.directory, "/a b/\"q\"", "escapes in strings");
	is_str(cfg->relay.hostname, "relay.example.test", "domain lower-cased, dot dropped");
	is_str(cfg->relay.local_aliases.v[1], "b.test", "bare word in a list");
	config_free(cfg);
}

static void
test_values(void)
{
	unsigned d;
	uint64_t z;
	struct config *cfg;
	char buf[64];

	ok(config_parse_duration("30", &d) == 0 && d == 30, "duration 30");
	ok(config_parse_duration("30s", &d) == 0 && d == 30, "duration 30s");
	ok(config_parse_duration("5m", &d) == 0 && d == 300, "duration 5m");
	ok(config_parse_duration("2h", &d) == 0 && d == 7200, "duration 2h");
	ok(config_parse_duration("5d", &d) == 0 && d == 432000, "duration 5d");
	ok(config_parse_duration("1w", &d) == 0 && d == 604800, "duration 1w");
	ok(config_parse_duration("5x", &d) == -1, "duration bad unit");
	ok(config_parse_duration("5mm", &d) == -1, "duration trailing junk");
	ok(config_parse_duration("-5", &d) == -1, "duration negative");
	ok(config_parse_duration("99999999999d", &d) == -1, "duration overflow");
	ok(config_parse_size("512", &z) == 0 && z == 512, "size 512");
	ok(config_parse_size("64K", &z) == 0 && z == 65536, "size 64K");
	ok(config_parse_size("10M", &z) == 0 && z == 10485760, "size 10M");
	ok(config_parse_size("1G", &z) == 0 && z == 1073741824, "size 1G");
	ok(config_parse_size("10MB", &z) == 0 && z == 10485760, "size 10MB");
	ok(config_parse_size("10Q", &z) == -1, "size bad unit");
	ok(config_parse_size("", &z) == -1, "size empty");

	cfg = load(
	    "options { syslog yes; log-level debug; };\n"
	    "cluster \"c.test\" { members { 192.0.2.1 weight 5 drain; 2001:db8::1 check 192.0.2.9; "
	    "};\n"
	    "  failover 192.0.2.99; failover 2001:db8::99; protocol lbcd; policy weighted;\n"
	    "  health-check smtp 25; hysteresis 5; fall 2; rise 3; masters 192.0.2.53 port 5300; "
	    "};\n"
	    "broker { zone \"Z.test\" { file \"z\"; allow-transfer { any; }; }; tcp-idle-timeout "
	    "1m; };\n"
	    "relay { trusted-networks { none; }; users { alice; \"bob\"; }; remote-port 2525;\n"
	    "  gateway-placeholder-not-here; };");
	ok(cfg == NULL, "unknown relay statement refused");
	is_str(err, "t.conf:7: unknown statement 'gateway-placeholder-not-here' in relay",
	    "unknown statement message");

	cfg = load(
	    "options { syslog yes; log-level debug; };\n"
	    "cluster \"c.test\" { members { 192.0.2.1 weight 5 drain; 2001:db8::1 check 192.0.2.9; "
	    "};\n"
	    "  failover 192.0.2.99; failover 2001:db8::99; protocol lbcd; policy weighted;\n"
	    "  health-check smtp 25; hysteresis 5; fall 2; rise 3; masters 192.0.2.53 port 5300; "
	    "};\n"
	    "broker { zone \"Z.test\" { file \"z\"; allow-transfer { any; }; }; tcp-idle-timeout "
	    "1m; };\n"
	    "relay { trusted-networks { none; }; users { alice; \"bob\"; }; remote-port 2525; };\n"
	    "resolver { gateway \"[192.0.2.1]\"; };");
	ok(cfg != NULL, "every extension (%s)", err);
	if (cfg == NULL)
		return;
	ok(cfg->options.syslog, "bool yes");
	is_int(cfg->options.log_level, LOG_LEVEL_DEBUG, "log-level enum");
	is_int(cfg->clusters[0].members[0].weight, 5, "weight");
	ok(cfg->clusters[0].members[0].drain, "drain");
	ok(!cfg->clusters[0].members[1].drain, "not drained");
	is_str(addr_host_str(&cfg->clusters[0].members[1].check, buf, sizeof(buf)), "192.0.2.9",
	    "check address");
	is_str(addr_host_str(&cfg->clusters[0].members[1].addr, buf, sizeof(buf)), "2001:db8::1",
	    "IPv6 member");
	is_str(addr_host_str(&cfg->clusters[0].failover6, buf, sizeof(buf)), "2001:db8::99",
	    "v6 failover");
	is_int(cfg->clusters[0].protocol, CONFIG_PROTO_LBCD, "protocol lbcd");
	is_int(cfg->clusters[0].metric_port, 4330, "lbcd default port");
	is_int(cfg->clusters[0].policy, CONFIG_POLICY_WEIGHTED, "policy");
	is_int(cfg->clusters[0].health, CONFIG_HEALTH_SMTP, "health-check smtp");
	is_int(cfg->clusters[0].health_port, 25, "health-check port");
	is_int(cfg->clusters[0].rise, 3, "rise");
	is_int(addr_port(&cfg->clusters[0].masters.v[0]), 5300, "inline address with port");
	is_int((long long)cfg->broker.zones[0].allow_transfer.n, 2, "any = v4 + v6");
	is_str(cfg->broker.zones[0].name, "z.test", "zone lower-cased");
	is_int(cfg->broker.tcp_idle_timeout, 60, "duration in block");
	is_int((long long)cfg->relay.trusted_networks.n, 0, "none = nobody");
	is_int((long long)cfg->relay.users.n, 2, "users");
	is_int(cfg->relay.remote_port, 2525, "remote-port");
	is_str(cfg->resolver.gateway, "[192.0.2.1]", "literal gateway");
	is_int((long long)cfg->relay.listen.n, 2, "relay default listen");
	is_int(addr_port(&cfg->relay.listen.v[0]), 25, "relay default port");
	config_free(cfg);
}

static void
test_errors(void)
{
	refused("options { directory \"/x\" }",
	    "t.conf:1: missing ';' after '\"/x\"'"[0] ? "t.conf:1:" : "", "missing ';' before '}'");
	refused("broker {\n threads 2\n status-listen 127.0.0.1;\n};",
	    "t.conf:2: missing ';' after '2'", "missing ';' at end of line");
	refused("broker { threads 2; }", "t.conf:1: missing ';' after '}' of 'broker'",
	    "missing ';' after block");
	refused("bogus 1;", "t.conf:1: unknown statement 'bogus' at top level", "unknown top");
	refused("cluster \"a.test\" {\n members { 10.0.0.1; };\n frobnicate 1;\n};",
	    "t.conf:3: unknown statement 'frobnicate' in cluster", "unknown in cluster");
	refused("cluster \"a.test\" {\n members {\n 10.0.0.1;\n 10.0.0.256;\n };\n};",
	    "t.conf:4: '10.0.0.256' is not an IPv4 or IPv6 address", "bad address");
	refused("metrics {\n compute-interval 0;\n};",
	    "t.conf:2: 'compute-interval' 0 is out of range (1..300)", "out of range low");
	refused("metrics { compute-interval 301; };",
	    "t.conf:1: 'compute-interval' 301 is out of range (1..300)", "out of range high");
	refused("metrics { cpu-rating abc; };", "t.conf:1: 'cpu-rating' wants a number",
	    "not a number");
	refused("metrics { cpu-rating -1; };", "t.conf:1: 'cpu-rating' wants a number",
	    "negative number");
	refused("metrics { cpu-rating 99999999999999999999999; };",
	    "t.conf:1: 'cpu-rating' wants a number", "number overflow");
	refused("relay { retry-interval 5x; };", "t.conf:1: 'retry-interval' wants a duration",
	    "bad duration");
	refused("relay { max-message-size 10Q; };", "t.conf:1: 'max-message-size' wants a size",
	    "bad size");
	refused("relay { max-message-size 10; };",
	    "t.conf:1: 'max-message-size' 10 is out of range", "size too small");
	refused("options { syslog maybe; };", "t.conf:1: 'syslog' wants yes or no", "bad bool");
	refused("options { log-level loud; };",
	    "t.conf:1: 'log-level' wants one of error, warning, info, debug, not 'loud'",
	    "bad enum");
	refused(
	    "broker { listen 127.0.0.1 port 0; };", "t.conf:1: 'port' 0 is out of range", "port 0");
	refused("broker { listen 127.0.0.1 port 70000; };",
	    "t.conf:1: 'port' 70000 is out of range", "port too big");
	refused("broker { listen 127.0.0.1 prot 53; };",
	    "t.conf:1: unexpected 'prot' after address 127.0.0.1", "port typo");
	refused("relay { trusted-networks { 10.0.0.1/8; }; };",
	    "t.conf:1: '10.0.0.1/8' is not an address or prefix", "host bits set");
	refused("relay { trusted-networks { 10.0.0.0/33; }; };",
	    "t.conf:1: '10.0.0.0/33' is not an address or prefix", "prefix too long");
	refused("relay { trusted-networks { 2001:db8::/129; }; };",
	    "t.conf:1: '2001:db8::/129' is not an address or prefix", "v6 prefix too long");
	refused("relay { local-aliases { \"bad domain\"; }; };",
	    "t.conf:1: 'bad domain' is not a domain name", "bad domain in list");
	refused("options { directory \"/x\nfoo\"; };", "t.conf:1: unterminated string",
	    "unterminated string");
	refused("/* never closed\noptions {};", "t.conf:1: unterminated /* comment",
	    "unterminated comment");
	refused("broker {\n threads 2;\n", "t.conf:1: '{' is never closed", "unclosed brace");
	refused("};", "t.conf:1: unexpected '}'", "stray brace");
	refused("broker { { }; };", "t.conf:1: unexpected '{'", "stray open brace");
	refused("broker { threads 1; };\nbroker { threads 2; };",
	    "t.conf:2: 'broker' given twice at top level (first on line 1)", "duplicate section");
	refused("broker { threads 1; threads 2; };",
	    "t.conf:1: 'threads' given twice in broker (first on line 1)", "duplicate statement");
	refused("broker { threads; };", "t.conf:1: 'threads' needs a value", "missing value");
	refused("broker { threads 1 2; };", "t.conf:1: unexpected '2' after the value of 'threads'",
	    "two values");
	refused("broker { threads { 1; }; };", "t.conf:1: 'threads' does not take a { } block",
	    "block for scalar");
	refused("broker;", "t.conf:1: 'broker' needs a { } block", "section without block");
	refused("cluster { members { 10.0.0.1; }; };",
	    "t.conf:1: 'cluster' needs a quoted name before its block", "cluster without name");
	refused("cluster \"a..b\" { members { 10.0.0.1; }; };",
	    "t.conf:1: cluster name 'a..b' is not a domain name", "bad cluster name");
	refused("cluster \"a.test\" { dns-ttl 5; };", "t.conf:1: cluster 'a.test' needs 'members'",
	    "cluster without members");
	refused("cluster \"a.test\" { members { 10.0.0.1; }; };\n"
	        "cluster \"A.test\" { members { 10.0.0.1; }; };",
	    "t.conf:2: cluster 'a.test' given twice (first on line 1)", "duplicate cluster");
	refused("cluster \"a.test\" { members { 10.0.0.1; 10.0.0.1 weight 2; }; };",
	    "t.conf:1: member 10.0.0.1 listed twice", "duplicate member");
	refused("cluster \"a.test\" { members { 10.0.0.1 weight 0; }; };",
	    "t.conf:1: 'weight' 0 is out of range (1..1000)", "weight range");
	refused("cluster \"a.test\" { members { 10.0.0.1 heavy; }; };",
	    "t.conf:1: unexpected 'heavy' in member 10.0.0.1", "member junk");
	refused("cluster \"a.test\" { members { 10.0.0.1\n 10.0.0.2; }; };",
	    "t.conf:1: missing ';' after '10.0.0.1'", "member missing ';'");
	refused(
	    "cluster \"a.test\" { members { 10.0.0.1; }; failover 10.0.0.9; failover 10.0.0.8; };",
	    "t.conf:1: 'failover' given twice for the same address family", "two v4 failovers");
	refused("cluster \"a.test\" { members { 10.0.0.1; }; failover 10.0.0.9 port 5; };",
	    "t.conf:1: 'failover' takes an address, no port", "failover with port");
	refused("cluster \"a.test\" { members { 10.0.0.1; }; health-check http 80; };",
	    "t.conf:1: 'health-check' wants one of none, tcp, smtp, not 'http'",
	    "bad health-check");
	refused("cluster \"a.test\" { members { 10.0.0.1; }; key \"nope\"; };",
	    "t.conf:1: key 'nope' is not defined", "undefined key");
	refused("key \"k\" { algorithm hmac-sha256; };", "t.conf:1: key 'k' needs 'secret'",
	    "key without secret");
	refused("key \"k\" { secret \"AAAA\"; };", "t.conf:1: key 'k' needs 'algorithm'",
	    "key without algorithm");
	refused("key \"k\" { algorithm hmac-sha256; secret \"not base64!\"; };",
	    "t.conf:1: key 'k': secret is not base64", "bad secret");
	refused("key \"k\" { algorithm rot13; secret \"AAAA\"; };",
	    "t.conf:1: 'algorithm' wants one of hmac-md5", "bad algorithm");
	refused("key \"k\" { algorithm hmac-sha1; secret \"AAAA\"; };\n"
	        "key \"K\" { algorithm hmac-sha1; secret \"AAAA\"; };",
	    "t.conf:2: key 'k' defined twice", "duplicate key");
	refused("broker { zone \"z.test\" { }; };", "t.conf:1: zone 'z.test' needs 'file'",
	    "zone without file");
	refused("broker { zone \"z.test\" { file \"a\"; }; zone \"Z.TEST.\" { file \"b\"; }; };",
	    "t.conf:1: zone 'z.test' given twice (first on line 1)", "duplicate zone");
	refused("resolver { gateway \"[192.0.2.300]\"; };",
	    "t.conf:1: 'gateway' wants a host name or an address literal", "bad literal gateway");
	refused("relay { retry-interval 2h;\n max-retry-interval 1h; };",
	    "t.conf:2: relay: max-retry-interval (3600s) is shorter than retry-interval (7200s)",
	    "retry intervals inverted");
	refused("options { directory \"\"; };", "t.conf:1: 'directory' wants a non-empty path",
	    "empty path");
	refused("\"quoted\" 1;", "t.conf:1: expected a statement name, found the quoted string",
	    "quoted statement name");
	refused("options { user \"a\"\x01; };", "t.conf:1: unexpected character 0x01",
	    "control character");
	refused("include \"/nonexistent/mxb.conf\";",
	    "t.conf:1: cannot read '/nonexistent/mxb.conf': No such file or directory",
	    "missing include");
}

static void
test_include_and_paths(void)
{
	char dir[] = "/tmp/mxbconfXXXXXX";
	char path[512], inc[512];
	FILE *f;
	struct config *cfg;

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	snprintf(inc, sizeof(inc), "%s/keys.conf", dir);
	f = fopen(inc, "w");
	fprintf(f, "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };\n");
	fclose(f);
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	f = fopen(path, "w");
	fprintf(f,
	    "include \"keys.conf\";\nmetrics { key \"k\"; drain-file \"d\"; };\n"
	    "broker { zone \"z.test\" { file \"z.zone\"; }; };\n");
	fclose(f);
	cfg = config_load(path, err, sizeof(err));
	ok(cfg != NULL, "include relative to the file (%s)", err);
	if (cfg != NULL) {
		ok(cfg->metrics.key != NULL && cfg->metrics.key->secret_len == 6, "included key");
		ok(strncmp(cfg->broker.zones[0].file, dir, strlen(dir)) == 0,
		    "paths resolve against the config folder without options directory: %s",
		    cfg->broker.zones[0].file);
		ok(strstr(cfg->metrics.drain_file, "/d") != NULL, "drain-file path");
	}
	config_free(cfg);
	f = fopen(path, "w");
	fprintf(f, "include \"main.conf\";\n");
	fclose(f);
	cfg = config_load(path, err, sizeof(err));
	ok(cfg == NULL && strstr(err, "includes nested too deeply") != NULL,
	    "include loop refused: %s", err);
	snprintf(inc, sizeof(inc), "%s/keys.conf", dir);
	unlink(inc);
	unlink(path);
	rmdir(dir);
	cfg = config_load("/nonexistent/mxbroker.conf", err, sizeof(err));
	ok(cfg == NULL &&
	        strcmp(err,
	            "/nonexistent/mxbroker.conf: cannot read: "
	            "No such file or directory") == 0,
	    "missing file: %s", err);
}

/* ---- repeated statements: every instance keeps its own values ---------- */

/* A growing text buffer for generated configurations; aborts on ENOMEM. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (b->p != NULL && b->len + (size_t)n < b->cap)
			break;
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	b->len += (size_t)n;
}

/* The base64 secret of key i: its bytes are "secret-<i>". */
static const char *
key_secret_b64(size_t i, char *out, size_t outlen)
{
	char raw[32];
	int n = snprintf(raw, sizeof(raw), "secret-%zu", i);

	if ((size_t)(n + 2) / 3 * 4 + 1 > outlen)
		abort();
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, n);
	return out;
}

/* Collects mismatches of many values; one TAP line per group. */
struct chk {
	int bad;
	char first[512];
};

static void __attribute__((format(printf, 4, 5)))
chk_str(struct chk *c, const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (got != NULL && strcmp(got, want) == 0)
		return;
	if (c->bad++ > 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(c->first, sizeof(c->first), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(c->first))
		snprintf(c->first + n, sizeof(c->first) - (size_t)n, ": got '%s', want '%s'",
		    got ? got : "(null)", want);
}

static void __attribute__((format(printf, 4, 5)))
chk_int(struct chk *c, long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (got == want || c->bad++ > 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(c->first, sizeof(c->first), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(c->first))
		snprintf(
		    c->first + n, sizeof(c->first) - (size_t)n, ": got %lld, want %lld", got, want);
}

static void
chk_addr(struct chk *c, const struct addr *a, const char *want, const char *what, size_t i)
{
	char buf[ADDR_STRLEN];

	chk_str(c, a->len ? addr_str(a, buf, sizeof(buf)) : "unset", want, "%s %zu", what, i);
}

/* A generated address list: entry j is <net>.<j + 1> port <port0 + j>. */
static void
chk_addrs(struct chk *c, const struct config_addrs *l, size_t n, const char *net, unsigned port0,
    const char *what)
{
	char want[ADDR_STRLEN];

	chk_int(c, (long long)l->n, (long long)n, "%s %s: count", what, net);
	for (size_t j = 0; j < n && j < l->n; j++) {
		snprintf(want, sizeof(want), "%s.%zu:%u", net, j + 1, port0 + (unsigned)j);
		chk_addr(c, &l->v[j], want, what, j);
	}
}

/* Who refers to a key: the special cluster only, each its own, or all one. */
enum gen_keys { GEN_KEY_ONE, GEN_KEY_OWN, GEN_KEY_SHARED };

/*
 * One generated configuration: n of every repeatable statement; instance
 * `special` differs (the only relative zone file, its own notify-source, the
 * only key under GEN_KEY_ONE, hmac-sha512, a drained member, hysteresis 0).
 * `reversed` writes the blocks in reverse order: references before the keys
 * they name, paths before the directory.
 */
struct gen {
	size_t n, special;
	enum gen_keys keys;
	bool reversed;
};

/* " <net>.<j + 1> port <port0 + j>;" for j < n: what chk_addrs expects. */
static void
gen_addr_list(struct sbuf *b, const char *net, size_t n, size_t port0)
{
	for (size_t j = 0; j < n; j++)
		sb_printf(b, " %s.%zu port %zu;", net, j + 1, port0 + j);
}

/* " <pre><j><post>;" for j < n, quoted when `quote`. */
static void
gen_word_list(struct sbuf *b, const char *pre, const char *post, size_t n, bool quote)
{
	for (size_t j = 0; j < n; j++)
		sb_printf(b, quote ? " \"%s%zu%s\";" : " %s%zu%s;", pre, j, post);
}

static const char *
gen_keyref(const struct gen *g, size_t i, char *buf, size_t len)
{
	if (g->keys == GEN_KEY_ONE && i != g->special)
		return "";
	snprintf(buf, len, "key \"k%zu\"; ", g->keys == GEN_KEY_OWN ? i : g->special);
	return buf;
}

static void
gen_keys_text(const struct gen *g, struct sbuf *b)
{
	char b64[64];

	for (size_t i = 0; i < g->n; i++)
		sb_printf(b, "key \"k%zu\" { algorithm %s; secret \"%s\"; };\n", i,
		    i == g->special ? "hmac-sha512" : "hmac-sha256",
		    key_secret_b64(i, b64, sizeof(b64)));
}

static void
gen_zone_text(const struct gen *g, struct sbuf *b, size_t i)
{
	char net[32];

	sb_printf(b, "  zone \"Z%zu.test.\" {\n", i);
	if (i == g->special)
		sb_printf(b, "    file \"zones/z%zu.zone\";\n", i);
	else
		sb_printf(b, "    file \"/abs/z%zu.zone\";\n", i);
	sb_printf(b, "    allow-transfer {");
	for (size_t j = 0; j < g->n; j++)
		sb_printf(b, " 10.%zu.%zu.0/24;", i, j + 1);
	sb_printf(b, " };\n    also-notify {");
	snprintf(net, sizeof(net), "192.0.%zu", i);
	gen_addr_list(b, net, g->n, 5300);
	sb_printf(b, " };\n");
	if (i == g->special)
		sb_printf(b, "    notify-source 198.51.100.%zu port 5400;\n", i + 1);
	sb_printf(b, "  };\n");
}

static void
gen_broker_text(const struct gen *g, struct sbuf *b)
{
	sb_printf(b, "broker {\n  listen {");
	gen_addr_list(b, "127.0.0", g->n, 5300);
	sb_printf(b, " };\n");
	if (!g->reversed)
		sb_printf(b, "  notify-source 203.0.113.1;\n");
	for (size_t i = 0; i < g->n; i++)
		gen_zone_text(g, b, i);
	if (g->reversed)
		sb_printf(b, "  notify-source 203.0.113.1;\n");
	sb_printf(b, "};\n");
}

static void
gen_cluster_text(const struct gen *g, struct sbuf *b, size_t i)
{
	char kbuf[64], net[32];

	sb_printf(b, "cluster \"C%zu.test\" {\n  members {\n", i);
	for (size_t j = 0; j < g->n; j++) {
		sb_printf(b, "    10.%zu.%zu.1 weight %zu", i, j + 1, j + 1);
		if (j == g->special)
			sb_printf(b, " drain check 10.%zu.%zu.2", i, j + 1);
		sb_printf(b, ";\n");
	}
	sb_printf(b, "  };\n  masters {");
	snprintf(net, sizeof(net), "192.168.%zu", i);
	gen_addr_list(b, net, g->n, 5300);
	sb_printf(b, " };\n  dns-ttl %zu; polling-interval %zu; failover 192.0.2.%zu;\n", 100 + i,
	    10 + i, i + 1);
	sb_printf(b, "  failover 2001:db8::%zx; %s\n", i + 1, gen_keyref(g, i, kbuf, sizeof(kbuf)));
	if (i == g->special)
		sb_printf(b, "  hysteresis 0; metric-port 9999;\n");
	sb_printf(b, "};\n");
}

/* metrics, resolver and relay: one block each, n entries in each list. */
static void
gen_sections_text(const struct gen *g, struct sbuf *b)
{
	sb_printf(b, "metrics { key \"k%zu\"; listen {", g->special);
	gen_addr_list(b, "127.1.0", g->n, 4400);
	sb_printf(b, " }; };\nresolver {\n  nameservers {");
	gen_addr_list(b, "127.2.0", g->n, 5350);
	sb_printf(b, " };\n  zones {");
	gen_word_list(b, "R", ".test", g->n, false);
	sb_printf(b, " };\n};\nrelay {\n  listen {");
	gen_addr_list(b, "127.3.0", g->n, 2500);
	sb_printf(b, " };\n  local-aliases {");
	gen_word_list(b, "la", ".test", g->n, false);
	sb_printf(b, " };\n  relay-domains {");
	gen_word_list(b, "rd", ".test", g->n, true);
	sb_printf(b, " };\n  users {");
	gen_word_list(b, "u", "", g->n, false);
	sb_printf(b, " };\n  trusted-networks {");
	gen_word_list(b, "10.", ".0.0/16", g->n, false);
	sb_printf(b, " };\n};\n");
}

static char *
gen_text(const struct gen *g)
{
	struct sbuf b = {0};

	if (g->reversed) {
		gen_sections_text(g, &b);
		for (size_t i = g->n; i-- > 0;)
			gen_cluster_text(g, &b, i);
		gen_broker_text(g, &b);
		gen_keys_text(g, &b);
		sb_printf(&b, "options { pid-file \"run/x.pid\"; directory \"/srv/mxb\"; };\n");
		return b.p;
	}
	sb_printf(&b, "options { directory \"/srv/mxb\"; pid-file \"run/x.pid\"; };\n");
	gen_keys_text(g, &b);
	gen_broker_text(g, &b);
	for (size_t i = 0; i < g->n; i++)
		gen_cluster_text(g, &b, i);
	gen_sections_text(g, &b);
	return b.p;
}

static void
gen_check_keys(const struct gen *g, const struct config *cfg, struct chk *c)
{
	char want[64];

	chk_int(c, (long long)cfg->nkeys, (long long)g->n, "key count");
	for (size_t i = 0; i < g->n && i < cfg->nkeys; i++) {
		const struct config_key *k = &cfg->keys[i];

		snprintf(want, sizeof(want), "k%zu", i);
		chk_str(c, k->name, want, "key %zu name", i);
		chk_int(c, k->algorithm, i == g->special ? CONFIG_HMAC_SHA512 : CONFIG_HMAC_SHA256,
		    "key %zu algorithm", i);
		chk_str(c, k->secret_b64, key_secret_b64(i, want, sizeof(want)), "key %zu b64", i);
		snprintf(want, sizeof(want), "secret-%zu", i);
		chk_int(c, (long long)k->secret_len, (long long)strlen(want), "key %zu length", i);
		chk_int(c, memcmp(k->secret, want, strlen(want)) == 0, 1, "key %zu secret", i);
	}
	chk_str(c, cfg->options.directory, "/srv/mxb", "options directory");
	chk_str(c, cfg->options.pid_file, "/srv/mxb/run/x.pid", "pid-file");
	chk_int(c, cfg->metrics.key == &cfg->keys[g->special], 1, "metrics key");
}

static void
gen_check_zones(const struct gen *g, const struct config *cfg, struct chk *c)
{
	char want[128];

	chk_int(c, (long long)cfg->broker.nzones, (long long)g->n, "zone count");
	chk_addrs(c, &cfg->broker.listen, g->n, "127.0.0", 5300, "broker listen");
	chk_addr(c, &cfg->broker.notify_source, "203.0.113.1:0", "broker notify-source", 0);
	for (size_t i = 0; i < g->n && i < cfg->broker.nzones; i++) {
		const struct config_zone *z = &cfg->broker.zones[i];

		snprintf(want, sizeof(want), "z%zu.test", i);
		chk_str(c, z->name, want, "zone %zu name", i);
		snprintf(want, sizeof(want),
		    i == g->special ? "/srv/mxb/zones/z%zu.zone" : "/abs/z%zu.zone", i);
		chk_str(c, z->file, want, "zone %zu file", i);
		chk_int(c, (long long)z->allow_transfer.n, (long long)g->n,
		    "zone %zu allow-transfer", i);
		for (size_t j = 0; j < g->n && j < z->allow_transfer.n; j++) {
			char got[64];

			snprintf(want, sizeof(want), "10.%zu.%zu.0/24", i, j + 1);
			chk_str(c, cidr_str(&z->allow_transfer.v[j].net, got, sizeof(got)), want,
			    "zone %zu allow-transfer %zu", i, j);
		}
		snprintf(want, sizeof(want), "192.0.%zu", i);
		chk_addrs(c, &z->also_notify, g->n, want, 5300, "also-notify");
		snprintf(want, sizeof(want),
		    i == g->special ? "198.51.100.%zu:5400" : "203.0.113.1:0", i + 1);
		chk_addr(c, &z->notify_source, want, "zone notify-source", i);
		chk_int(c, config_zone_find(cfg, z->name) == z, 1, "zone %zu find", i);
	}
}

static void
gen_check_members(const struct gen *g, const struct config_cluster *cl, size_t i, struct chk *c)
{
	char want[64], got[ADDR_STRLEN];

	chk_int(c, (long long)cl->nmembers, (long long)g->n, "cluster %zu members", i);
	for (size_t j = 0; j < g->n && j < cl->nmembers; j++) {
		const struct config_member *m = &cl->members[j];

		snprintf(want, sizeof(want), "10.%zu.%zu.1", i, j + 1);
		chk_str(c, addr_host_str(&m->addr, got, sizeof(got)), want, "member %zu.%zu", i, j);
		chk_int(c, addr_port(&m->addr), 0, "member %zu.%zu port", i, j);
		snprintf(want, sizeof(want), "10.%zu.%zu.%d", i, j + 1, j == g->special ? 2 : 1);
		chk_str(c, addr_host_str(&m->check, got, sizeof(got)), want, "check %zu.%zu", i, j);
		chk_int(c, m->weight, (long long)j + 1, "member %zu.%zu weight", i, j);
		chk_int(c, m->drain, j == g->special, "member %zu.%zu drain", i, j);
	}
}

static void
gen_check_clusters(const struct gen *g, const struct config *cfg, struct chk *c)
{
	char want[64];

	chk_int(c, (long long)cfg->nclusters, (long long)g->n, "cluster count");
	for (size_t k = 0; k < g->n && k < cfg->nclusters; k++) {
		const struct config_cluster *cl = &cfg->clusters[k];
		size_t i = g->reversed ? g->n - 1 - k : k; /* written in reverse */
		const struct config_key *key = NULL;

		snprintf(want, sizeof(want), "c%zu.test", i);
		chk_str(c, cl->name, want, "cluster %zu name", i);
		gen_check_members(g, cl, i, c);
		snprintf(want, sizeof(want), "192.168.%zu", i);
		chk_addrs(c, &cl->masters, g->n, want, 5300, "masters");
		chk_int(c, cl->dns_ttl, (long long)(100 + i), "cluster %zu dns-ttl", i);
		chk_int(c, cl->polling_interval, (long long)(10 + i), "cluster %zu polling", i);
		snprintf(want, sizeof(want), "192.0.2.%zu:0", i + 1);
		chk_addr(c, &cl->failover4, want, "failover4", i);
		snprintf(want, sizeof(want), "[2001:db8::%zx]:0", i + 1);
		chk_addr(c, &cl->failover6, want, "failover6", i);
		if (g->keys == GEN_KEY_OWN)
			key = &cfg->keys[i];
		else if (g->keys == GEN_KEY_SHARED || i == g->special)
			key = &cfg->keys[g->special];
		chk_int(c, cl->key == key, 1, "cluster %zu key", i);
		chk_int(c, cl->hysteresis, i == g->special ? 0 : 5, "cluster %zu hysteresis", i);
		chk_int(c, cl->metric_port, i == g->special ? 9999 : 4331, "cluster %zu port", i);
	}
}

static void
gen_check_sections(const struct gen *g, const struct config *cfg, struct chk *c)
{
	const struct config_relay *r = &cfg->relay;
	char want[64], got[64];

	chk_addrs(c, &cfg->metrics.listen, g->n, "127.1.0", 4400, "metrics listen");
	chk_addrs(c, &cfg->resolver.nameservers, g->n, "127.2.0", 5350, "nameserver");
	chk_addrs(c, &r->listen, g->n, "127.3.0", 2500, "relay listen");
	chk_int(c, (long long)cfg->resolver.zones.n, (long long)g->n, "resolver zones");
	chk_int(c, (long long)r->local_aliases.n, (long long)g->n, "local-aliases");
	chk_int(c, (long long)r->relay_domains.n, (long long)g->n, "relay-domains");
	chk_int(c, (long long)r->users.n, (long long)g->n, "users");
	chk_int(c, (long long)r->trusted_networks.n, (long long)g->n, "trusted-networks");
	for (size_t j = 0; j < g->n && c->bad == 0; j++) {
		snprintf(want, sizeof(want), "r%zu.test", j);
		chk_str(c, cfg->resolver.zones.v[j], want, "resolver zone %zu", j);
		snprintf(want, sizeof(want), "la%zu.test", j);
		chk_str(c, r->local_aliases.v[j], want, "local-alias %zu", j);
		snprintf(want, sizeof(want), "rd%zu.test", j);
		chk_str(c, r->relay_domains.v[j], want, "relay-domain %zu", j);
		snprintf(want, sizeof(want), "u%zu", j);
		chk_str(c, r->users.v[j], want, "user %zu", j);
		snprintf(want, sizeof(want), "10.%zu.0.0/16", j);
		chk_str(c, cidr_str(&r->trusted_networks.v[j], got, sizeof(got)), want,
		    "trusted-network %zu", j);
	}
}

static void
test_repeated_statements(void)
{
	static const struct {
		size_t n;
		enum gen_keys keys;
		bool reversed;
	} cases[] = {
	    {3, GEN_KEY_ONE, false},
	    {3, GEN_KEY_OWN, false},
	    {3, GEN_KEY_SHARED, false},
	    {3, GEN_KEY_ONE, true},
	    {3, GEN_KEY_OWN, true},
	    {3, GEN_KEY_SHARED, true},
	    {5, GEN_KEY_OWN, false},
	    {130, GEN_KEY_OWN, false}, /* past the old keyrefs[256]/paths[64] */
	    {130, GEN_KEY_SHARED, true},
	};
	static const char *const modes[] = {"one keyed", "own keys", "one shared key"};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t n = cases[k].n, specials[3] = {0, n / 2, n - 1};

		for (size_t s = 0; s < 3; s++) {
			struct gen g = {n, specials[s], cases[k].keys, cases[k].reversed};
			char *text = gen_text(&g);
			struct config *cfg = load(text);
			struct chk keys = {0}, zones = {0}, clusters = {0}, sections = {0};
			const char *mode = modes[g.keys];

			free(text);
			ok(cfg != NULL, "n=%zu special=%zu %s%s loads (%s)", n, g.special, mode,
			    g.reversed ? " reversed" : "", err);
			if (cfg == NULL)
				continue;
			gen_check_keys(&g, cfg, &keys);
			gen_check_zones(&g, cfg, &zones);
			gen_check_clusters(&g, cfg, &clusters);
			gen_check_sections(&g, cfg, &sections);
			ok(!keys.bad, "n=%zu special=%zu %s: keys, options: %s", n, g.special, mode,
			    keys.first);
			ok(!zones.bad, "n=%zu special=%zu %s: broker, zones: %s", n, g.special,
			    mode, zones.first);
			ok(!clusters.bad, "n=%zu special=%zu %s: clusters: %s", n, g.special, mode,
			    clusters.first);
			ok(!sections.bad, "n=%zu special=%zu %s: metrics, resolver, relay: %s", n,
			    g.special, mode, sections.first);
			config_free(cfg);
		}
	}
}

/* Three clusters naming one key: each resolves to it (only the last did). */
static void
test_shared_key(void)
{
	static const char *const texts[] = {
	    "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };\n"
	    "cluster \"a.test\" { members { 10.0.0.1; }; key \"k\"; };\n"
	    "cluster \"b.test\" { members { 10.0.0.2; }; key \"k\"; };\n"
	    "cluster \"c.test\" { members { 10.0.0.3; }; key \"k\"; };\n",
	    /* the same with the key defined after its users */
	    "cluster \"a.test\" { key \"K.\"; members { 10.0.0.1; }; };\n"
	    "cluster \"b.test\" { key \"k\"; members { 10.0.0.2; }; };\n"
	    "cluster \"c.test\" { key \"k\"; members { 10.0.0.3; }; };\n"
	    "metrics { key \"k\"; };\n"
	    "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0\"; };\n",
	};

	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		struct config *cfg = load(texts[t]);
		const struct config_key *k;

		ok(cfg != NULL, "shared key, text %zu (%s)", t, err);
		if (cfg == NULL)
			continue;
		k = config_key_find(cfg, "k");
		is_int((long long)cfg->nclusters, 3, "three clusters");
		for (size_t i = 0; i < cfg->nclusters; i++) {
			const struct config_cluster *cl = &cfg->clusters[i];

			ok(cl->key == k && k != NULL, "text %zu: cluster %s has key k", t,
			    cl->name);
			ok(cl->key != NULL && cl->key->secret_len == 6 &&
			        memcmp(cl->key->secret, "secret", 6) == 0,
			    "text %zu: cluster %s signs with the secret", t, cl->name);
		}
		ok(t == 0 || cfg->metrics.key == k, "text %zu: metrics key", t);
		config_free(cfg);
	}
}

/* Three clusters, three keys (defined after them, in another order). */
static void
test_three_keys(void)
{
	struct config *cfg = load("cluster \"a.test\" { members { 10.0.0.1; }; key \"ka\"; };\n"
	                          "cluster \"b.test\" { members { 10.0.0.2; }; key \"kb\"; };\n"
	                          "cluster \"c.test\" { members { 10.0.0.3; }; key \"kc\"; };\n"
	                          "key \"kc\" { algorithm hmac-sha512; secret \"Y2NjYw==\"; };\n"
	                          "key \"ka\" { algorithm hmac-sha1; secret \"YWFhYQ==\"; };\n"
	                          "key \"kb\" { algorithm hmac-sha256; secret \"YmJiYg==\"; };\n");
	static const struct {
		const char *key, *secret;
		enum config_hmac alg;
	} want[] = {{"ka", "aaaa", CONFIG_HMAC_SHA1}, {"kb", "bbbb", CONFIG_HMAC_SHA256},
	    {"kc", "cccc", CONFIG_HMAC_SHA512}};

	ok(cfg != NULL, "three clusters, three keys (%s)", err);
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < 3; i++) {
		const struct config_key *k = cfg->clusters[i].key;

		ok(k != NULL && k == config_key_find(cfg, want[i].key), "cluster %zu has key %s", i,
		    want[i].key);
		if (k == NULL)
			continue;
		is_int(k->algorithm, want[i].alg, "cluster %zu key algorithm", i);
		ok(k->secret_len == 4 && memcmp(k->secret, want[i].secret, 4) == 0,
		    "cluster %zu key secret", i);
	}
	config_free(cfg);
}

/* Write `text` as <dir>/main.conf and load it. */
static struct config *
load_in_dir(const char *dir, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/main.conf", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return config_load(path, err, sizeof(err));
}

/*
 * Relative zone files, 3 and 130 of them (past the old paths[64]), with and
 * without options { directory }: every one absolute, under the right folder.
 */
static void
test_relative_zone_paths(void)
{
	static const struct {
		size_t n;
		const char *options, *sub;
	} cases[] = {{3, "", ""}, {3, "options { directory \"sub\"; };\n", "/sub"}, {130, "", ""},
	    {130, "options { pid-file \"p\"; directory \"sub\"; };\n", "/sub"}};
	char dir[] = "/tmp/mxbconfXXXXXX", want[600], path[600];

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return;
	}
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct sbuf b = {0};
		struct config *cfg;
		struct chk k = {0};

		sb_printf(&b, "broker {\n");
		for (size_t i = 0; i < cases[c].n; i++)
			sb_printf(&b, "  zone \"z%zu.test\" { file \"z%zu.zone\"; };\n", i, i);
		sb_printf(&b, "  state-file \"st\";\n};\n%s", cases[c].options);
		cfg = load_in_dir(dir, b.p);
		free(b.p);
		ok(cfg != NULL, "%zu relative zones%s load (%s)", cases[c].n, cases[c].sub, err);
		if (cfg == NULL)
			continue;
		chk_int(&k, (long long)cfg->broker.nzones, (long long)cases[c].n, "zones");
		for (size_t i = 0; i < cfg->broker.nzones; i++) {
			snprintf(want, sizeof(want), "%s%s/z%zu.zone", dir, cases[c].sub, i);
			chk_str(&k, cfg->broker.zones[i].file, want, "zone %zu file", i);
		}
		snprintf(want, sizeof(want), "%s%s/st", dir, cases[c].sub);
		chk_str(&k, cfg->broker.state_file, want, "state-file");
		snprintf(want, sizeof(want), "%s%s", dir, cases[c].sub);
		chk_str(&k, cfg->options.directory, want, "directory");
		if (cfg->options.pid_file != NULL) {
			snprintf(want, sizeof(want), "%s/sub/p", dir);
			chk_str(&k, cfg->options.pid_file, want, "pid-file before directory");
		}
		ok(!k.bad, "%zu relative zones%s: all absolute under the folder: %s", cases[c].n,
		    cases[c].sub, k.first);
		config_free(cfg);
	}
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	unlink(path);
	rmdir(dir);
}

/* 300 clusters over 48 keys and 300 zones, keys last: no fixed-size table. */
static void
test_no_fixed_limits(void)
{
	struct sbuf b = {0};
	struct config *cfg;
	struct chk k = {0};
	char b64[64], want[64];

	sb_printf(&b, "broker {\n");
	for (size_t i = 0; i < 300; i++)
		sb_printf(&b, " zone \"z%zu.test\" { file \"z%zu\"; };\n", i, i);
	sb_printf(&b, "};\n");
	for (size_t i = 0; i < 300; i++)
		sb_printf(&b,
		    "cluster \"c%zu.test\" { members { 10.1.%zu.%zu; }; key \"k%zu\"; };\n", i,
		    i / 200, i % 200 + 1, i % 48);
	for (size_t i = 0; i < 48; i++)
		sb_printf(&b, "key \"k%zu\" { algorithm hmac-sha256; secret \"%s\"; };\n", i,
		    key_secret_b64(i, b64, sizeof(b64)));
	sb_printf(&b, "options { directory \"/d\"; };\n");
	cfg = load(b.p);
	free(b.p);
	ok(cfg != NULL, "300 clusters, 48 keys, 300 zones (%s)", err);
	if (cfg == NULL)
		return;
	chk_int(&k, (long long)cfg->nkeys, 48, "keys");
	chk_int(&k, (long long)cfg->nclusters, 300, "clusters");
	chk_int(&k, (long long)cfg->broker.nzones, 300, "zones");
	for (size_t i = 0; i < cfg->nclusters; i++) {
		const struct config_key *key = cfg->clusters[i].key;

		snprintf(want, sizeof(want), "secret-%zu", i % 48);
		chk_int(&k, key == &cfg->keys[i % 48], 1, "cluster %zu key", i);
		chk_int(&k,
		    key != NULL && key->secret_len == strlen(want) &&
		        memcmp(key->secret, want, strlen(want)) == 0,
		    1, "cluster %zu secret", i);
	}
	for (size_t i = 0; i < cfg->broker.nzones; i++) {
		snprintf(want, sizeof(want), "/d/z%zu", i);
		chk_str(&k, cfg->broker.zones[i].file, want, "zone %zu file", i);
	}
	ok(!k.bad, "every key reference and path resolved: %s", k.first);
	config_free(cfg);
}

/* notify-source: the zone's own, else the broker's (wherever it is written). */
static void
test_notify_source(void)
{
	static const char *const texts[] = {
	    "broker { notify-source 192.0.2.53;\n"
	    " zone \"a.test\" { file \"a\"; notify-source 198.51.100.1 port 5353; };\n"
	    " zone \"b.test\" { file \"b\"; };\n"
	    " zone \"c.test\" { file \"c\"; notify-source 2001:db8::53; }; };",
	    "broker {\n zone \"a.test\" { notify-source 198.51.100.1 port 5353; file \"a\"; };\n"
	    " zone \"b.test\" { file \"b\"; };\n"
	    " zone \"c.test\" { file \"c\"; notify-source 2001:db8::53; };\n"
	    " notify-source 192.0.2.53; };",
	};
	static const char *const want[] = {"198.51.100.1:5353", "192.0.2.53:0", "[2001:db8::53]:0"};
	char buf[ADDR_STRLEN];
	struct config *cfg;

	for (size_t t = 0; t < 2; t++) {
		cfg = load(texts[t]);
		ok(cfg != NULL, "notify-source text %zu (%s)", t, err);
		if (cfg == NULL)
			continue;
		is_str(addr_str(&cfg->broker.notify_source, buf, sizeof(buf)), "192.0.2.53:0",
		    "broker notify-source, port 0 = any");
		for (size_t i = 0; i < 3; i++)
			is_str(addr_str(&cfg->broker.zones[i].notify_source, buf, sizeof(buf)),
			    want[i], "text %zu: zone %zu notify-source", t, i);
		config_free(cfg);
	}
	cfg = load("broker { zone \"a.test\" { file \"a\"; }; };");
	ok(cfg != NULL, "no notify-source (%s)", err);
	if (cfg != NULL) {
		is_int(cfg->broker.notify_source.len, 0, "broker notify-source unset");
		is_int(cfg->broker.zones[0].notify_source.len, 0, "zone notify-source unset");
	}
	config_free(cfg);
	refused("broker { notify-source ns1.example.test; };",
	    "t.conf:1: 'ns1.example.test' is not an IPv4 or IPv6 address", "notify-source name");
	refused("broker { zone \"a.test\" { file \"a\"; notify-source 192.0.2.1 port 0; }; };",
	    "t.conf:1: 'port' 0 is out of range", "notify-source port 0");
	refused("broker { notify-source 192.0.2.1; notify-source 192.0.2.2; };",
	    "t.conf:1: 'notify-source' given twice in broker", "notify-source twice");
	refused("broker { notify-source { 192.0.2.1; }; };",
	    "t.conf:1: 'notify-source' takes one address", "notify-source list");
}

static void
test_queue_min_free_and_hysteresis(void)
{
	static const struct {
		const char *text;
		uint64_t want;
	} cases[] = {
	    {"relay { };", 15ULL << 20},
	    {"relay { max-message-size 20M; };", 30ULL << 20},
	    {"relay { queue-min-free 1G; max-message-size 20M; };", 1ULL << 30},
	    {"relay { queue-min-free 512M; };", 512ULL << 20},
	    {"relay { queue-min-free 0; };", 0},
	    {"relay { max-message-size 1025; };", 1537},
	    {"", 15ULL << 20},
	};
	struct config *cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg = load(cases[i].text);
		ok(cfg != NULL && cfg->relay.queue_min_free == cases[i].want,
		    "queue-min-free: '%s' gives %llu (%s)", cases[i].text,
		    (unsigned long long)cases[i].want, err);
		config_free(cfg);
	}
	refused("relay { queue-min-free lots; };", "t.conf:1: 'queue-min-free' wants a size",
	    "queue-min-free not a size");
	refused("relay { queue-min-free 2000000G; };",
	    "t.conf:1: 'queue-min-free' 2000000G is out of range", "queue-min-free too large");
	cfg = load("cluster \"a.test\" { members { 10.0.0.1; }; };\n"
	           "cluster \"b.test\" { members { 10.0.0.2; }; hysteresis 0; };\n"
	           "cluster \"c.test\" { members { 10.0.0.3; }; hysteresis 12; };");
	ok(cfg != NULL, "hysteresis (%s)", err);
	if (cfg != NULL) {
		is_int(cfg->clusters[0].hysteresis, 5, "hysteresis defaults to 5");
		is_int(cfg->clusters[1].hysteresis, 0, "hysteresis 0 kept");
		is_int(cfg->clusters[2].hysteresis, 12, "hysteresis 12");
	}
	config_free(cfg);
}

/* The statements of issue 16: defaults, values, and the two-per-family error. */
static void
test_relay_capacity(void)
{
	struct config *cfg = load("");
	char buf[ADDR_STRLEN];

	ok(cfg != NULL, "capacity defaults load (%s)", err);
	if (cfg != NULL) {
		is_int(cfg->relay.queue_max_messages, 100000, "queue-max-messages default");
		is_int(cfg->relay.outbound_family, CONFIG_FAMILY_ANY, "outbound-family default");
		is_int(cfg->relay.outbound_source4.len, 0, "no IPv4 source by default");
		is_int(cfg->relay.outbound_source6.len, 0, "no IPv6 source by default");
		is_int(cfg->relay.connection_reuse_time, 2, "connection-reuse-time default");
		is_int(cfg->relay.connection_reuse_limit, 100, "connection-reuse-limit default");
		is_int(
		    cfg->relay.initial_destination_concurrency, 2, "initial concurrency default");
		is_int(cfg->relay.destination_rate_delay, 0, "destination-rate-delay default");
	}
	config_free(cfg);
	cfg = load("relay { queue-max-messages 0; outbound-family ipv6;\n"
	           "outbound-source { 192.0.2.7; 2001:db8::7; };\n"
	           "connection-reuse-time 0; connection-reuse-limit 7;\n"
	           "initial-destination-concurrency 1; destination-rate-delay 2m; };");
	ok(cfg != NULL, "capacity values load (%s)", err);
	if (cfg != NULL) {
		is_int(cfg->relay.queue_max_messages, 0, "queue-max-messages 0 = no limit");
		is_int(cfg->relay.outbound_family, CONFIG_FAMILY_IPV6, "outbound-family ipv6");
		is_str(addr_host_str(&cfg->relay.outbound_source4, buf, sizeof(buf)), "192.0.2.7",
		    "IPv4 source");
		is_str(addr_host_str(&cfg->relay.outbound_source6, buf, sizeof(buf)), "2001:db8::7",
		    "IPv6 source");
		is_int(cfg->relay.connection_reuse_time, 0, "no reuse");
		is_int(cfg->relay.connection_reuse_limit, 7, "reuse limit");
		is_int(cfg->relay.initial_destination_concurrency, 1, "initial concurrency");
		is_int(cfg->relay.destination_rate_delay, 120, "rate delay 2m");
	}
	config_free(cfg);
	refused("relay { outbound-source { 192.0.2.1; 192.0.2.2; }; };",
	    "t.conf:1: 'outbound-source' has two addresses of the same family", "two IPv4 sources");
	refused("relay { outbound-family ipv5; };", "t.conf:1:", "unknown family");
	refused("relay { initial-destination-concurrency 0; };", "t.conf:1:", "concurrency 0");
}

/* allow-transfer pairs (PREFIX [key], key alone) and also-notify keys. */
static void
test_transfer_keys(void)
{
	static const char keys[] =
	    "key \"a\" { algorithm hmac-sha256; secret \"c2VjcmV0LWE=\"; };\n"
	    "key \"b\" { algorithm hmac-sha512; secret \"c2VjcmV0LWI=\"; };\n"
	    "key \"c\" { algorithm hmac-sha384; secret \"c2VjcmV0LWM=\"; };\n";
	char text[2048], buf[ADDR_STRLEN + 8];
	struct config *cfg;
	const struct config_zone *z;

	snprintf(text, sizeof(text),
	    "%sbroker { zone \"z.test\" { file \"/z\";\n"
	    "  allow-transfer { 192.0.2.0/24; 198.51.100.7 key \"a\"; key \"B\"; };\n"
	    "  also-notify { 192.0.2.1 port 5300 key \"a\"; 192.0.2.2; 192.0.2.3 key b; };\n"
	    "}; };\n",
	    keys);
	cfg = load(text);
	ok(cfg != NULL, "transfer keys load (%s)", err);
	if (cfg == NULL)
		return;
	z = &cfg->broker.zones[0];
	is_int((long long)z->allow_transfer.n, 3, "three ACL elements");
	ok(z->allow_transfer.v[0].key == NULL && !z->allow_transfer.v[0].any_addr, "bare prefix");
	is_str(cidr_str(&z->allow_transfer.v[1].net, buf, sizeof(buf)), "198.51.100.7/32",
	    "paired address");
	ok(z->allow_transfer.v[1].key == &cfg->keys[0], "paired key a");
	ok(z->allow_transfer.v[2].any_addr && z->allow_transfer.v[2].key == &cfg->keys[1],
	    "key alone, any address (name case folded)");
	is_int((long long)z->also_notify.n, 3, "three NOTIFY targets");
	is_int(addr_port(&z->also_notify.v[0]), 5300, "port before key");
	ok(z->also_notify_keys[0] == &cfg->keys[0] && z->also_notify_keys[1] == NULL &&
	        z->also_notify_keys[2] == &cfg->keys[1],
	    "NOTIFY keys parallel to the addresses");
	config_free(cfg);
	snprintf(text, sizeof(text),
	    "%sbroker { zone \"z.test\" { file \"/z\"; "
	    "allow-transfer { key \"nope\"; }; }; };",
	    keys);
	refused(text, "t.conf:4: key 'nope' is not defined", "undefined ACL key");
	snprintf(text, sizeof(text),
	    "%sbroker { zone \"z.test\" { file \"/z\"; "
	    "allow-transfer { 192.0.2.1 port 53; }; }; };",
	    keys);
	refused(text, "t.conf:4: unexpected 'port'", "port in an ACL");
	snprintf(text, sizeof(text),
	    "%sbroker { zone \"z.test\" { file \"/z\"; "
	    "also-notify { 192.0.2.1 key \"c\"; }; }; };",
	    keys);
	refused(text, "t.conf:4: key 'c': hmac-sha384 cannot sign", "sha384 for TSIG");
}

/* zone { dnssec { } }: defaults, paths, and the refusals. */
static void
test_zone_dnssec(void)
{
	struct config *cfg = load("options { directory \"/var/lib/mxb\"; };\n"
	                          "broker { zone \"a.test\" { file \"a.zone\"; dnssec { "
	                          "key-directory \"keys\"; }; };\n"
	                          "zone \"b.test\" { file \"b.zone\"; dnssec { key-directory "
	                          "\"/k\"; signature-validity 3d; signature-refresh 1d; "
	                          "inception-offset 0; }; };\n"
	                          "zone \"c.test\" { file \"c.zone\"; }; };\n");
	const struct config_dnssec *a, *b;

	ok(cfg != NULL, "dnssec blocks load: %s", err);
	if (cfg == NULL)
		return;
	a = &cfg->broker.zones[0].dnssec;
	b = &cfg->broker.zones[1].dnssec;
	ok(a->enabled && strcmp(a->key_directory, "/var/lib/mxb/keys") == 0,
	    "key-directory is resolved against the directory: %s", a->key_directory);
	is_int(a->validity, 14 * 86400, "signature-validity default");
	is_int(a->refresh, 7 * 86400, "signature-refresh default");
	is_int(a->inception_offset, 3600, "inception-offset default");
	ok(b->validity == 3 * 86400 && b->refresh == 86400 && b->inception_offset == 0,
	    "dnssec values");
	ok(!cfg->broker.zones[2].dnssec.enabled, "a zone without dnssec is unsigned");
	config_free(cfg);
	refused("broker { zone \"a.test\" { file \"/a\"; dnssec { }; }; };",
	    "t.conf:1: ", "dnssec without key-directory");
	refused("broker { zone \"a.test\" { file \"/a\"; dnssec { key-directory \"/k\"; "
	        "signature-validity 1d; signature-refresh 1d; }; }; };",
	    "t.conf:1: zone 'a.test': signature-refresh must be shorter", "refresh >= validity");
	refused("broker { zone \"a.test\" { file \"/a\"; dnssec { key-directory \"/k\"; }; "
	        "dnssec { key-directory \"/k\"; }; }; };",
	    "t.conf:1: ", "dnssec twice");
	refused("broker { zone \"a.test\" { file \"/a\"; dnssec { key-directory \"/k\"; "
	        "signature-refresh 1m; }; }; };",
	    "t.conf:1: ", "signature-refresh below its range");
}

int
main(void)
{
	if (chdir(getenv("MXB_TOP") ? getenv("MXB_TOP") : ".") == -1)
		return 1;
	test_reference_example();
	test_openvms_file();
	test_comments_and_strings();
	test_values();
	test_errors();
	test_include_and_paths();
	test_repeated_statements();
	test_shared_key();
	test_three_keys();
	test_relative_zone_paths();
	test_no_fixed_limits();
	test_notify_source();
	test_queue_min_free_and_hysteresis();
	test_relay_capacity();
	test_transfer_keys();
	test_zone_dnssec();
	config_free(NULL);
	return tap_done();
}
