/* auth.c - AUTH credentials, crypt_r checks off the loop, failure limit. */
#include "smtp-relay/auth.h"

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/log.h"
#include "smtp-relay/disk_pool.h"

/* The credentials file is small; a bigger one is a mistake. */
#define AUTH_FILE_MAX (16 * 1024 * 1024)
#define AUTH_HASH_MAX 512

struct user {
	char *name;
	char *hash;
};

struct failures {
	struct addr host; /* len 0: free slot */
	uint64_t first_ms;
	unsigned count;
};

struct auth {
	struct disk_pool *pool;
	struct user *users; /* sorted by name */
	size_t nusers;
	char *text; /* the file; users point into it */
	unsigned pending;
	struct failures clients[AUTH_CLIENTS];
};

struct auth_check {
	struct auth *a;
	auth_done_fn done; /* NULL once cancelled */
	void *arg;
	bool known; /* the user exists (else a stand-in hash is checked) */
	bool ok;
	char hash[AUTH_HASH_MAX + 1];
	char pass[AUTH_PASS_MAX + 1];
};

static int
user_cmp(const void *x, const void *y)
{
	return strcmp(((const struct user *)x)->name, ((const struct user *)y)->name);
}

/* One line "user:hash" (in place); 0, 1 for a line to skip, or -1 with why. */
static int
parse_line(char *line, struct user *u, const char **why)
{
	char *colon, *end = line + strlen(line);

	while (end > line && isspace((unsigned char)end[-1]))
		*--end = '\0';
	while (isspace((unsigned char)*line))
		line++;
	if (*line == '\0' || *line == '#')
		return 1;
	if ((colon = strchr(line, ':')) == NULL || colon == line) {
		*why = "expected user:hash";
		return -1;
	}
	*colon = '\0';
	if (strlen(line) > AUTH_NAME_MAX || strlen(colon + 1) > AUTH_HASH_MAX) {
		*why = "user name or hash too long";
		return -1;
	}
	if (colon[1] != '$') {
		*why = "not a crypt(3) hash such as $y$... (yescrypt), $2b$... or $6$...";
		return -1;
	}
	u->name = line;
	u->hash = colon + 1;
	return 0;
}

/* Parse text (taken over) into a sorted table; -1 with "LINE: why" in err. */
static int
parse_users(char *text, struct user **out, size_t *nout, char *err, size_t errlen)
{
	struct user *users = NULL, u;
	size_t n = 0, cap = 0;
	int lineno = 0;
	const char *why;

	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		int rc = parse_line(line, &u, &why);

		lineno++;
		if (rc == 1)
			continue;
		if (rc == -1) {
			snprintf(err, errlen, "%d: %s", lineno, why);
			free(users);
			return -1;
		}
		if (n == cap) {
			struct user *nu = realloc(users, (cap = cap ? 2 * cap : 16) * sizeof(*nu));

			if (nu == NULL) {
				snprintf(err, errlen, "out of memory");
				free(users);
				return -1;
			}
			users = nu;
		}
		users[n++] = u;
	}
	qsort(users, n, sizeof(*users), user_cmp);
	*out = users;
	*nout = n;
	return 0;
}

/* Load path into a; the old table is replaced only on success. */
static int
load(struct auth *a, const char *path, char *err, size_t errlen)
{
	char why[256];
	size_t len;
	char *text = file_read_all(path, AUTH_FILE_MAX, &len);
	struct user *users;
	size_t n;

	if (text == NULL) {
		snprintf(err, errlen, "auth-file %s: %s", path, strerror(errno));
		return -1;
	}
	if (parse_users(text, &users, &n, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "auth-file %s:%s", path, why);
		explicit_bzero(text, len);
		free(text);
		return -1;
	}
	free(a->users);
	if (a->text != NULL) {
		explicit_bzero(a->text, strlen(a->text));
		free(a->text);
	}
	a->users = users;
	a->nusers = n;
	a->text = text;
	return 0;
}

struct auth *
auth_new(const char *path, struct disk_pool *pool, char *err, size_t errlen)
{
	struct auth *a = calloc(1, sizeof(*a));
	char buf[512];

	if (a == NULL) {
		snprintf(buf, sizeof(buf), "auth: out of memory");
	} else if (load(a, path, buf, sizeof(buf)) == 0) {
		a->pool = pool;
		if (pool != NULL)
			log_info("auth: %s: %zu users", path, a->nusers);
		return a;
	}
	if (err != NULL)
		snprintf(err, errlen, "%s", buf);
	else
		log_warnx("%s", buf);
	auth_free(a);
	return NULL;
}

int
auth_reload(struct auth *a, const char *path)
{
	char err[512];

	if (load(a, path, err, sizeof(err)) == -1) {
		log_warnx("reload: %s: keeping the running users", err);
		return -1;
	}
	log_info("auth: %s: %zu users", path, a->nusers);
	return 0;
}

void
auth_free(struct auth *a)
{
	if (a == NULL)
		return;
	free(a->users);
	if (a->text != NULL) {
		explicit_bzero(a->text, strlen(a->text));
		free(a->text);
	}
	free(a);
}

/* On a pool thread: crypt_r needs its own (large) scratch area. */
static void
check_run(void *arg)
{
	struct auth_check *c = arg;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;

	if (cd != NULL) {
		h = crypt_r(c->pass, c->hash, cd);
		c->ok = c->known && h != NULL && h[0] == '$' && strlen(h) == strlen(c->hash) &&
		    CRYPTO_memcmp(h, c->hash, strlen(h)) == 0;
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	explicit_bzero(c->pass, sizeof(c->pass));
}

/* Back on the loop. */
static void
check_after(void *arg)
{
	struct auth_check *c = arg;

	c->a->pending--;
	if (c->done != NULL)
		c->done(c->ok ? AUTH_OK : AUTH_FAILED, c->arg);
	free(c);
}

struct auth_check *
auth_check(struct auth *a, const char *user, const char *pass, size_t passlen, auth_done_fn done,
    void *arg)
{
	struct user key = {(char *)user, NULL}, *u;
	struct auth_check *c;

	if (a->pending >= AUTH_MAX_PENDING || a->pool == NULL || passlen > AUTH_PASS_MAX ||
	    (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	u = bsearch(&key, a->users, a->nusers, sizeof(*u), user_cmp);
	/* An unknown user costs the same crypt as a known one (the first
	 * user's hash stands in), so timing does not tell who exists. */
	c->known = u != NULL;
	snprintf(c->hash, sizeof(c->hash), "%s",
	    u != NULL ? u->hash : (a->nusers > 0 ? a->users[0].hash : "$6$x$"));
	memcpy(c->pass, pass, passlen);
	c->a = a;
	c->done = done;
	c->arg = arg;
	if (disk_pool_run(a->pool, check_run, check_after, c) == -1) {
		explicit_bzero(c->pass, sizeof(c->pass));
		free(c);
		return NULL;
	}
	a->pending++;
	return c;
}

void
auth_check_cancel(struct auth_check *c)
{
	if (c != NULL)
		c->done = NULL;
}

/* The slot of client's address: its own, else a free or the oldest one. */
static struct failures *
client_slot(struct auth *a, const struct addr *client, bool create)
{
	struct failures *oldest = &a->clients[0];

	for (size_t i = 0; i < AUTH_CLIENTS; i++) {
		struct failures *f = &a->clients[i];

		if (f->host.len != 0 && addr_equal_host(&f->host, client))
			return f;
		if (f->host.len == 0 || f->first_ms < oldest->first_ms)
			oldest = f;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	oldest->host = *client;
	return oldest;
}

bool
auth_is_blocked(struct auth *a, const struct addr *client)
{
	struct failures *f = client_slot(a, client, false);

	if (f == NULL)
		return false;
	if (clock_ms() - f->first_ms >= (uint64_t)AUTH_WINDOW * 1000) {
		memset(f, 0, sizeof(*f));
		return false;
	}
	return f->count >= AUTH_MAX_FAILURES;
}

void
auth_note_result(struct auth *a, const struct addr *client, bool ok)
{
	struct failures *f = client_slot(a, client, !ok);

	if (f == NULL)
		return;
	if (ok) {
		memset(f, 0, sizeof(*f));
		return;
	}
	if (f->count == 0 || clock_ms() - f->first_ms >= (uint64_t)AUTH_WINDOW * 1000) {
		f->first_ms = clock_ms();
		f->count = 0;
	}
	f->count++;
}

long
auth_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax)
{
	unsigned char buf[(AUTH_NAME_MAX + AUTH_PASS_MAX + 8) / 3 * 4 + 4];
	int n;

	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 > sizeof(buf))
		return -1;
	for (size_t i = 0; i < inlen; i++)
		if (!isalnum((unsigned char)in[i]) && in[i] != '+' && in[i] != '/' &&
		    !(in[i] == '=' && i >= inlen - 2 && (i == inlen - 1 || in[inlen - 1] == '=')))
			return -1;
	if ((n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen)) < 0)
		return -1;
	n -= (in[inlen - 1] == '=') + (in[inlen - 2] == '=');
	if (n < 0 || (size_t)n > outmax) {
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	memcpy(out, buf, (size_t)n);
	explicit_bzero(buf, sizeof(buf));
	return n;
}
