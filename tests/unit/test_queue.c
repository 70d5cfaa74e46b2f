/* test_queue.c - the crash-safe queue: commit, load, update, recovery, damage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/log.h"
#include "smtp-relay/queue.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/test_queue.XXXXXX";

static const char content[] = "Received: from x\r\nSubject: hi\r\n\r\nbody\r\n.dot\r\n";

static struct queue_env *
make_env(void)
{
	struct queue_env *env = queue_env_new();

	queue_env_set(&env->sender, "s@example.test");
	queue_env_set(&env->client_addr, "192.0.2.1");
	queue_env_set(&env->client_helo, "client.test");
	env->arrival = 1700000000;
	queue_env_add_rcpt(env, "a@example.test", 1700000000);
	queue_env_add_rcpt(env, "b@example.test", 1700000000);
	return env;
}

/* Commit `content` in two pieces; returns the new ID (static buffer). */
static const char *
commit(struct queue *q)
{
	static char id[QUEUE_ID_LEN + 1];
	struct queue_env *env = make_env();
	struct iovec iov[2] = {
	    {(void *)content, 10},
	    {(void *)(content + 10), sizeof(content) - 11},
	};
	int rc = queue_commit(q, env, iov, 2);

	is_int(rc, 0, "commit");
	memcpy(id, env->id, sizeof(id));
	queue_env_free(env);
	return id;
}

static char *
path_of(const char *sub, const char *name)
{
	static char p[512];

	snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
	return p;
}

static size_t
count(const char *sub)
{
	char p[512];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
test_crc(void)
{
	is_int(queue_crc32(0, "123456789", 9), 0xCBF43926, "CRC-32 check value");
	is_int(queue_crc32(queue_crc32(0, "1234", 4), "56789", 5), 0xCBF43926,
	    "CRC-32 continues across pieces");
}

static void
test_commit_load(struct queue *q)
{
	const char *id = commit(q);
	struct queue_env *env;
	char *body;
	size_t len;

	ok(queue_id_valid(id), "ID has the queue form: %s", id);
	ok(access(path_of("queue", id), F_OK) == 0, "file in queue/");
	is_int((long long)count("tmp"), 0, "nothing left in tmp/");
	is_int(queue_load(q, id, &env, &body, &len), QUEUE_OK, "load");
	if (env == NULL)
		return;
	is_int((long long)len, (long long)sizeof(content) - 1, "content length");
	ok(memcmp(body, content, len) == 0, "content intact");
	is_str(env->sender, "s@example.test", "sender");
	is_str(env->client_addr, "192.0.2.1", "client");
	is_str(env->client_helo, "client.test", "helo");
	is_int((long long)env->nrcpts, 2, "two recipients");
	is_str(env->rcpts[1].address, "b@example.test", "second recipient");
	is_int(env->rcpts[0].state, QUEUE_RCPT_PENDING, "pending");
	is_int((long long)env->arrival, 1700000000, "arrival");

	/* Delivery's life cycle: one recipient at a time, then remove. */
	env->rcpts[0].state = QUEUE_RCPT_DELIVERED;
	env->rcpts[1].attempts = 3;
	env->rcpts[1].next_retry = 1700003600;
	queue_env_set(&env->rcpts[1].last_error, "451 4.4.1 no answer");
	is_int(queue_update(q, env), 0, "update");
	queue_env_free(env);
	free(body);
	is_int(queue_load(q, id, &env, &body, &len), QUEUE_OK, "reload after update");
	if (env == NULL)
		return;
	ok(memcmp(body, content, len) == 0 && len == sizeof(content) - 1, "content kept");
	is_int(env->rcpts[0].state, QUEUE_RCPT_DELIVERED, "state stored");
	is_int(env->rcpts[1].attempts, 3, "attempts stored");
	is_int((long long)env->rcpts[1].next_retry, 1700003600, "next retry stored");
	is_str(env->rcpts[1].last_error, "451 4.4.1 no answer", "last error stored");
	ok(!queue_env_is_done(env), "not done with one pending");
	env->rcpts[1].state = QUEUE_RCPT_FAILED;
	ok(queue_env_is_done(env), "done when all final");
	queue_env_free(env);
	free(body);
	is_int(queue_remove(q, id), QUEUE_OK, "remove");
	is_int(queue_remove(q, id), QUEUE_ENOTFOUND, "remove twice: not found");
	is_int(queue_load(q, id, &env, NULL, NULL), QUEUE_ENOTFOUND, "load removed");
	is_int(queue_load(q, "../../etc/passwd", &env, NULL, NULL), QUEUE_ENOTFOUND,
	    "a non-ID is never opened");
}

static void
test_json_roundtrip(void)
{
	struct queue_env *env = make_env(), *back;
	struct json_object *o;

	memcpy(env->id, "0123456789abcdef", QUEUE_ID_LEN + 1);
	env->is_bounce = true;
	env->body_8bit = true;
	o = queue_env_to_json(env);
	back = queue_env_from_json(o);
	ok(back != NULL, "envelope JSON round trip");
	if (back != NULL) {
		ok(back->is_bounce && back->body_8bit, "flags kept");
		is_str(back->rcpts[0].address, "a@example.test", "recipient kept");
		ok(back->rcpts[0].last_error == NULL, "null last_error kept");
	}
	queue_env_free(back);
	env->rcpts[0].attempts = 5;
	env->rcpts[0].backoff = 2;
	json_object_put(o);
	back = queue_env_from_json(o = queue_env_to_json(env));
	is_int(back != NULL ? back->rcpts[0].backoff : 99, 2, "backoff step kept");
	queue_env_free(back);
	json_object_object_del(
	    json_object_array_get_idx(json_object_object_get(o, "recipients"), 0), "backoff");
	back = queue_env_from_json(o);
	is_int(back != NULL ? back->rcpts[0].backoff : 99, 5,
	    "no backoff member (older file): every attempt was a step");
	queue_env_free(back);
	json_object_put(o);
	o = queue_env_to_json(env);
	json_object_object_add(o, "version", json_object_new_int(2));
	ok(queue_env_from_json(o) == NULL, "unknown version refused");
	json_object_put(o);
	o = json_tokener_parse(
	    "{\"version\":1,\"id\":\"0123456789abcdef\",\"arrival\":1,"
	    "\"sender\":\"\",\"client\":{\"address\":\"x\",\"helo\":null},\"body\":\"7BIT\","
	    "\"bounce\":false,\"size\":0,\"recipients\":[]}");
	ok(queue_env_from_json(o) == NULL, "no recipients refused");
	json_object_put(o);
	queue_env_free(env);
}

/*
 * A failed commit logs the call, the file and the errno: here tmp/<id> is
 * already there, so the O_EXCL open fails with EEXIST.
 */
static void
test_error_names_file(struct queue *q)
{
	struct queue_env *env = make_env();
	struct iovec iov = {(void *)content, sizeof(content) - 1};
	char want[600], got[1024] = "";
	FILE *log = tmpfile();
	int saved = dup(STDERR_FILENO), fd;

	memcpy(env->id, "00000000000000aa", QUEUE_ID_LEN + 1);
	fd = open(path_of("tmp", env->id), O_WRONLY | O_CREAT, 0600);
	close(fd);
	fflush(stderr);
	dup2(fileno(log), STDERR_FILENO);
	log_init("test_queue", LOG_LEVEL_WARN, false);
	is_int(queue_commit(q, env, &iov, 1), -1, "commit over a tmp/ leftover fails");
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_init("test_queue", LOG_LEVEL_ERR, false);
	rewind(log);
	if (fgets(got, sizeof(got), log) == NULL)
		got[0] = '\0';
	fclose(log);
	snprintf(want, sizeof(want), "queue: 00000000000000aa: open %s/tmp/00000000000000aa: %s\n",
	    dir, strerror(EEXIST));
	ok(strstr(got, want) != NULL, "the log names call, file and errno: %s", got);
	unlink(path_of("tmp", "00000000000000aa"));
	queue_env_free(env);
}

/* Overwrite one byte of a queue file. */
static void
poke(const char *id, off_t off, char c)
{
	int fd = open(path_of("queue", id), O_WRONLY);

	ok(fd != -1 && pwrite(fd, &c, 1, off) == 1, "damage %s at %ld", id, (long)off);
	close(fd);
}

static void
test_recovery(struct queue *q)
{
	struct queue_recovery rec;
	char good[QUEUE_ID_LEN + 1], flipped[QUEUE_ID_LEN + 1], cut[QUEUE_ID_LEN + 1];
	char renamed[] = "00000000000000aa", from[512];
	struct queue_env *env;
	FILE *f;

	memcpy(good, commit(q), sizeof(good));
	memcpy(flipped, commit(q), sizeof(flipped));
	memcpy(cut, commit(q), sizeof(cut));
	poke(flipped, 300, 'X');
	ok(truncate(path_of("queue", cut), 100) == 0, "truncate one file");
	snprintf(from, sizeof(from), "%s", path_of("queue", good));
	ok(link(from, path_of("queue", renamed)) == 0, "a copy under another ID");
	f = fopen(path_of("queue", "notes.txt"), "w");
	fclose(f);
	f = fopen(path_of("tmp", "0000000000000001"), "w");
	fclose(f);
	ok(queue_recover(q, false, 0, &rec, NULL, NULL) == 0, "analyze");
	is_int((long long)rec.messages, 1, "one good message");
	is_int((long long)rec.damaged, 3, "flipped, cut, renamed are damaged");
	is_int((long long)rec.stray, 1, "one stray name");
	is_int((long long)rec.stale, 1, "one stale tmp file");
	is_int((long long)count("queue"), 5, "analyze changes nothing");
	ok(queue_recover(q, true, 3600, &rec, NULL, NULL) == 0, "repair, tmp age 1 h");
	is_int((long long)count("tmp"), 1, "young tmp file kept");
	ok(queue_recover(q, true, 0, &rec, NULL, NULL) == 0, "repair");
	is_int((long long)count("tmp"), 0, "tmp/ emptied");
	is_int((long long)count("queue"), 1, "only the good file left");
	is_int((long long)count("corrupt"), 4, "damaged and stray moved, never deleted");
	is_int((long long)rec.corrupt_total, 4, "corrupt_total");
	is_int(queue_load(q, flipped, &env, NULL, NULL), QUEUE_ENOTFOUND, "moved away");

	/* An orphan: every recipient final but the file still there. */
	is_int(queue_load(q, good, &env, NULL, NULL), QUEUE_OK, "load good");
	if (env != NULL) {
		env->rcpts[0].state = env->rcpts[1].state = QUEUE_RCPT_DELIVERED;
		is_int(queue_update(q, env), 0, "mark all delivered");
		queue_env_free(env);
	}
	ok(queue_recover(q, true, 0, &rec, NULL, NULL) == 0 && rec.orphans == 1, "orphan found");
	is_int((long long)count("queue"), 0, "orphan removed");
}

static void
test_unique_ids(void)
{
	char ids[50][QUEUE_ID_LEN + 1];
	bool distinct = true;

	for (int i = 0; i < 50; i++)
		queue_id_new(ids[i]);
	for (int i = 0; i < 50; i++)
		for (int j = i + 1; j < 50; j++)
			distinct &= strcmp(ids[i], ids[j]) != 0;
	ok(distinct, "50 IDs in a row are distinct");
}

static int
rm_cb(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

/* A new queue in <dir>/<name>, its path in buf; NULL (a failed check) if
 * it cannot be opened. */
static struct queue *
sub_queue(const char *name, char *buf, size_t len)
{
	struct queue *q;

	snprintf(buf, len, "%s/%s", dir, name);
	q = queue_open(buf, true);
	ok(q != NULL, "queue %s opened", name);
	return q;
}

/* The intake's probe writes for real and leaves nothing behind. */
static void
test_probe(void)
{
	char tmp[512];
	const char *step = "unset";
	uint64_t avail = 0;
	struct queue *q;

	if ((q = sub_queue("probe-q", tmp, sizeof(tmp))) == NULL)
		return;
	is_int(queue_probe(q, &step), 0, "probe of a writable queue succeeds");
	ok(step == NULL, "no failed step");
	is_int((long long)count("probe-q/tmp"), 0, "the probe file is gone");
	is_int(queue_space(q, &avail), 0, "queue_space");
	ok(avail > 0, "some space available (%llu)", (unsigned long long)avail);
	/* tmp/ removed under the daemon (an unmounted or replaced disk). */
	snprintf(tmp, sizeof(tmp), "%s/probe-q/tmp", dir);
	is_int(rmdir(tmp), 0, "tmp/ removed");
	errno = 0;
	is_int(queue_probe(q, &step), -1, "probe of a queue without tmp/ fails");
	is_str(step != NULL ? step : "(null)", "open", "the open failed");
	is_int(errno, ENOENT, "with ENOENT");
	queue_close(q);
}

#define COUNT_THREADS 4
#define COUNT_COMMITS 10

/* Commits from several threads at once, as the disk pool makes them. */
static void *
commit_thread(void *arg)
{
	struct queue *q = arg;

	for (int i = 0; i < COUNT_COMMITS; i++) {
		struct queue_env *env = make_env();
		struct iovec iov = {(void *)content, sizeof(content) - 1};

		if (queue_commit(q, env, &iov, 1) == -1)
			fprintf(stderr, "commit_thread: commit failed\n");
		queue_env_free(env);
	}
	return NULL;
}

/* queue_count: kept by commit, remove, move to corrupt/ and recovery. */
static void
test_count(void)
{
	char tmp[512], first[QUEUE_ID_LEN + 1], second[QUEUE_ID_LEN + 1];
	pthread_t th[COUNT_THREADS];
	struct queue_recovery rec;
	struct queue *q, *again;

	if ((q = sub_queue("count-q", tmp, sizeof(tmp))) == NULL)
		return;
	is_int((long long)queue_count(q), 0, "a new queue counts 0");
	memcpy(first, commit(q), sizeof(first));
	memcpy(second, commit(q), sizeof(second));
	is_int((long long)queue_count(q), 2, "two commits: 2");
	is_int(queue_remove(q, first), QUEUE_OK, "remove one");
	is_int((long long)queue_count(q), 1, "after the remove: 1");
	is_int(queue_remove(q, first), QUEUE_ENOTFOUND, "remove it again");
	is_int((long long)queue_count(q), 1, "a remove that unlinked nothing counts nothing");
	is_int(queue_move_corrupt(q, second, "test"), 0, "move one to corrupt/");
	is_int((long long)queue_count(q), 0, "after the move: 0");
	for (int i = 0; i < COUNT_THREADS; i++)
		pthread_create(&th[i], NULL, commit_thread, q);
	for (int i = 0; i < COUNT_THREADS; i++)
		pthread_join(th[i], NULL);
	is_int((long long)queue_count(q), COUNT_THREADS * COUNT_COMMITS,
	    "concurrent commits are all counted");
	again = queue_open(tmp, false);
	ok(again != NULL, "the same queue opened again");
	if (again != NULL) {
		is_int((long long)queue_count(again), 0, "not counted before recovery");
		ok(queue_recover(again, true, 0, &rec, NULL, NULL) == 0, "recover");
		is_int((long long)queue_count(again), COUNT_THREADS * COUNT_COMMITS,
		    "recovery sets the count");
		queue_close(again);
	}
	queue_close(q);
}

#define GROUP_THREADS 8
#define GROUP_COMMITS 25

/* One thread of test_group_commit: commit, load back, remove. */
static void *
group_thread(void *arg)
{
	struct queue *q = arg;
	long bad = 0;

	for (int i = 0; i < GROUP_COMMITS; i++) {
		struct queue_env *env = make_env(), *back = NULL;
		struct iovec iov = {(void *)content, sizeof(content) - 1};
		char *got = NULL;
		size_t glen = 0;

		if (queue_commit(q, env, &iov, 1) == -1 ||
		    queue_load(q, env->id, &back, &got, &glen) != QUEUE_OK ||
		    glen != sizeof(content) - 1 || memcmp(got, content, glen) != 0 ||
		    queue_remove(q, env->id) != QUEUE_OK)
			bad++;
		free(got);
		queue_env_free(back);
		queue_env_free(env);
	}
	return (void *)bad;
}

/* GROUP_THREADS threads of group_thread on q at once: their failures. */
static long
run_group_threads(struct queue *q)
{
	pthread_t th[GROUP_THREADS];
	long bad = 0;

	for (int i = 0; i < GROUP_THREADS; i++)
		pthread_create(&th[i], NULL, group_thread, q);
	for (int i = 0; i < GROUP_THREADS; i++) {
		void *r;

		pthread_join(th[i], &r);
		bad += (long)r;
	}
	return bad;
}

/*
 * Group commit: renames and unlinks from many threads share the fsyncs of
 * queue/; every commit still returns only after one that began after its
 * rename (not observable here: that is test_relay_crash.py's job).
 */
static void
test_group_commit(void)
{
	char tmp[512];
	uint64_t changes = 0, fsyncs = 0;
	struct queue *q;

	if ((q = sub_queue("group-q", tmp, sizeof(tmp))) == NULL)
		return;
	queue_dirsync_stats(q, &changes, &fsyncs);
	ok(changes == 0 && fsyncs == 0, "a new queue has synced nothing");
	commit(q);
	queue_dirsync_stats(q, &changes, &fsyncs);
	ok(changes == 1 && fsyncs == 1, "one commit alone: one fsync of queue/");
	is_int(run_group_threads(q), 0, "concurrent commit, load and remove all succeed");
	is_int((long long)queue_count(q), 1, "and leave only the first message");
	is_int((long long)count("group-q/tmp"), 0, "nothing left in tmp/");
	queue_dirsync_stats(q, &changes, &fsyncs);
	is_int((long long)changes, 1 + 2 * GROUP_THREADS * GROUP_COMMITS,
	    "every rename and unlink waited for a sync");
	ok(fsyncs >= 1 && fsyncs <= changes, "fsyncs of queue/: %llu for %llu changes",
	    (unsigned long long)fsyncs, (unsigned long long)changes);
	queue_close(q);
}

/* Content written to a spool piece by piece commits exactly as queue_commit would. */
static void
test_spool(struct queue *q)
{
	static char big[200000];
	struct queue_env *env = make_env(), *back = NULL;
	struct iovec head = {(void *)"Received: x\r\n", 13}, piece;
	struct queue_spool *sp;
	struct queue_recovery rec;
	char *got = NULL, id[QUEUE_ID_LEN + 1];
	size_t glen = 0;
	FILE *f;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	queue_id_new(env->id);
	memcpy(id, env->id, sizeof(id));
	sp = queue_spool_new(q, id);
	ok(sp != NULL, "spool created");
	ok(queue_spool_new(q, id) == NULL && errno == EEXIST, "a second spool for one ID fails");
	is_int((long long)count("tmp"), 1, "the spool is in tmp/");
	for (size_t off = 0; sp != NULL && off < sizeof(big); off += 65536) {
		piece.iov_base = big + off;
		piece.iov_len = sizeof(big) - off < 65536 ? sizeof(big) - off : 65536;
		is_int(queue_spool_write(sp, &piece, 1), 0, "spool write at %zu", off);
	}
	is_int((long long)queue_spool_size(sp), sizeof(big), "spool size");
	is_int(queue_commit_spool(q, env, &head, 1, sp), 0, "commit from the spool");
	is_int((long long)env->size, 13 + sizeof(big), "size counts head and spool");
	queue_spool_free(sp);
	queue_spool_free(NULL);
	is_int((long long)count("tmp"), 0, "spool removed after the commit");
	is_int(queue_load(q, id, &back, &got, &glen), QUEUE_OK, "load (CRC checked)");
	ok(got != NULL && glen == 13 + sizeof(big) && memcmp(got, "Received: x\r\n", 13) == 0 &&
	        memcmp(got + 13, big, sizeof(big)) == 0,
	    "content is head then the spool, exactly");
	free(got);
	queue_env_free(back);
	queue_env_free(env);
	is_int(queue_remove(q, id), QUEUE_OK, "remove");

	/* A spool left by a crash is a stale tmp/ file: removed, never queued. */
	f = fopen(path_of("tmp", "0000000000000002.data"), "w");
	fclose(f);
	ok(queue_recover(q, true, 0, &rec, NULL, NULL) == 0 && rec.stale == 1, "stale spool found");
	is_int((long long)count("tmp"), 0, "stale spool removed");
	is_int((long long)count("queue"), 0, "nothing resurrected");
}

/* The inode of <sub>/<name> in the queue at qdir, 0 when absent. */
static ino_t
inode_of(const char *qdir, const char *sub, const char *name)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s/%s", qdir, sub, name);
	return stat(p, &st) == 0 ? st.st_ino : 0;
}

/* Commit a message of `len` octets of `c`; the new ID in id. */
static int
commit_len(struct queue *q, size_t len, char c, char id[QUEUE_ID_LEN + 1])
{
	static char body[100000];
	struct queue_env *env = make_env();
	struct iovec iov = {body, len};
	int rc;

	memset(body, c, len);
	rc = queue_commit(q, env, &iov, 1);
	memcpy(id, env->id, QUEUE_ID_LEN + 1);
	queue_env_free(env);
	return rc;
}

/* Whether queue/<id> loads (CRC checked) with `len` octets of `c`. */
static bool
loads_as(struct queue *q, const char *id, size_t len, char c)
{
	struct queue_env *back = NULL;
	char *got = NULL;
	size_t glen = 0;
	bool good = queue_load(q, id, &back, &got, &glen) == QUEUE_OK && glen == len;

	for (size_t i = 0; good && i < len; i++)
		good = got[i] == c;
	free(got);
	queue_env_free(back);
	return good;
}

/*
 * Spare files: a removed message's file waits in tmp/ for the next commit,
 * which overwrites it (same inode), cut to its own length; at most `max`
 * are kept and none larger than max_size; recovery removes them at start
 * and never calls them stale.
 */
static void
test_spares(void)
{
	char qdir[512], a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1];
	char d[QUEUE_ID_LEN + 1], big[QUEUE_ID_LEN + 1];
	struct queue_recovery rec;
	struct queue *q;
	ino_t ino_a, ino_big;
	struct stat st;
	char p[600];

	if ((q = sub_queue("spare-q", qdir, sizeof(qdir))) == NULL)
		return;
	is_int(queue_keep_spares(q, 2, 8192), 0, "queue keeping 2 spares of 8 KiB");
	is_int(commit_len(q, 5000, 'a', a), 0, "commit a (5,000 octets)");
	ino_a = inode_of(qdir, "queue", a);
	is_int(queue_remove(q, a), QUEUE_OK, "remove a");
	ok(inode_of(qdir, "tmp", "spare.0") == ino_a, "a's file is now tmp/spare.0");
	is_int(queue_remove(q, a), QUEUE_ENOTFOUND, "removing a again: not found");
	is_int(commit_len(q, 100, 'b', b), 0, "commit b (100 octets)");
	ok(inode_of(qdir, "queue", b) == ino_a, "b overwrote the spare (same inode)");
	ok(inode_of(qdir, "tmp", "spare.0") == 0, "and took it from tmp/");
	ok(loads_as(q, b, 100, 'b'), "b loads whole, CRC good (the old tail is cut)");
	snprintf(p, sizeof(p), "%s/queue/%s", qdir, b);
	if (stat(p, &st) == -1)
		st.st_size = -1;
	ok(st.st_size > 100 && st.st_size < 1000, "b's file has b's length (%lld, not 5,000+)",
	    (long long)st.st_size);
	is_int((long long)queue_spares_reused(q), 1, "one spare reused");

	/* Bounds: a file above max_size and a third spare are unlinked. */
	is_int(commit_len(q, 20000, 'g', big), 0, "commit a 20,000-octet message");
	ino_big = inode_of(qdir, "queue", big);
	is_int(queue_remove(q, big), QUEUE_OK, "remove it");
	ok(ino_big != 0 && count("spare-q/tmp") == 0, "too large to keep: unlinked");
	is_int(commit_len(q, 10, 'c', c), 0, "commit c");
	is_int(commit_len(q, 10, 'd', d), 0, "commit d");
	is_int(queue_remove(q, b), QUEUE_OK, "remove b");
	is_int(queue_remove(q, c), QUEUE_OK, "remove c");
	is_int(queue_remove(q, d), QUEUE_OK, "remove d");
	is_int((long long)count("spare-q/tmp"), 2, "two spares kept, the third unlinked");
	is_int((long long)queue_count(q), 0, "nothing counted as queued");

	/* analyze beside a running daemon leaves them; start-up removes them. */
	ok(queue_recover(q, true, 3600, &rec, NULL, NULL) == 0 && rec.stale == 0 &&
	        count("spare-q/tmp") == 2,
	    "recovery with a minimum age: spares left, not stale");
	ok(queue_recover(q, true, 0, &rec, NULL, NULL) == 0 && rec.stale == 0 &&
	        count("spare-q/tmp") == 0,
	    "recovery at start: spares removed, not stale");
	/* The daemon's list still names them: a commit finds none and creates. */
	is_int(commit_len(q, 10, 'e', a), 0, "a commit after the spares vanished still works");
	ok(loads_as(q, a, 10, 'e'), "and loads");
	is_int((long long)count("spare-q/tmp"), 0, "tmp/ empty");
	queue_close(q);

	/* Many threads committing and removing, sharing 3 spares. */
	if ((q = sub_queue("spare-mt", qdir, sizeof(qdir))) == NULL)
		return;
	is_int(queue_keep_spares(q, 3, 65536), 0, "queue keeping 3 spares");
	is_int(
	    run_group_threads(q), 0, "concurrent commit, load and remove with spares all succeed");
	ok(queue_spares_reused(q) > 0, "spares were reused (%lu times)", queue_spares_reused(q));
	ok(count("spare-mt/tmp") <= 3, "at most 3 spares in tmp/ (%zu)", count("spare-mt/tmp"));
	is_int((long long)count("spare-mt/queue"), 0, "queue/ empty");
	queue_close(q);
}

/*
 * A lazy removal (delivery's) waits for no fsync of queue/; the next one,
 * whoever runs it, covers it, and queue_dirsync_flush runs one only when
 * such a removal is still owed one.
 */
static void
test_lazy_remove(void)
{
	char qdir[512], id[QUEUE_ID_LEN + 1];
	uint64_t changes0, fsyncs0, changes, fsyncs;
	struct queue *q;

	if ((q = sub_queue("lazy-q", qdir, sizeof(qdir))) == NULL)
		return;
	is_int(commit_len(q, 10, 'l', id), 0, "commit");
	queue_dirsync_stats(q, &changes0, &fsyncs0);
	is_int(queue_dirsync_flush(q), 0, "flush with nothing owed");
	queue_dirsync_stats(q, &changes, &fsyncs);
	ok(fsyncs == fsyncs0, "runs no fsync");
	is_int(queue_remove_lazy(q, id), QUEUE_OK, "lazy remove");
	is_int((long long)count("lazy-q/queue"), 0, "the file is gone at once");
	is_int((long long)queue_count(q), 0, "and not counted");
	queue_dirsync_stats(q, &changes, &fsyncs);
	ok(fsyncs == fsyncs0, "no fsync of queue/ waited for");
	is_int(queue_dirsync_flush(q), 0, "flush");
	queue_dirsync_stats(q, &changes, &fsyncs);
	ok(fsyncs == fsyncs0 + 1, "runs the one owed");
	is_int(queue_dirsync_flush(q), 0, "flush again");
	queue_dirsync_stats(q, &changes, &fsyncs);
	ok(fsyncs == fsyncs0 + 1, "owes nothing now");
	is_int(queue_remove_lazy(q, id), QUEUE_ENOTFOUND, "lazy remove of a removed one");
	/* A commit's fsync covers an earlier lazy removal. */
	is_int(commit_len(q, 10, 'm', id), 0, "commit");
	is_int(queue_remove_lazy(q, id), QUEUE_OK, "lazy remove");
	is_int(commit_len(q, 10, 'n', id), 0, "a commit after it");
	queue_dirsync_stats(q, &changes0, &fsyncs0);
	is_int(queue_dirsync_flush(q), 0, "flush");
	queue_dirsync_stats(q, &changes, &fsyncs);
	ok(fsyncs == fsyncs0, "the commit's fsync covered the removal");
	queue_close(q);
}

int
main(void)
{
	struct queue *q;

	log_init("test_queue", LOG_LEVEL_ERR, false);
	if (mkdtemp(dir) == NULL)
		return 1;
	ok(queue_open(dir, false) == NULL, "no queue there: open without create fails");
	q = queue_open(dir, true);
	ok(q != NULL, "queue created in %s", dir);
	if (q != NULL) {
		test_crc();
		test_commit_load(q);
		test_json_roundtrip();
		test_recovery(q);
		test_spool(q);
		test_unique_ids();
		test_probe();
		test_count();
		test_group_commit();
		test_spares();
		test_lazy_remove();
		test_error_names_file(q);
	}
	queue_close(q);
	queue_close(NULL);
	queue_env_free(NULL);
	rm_cb(dir);
	return tap_done();
}
