/*
 * config.h - the mxbroker configuration: named.conf-style grammar read into
 * typed, validated, immutable structures.
 *
 * One file holds every statement (options, key, broker, zone, cluster,
 * metrics, resolver, relay); each daemon consumes the parts it owns, and all
 * of it is validated by every reader, so `-t` on any daemon checks the whole
 * file.  Parser tokens never leave config.c: callers see only these structs.
 *
 * Defaults are applied by config_load; a field documented "0 = unset" means
 * the statement was absent and has no default.  Relative paths are resolved
 * against `options { directory }`, or the configuration file's own directory
 * when that is absent, so every path here is absolute.
 */
#ifndef MXB_CONFIG_H
#define MXB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/addr.h"

/* Default ports for address statements written without `port N`. */
#define CONFIG_PORT_DNS          53
#define CONFIG_PORT_METRICS      4331
#define CONFIG_PORT_LBCD         4330
#define CONFIG_PORT_BROKER_HTTP  8053
#define CONFIG_PORT_METRICS_HTTP 8431
#define CONFIG_PORT_RELAY_HTTP   8025
#define CONFIG_PORT_SMTP         25
#define CONFIG_PORT_SMTPS        465
#define CONFIG_PORT_SUBMISSION   587

struct config_addrs {
	struct addr *v;
	size_t n;
};

struct config_cidrs {
	struct cidr *v;
	size_t n;
};

struct config_strings {
	char **v;
	size_t n;
};

struct config_options {
	char *directory; /* absolute; default: the config file's folder */
	char *user;      /* NULL = do not change user */
	char *pid_file;  /* NULL = none */
	bool syslog;     /* default no: log to stderr */
	int log_level;   /* enum log_level, default info */
};

enum config_hmac {
	CONFIG_HMAC_MD5,
	CONFIG_HMAC_SHA1,
	CONFIG_HMAC_SHA224,
	CONFIG_HMAC_SHA256,
	CONFIG_HMAC_SHA384,
	CONFIG_HMAC_SHA512,
};

struct config_key {
	char *name; /* lower case, as a DNS name for TSIG */
	enum config_hmac algorithm;
	const char *algorithm_name; /* "hmac-sha256", ... */
	char *secret_b64;           /* as written, for ldns TSIG */
	uint8_t *secret;            /* decoded */
	size_t secret_len;
};

/*
 * One element of a transfer ACL (allow-transfer): `PREFIX;`, `PREFIX key
 * "NAME";` or `key "NAME";`.  It matches a request whose source lies in
 * `net` (any source when any_addr) and, when `key` is set, that carries a
 * valid TSIG made with that key.  A request is allowed when some element
 * matches (NSD's provide-xfr: ADDR KEY, one pair per element).
 */
struct config_acl_entry {
	struct cidr net;
	bool any_addr;                /* `key "NAME";` alone: from anywhere */
	const struct config_key *key; /* NULL = no TSIG needed */
};

struct config_acl {
	struct config_acl_entry *v;
	size_t n;
};

/* Online-prepared DNSSEC of one zone (zone { dnssec { } }, docs/dnssec.md). */
struct config_dnssec {
	bool enabled;              /* a dnssec block was given */
	char *key_directory;       /* absolute; K<zone>.+alg+tag.key/.private */
	unsigned validity;         /* seconds, default 14 days */
	unsigned refresh;          /* seconds between re-signings, default 7 days */
	unsigned inception_offset; /* seconds back-dated, default 1 hour */
};

struct config_zone {
	char *name;                       /* lower case, no trailing dot */
	char *file;                       /* absolute */
	struct config_acl allow_transfer; /* empty = nobody */
	struct config_addrs also_notify;  /* default port 53 */
	/* The TSIG key of each also-notify address (`ADDR [port N] key "NAME"`),
	 * parallel to also_notify.v; an element NULL = unsigned NOTIFY. */
	const struct config_key **also_notify_keys;
	int line; /* where the zone statement begins */
	/* Source of this zone's NOTIFY messages: the zone's own `notify-source`,
	 * else the broker's; len 0 = unset (the sender picks); port 0 = any. */
	struct addr notify_source;
	struct config_dnssec dnssec;
};

/* Response rate limiting of UDP answers (broker { rate-limit { } }). */
struct config_rrl {
	unsigned responses_per_second; /* per client prefix; 0 = off (default) */
	unsigned slip;        /* every Nth limited answer goes out TC; 0 = never; default 2 */
	unsigned ipv4_prefix; /* default 24 */
	unsigned ipv6_prefix; /* default 56 */
	unsigned table_size;  /* prefixes tracked per UDP thread, default 16384 */
};

struct config_broker {
	bool present;
	struct config_addrs listen; /* default 0.0.0.0 and :: port 53 */
	unsigned threads;           /* 1..64, default 1 */
	struct addr status_listen;  /* len 0 = no status endpoint */
	unsigned tcp_idle_timeout;  /* seconds, default 10 */
	unsigned tcp_max_clients;   /* default 1000 */
	char *state_file;           /* default <directory>/brokerd.state */
	char *control_socket;       /* brokerd-ctl's socket, default <directory>/brokerd.sock */
	struct addr notify_source;  /* len 0 = unset; port 0 = any; zones inherit it */
	struct config_rrl rrl;
	struct config_zone *zones;
	size_t nzones;
};

enum config_cluster_protocol {
	CONFIG_PROTO_NATIVE, /* metricd poll protocol */
	CONFIG_PROTO_LBCD,   /* lbcd v3 */
};

enum config_health {
	CONFIG_HEALTH_NONE,
	CONFIG_HEALTH_TCP,  /* a TCP connect must succeed */
	CONFIG_HEALTH_SMTP, /* the peer must send a 220 banner */
};

enum config_policy {
	CONFIG_POLICY_RANKED,   /* top max-members by rating */
	CONFIG_POLICY_WEIGHTED, /* rating scaled by weight */
};

struct config_member {
	struct addr addr;  /* answered address, port 0 */
	struct addr check; /* polled/checked address; = addr unless `check` */
	unsigned weight;   /* 1..1000, default 1 */
	bool drain;        /* operator-drained: never published */
};

struct config_cluster {
	char *name;                  /* lower case, no trailing dot */
	unsigned dns_ttl;            /* default 45, 0 allowed */
	unsigned dns_refresh;        /* seconds, default 30 */
	unsigned polling_interval;   /* seconds, default 30 */
	unsigned max_members;        /* default 3 */
	struct config_addrs masters; /* RFC 2136 primaries, default port 53 */
	struct config_member *members;
	size_t nmembers;
	struct addr failover4;        /* len 0 = none */
	struct addr failover6;        /* len 0 = none */
	uint16_t metric_port;         /* default 4331 (native) or 4330 (lbcd) */
	const struct config_key *key; /* NULL = unsigned polls */
	enum config_cluster_protocol protocol;
	enum config_health health;
	uint16_t health_port;
	unsigned hysteresis; /* rating points a challenger must win by, default 5 */
	enum config_policy policy;
	unsigned fall; /* unanswered polls before down, default 3 */
	unsigned rise; /* good polls before up, default 1 */
	int line;
};

struct config_metrics {
	bool present;
	struct config_addrs listen; /* default 0.0.0.0 and :: port 4331 */
	struct addr http_listen;    /* len 0 = none */
	struct addr lbcd_listen;    /* len 0 = do not answer lbcd */
	unsigned compute_interval;  /* 1..300, default 10 */
	unsigned cpu_rating;        /* 0..100, default 0 = derive */
	unsigned capacity;          /* default 100 */
	unsigned sessions;          /* configured sessions, default 0 */
	uint64_t memory_goal;       /* bytes, default 0 */
	struct addr relay_status;   /* len 0 = none */
	const struct config_key *key;
	char *drain_file; /* default <directory>/metricd.drain */
};

struct config_resolver {
	bool present;
	struct config_addrs nameservers; /* empty = /etc/resolv.conf */
	char *local_mx;                  /* NULL = none */
	char *hosts;                     /* default /etc/hosts */
	struct config_strings zones;     /* lower case */
	char *gateway;                   /* NULL = none; "[192.0.2.1]" literal */
	unsigned timeout;                /* seconds, default 5 */
	unsigned attempts;               /* default 2 */
	unsigned cache_size;             /* entries, default 10000 */
	/* The nameservers validate DNSSEC and the path to them is trusted
	 * (loopback): queries set DO and the AD bit of answers is believed
	 * (DANE needs it).  Default no: AD is ignored. */
	bool dnssec_validating;
};

/* Address family of outbound connections (relay { outbound-family }). */
enum config_family {
	CONFIG_FAMILY_ANY,  /* both, in the resolver's order (default) */
	CONFIG_FAMILY_IPV4, /* IPv4 only */
	CONFIG_FAMILY_IPV6, /* IPv6 only */
};

/* The relay's server certificate (relay { tls { } }); absent: no TLS inbound. */
struct config_relay_tls {
	bool present;
	char *certificate;  /* PEM chain, leaf first; required */
	char *key;          /* PEM private key; required */
	char *ciphers;      /* TLS 1.2 cipher list; NULL = OpenSSL's default */
	char *ciphersuites; /* TLS 1.3 suites; NULL = OpenSSL's default */
};

/* Outbound TLS levels (relay { tls-policy }), weakest first. */
enum config_tls_level {
	CONFIG_TLS_NONE,      /* never STARTTLS */
	CONFIG_TLS_MAY,       /* STARTTLS when offered, no certificate check */
	CONFIG_TLS_ENCRYPT,   /* TLS required, no certificate check */
	CONFIG_TLS_VERIFY,    /* TLS required, chain and MX host name checked */
	CONFIG_TLS_DANE,      /* DANE when the hop has secure TLSA, else may */
	CONFIG_TLS_DANE_ONLY, /* DANE required: no usable TLSA = defer */
};

/* "none", "may", ... indexed by enum config_tls_level; NULL-terminated. */
extern const char *const config_tls_level_names[];

/* One relay { tls-policy "domain" LEVEL; }: ".example.com" = subdomains. */
struct config_tls_policy {
	char *domain; /* lower case */
	enum config_tls_level level;
};

struct config_relay {
	bool present;
	struct config_addrs listen; /* default 0.0.0.0 and :: port 25 */
	/* Implicit TLS (port 465 style) and submission (587 style: STARTTLS,
	 * AUTH after it); both empty by default and both need `tls`. */
	struct config_addrs smtps_listen;
	struct config_addrs submission_listen;
	struct config_relay_tls tls;
	char *auth_file;     /* "user:crypt-hash" lines; NULL = no AUTH */
	bool auth_on_listen; /* also offer AUTH (after STARTTLS) on `listen`; default no */
	char *hostname;      /* default: gethostname() */
	struct config_strings local_aliases; /* lower case */
	char *local_aliases_file;
	struct config_strings relay_domains;
	struct config_cidrs trusted_networks; /* default 127.0.0.0/8, ::1 */
	char *queue_directory;                /* default <directory>/spool */
	char *maildir_root;                   /* default <directory>/mail */
	struct config_strings users;          /* empty = any local part */
	uint64_t max_message_size;            /* default 10M */
	unsigned max_recipients;              /* default 100 */
	unsigned max_sessions;                /* default 100 */
	unsigned max_sessions_per_client;     /* default 10 */
	unsigned command_timeout;             /* default 300 s (RFC 5321 4.5.3.2) */
	unsigned data_timeout;                /* default 600 s */
	unsigned retry_interval;              /* default 30m */
	unsigned max_retry_interval;          /* default 4h */
	unsigned queue_lifetime;              /* default 5d */
	unsigned delay_warning;               /* default 0 = no delay notices */
	unsigned max_deliveries;              /* concurrent, default 20 */
	unsigned max_per_destination;         /* concurrent, default 4 */
	uint16_t remote_port;                 /* default 25 */
	bool hold_delivery;                   /* default no: queue only, deliver nothing */
	char *postmaster;                     /* default postmaster@<hostname> */
	char *control_socket;                 /* default <directory>/smtp-relayd.sock */
	struct addr status_listen;            /* len 0 = none */
	/* Free bytes the queue's file system must keep; below it new mail gets
	 * 452 4.3.1.  Default 1.5 x max_message_size; 0 = no check. */
	uint64_t queue_min_free;
	/* Messages the queue may hold; beyond it new mail gets 452 4.3.1 as
	 * for queue_min_free.  Default 100000; 0 = no limit. */
	unsigned queue_max_messages;
	enum config_family outbound_family; /* default CONFIG_FAMILY_ANY */
	/* Source addresses of outbound connections, one per family; len 0 =
	 * the kernel's choice; port always 0. */
	struct addr outbound_source4, outbound_source6;
	unsigned connection_reuse_time;  /* idle seconds, default 2; 0 = no reuse */
	unsigned connection_reuse_limit; /* messages per connection, default 100 */
	/* Slow start: concurrent deliveries a destination begins with, growing
	 * up to max_per_destination on success.  Default 2. */
	unsigned initial_destination_concurrency;
	unsigned destination_rate_delay; /* seconds between deliveries to one hop, default 0 */
	/* Outbound TLS: per-domain levels (in order written), a policy file of
	 * "domain level" lines, the default (index into "auto", then the
	 * levels: auto = dane when resolver { dnssec-validating }, else may)
	 * and the CA file for `verify` (NULL = the system store). */
	struct config_tls_policy *tls_policies;
	size_t ntls_policies;
	char *tls_policy_file;
	int tls_default_policy; /* 0 = auto, else CONFIG_TLS_* + 1 */
	char *tls_ca_file;
	/* MTA-STS (RFC 8461, smtp-relay/mta_sts.h): honour the policies
	 * recipient domains publish.  Default yes. */
	bool mta_sts;
	char *mta_sts_cache;         /* policy cache folder, default <directory>/mta-sts */
	char *mta_sts_ca_file;       /* NULL = the system trust store */
	uint16_t mta_sts_port;       /* HTTPS port of the policy hosts, default 443 */
	unsigned mta_sts_cache_size; /* policies kept in memory, default 1000 */
};

/* Private to config.c: where the statement that set a field was written. */
struct config_where {
	const void *field;
	const char *file;
	int line;
};

/* The parts of the file each daemon uses (options and keys: all of them). */
#define CONFIG_PART_BROKER  0x1u /* broker, cluster: brokerd */
#define CONFIG_PART_METRICS 0x2u /* metrics: metricd */
#define CONFIG_PART_RELAY   0x4u /* resolver, relay: smtp-relayd */
#define CONFIG_PART_ALL     0x7u

struct config {
	char *path; /* the file given to config_load */
	struct config_options options;
	struct config_key *keys;
	size_t nkeys;
	struct config_broker broker;
	struct config_cluster *clusters;
	size_t nclusters;
	struct config_metrics metrics;
	struct config_resolver resolver;
	struct config_relay relay;
	struct config_where *where; /* private: see config_where */
	size_t nwhere;
	struct arena *arena; /* private: owns all of the above */
};

/*
 * Read and validate `path`.  On success returns a new configuration (free
 * with config_free).  On failure returns NULL and writes one message of the
 * form "file:line: what is wrong" into err (never logged here).
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/* Same, from a string; `name` is used as the file name in messages and
 * relative paths resolve against the current directory. */
struct config *config_load_string(const char *name, const char *text, char *err, size_t errlen);

void config_free(struct config *cfg);

/* Borrowed lookups; NULL when absent.  Names compare case-insensitively. */
const struct config_key *config_key_find(const struct config *cfg, const char *name);
const struct config_zone *config_zone_find(const struct config *cfg, const char *name);

/*
 * The line of the statement that set `field` (the address of a member of a
 * section of cfg: &cfg->relay.queue_directory), or 0 when the statement was
 * not written (a default); config_where_file gives its file (cfg->path when
 * not written).  For messages about values: "file:line: ...".
 */
int config_where(const struct config *cfg, const void *field);
const char *config_where_file(const struct config *cfg, const void *field);

/*
 * Print the effective configuration of the parts in `parts` (CONFIG_PART_*)
 * to out, in the grammar config_load reads: options and keys, then each
 * statement of those parts with its default filled in and paths absolute.
 * Key secrets are printed as "<hidden>" unless show_secrets.  Reading the
 * output again (with show_secrets) gives the same configuration.
 */
void config_print(const struct config *cfg, unsigned parts, bool show_secrets, FILE *out);

/*
 * Print every statement of the grammar, one per line, tab-separated:
 * block, statement, type, default (as written; "(...)" when derived; "-"
 * when none), range ("MIN..MAX" or "-"), "repeat" or "once".  The tables
 * behind it are the one place defaults and ranges are kept; the
 * documentation is checked against this output.
 */
void config_grammar_print(FILE *out);

/*
 * Value parsers shared with command-line handling (all return 0 or -1):
 * durations "30", "30s", "5m", "2h", "5d", "1w"; sizes "512", "64K", "10M",
 * "1G" (binary multiples).
 */
int config_parse_duration(const char *s, unsigned *out);
int config_parse_size(const char *s, uint64_t *out);

#endif
