/* queue.c - the crash-safe file queue (format: docs/queue-format.md). */
#include "smtp-relay/queue.h"
#include "smtp-relay/queue_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/fileio.h"
#include "common/log.h"

#define QUEUE_MAGIC       "MXBQ1"
#define QUEUE_TRAILER_LEN 13 /* "END xxxxxxxx\n" */
#define QUEUE_HEADER_MAX  64
/* A sanity bound for envelopes: 100,000 recipients of 256 octets and state. */
#define QUEUE_ENVELOPE_MAX (64u << 20)
/* The file queue_probe writes in tmp/ (never a queue ID: recovery removes it). */
#define QUEUE_PROBE_NAME "probe"
/* A spool is tmp/<id>.data (never a queue ID: recovery removes it). */
#define QUEUE_SPOOL_SUFFIX ".data"
/* What a commit copies from a spool at a time (on a worker thread). */
#define QUEUE_COPY_CHUNK (64 * 1024)

/* The content of one message as it arrives, in tmp/<id>.data. */
struct queue_spool {
	struct queue *q;
	int fd;
	uint64_t size; /* octets written so far */
	char name[QUEUE_ID_LEN + sizeof(QUEUE_SPOOL_SUFFIX)];
};

static const char *const rcpt_state_names[] = {"pending", "delivered", "failed"};

const char *
queue_strerror(enum queue_status st)
{
	switch (st) {
	case QUEUE_OK: return "ok";
	case QUEUE_ENOTFOUND: return "no such message";
	case QUEUE_ECORRUPT: return "damaged queue file";
	case QUEUE_EIO: return "input/output error";
	}
	return "unknown error";
}

const char *
queue_rcpt_state_name(enum queue_rcpt_state st)
{
	return (unsigned)st < 3 ? rcpt_state_names[st] : "?";
}

/* ---- CRC-32 (reflected, polynomial 0xEDB88320), table built on first use ---- */

static uint32_t crc_table[256];

static void
crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t
queue_crc32(uint32_t crc, const void *data, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const unsigned char *p = data;

	pthread_once(&once, crc_init);
	crc = ~crc;
	while (len-- > 0)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---- directories ---- */

static int
open_subdir(int dirfd, const char *base, const char *name, bool create)
{
	int fd;

	if (create && mkdirat(dirfd, name, 0700) == -1 && errno != EEXIST) {
		log_warn("queue: mkdir %s/%s", base, name);
		return -1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		log_warn("queue: open %s/%s", base, name);
	return fd;
}

struct queue *
queue_open(const char *dir, bool create)
{
	struct queue *q = calloc(1, sizeof(*q));
	int top = -1;

	if (q == NULL || (q->dir = strdup(dir)) == NULL) {
		log_warnx("queue: out of memory");
		free(q);
		return NULL;
	}
	q->tmpfd = q->queuefd = q->corruptfd = -1;
	pthread_mutex_init(&q->dirsync.lock, NULL);
	pthread_cond_init(&q->dirsync.cond, NULL);
	pthread_mutex_init(&q->spares.lock, NULL);
	if (create && mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_warn("queue: mkdir %s", dir);
		goto fail;
	}
	if ((top = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("queue: open %s", dir);
		goto fail;
	}
	if ((q->tmpfd = open_subdir(top, dir, "tmp", create)) == -1 ||
	    (q->queuefd = open_subdir(top, dir, "queue", create)) == -1 ||
	    (q->corruptfd = open_subdir(top, dir, "corrupt", create)) == -1)
		goto fail;
	if (create)
		fsync(top);
	close(top);
	return q;
fail:
	if (top != -1)
		close(top);
	queue_close(q);
	return NULL;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->tmpfd != -1)
		close(q->tmpfd);
	if (q->queuefd != -1) {
		if (q->dirsync.finished < q->dirsync.lazy)
			fsync(q->queuefd);
		close(q->queuefd);
	}
	if (q->corruptfd != -1)
		close(q->corruptfd);
	pthread_mutex_destroy(&q->dirsync.lock);
	pthread_cond_destroy(&q->dirsync.cond);
	pthread_mutex_destroy(&q->spares.lock);
	free(q->spares.stack);
	free(q->dir);
	free(q);
}

const char *
queue_dir(const struct queue *q)
{
	return q->dir;
}

size_t
queue_count(const struct queue *q)
{
	return atomic_load(&q->count);
}

/* One message less, never below zero: a file someone else put in queue/
 * (and that we never counted) may be removed through us. */
static void
count_down(struct queue *q)
{
	size_t n = atomic_load(&q->count);

	while (n > 0 && !atomic_compare_exchange_weak(&q->count, &n, n - 1))
		;
}

bool
queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return i == QUEUE_ID_LEN;
}

/* A new ID: arrival in microseconds, shifted, plus a process-wide sequence. */
void
queue_id_new(char id[QUEUE_ID_LEN + 1])
{
	static unsigned seq;
	struct timeval tv;
	uint64_t v;

	gettimeofday(&tv, NULL);
	v = ((uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec) << 12;
	v |= __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED) & 0xfffu;
	snprintf(id, QUEUE_ID_LEN + 1, "%016" PRIx64, v);
}

double
queue_id_arrival(const char *id)
{
	if (!queue_id_valid(id))
		return 0;
	return (double)(strtoull(id, NULL, 16) >> 12) / 1e6;
}

/* ---- envelopes ---- */

struct queue_env *
queue_env_new(void)
{
	return calloc(1, sizeof(struct queue_env));
}

void
queue_env_free(struct queue_env *env)
{
	if (env == NULL)
		return;
	for (size_t i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].last_error);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->client_addr);
	free(env->client_helo);
	free(env);
}

int
queue_env_set(char **field, const char *value)
{
	char *copy = NULL;

	if (value != NULL && (copy = strdup(value)) == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

int
queue_env_add_rcpt(struct queue_env *env, const char *address, time_t next_retry)
{
	struct queue_rcpt *v = realloc(env->rcpts, (env->nrcpts + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	env->rcpts = v;
	memset(&v[env->nrcpts], 0, sizeof(*v));
	if ((v[env->nrcpts].address = strdup(address)) == NULL)
		return -1;
	v[env->nrcpts].next_retry = next_retry;
	env->nrcpts++;
	return 0;
}

bool
queue_env_is_done(const struct queue_env *env)
{
	for (size_t i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].state == QUEUE_RCPT_PENDING)
			return false;
	return true;
}

static struct json_object *
json_str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static struct json_object *
rcpt_to_json(const struct queue_rcpt *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "address", json_object_new_string(r->address));
	json_object_object_add(o, "state", json_object_new_string(queue_rcpt_state_name(r->state)));
	json_object_object_add(o, "attempts", json_object_new_int64(r->attempts));
	json_object_object_add(o, "backoff", json_object_new_int64(r->backoff));
	json_object_object_add(o, "next_retry", json_object_new_int64(r->next_retry));
	json_object_object_add(o, "last_attempt", json_object_new_int64(r->last_attempt));
	json_object_object_add(o, "last_error", json_str_or_null(r->last_error));
	return o;
}

struct json_object *
queue_env_to_json(const struct queue_env *env)
{
	struct json_object *o = json_object_new_object();
	struct json_object *client = json_object_new_object();
	struct json_object *rcpts = json_object_new_array();

	json_object_object_add(o, "version", json_object_new_int(QUEUE_FORMAT_VERSION));
	json_object_object_add(o, "id", json_object_new_string(env->id));
	json_object_object_add(o, "arrival", json_object_new_int64(env->arrival));
	json_object_object_add(o, "sender", json_object_new_string(env->sender ? env->sender : ""));
	json_object_object_add(client, "address",
	    json_object_new_string(env->client_addr ? env->client_addr : "local"));
	json_object_object_add(client, "helo", json_str_or_null(env->client_helo));
	json_object_object_add(o, "client", client);
	json_object_object_add(
	    o, "body", json_object_new_string(env->body_8bit ? "8BITMIME" : "7BIT"));
	json_object_object_add(o, "bounce", json_object_new_boolean(env->is_bounce));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)env->size));
	for (size_t i = 0; i < env->nrcpts; i++)
		json_object_array_add(rcpts, rcpt_to_json(&env->rcpts[i]));
	json_object_object_add(o, "recipients", rcpts);
	return o;
}

/* Typed member getters: false when missing or of the wrong type. */
static bool
get_int(struct json_object *o, const char *key, int64_t min, int64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return *out >= min;
}

static bool
get_str(struct json_object *o, const char *key, bool nullable, char **out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return false;
	if (v == NULL)
		return nullable && queue_env_set(out, NULL) == 0;
	if (!json_object_is_type(v, json_type_string))
		return false;
	return queue_env_set(out, json_object_get_string(v)) == 0;
}

static bool
rcpt_from_json(struct json_object *o, struct queue_rcpt *r)
{
	char *state = NULL;
	int64_t attempts, next, last, step;
	bool good = false;

	if (!json_object_is_type(o, json_type_object) ||
	    !get_str(o, "address", false, &r->address) || r->address[0] == '\0' ||
	    !get_str(o, "state", false, &state) || !get_int(o, "attempts", 0, &attempts) ||
	    attempts > UINT32_MAX || !get_int(o, "next_retry", 0, &next) ||
	    !get_int(o, "last_attempt", 0, &last) ||
	    !get_str(o, "last_error", true, &r->last_error))
		goto done;
	for (unsigned i = 0; i < 3; i++)
		if (strcmp(state, rcpt_state_names[i]) == 0) {
			r->state = (enum queue_rcpt_state)i;
			good = true;
		}
	r->attempts = (unsigned)attempts;
	/* Optional (added in version 1): files written before count every attempt. */
	r->backoff =
	    get_int(o, "backoff", 0, &step) && step <= UINT32_MAX ? (unsigned)step : r->attempts;
	r->next_retry = (time_t)next;
	r->last_attempt = (time_t)last;
done:
	free(state);
	return good;
}

static bool
env_fields_from_json(struct json_object *o, struct queue_env *env)
{
	struct json_object *client, *v;
	int64_t version, arrival, size;
	char *id = NULL, *body = NULL;
	bool good;

	good = get_int(o, "version", 1, &version) && version == QUEUE_FORMAT_VERSION &&
	    get_str(o, "id", false, &id) && queue_id_valid(id) &&
	    get_int(o, "arrival", 0, &arrival) && get_int(o, "size", 0, &size) &&
	    get_str(o, "sender", false, &env->sender) &&
	    json_object_object_get_ex(o, "client", &client) &&
	    json_object_is_type(client, json_type_object) &&
	    get_str(client, "address", false, &env->client_addr) &&
	    get_str(client, "helo", true, &env->client_helo) && get_str(o, "body", false, &body) &&
	    (strcmp(body, "7BIT") == 0 || strcmp(body, "8BITMIME") == 0) &&
	    json_object_object_get_ex(o, "bounce", &v) && json_object_is_type(v, json_type_boolean);
	if (good) {
		memcpy(env->id, id, QUEUE_ID_LEN + 1);
		env->arrival = (time_t)arrival;
		env->size = (uint64_t)size;
		env->body_8bit = body[0] == '8';
		env->is_bounce = json_object_get_boolean(v);
	}
	free(id);
	free(body);
	return good;
}

struct queue_env *
queue_env_from_json(struct json_object *o)
{
	struct queue_env *env = queue_env_new();
	struct json_object *rcpts;
	size_t n;

	if (env == NULL || !json_object_is_type(o, json_type_object) ||
	    !env_fields_from_json(o, env) || !json_object_object_get_ex(o, "recipients", &rcpts) ||
	    !json_object_is_type(rcpts, json_type_array))
		goto fail;
	n = json_object_array_length(rcpts);
	if (n == 0 || (env->rcpts = calloc(n, sizeof(*env->rcpts))) == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		env->nrcpts = i + 1;
		if (!rcpt_from_json(json_object_array_get_idx(rcpts, i), &env->rcpts[i]))
			goto fail;
	}
	return env;
fail:
	queue_env_free(env);
	return NULL;
}

/* ---- group commit of queue/ ---- */

/* The errno of fsync number `gen`, 0 when it succeeded; lock held. */
static int
dirsync_result(const struct queue_dirsync *s, uint64_t gen)
{
	uint64_t kept = s->nfail < QUEUE_DIRSYNC_FAILS ? s->nfail : QUEUE_DIRSYNC_FAILS;

	for (uint64_t i = 0; i < kept; i++)
		if (s->fail[i].gen == gen)
			return s->fail[i].err;
	/* Failures older than the ones kept: unknown, so a failure. */
	if (s->nfail > QUEUE_DIRSYNC_FAILS && gen < s->fail[s->nfail % QUEUE_DIRSYNC_FAILS].gen)
		return EIO;
	return 0;
}

/*
 * The caller renamed a file into queue/ or unlinked one: make that entry
 * durable.  Returns after the first fsync of queue/ that began after this
 * call ended, run by this thread when queue/ is idle or by another waiter
 * meanwhile: the renames and unlinks of many threads made while one fsync
 * runs share the next one (group commit; docs/queue-format.md).  0, or -1
 * with the errno of that fsync.
 */
static int
queue_dirsync(struct queue *q)
{
	struct queue_dirsync *s = &q->dirsync;
	uint64_t cover;
	int err;

	pthread_mutex_lock(&s->lock);
	s->tickets++;
	/* One running now may have begun before our change: the next one. */
	cover = s->started + 1;
	while (s->finished < cover) {
		if (s->started > s->finished) {
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		/* Idle: this thread runs fsync `cover` for every waiter. */
		s->started++;
		pthread_mutex_unlock(&s->lock);
		err = fsync(q->queuefd) == -1 ? errno : 0;
		pthread_mutex_lock(&s->lock);
		if (err != 0) {
			s->fail[s->nfail % QUEUE_DIRSYNC_FAILS].gen = s->started;
			s->fail[s->nfail % QUEUE_DIRSYNC_FAILS].err = err;
			s->nfail++;
		}
		s->finished = s->started;
		pthread_cond_broadcast(&s->cond);
	}
	err = dirsync_result(s, cover);
	pthread_mutex_unlock(&s->lock);
	errno = err;
	return err != 0 ? -1 : 0;
}

void
queue_dirsync_stats(struct queue *q, uint64_t *changes, uint64_t *fsyncs)
{
	pthread_mutex_lock(&q->dirsync.lock);
	*changes = q->dirsync.tickets;
	*fsyncs = q->dirsync.finished;
	pthread_mutex_unlock(&q->dirsync.lock);
}

/* ---- writing ---- */

/* The system call that failed and on what, for one log line with errno. */
struct queue_fail {
	const char *call;   /* "open", "write", "fsync", "rename", ... */
	const char *folder; /* "tmp" or "queue" */
	bool folder_only;   /* the folder itself (fsync of queue/), not <folder>/<id> */
};

/* Log "queue: <id>: <call> <dir>/<folder>[/<id>]: <strerror(errno)>". */
static void
log_fail(const struct queue *q, const char *id, const struct queue_fail *f)
{
	if (f->folder_only)
		log_warn("queue: %s: %s %s/%s", id, f->call, q->dir, f->folder);
	else
		log_warn("queue: %s: %s %s/%s/%s", id, f->call, q->dir, f->folder, id);
}

static void
fail_at(struct queue_fail *f, const char *call, const char *folder, bool folder_only)
{
	f->call = call;
	f->folder = folder;
	f->folder_only = folder_only;
}

/* Move tmp/<name> to queue/<id>, never over an existing file unless `replace`. */
static int
rename_into_queue(struct queue *q, const char *name, const char *id, bool replace)
{
	if (!replace) {
		if (renameat2(q->tmpfd, name, q->queuefd, id, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EINVAL && errno != ENOSYS)
			return -1;
		/* A file system without RENAME_NOREPLACE: link fails on EEXIST. */
		if (linkat(q->tmpfd, name, q->queuefd, id, 0) == -1)
			return -1;
		unlinkat(q->tmpfd, name, 0);
		return 0;
	}
	return renameat(q->tmpfd, name, q->queuefd, id);
}

/* ---- spare files (docs/queue-format.md "Spare files") ---- */

int
queue_keep_spares(struct queue *q, unsigned max, uint64_t max_size)
{
	struct queue_spares *sp = &q->spares;

	if (max == 0)
		return 0;
	if ((sp->stack = calloc(max, sizeof(*sp->stack))) == NULL) {
		log_warnx("queue: out of memory for %u spare files", max);
		return -1;
	}
	pthread_mutex_lock(&sp->lock);
	sp->max = max;
	sp->max_size = max_size;
	pthread_mutex_unlock(&sp->lock);
	return 0;
}

unsigned long
queue_spares_reused(const struct queue *q)
{
	return atomic_load(&q->spares.reused);
}

static void
spare_name(char *buf, size_t len, unsigned n)
{
	snprintf(buf, len, QUEUE_SPARE_PREFIX "%u", n);
}

/* Open a spare for overwriting, its name in buf; -1 when there is none. */
static int
spare_open(struct queue *q, char *buf, size_t len)
{
	struct queue_spares *sp = &q->spares;
	unsigned n;
	int fd;

	for (;;) {
		pthread_mutex_lock(&sp->lock);
		if (sp->n == 0) {
			pthread_mutex_unlock(&sp->lock);
			return -1;
		}
		n = sp->stack[--sp->n];
		pthread_mutex_unlock(&sp->lock);
		spare_name(buf, len, n);
		if ((fd = openat(q->tmpfd, buf, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) != -1)
			return fd;
		/* Gone (an operator cleaned tmp/?): the next one. */
		log_warn("queue: open %s/tmp/%s", q->dir, buf);
	}
}

/*
 * queue/<id> becomes tmp/spare.<N> when spares are kept, there is room and
 * the file is small enough.  1 done, 0 not a spare (unlink it), -1 with
 * errno from the rename (ENOENT: no such message).
 */
static int
spare_put(struct queue *q, const char *id)
{
	struct queue_spares *sp = &q->spares;
	char name[sizeof(QUEUE_SPARE_PREFIX) + 10];
	struct stat st;
	unsigned n;
	int rc = 1;

	pthread_mutex_lock(&sp->lock);
	if (sp->n + sp->busy >= sp->max) {
		pthread_mutex_unlock(&sp->lock);
		return 0;
	}
	sp->busy++;
	n = sp->next++;
	pthread_mutex_unlock(&sp->lock);
	spare_name(name, sizeof(name), n);
	if (fstatat(q->queuefd, id, &st, AT_SYMLINK_NOFOLLOW) == -1)
		rc = -1;
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > sp->max_size)
		rc = 0;
	else if (renameat2(q->queuefd, id, q->tmpfd, name, RENAME_NOREPLACE) == -1)
		/* ENOENT: no such message; else (a tmp/spare.<N> left by hand,
		 * no RENAME_NOREPLACE here) the caller unlinks it. */
		rc = errno == ENOENT ? -1 : 0;
	pthread_mutex_lock(&sp->lock);
	sp->busy--;
	if (rc == 1)
		sp->stack[sp->n++] = n;
	pthread_mutex_unlock(&sp->lock);
	return rc;
}

/* A message's content: pieces in memory, then the octets of a spool file. */
struct content {
	const struct iovec *iov;
	int iovcnt;
	const struct queue_spool *spool; /* NULL: the pieces are all */
};

/* Append the spool's octets to fd, continuing *crc; 0 or -1 (errno). */
static int
copy_spool(int fd, const struct queue_spool *sp, uint32_t *crc)
{
	char *buf = malloc(QUEUE_COPY_CHUNK);
	uint64_t off = 0;
	int saved;

	if (buf == NULL)
		return -1;
	while (off < sp->size) {
		size_t want =
		    sp->size - off < QUEUE_COPY_CHUNK ? (size_t)(sp->size - off) : QUEUE_COPY_CHUNK;
		ssize_t n = pread(sp->fd, buf, want, (off_t)off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			errno = EIO; /* the spool is shorter than what was written */
		if (n <= 0 || file_write_all(fd, buf, (size_t)n) == -1)
			break;
		*crc = queue_crc32(*crc, buf, (size_t)n);
		off += (uint64_t)n;
	}
	saved = errno;
	free(buf);
	errno = saved;
	return off == sp->size ? 0 : -1;
}

/* Write the pieces whole (short writes continued); 0 or -1 (errno).  The
 * array is used up. */
static int
writev_all(int fd, struct iovec *v, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, v, n < IOV_MAX ? n : IOV_MAX);

		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		while (n > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Pieces of a queue file in memory, written with one writev. */
#define QUEUE_PIECES 16

/*
 * Write header, envelope, content and trailer to tmp/<id> (or over a
 * spare file, cut to length), fsync, rename into queue/<id> and fsync
 * queue/ (shared with other threads' changes: group commit).  The
 * envelope's size must be right.  The parts in memory go out in one
 * writev; a spool's octets follow, then the trailer.
 */
static int
write_file(struct queue *q, const struct queue_env *env, const struct content *c, bool replace,
    struct queue_fail *f)
{
	struct json_object *obj = queue_env_to_json(env);
	const char *json = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
	size_t jlen = strlen(json);
	char head[QUEUE_HEADER_MAX], trailer[QUEUE_TRAILER_LEN + 1], nl[] = "\n";
	struct iovec stack[QUEUE_PIECES], *v = stack;
	char spare[sizeof(QUEUE_SPARE_PREFIX) + 10];
	const char *name = env->id; /* in tmp/ */
	int hlen, fd = -1, saved, nv = 0;
	uint32_t crc;

	hlen = snprintf(head, sizeof(head), QUEUE_MAGIC " %zu %" PRIu64 "\n", jlen, env->size);
	crc = queue_crc32(queue_crc32(queue_crc32(0, head, (size_t)hlen), json, jlen), "\n", 1);
	fail_at(f, "write", "tmp", false);
	if (c->iovcnt + 4 > QUEUE_PIECES && (v = calloc((size_t)c->iovcnt + 4, sizeof(*v))) == NULL)
		goto fail_put;
	v[nv++] = (struct iovec){head, (size_t)hlen};
	v[nv++] = (struct iovec){(char *)json, jlen};
	v[nv++] = (struct iovec){nl, 1};
	for (int i = 0; i < c->iovcnt; i++) {
		crc = queue_crc32(crc, c->iov[i].iov_base, c->iov[i].iov_len);
		v[nv++] = c->iov[i];
	}
	if (c->spool == NULL) {
		snprintf(trailer, sizeof(trailer), "END %08" PRIx32 "\n", crc);
		v[nv++] = (struct iovec){trailer, QUEUE_TRAILER_LEN};
	}
	fail_at(f, "open", "tmp", false);
	if ((fd = spare_open(q, spare, sizeof(spare))) != -1)
		name = spare;
	else if ((fd = openat(q->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		goto fail_put;
	fail_at(f, "write", "tmp", false);
	if (writev_all(fd, v, nv) == -1)
		goto fail;
	if (c->spool != NULL) {
		fail_at(f, "copy", "tmp", false);
		if (copy_spool(fd, c->spool, &crc) == -1)
			goto fail;
		fail_at(f, "write", "tmp", false);
		snprintf(trailer, sizeof(trailer), "END %08" PRIx32 "\n", crc);
		if (file_write_all(fd, trailer, QUEUE_TRAILER_LEN) == -1)
			goto fail;
	}
	/* A spare may have been longer than this file. */
	fail_at(f, "truncate", "tmp", false);
	if (name == spare &&
	    ftruncate(fd, (off_t)((size_t)hlen + jlen + 1 + env->size + QUEUE_TRAILER_LEN)) == -1)
		goto fail;
	else if (name == spare)
		atomic_fetch_add(&q->spares.reused, 1);
	fail_at(f, "fsync", "tmp", false);
	if (fdatasync(fd) == -1)
		goto fail;
	fail_at(f, "close", "tmp", false);
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	fail_at(f, "rename", "tmp", false);
	if (rename_into_queue(q, name, env->id, replace) == -1)
		goto fail;
	fail_at(f, "fsync", "queue", true);
	if (queue_dirsync(q) == -1)
		goto fail;
	if (v != stack)
		free(v);
	json_object_put(obj);
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlinkat(q->tmpfd, name, 0);
	errno = saved;
fail_put:
	saved = errno;
	if (v != stack)
		free(v);
	json_object_put(obj);
	errno = saved;
	return -1;
}

/* Commit env with content c: the ID made here unless set, the size counted. */
static int
commit_content(struct queue *q, struct queue_env *env, const struct content *c)
{
	struct queue_fail f;
	uint64_t size = c->spool != NULL ? c->spool->size : 0;

	for (int i = 0; i < c->iovcnt; i++)
		size += c->iov[i].iov_len;
	env->size = size;
	if (env->id[0] == '\0')
		queue_id_new(env->id);
	if (write_file(q, env, c, false, &f) == 0) {
		atomic_fetch_add(&q->count, 1);
		return 0;
	}
	log_fail(q, env->id, &f);
	env->id[0] = '\0';
	return -1;
}

int
queue_commit(struct queue *q, struct queue_env *env, const struct iovec *iov, int iovcnt)
{
	struct content c = {iov, iovcnt, NULL};

	return commit_content(q, env, &c);
}

int
queue_commit_spool(struct queue *q, struct queue_env *env, const struct iovec *iov, int iovcnt,
    const struct queue_spool *sp)
{
	struct content c = {iov, iovcnt, sp};

	return commit_content(q, env, &c);
}

/* ---- spools: content written to tmp/<id>.data as it arrives ---- */

struct queue_spool *
queue_spool_new(struct queue *q, const char *id)
{
	struct queue_spool *sp = calloc(1, sizeof(*sp));
	int saved;

	if (sp == NULL)
		return NULL;
	sp->q = q;
	snprintf(sp->name, sizeof(sp->name), "%s" QUEUE_SPOOL_SUFFIX, id);
	sp->fd = openat(q->tmpfd, sp->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (sp->fd == -1) {
		saved = errno;
		log_warn("queue: %s: open %s/tmp/%s", id, q->dir, sp->name);
		free(sp);
		errno = saved;
		return NULL;
	}
	return sp;
}

int
queue_spool_write(struct queue_spool *sp, const struct iovec *iov, int iovcnt)
{
	int saved;

	for (int i = 0; i < iovcnt; i++) {
		if (file_write_all(sp->fd, iov[i].iov_base, iov[i].iov_len) == -1) {
			saved = errno;
			log_warn("queue: %.*s: write %s/tmp/%s", QUEUE_ID_LEN, sp->name, sp->q->dir,
			    sp->name);
			errno = saved;
			return -1;
		}
		sp->size += iov[i].iov_len;
	}
	return 0;
}

uint64_t
queue_spool_size(const struct queue_spool *sp)
{
	return sp->size;
}

void
queue_spool_free(struct queue_spool *sp)
{
	if (sp == NULL)
		return;
	close(sp->fd);
	if (unlinkat(sp->q->tmpfd, sp->name, 0) == -1 && errno != ENOENT)
		log_warn(
		    "queue: %.*s: unlink %s/tmp/%s", QUEUE_ID_LEN, sp->name, sp->q->dir, sp->name);
	free(sp);
}

int
queue_probe(struct queue *q, const char **step)
{
	static const char data[512] = "mxbroker queue probe\n";
	int fd, saved;

	*step = "open";
	fd = openat(q->tmpfd, QUEUE_PROBE_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	*step = "write";
	if (file_write_all(fd, data, sizeof(data)) == 0) {
		*step = "fsync";
		if (fsync(fd) == 0)
			*step = NULL;
	}
	saved = errno;
	close(fd);
	if (unlinkat(q->tmpfd, QUEUE_PROBE_NAME, 0) == -1 && *step == NULL) {
		*step = "unlink";
		return -1;
	}
	errno = saved;
	return *step == NULL ? 0 : -1;
}

int
queue_space(struct queue *q, uint64_t *avail)
{
	struct statvfs sv;

	if (fstatvfs(q->tmpfd, &sv) == -1)
		return -1;
	*avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	return 0;
}

/* ---- reading ---- */

static int
read_all(int fd, char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Parse "MXBQ1 <envlen> <contentlen>\n"; returns the header length or 0. */
static size_t
parse_header(const char *buf, size_t len, uint64_t *envlen, uint64_t *clen)
{
	const char *nl = memchr(buf, '\n', len < QUEUE_HEADER_MAX ? len : QUEUE_HEADER_MAX);
	char tmp[QUEUE_HEADER_MAX], magic[8], extra;
	size_t hlen;

	if (nl == NULL)
		return 0;
	hlen = (size_t)(nl - buf) + 1;
	memcpy(tmp, buf, hlen - 1);
	tmp[hlen - 1] = '\0';
	if (sscanf(tmp, "%7s %" SCNu64 " %" SCNu64 "%c", magic, envlen, clen, &extra) != 3 ||
	    strcmp(magic, QUEUE_MAGIC) != 0 || tmp[strlen(tmp) - 1] == ' ')
		return 0;
	return hlen;
}

/* Validate a whole file in memory; sets why on failure. */
static struct queue_env *
parse_file(const char *id, const char *buf, size_t len, size_t *content_off, const char **why)
{
	uint64_t envlen, clen;
	size_t hlen = parse_header(buf, len, &envlen, &clen);
	struct json_tokener *tok;
	struct json_object *obj;
	struct queue_env *env;
	char want[QUEUE_TRAILER_LEN + 1];
	uint32_t crc;

	*why = "bad header";
	if (hlen == 0 || envlen > QUEUE_ENVELOPE_MAX || clen > len)
		return NULL;
	*why = "truncated or wrong length";
	if ((uint64_t)len != hlen + envlen + 1 + clen + QUEUE_TRAILER_LEN ||
	    buf[hlen + envlen] != '\n')
		return NULL;
	crc = queue_crc32(0, buf, len - QUEUE_TRAILER_LEN);
	snprintf(want, sizeof(want), "END %08" PRIx32 "\n", crc);
	*why = "checksum mismatch";
	if (memcmp(buf + len - QUEUE_TRAILER_LEN, want, QUEUE_TRAILER_LEN) != 0)
		return NULL;
	*why = "bad envelope";
	if ((tok = json_tokener_new()) == NULL)
		return NULL;
	obj = json_tokener_parse_ex(tok, buf + hlen, (int)envlen);
	env = json_tokener_get_error(tok) == json_tokener_success ? queue_env_from_json(obj) : NULL;
	json_object_put(obj);
	json_tokener_free(tok);
	if (env != NULL && (strcmp(env->id, id) != 0 || env->size != clen)) {
		*why = "envelope does not match the file";
		queue_env_free(env);
		return NULL;
	}
	*content_off = hlen + envlen + 1;
	return env;
}

/* Read queue/<id> into memory. */
static enum queue_status
read_file(struct queue *q, const char *id, char **buf, size_t *len)
{
	struct stat st;
	int fd;

	*buf = NULL;
	if (!queue_id_valid(id))
		return QUEUE_ENOTFOUND;
	if ((fd = openat(q->queuefd, id, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? QUEUE_ENOTFOUND : QUEUE_EIO;
	if (fstat(fd, &st) == -1 || (*buf = malloc((size_t)st.st_size + 1)) == NULL ||
	    read_all(fd, *buf, (size_t)st.st_size) == -1) {
		int saved = errno;

		close(fd);
		free(*buf);
		*buf = NULL;
		errno = saved;
		return QUEUE_EIO;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return QUEUE_OK;
}

enum queue_status
queue_load_env(struct queue *q, const char *id, struct queue_env **env_out, char **content,
    size_t *clen, const char **why)
{
	enum queue_status st;
	size_t len, off;
	char *buf;

	*why = "";
	if ((st = read_file(q, id, &buf, &len)) != QUEUE_OK)
		return st;
	*env_out = parse_file(id, buf, len, &off, why);
	if (*env_out == NULL) {
		free(buf);
		return QUEUE_ECORRUPT;
	}
	if (content != NULL) {
		*clen = (size_t)(*env_out)->size;
		memmove(buf, buf + off, *clen);
		*content = buf;
	} else {
		free(buf);
	}
	return QUEUE_OK;
}

enum queue_status
queue_load(struct queue *q, const char *id, struct queue_env **env_out, char **content_out,
    size_t *content_len)
{
	const char *why;
	enum queue_status st = queue_load_env(q, id, env_out, content_out, content_len, &why);

	if (st == QUEUE_ECORRUPT)
		log_warnx("queue: %s: damaged: %s", id, why);
	else if (st == QUEUE_EIO)
		log_warn("queue: %s: read %s/queue/%s", id, q->dir, id);
	return st;
}

int
queue_update(struct queue *q, const struct queue_env *env)
{
	struct queue_fail f;
	struct queue_env *old;
	struct iovec iov;
	struct content c = {NULL, 0, NULL};
	char *content;
	size_t clen;

	if (queue_load(q, env->id, &old, &content, &clen) != QUEUE_OK)
		return -1;
	queue_env_free(old);
	if (env->size != clen) {
		log_warnx("queue: %s: update: envelope size %" PRIu64 " != content %zu", env->id,
		    env->size, clen);
		free(content);
		return -1;
	}
	iov.iov_base = content;
	iov.iov_len = clen;
	c.iov = &iov;
	c.iovcnt = 1;
	if (write_file(q, env, &c, true, &f) == -1) {
		log_fail(q, env->id, &f);
		free(content);
		return -1;
	}
	free(content);
	return 0;
}

/* Remove queue/<id> (to a spare or unlinked); the entry not yet durable. */
static enum queue_status
remove_entry(struct queue *q, const char *id)
{
	int kept;

	if (!queue_id_valid(id))
		return QUEUE_ENOTFOUND;
	if ((kept = spare_put(q, id)) == -1 && errno == ENOENT)
		return QUEUE_ENOTFOUND;
	if (kept != 1 && unlinkat(q->queuefd, id, 0) == -1) {
		if (errno == ENOENT)
			return QUEUE_ENOTFOUND;
		log_warn("queue: %s: unlink %s/queue/%s", id, q->dir, id);
		return QUEUE_EIO;
	}
	count_down(q);
	return QUEUE_OK;
}

enum queue_status
queue_remove(struct queue *q, const char *id)
{
	enum queue_status st = remove_entry(q, id);

	if (st == QUEUE_OK && queue_dirsync(q) == -1)
		log_warn("queue: %s: fsync %s/queue", id, q->dir);
	return st;
}

enum queue_status
queue_remove_lazy(struct queue *q, const char *id)
{
	enum queue_status st = remove_entry(q, id);

	if (st == QUEUE_OK) {
		pthread_mutex_lock(&q->dirsync.lock);
		q->dirsync.lazy = q->dirsync.started + 1;
		pthread_mutex_unlock(&q->dirsync.lock);
	}
	return st;
}

int
queue_dirsync_flush(struct queue *q)
{
	bool owed;

	pthread_mutex_lock(&q->dirsync.lock);
	owed = q->dirsync.finished < q->dirsync.lazy;
	pthread_mutex_unlock(&q->dirsync.lock);
	return owed ? queue_dirsync(q) : 0;
}

/* Move queue/<name> to corrupt/<name> (or <name>.N when taken). */
static int
move_corrupt(struct queue *q, const char *name)
{
	char dest[300];

	snprintf(dest, sizeof(dest), "%s", name);
	for (int i = 1; i < 100; i++) {
		if (renameat2(q->queuefd, name, q->corruptfd, dest, RENAME_NOREPLACE) == 0) {
			fsync(q->corruptfd);
			fsync(q->queuefd);
			return 0;
		}
		if (errno != EEXIST)
			return -1;
		snprintf(dest, sizeof(dest), "%s.%d", name, i);
	}
	return -1;
}

int
queue_move_corrupt(struct queue *q, const char *name, const char *why)
{
	if (move_corrupt(q, name) == -1) {
		log_warn("queue: %s: damaged (%s): rename %s/queue/%s to %s/corrupt/", name, why,
		    q->dir, name, q->dir);
		return -1;
	}
	count_down(q);
	log_warnx("queue: %s: damaged (%s): moved to %s/corrupt/", name, why, q->dir);
	return 0;
}

int
queue_scan(struct queue *q, int (*cb)(const char *id, void *arg), void *arg)
{
	int fd = dup(q->queuefd), rc = 0;
	struct dirent *de;
	DIR *d;

	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		log_warn("queue: opendir %s/queue", q->dir);
		if (fd != -1)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while (rc == 0 && (de = readdir(d)) != NULL)
		if (queue_id_valid(de->d_name))
			rc = cb(de->d_name, arg);
	closedir(d);
	return rc;
}
