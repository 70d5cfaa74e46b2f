/*
 * config_check.c - the environment checks of -t and the configuration
 * warnings.  Modes are judged the way the kernel does for a process of the
 * run user (owner, then group, then other bits; ACLs are not read), so a
 * check made as root before the privilege drop answers for the daemon after.
 */
#include "common/config_check.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/tls.h"

#include <openssl/ssl.h>

#include <openssl/err.h>
#include <openssl/x509.h>

void
check_user_init(struct check_user *u, const char *user)
{
	const struct passwd *pw;

	memset(u, 0, sizeof(*u));
	u->is_root = geteuid() == 0;
	u->uid = geteuid();
	snprintf(u->name, sizeof(u->name), "uid %u", (unsigned)u->uid);
	if (!u->is_root || user == NULL || (pw = getpwnam(user)) == NULL || pw->pw_uid == 0)
		return;
	u->by_mode = true;
	u->uid = pw->pw_uid;
	u->ngids = CHECK_MAX_GROUPS;
	if (getgrouplist(pw->pw_name, pw->pw_gid, u->gids, &u->ngids) == -1) {
		u->gids[0] = pw->pw_gid;
		u->ngids = 1;
	}
	snprintf(u->name, sizeof(u->name), "user %s", pw->pw_name);
}

/* The permission bits (4 read, 2 write, 1 search) that apply to u for st. */
static bool
mode_allows(const struct check_user *u, const struct stat *st, unsigned want)
{
	unsigned bits = st->st_mode & 07;

	if (st->st_uid == u->uid)
		bits = (st->st_mode >> 6) & 07;
	else
		for (int i = 0; i < u->ngids; i++)
			if (u->gids[i] == st->st_gid) {
				bits = (st->st_mode >> 3) & 07;
				break;
			}
	return (bits & want) == want;
}

/* Every folder above `path` must be searchable by u. */
static int
ancestors_searchable(const struct check_user *u, const char *path, char *why, size_t len)
{
	char dir[PATH_MAX];
	struct stat st;

	for (const char *p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		snprintf(dir, sizeof(dir), "%.*s", (int)(p - path), path);
		if (stat(dir, &st) == 0 && !mode_allows(u, &st, 1)) {
			snprintf(why, len, "%s cannot enter %s (mode %04o, owner %u)", u->name, dir,
			    (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
			return -1;
		}
	}
	if (stat("/", &st) == 0 && !mode_allows(u, &st, 1)) {
		snprintf(why, len, "%s cannot enter /", u->name);
		return -1;
	}
	return 0;
}

/* stat plus the judgement for `want` on the object itself, by mode or probe. */
static int
check_access(
    const struct check_user *u, const char *path, unsigned want, bool dir, char *why, size_t len)
{
	struct stat st;
	int mode = (want & 4 ? R_OK : 0) | (want & 2 ? W_OK : 0) | (want & 1 ? X_OK : 0);

	if (stat(path, &st) == -1) {
		snprintf(why, len, "%s", strerror(errno));
		return -1;
	}
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
		snprintf(why, len, "not a %s", dir ? "folder" : "regular file");
		return -1;
	}
	if (!u->by_mode) {
		if (faccessat(AT_FDCWD, path, mode, AT_EACCESS) == 0)
			return 0;
		snprintf(why, len, "%s: %s", u->name, strerror(errno));
		return -1;
	}
	if (ancestors_searchable(u, path, why, len) == -1)
		return -1;
	if (!mode_allows(u, &st, want)) {
		snprintf(why, len, "%s cannot %s it (mode %04o, owner %u, group %u)", u->name,
		    dir ? ((want & 2) ? "create files in" : "list") : "read",
		    (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)st.st_gid);
		return -1;
	}
	return 0;
}

int
check_can_read(const struct check_user *u, const char *path, char *why, size_t len)
{
	return check_access(u, path, 4, false, why, len);
}

int
check_can_write_dir(const struct check_user *u, const char *dir, char *why, size_t len)
{
	return check_access(u, dir, 2 | 1, true, why, len);
}

/* ---- the daemons' statements ------------------------------------------ */

struct env {
	const struct config *cfg;
	const char *prog;
	struct check_user user;
	int rc;
};

/* "prog: file:line: what PATH: why" for the statement that set `field`. */
static void __attribute__((format(printf, 3, 4)))
env_error(struct env *e, const void *field, const char *fmt, ...)
{
	int line = config_where(e->cfg, field);
	va_list ap;

	fprintf(stderr, "%s: %s", e->prog, config_where_file(e->cfg, field));
	if (line > 0)
		fprintf(stderr, ":%d", line);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	e->rc = -1;
}

static void
need_readable(struct env *e, const char *const *field, const char *what)
{
	char why[512];

	if (*field != NULL && check_can_read(&e->user, *field, why, sizeof(why)) == -1)
		env_error(e, field, "%s %s: %s", what, *field, why);
}

/* The folder of `path` (a copy in buf). */
static const char *
dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return ".";
	if (slash == path)
		return "/";
	snprintf(buf, len, "%.*s", (int)(slash - path), path);
	return buf;
}

/* The run user must create files in the folder of `*field` (written after the drop). */
static void
need_writable_folder(struct env *e, const char *const *field, const char *what)
{
	char dir[PATH_MAX], why[512];

	if (*field == NULL)
		return;
	if (check_can_write_dir(&e->user, dir_of(*field, dir, sizeof(dir)), why, sizeof(why)) == -1)
		env_error(e, field, "%s %s: folder %s: %s", what, *field, dir, why);
}

/*
 * A folder or socket the daemon makes while still root and then hands to
 * the run user (queue, Maildir root, control socket): as root its parent
 * must exist; otherwise this user must be able to write it, or create it.
 */
static void
need_creatable(struct env *e, const char *const *field, const char *what, bool is_dir)
{
	char parent[PATH_MAX], why[512];
	const char *path = *field;
	struct stat st;

	if (path == NULL)
		return;
	dir_of(path, parent, sizeof(parent));
	if (is_dir && stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			env_error(e, field, "%s %s: not a folder", what, path);
		else if (!e->user.is_root &&
		    check_can_write_dir(&e->user, path, why, sizeof(why)) == -1)
			env_error(e, field, "%s %s: %s", what, path, why);
		return;
	}
	if (e->user.is_root) {
		if (stat(parent, &st) == -1 || !S_ISDIR(st.st_mode))
			env_error(e, field, "%s %s: folder %s: %s", what, path, parent,
			    stat(parent, &st) == -1 ? strerror(errno) : "not a folder");
		return;
	}
	if (check_can_write_dir(&e->user, parent, why, sizeof(why)) == -1)
		env_error(e, field, "%s %s: folder %s: %s", what, path, parent, why);
}

static void
check_broker(struct env *e)
{
	const struct config *cfg = e->cfg;
	char why[512];

	for (size_t i = 0; i < cfg->broker.nzones; i++) {
		const struct config_zone *z = &cfg->broker.zones[i];

		if (check_can_read(&e->user, z->file, why, sizeof(why)) == -1) {
			fprintf(stderr, "%s: %s:%d: zone '%s': file %s: %s\n", e->prog, cfg->path,
			    z->line, z->name, z->file, why);
			e->rc = -1;
		}
		if (z->dnssec.enabled &&
		    check_access(
		        &e->user, z->dnssec.key_directory, 4 | 1, true, why, sizeof(why)) == -1) {
			fprintf(stderr, "%s: %s:%d: zone '%s': dnssec key-directory %s: %s\n",
			    e->prog, cfg->path, z->line, z->name, z->dnssec.key_directory, why);
			e->rc = -1;
		}
	}
	if (cfg->broker.nzones > 0 || cfg->nclusters > 0)
		need_creatable(e, (const char *const *)&cfg->broker.control_socket,
		    "broker: control-socket", false);
}

/*
 * relay { tls { } }: both files readable by the run user (a reload reads
 * them after the privilege drop), then loaded to see that they are PEM and
 * belong together.
 */
static void
check_relay_tls(struct env *e)
{
	const struct config_relay_tls *t = &e->cfg->relay.tls;
	char err[768];
	int rc = e->rc;
	SSL_CTX *ctx;

	if (!t->present)
		return;
	e->rc = 0;
	need_readable(e, (const char *const *)&t->certificate, "relay: tls: certificate");
	need_readable(e, (const char *const *)&t->key, "relay: tls: key");
	if (e->rc == 0 && tls_init() == 0) {
		if ((ctx = tls_ctx_new(true, err, sizeof(err))) == NULL ||
		    tls_ctx_load_cert(ctx, t->certificate, t->key, err, sizeof(err)) == -1 ||
		    tls_ctx_set_ciphers(ctx, t->ciphers, t->ciphersuites, err, sizeof(err)) == -1)
			env_error(e, &t->key, "relay: tls: %s", err);
		SSL_CTX_free(ctx);
	}
	if (rc == -1)
		e->rc = -1;
}

/* A level name, case-insensitive: its index, or -1. */
static int
config_enum_index_ci(const char *name)
{
	for (int i = 0; config_tls_level_names[i] != NULL; i++)
		if (strcasecmp(config_tls_level_names[i], name) == 0)
			return i;
	return -1;
}

int
config_tls_policy_file_read(const char *path,
    int (*fn)(const char *domain, int level, int line, void *arg), void *arg, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[1024], dom[300], lvl[32], extra[2];
	int no = 0, rc = 0;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
		char *hash = strchr(line, '#');
		int n, l;

		no++;
		if (hash != NULL)
			*hash = '\0';
		n = sscanf(line, "%299s %31s %1s", dom, lvl, extra);
		if (n <= 0)
			continue;
		if (n != 2) {
			snprintf(err, errlen, "%s:%d: want \"domain level\"", path, no);
			rc = -1;
		} else if ((l = config_enum_index_ci(lvl)) < 0) {
			snprintf(err, errlen,
			    "%s:%d: unknown level '%s' (none, may, encrypt, verify, dane, "
			    "dane-only)",
			    path, no, lvl);
			rc = -1;
		} else {
			for (char *p = dom; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			if (dom[0] != '.' && strlen(dom) > 1 && dom[strlen(dom) - 1] == '.')
				dom[strlen(dom) - 1] = '\0';
			if (fn(dom, l, no, arg) == -1) {
				snprintf(err, errlen, "%s:%d: out of memory", path, no);
				rc = -1;
			}
		}
	}
	fclose(f);
	return rc;
}

static int
policy_entry_ok(const char *domain, int level, int line, void *arg)
{
	(void)domain;
	(void)level;
	(void)line;
	(void)arg;
	return 0;
}

/* The CA file must hold at least one certificate OpenSSL can load. */
static void
check_ca_file(struct env *e, char *const *field)
{
	X509_STORE *st;

	if (*field == NULL || access(*field, R_OK) != 0 || (st = X509_STORE_new()) == NULL)
		return; /* need_readable said why */
	if (X509_STORE_load_file(st, *field) != 1) {
		char buf[256] = "no certificate found";
		unsigned long err = ERR_get_error();

		if (err != 0)
			ERR_error_string_n(err, buf, sizeof(buf));
		ERR_clear_error();
		env_error(e, field, "relay: tls-ca-file %s: %s", *field, buf);
	}
	X509_STORE_free(st);
}

static void
check_relay(struct env *e)
{
	const struct config_resolver *res = &e->cfg->resolver;
	const struct config_relay *r = &e->cfg->relay;

	need_readable(e, (const char *const *)&res->local_mx, "resolver: local-mx");
	need_readable(e, (const char *const *)&res->hosts, "resolver: hosts");
	need_readable(e, (const char *const *)&r->local_aliases_file, "relay: local-aliases-file");
	need_readable(e, (const char *const *)&r->auth_file, "relay: auth-file");
	check_relay_tls(e);
	need_readable(e, (const char *const *)&r->tls_policy_file, "relay: tls-policy-file");
	need_readable(e, (const char *const *)&r->tls_ca_file, "relay: tls-ca-file");
	check_ca_file(e, &r->tls_ca_file);
	if (r->tls_policy_file != NULL) {
		char why[600];

		if (config_tls_policy_file_read(
		        r->tls_policy_file, policy_entry_ok, NULL, why, sizeof(why)) == -1)
			env_error(e, &r->tls_policy_file, "relay: tls-policy-file: %s", why);
	}
	need_creatable(e, (const char *const *)&r->queue_directory, "relay: queue-directory", true);
	need_creatable(e, (const char *const *)&r->maildir_root, "relay: maildir-root", true);
	need_creatable(e, (const char *const *)&r->control_socket, "relay: control-socket", false);
	if (r->mta_sts) {
		need_readable(
		    e, (const char *const *)&r->mta_sts_ca_file, "relay: mta-sts-ca-file");
		need_creatable(
		    e, (const char *const *)&r->mta_sts_cache, "relay: mta-sts-cache", true);
	}
}

int
config_check_env(const struct config *cfg, unsigned parts, const char *prog)
{
	struct env e = {cfg, prog, {0}, 0};

	check_user_init(&e.user, cfg->options.user);
	need_writable_folder(&e, (const char *const *)&cfg->options.pid_file, "options: pid-file");
	if (parts & CONFIG_PART_BROKER)
		check_broker(&e);
	if (parts & CONFIG_PART_METRICS)
		need_writable_folder(
		    &e, (const char *const *)&cfg->metrics.drain_file, "metrics: drain-file");
	if (parts & CONFIG_PART_RELAY)
		check_relay(&e);
	return e.rc;
}

/* ---- warnings ---------------------------------------------------------- */

struct warn_ctx {
	const struct config *cfg;
	void (*warn)(void *, const char *);
	void *arg;
	int n;
};

static void __attribute__((format(printf, 4, 5)))
warning(struct warn_ctx *w, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	int n;
	va_list ap;

	n = line > 0 ? snprintf(msg, sizeof(msg), "%s:%d: warning: ", file, line)
	             : snprintf(msg, sizeof(msg), "%s: warning: ", file);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	w->warn(w->arg, msg);
	w->n++;
}

/* Is `name` at or below a zone that brokerd serves? */
static bool
in_served_zone(const struct config *cfg, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < cfg->broker.nzones; i++) {
		const char *z = cfg->broker.zones[i].name;
		size_t zl = strlen(z);

		if (strcmp(name, z) == 0 ||
		    (nl > zl && name[nl - zl - 1] == '.' && strcmp(name + nl - zl, z) == 0))
			return true;
	}
	return false;
}

static void
warn_key(struct warn_ctx *w, const struct config_key *k, const void *field, const char *user)
{
	if (k == NULL || strcmp(k->secret_b64, CONFIG_EXAMPLE_SECRET) != 0)
		return;
	warning(w, config_where_file(w->cfg, field), config_where(w->cfg, field),
	    "%s: key '%s' has the secret of the reference example, which is public "
	    "(make one with: openssl rand -base64 32)",
	    user, k->name);
}

static void
warn_clusters(struct warn_ctx *w)
{
	const struct config *cfg = w->cfg;

	for (size_t i = 0; i < cfg->nclusters; i++) {
		const struct config_cluster *cl = &cfg->clusters[i];
		char who[300];

		if (cl->dns_refresh > cl->dns_ttl)
			warning(w, cfg->path, cl->line,
			    "cluster '%s': dns-refresh (%us) is longer than dns-ttl (%us): "
			    "resolvers keep answers that brokerd has already replaced",
			    cl->name, cl->dns_refresh, cl->dns_ttl);
		if (cl->masters.n == 0 && !in_served_zone(cfg, cl->name))
			warning(w, cfg->path, cl->line,
			    "cluster '%s' is in no zone this broker serves and has no masters: "
			    "its answers reach nobody (add a broker zone above it or masters)",
			    cl->name);
		snprintf(who, sizeof(who), "cluster '%s'", cl->name);
		if (cl->key != NULL && strcmp(cl->key->secret_b64, CONFIG_EXAMPLE_SECRET) == 0)
			warning(w, cfg->path, cl->line,
			    "%s: key '%s' has the secret of the reference example, which is public "
			    "(make one with: openssl rand -base64 32)",
			    who, cl->key->name);
	}
}

static void
warn_relay(struct warn_ctx *w)
{
	const struct config_cidrs *t = &w->cfg->relay.trusted_networks;

	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].prefix == 0) {
			char buf[ADDR_STRLEN + 8];

			warning(w, config_where_file(w->cfg, t), config_where(w->cfg, t),
			    "relay: trusted-networks contains %s: anyone may relay through this "
			    "host (an open relay)",
			    cidr_str(&t->v[i], buf, sizeof(buf)));
		}
}

/*
 * A transfer ACL with a bare address and a key: the elements are
 * alternatives, so that address may transfer unsigned, which a BIND habit
 * (`{ key "k"; 192.0.2.1; }` read as "both") would not expect.
 */
static void
warn_transfer_acls(struct warn_ctx *w)
{
	const struct config *cfg = w->cfg;

	for (size_t i = 0; i < cfg->broker.nzones; i++) {
		const struct config_zone *z = &cfg->broker.zones[i];
		const struct config_acl_entry *bare = NULL, *keyed = NULL;
		char buf[ADDR_STRLEN + 8];

		for (size_t k = 0; k < z->allow_transfer.n; k++) {
			const struct config_acl_entry *e = &z->allow_transfer.v[k];

			if (e->key != NULL)
				keyed = e;
			else if (bare == NULL)
				bare = e;
		}
		if (bare == NULL || keyed == NULL)
			continue;
		warning(w, config_where_file(cfg, &z->allow_transfer),
		    config_where(cfg, &z->allow_transfer),
		    "zone '%s': allow-transfer lets %s transfer without a TSIG although it names "
		    "key '%s' (elements are alternatives; write '%s key \"%s\";' to need both)",
		    z->name, cidr_str(&bare->net, buf, sizeof(buf)), keyed->key->name, buf,
		    keyed->key->name);
	}
}

int
config_warnings(
    const struct config *cfg, unsigned parts, void (*warn)(void *arg, const char *msg), void *arg)
{
	struct warn_ctx w = {cfg, warn, arg, 0};

	if (parts & CONFIG_PART_BROKER) {
		warn_clusters(&w);
		warn_transfer_acls(&w);
	}
	if (parts & CONFIG_PART_METRICS)
		warn_key(&w, cfg->metrics.key, &cfg->metrics.key, "metrics");
	if (parts & CONFIG_PART_RELAY)
		warn_relay(&w);
	return w.n;
}
