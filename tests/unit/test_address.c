/* test_address.c - the RFC 5321 path parser and the relay policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/log.h"
#include "smtp-relay/address.h"
#include "tests/unit/tap.h"

static enum address_status
parse(const char *text, struct address *a)
{
	return address_parse(text, strlen(text), a);
}

static void
test_valid(void)
{
	static const struct {
		const char *path, *local, *domain;
		unsigned flags;
	} cases[] = {
	    {"<user@example.test>", "user", "example.test", 0},
	    {"<User.Name+tag@Example.TEST>", "User.Name+tag", "example.test", 0},
	    {"<a@b>", "a", "b", 0},
	    {"<\"john doe\"@example.test>", "\"john doe\"", "example.test", ADDRESS_F_QUOTED},
	    {"<\"a@b\"@example.test>", "\"a@b\"", "example.test",
	        ADDRESS_F_QUOTED | ADDRESS_F_ROUTING},
	    {"<\"a\\\"b\"@example.test>", "\"a\\\"b\"", "example.test", ADDRESS_F_QUOTED},
	    {"<u%v@example.test>", "u%v", "example.test", ADDRESS_F_ROUTING},
	    {"<host!u@example.test>", "host!u", "example.test", ADDRESS_F_ROUTING},
	    {"<@a.test,@b.test:u@c.test>", "u", "c.test", ADDRESS_F_ROUTE},
	    {"<u@[192.0.2.1]>", "u", "[192.0.2.1]", ADDRESS_F_LITERAL},
	    {"<u@[IPv6:2001:db8::1]>", "u", "[ipv6:2001:db8::1]", ADDRESS_F_LITERAL},
	    {"<postmaster>", "postmaster", "", ADDRESS_F_BARE},
	    {"<PostMaster>", "PostMaster", "", ADDRESS_F_BARE},
	    {"<a-b@x-y.example.test>", "a-b", "x-y.example.test", 0},
	};
	struct address a;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum address_status st = parse(cases[i].path, &a);

		is_int(st, ADDRESS_OK, "valid: %s", cases[i].path);
		if (st != ADDRESS_OK)
			continue;
		is_str(a.local, cases[i].local, "local part of %s", cases[i].path);
		is_str(a.domain, cases[i].domain, "domain of %s", cases[i].path);
		is_int(a.flags, cases[i].flags, "flags of %s", cases[i].path);
	}
	is_int(parse("<>", &a), ADDRESS_NULL, "<> is the null path");
}

static void
test_invalid(void)
{
	static const char *const bad[] = {
	    "",
	    "<",
	    ">",
	    "user@example.test",
	    "<user@example.test",
	    "user@example.test>",
	    "<user@example.test> ",
	    "<user>",
	    "<@>",
	    "<user@>",
	    "<@example.test>",
	    "<user@example.test.>",
	    "<user@.example.test>",
	    "<user@exa..mple.test>",
	    "<user@-example.test>",
	    "<user@example-.test>",
	    "<.user@example.test>",
	    "<user.@example.test>",
	    "<us..er@example.test>",
	    "<us er@example.test>",
	    "<user@exa_mple.test>",
	    "<user@example.test@evil.test>",
	    "<\"unterminated@x>",
	    "<u@[192.0.2.256]>",
	    "<u@[not-an-ip]>",
	    "<u@[IPv6:zz::1]>",
	    "<u@[192.0.2.1>",
	    "<@a.test:>",
	    "<@a.test,u@c.test>",
	    "<u\xc3\xa9@example.test>",
	    "<\"a\x01\"@example.test>",
	    "<user@exam\tple.test>",
	    "<postmaster@>",
	};
	struct address a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(parse(bad[i], &a) >= ADDRESS_ESYNTAX, "invalid: '%s'", bad[i]);
}

static void
test_lengths(void)
{
	char path[600], label[70];
	struct address a;

	memset(label, 'a', 63);
	label[63] = '\0';
	snprintf(path, sizeof(path), "<u@%s.test>", label);
	is_int(parse(path, &a), ADDRESS_OK, "63-octet label");
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(path, sizeof(path), "<u@%s.test>", label);
	is_int(parse(path, &a), ADDRESS_ESYNTAX, "64-octet label refused");
	memset(path, 0, sizeof(path));
	path[0] = '<';
	memset(path + 1, 'x', 65);
	memcpy(path + 66, "@example.test>", 14);
	is_int(parse(path, &a), ADDRESS_ETOOLONG, "65-octet local part refused");
	memset(path + 1, 'x', 300);
	memcpy(path + 301, "@example.test>", 15);
	is_int(parse(path, &a), ADDRESS_ETOOLONG, "over-long path refused");
}

static struct config *
load(const char *text)
{
	char err[512];
	struct config *cfg = config_load_string("t.conf", text, err, sizeof(err));

	ok(cfg != NULL, "config loads (%s)", cfg != NULL ? "" : err);
	return cfg;
}

static enum policy_verdict
verdict(const struct policy *p, const char *path, bool trusted)
{
	struct address a;

	if (parse(path, &a) != ADDRESS_OK)
		return (enum policy_verdict) - 1;
	return policy_check_rcpt(p, &a, trusted);
}

static void
test_policy(void)
{
	struct config *cfg = load("relay { hostname \"relay.test\"; "
	                          "local-aliases { \"mail.example.test\"; \"local.test\"; }; "
	                          "relay-domains { \"example.test\"; }; "
	                          "trusted-networks { 127.0.0.1/32; }; users { \"alice\"; }; };");
	static const char *const tricks[] = {
	    "<u%outside.test@example.test>",
	    "<outside.test!u@example.test>",
	    "<\"u@outside.test\"@example.test>",
	    "<@example.test:u@outside.test>",
	    "<u@[192.0.2.1]>",
	    "<\"u\"@example.test>",
	};
	struct addr client;
	struct policy *p;

	if (cfg == NULL || (p = policy_new(&cfg->relay)) == NULL) {
		ok(false, "policy built");
		config_free(cfg);
		return;
	}
	addr_parse("127.0.0.1", 0, &client);
	ok(policy_is_trusted(p, &client), "127.0.0.1 trusted");
	addr_parse("127.0.0.99", 0, &client);
	ok(!policy_is_trusted(p, &client), "127.0.0.99 not trusted");
	is_int(verdict(p, "<u@outside.test>", false), POLICY_DENY_RELAY, "outside: denied");
	is_int(verdict(p, "<u@outside.test>", true), POLICY_RELAY, "outside: trusted relays");
	is_int(verdict(p, "<u@example.test>", false), POLICY_RELAY, "relay domain");
	is_int(verdict(p, "<u@EXAMPLE.Test>", false), POLICY_RELAY, "relay domain, case");
	is_int(verdict(p, "<u@sub.example.test>", false), POLICY_RELAY, "relay subdomain");
	is_int(verdict(p, "<u@badexample.test>", false), POLICY_DENY_RELAY, "label boundary");
	is_int(verdict(p, "<u@example.test.evil.test>", false), POLICY_DENY_RELAY, "suffix");
	is_int(verdict(p, "<alice@mail.example.test>", false), POLICY_LOCAL, "local user");
	is_int(verdict(p, "<ALICE@MAIL.example.test>", false), POLICY_LOCAL, "local user, case");
	is_int(verdict(p, "<bob@mail.example.test>", false), POLICY_UNKNOWN_USER, "unknown");
	is_int(verdict(p, "<postmaster@mail.example.test>", false), POLICY_LOCAL, "postmaster@");
	is_int(verdict(p, "<Postmaster@relay.test>", false), POLICY_LOCAL, "postmaster@host");
	is_int(verdict(p, "<postmaster>", false), POLICY_LOCAL, "bare postmaster");
	is_int(verdict(p, "<alice@local.test>", false), POLICY_LOCAL, "second local domain");
	is_int(verdict(p, "<u@sub.local.test>", false), POLICY_DENY_RELAY,
	    "local-aliases match exactly");
	for (size_t i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++)
		ok(verdict(p, tricks[i], false) == POLICY_DENY_ROUTING,
		    "untrusted trick refused: %s", tricks[i]);
	is_int(verdict(p, "<@a.test:u@outside.test>", true), POLICY_RELAY,
	    "trusted: source route dropped, relayed");
	policy_free(p);
	config_free(cfg);
}

static void
test_aliases_file(void)
{
	char dir[] = "/tmp/test_address.XXXXXX", path[256], conf[512];
	struct config *cfg;
	struct policy *p;
	FILE *f;

	ok(mkdtemp(dir) != NULL, "temp dir");
	snprintf(path, sizeof(path), "%s/aliases", dir);
	f = fopen(path, "w");
	fprintf(f, "# comment\n\nOne.Example.test\n  two.example.test  ! trailing comment\n");
	fclose(f);
	snprintf(conf, sizeof(conf), "relay { local-aliases-file \"%s\"; };", path);
	cfg = load(conf);
	p = cfg != NULL ? policy_new(&cfg->relay) : NULL;
	ok(p != NULL, "aliases file read");
	if (p != NULL) {
		ok(policy_is_local_domain(p, "one.example.test"), "first domain, lower-cased");
		ok(policy_is_local_domain(p, "two.example.test"), "second domain");
		ok(!policy_is_local_domain(p, "three.example.test"), "others are not local");
	}
	policy_free(p);
	config_free(cfg);
	f = fopen(path, "w");
	fprintf(f, "bad..domain\n");
	fclose(f);
	cfg = load(conf);
	ok(cfg != NULL && policy_new(&cfg->relay) == NULL, "a bad domain in the file refused");
	config_free(cfg);
	unlink(path);
	rmdir(dir);
	policy_free(NULL);
}

int
main(void)
{
	log_init("test_address", LOG_LEVEL_ERR, false);
	test_valid();
	test_invalid();
	test_lengths();
	test_policy();
	test_aliases_file();
	return tap_done();
}
