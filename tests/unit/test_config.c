/* test_config.c - the configuration reader: every value type, every error path. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	is_int(cfg->broker.zones[0].allow_transfer.v[0].prefix, 32, "host prefix /32");
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
	refused("relay { retry-interval 2h; max-retry-interval 1h; };",
	    "t.conf:0: relay: max-retry-interval (3600s) is shorter than retry-interval (7200s)",
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
		snprintf(inc, sizeof(inc), "%s/./z.zone", dir);
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
	            "/nonexistent/mxbroker.conf:0: cannot read: "
	            "No such file or directory") == 0,
	    "missing file: %s", err);
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
	config_free(NULL);
	return tap_done();
}
