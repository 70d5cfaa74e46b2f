/*
 * queue_recover.c - recovery of the queue at start-up and its analysis by
 * `smtp-relayctl analyze`: stale tmp/ files, damaged and stray files in
 * queue/, orphans (docs/queue-format.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/queue_int.h"

/* One run of queue_recover: where findings are counted and reported. */
struct recover_ctx {
	struct queue *q;
	bool repair;
	struct queue_recovery *out;
	void (*each)(const char *, const char *, const char *, void *);
	void *arg;
};

/* Report one finding to the caller's callback, when there is one. */
static void
finding(struct recover_ctx *rc, const char *kind, const char *name, const char *why)
{
	if (rc->each != NULL)
		rc->each(kind, name, why, rc->arg);
}

/*
 * A directory stream on a dup of one of the queue's folder descriptors (the
 * stream closes its own), rewound: the descriptor may have been read before.
 */
static DIR *
open_dir(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d;

	if (fd == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return NULL;
	}
	rewinddir(d);
	return d;
}

/*
 * tmp/ holds files whose writer never said "queued": anything older than
 * min_age is a leftover (younger ones may be commits in progress of a
 * running daemon).  Nobody was promised these messages: remove them.
 */
static int
recover_tmp(struct recover_ctx *rc, unsigned min_age)
{
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *d = open_dir(rc->q->tmpfd);

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (strncmp(de->d_name, QUEUE_SPARE_PREFIX, strlen(QUEUE_SPARE_PREFIX)) == 0) {
			/* A spare file (queue_keep_spares), never a message: the
			 * running daemon's, or an earlier one's, removed at start. */
			if (rc->repair && min_age == 0 &&
			    unlinkat(rc->q->tmpfd, de->d_name, 0) == -1 && errno != ENOENT)
				log_warn("queue: unlink %s/tmp/%s", rc->q->dir, de->d_name);
			continue;
		}
		if (fstatat(rc->q->tmpfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    now - st.st_mtime < (time_t)min_age)
			continue;
		rc->out->stale++;
		finding(rc, "stale", de->d_name, "left in tmp/, never acknowledged");
		if (rc->repair && unlinkat(rc->q->tmpfd, de->d_name, 0) == -1 && errno != ENOENT)
			log_warn("queue: %s: unlink %s/tmp/%s", de->d_name, rc->q->dir, de->d_name);
	}
	closedir(d);
	return 0;
}

/*
 * One name in queue/: stray (not an ID) and damaged files go to corrupt/,
 * never deleted (an operator may still want them); an orphan, whose
 * recipients are all final, was not removed before a crash: remove it.
 */
static void
recover_one(struct recover_ctx *rc, const char *name)
{
	struct queue_env *env;
	const char *why;
	enum queue_status st;

	if (!queue_id_valid(name)) {
		rc->out->stray++;
		finding(rc, "stray", name, "not a queue ID");
		if (rc->repair)
			queue_move_corrupt(rc->q, name, "not a queue ID");
		return;
	}
	st = queue_load_env(rc->q, name, &env, NULL, NULL, &why);
	if (st == QUEUE_ECORRUPT) {
		rc->out->damaged++;
		finding(rc, "damaged", name, why);
		if (rc->repair)
			queue_move_corrupt(rc->q, name, why);
		return;
	}
	if (st != QUEUE_OK) {
		if (st == QUEUE_EIO)
			log_warn("queue: %s: read %s/queue/%s", name, rc->q->dir, name);
		return;
	}
	if (queue_env_is_done(env)) {
		rc->out->orphans++;
		finding(rc, "orphan", name, "every recipient is final");
		if (rc->repair)
			queue_remove(rc->q, name);
	} else {
		rc->out->messages++;
		for (size_t i = 0; i < env->nrcpts; i++)
			rc->out->recipients_pending += env->rcpts[i].state == QUEUE_RCPT_PENDING;
	}
	queue_env_free(env);
}

/* Entries of a folder, dot files excepted. */
static size_t
count_entries(int dirfd)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = open_dir(dirfd);

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

int
queue_recover(struct queue *q, bool repair, unsigned tmp_min_age, struct queue_recovery *out,
    void (*each)(const char *kind, const char *name, const char *why, void *arg), void *arg)
{
	struct recover_ctx rc = {q, repair, out, each, arg};
	struct dirent *de;
	DIR *d;

	memset(out, 0, sizeof(*out));
	if (recover_tmp(&rc, tmp_min_age) == -1 || (d = open_dir(q->queuefd)) == NULL) {
		log_warn("queue: opendir %s", q->dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			recover_one(&rc, de->d_name);
	closedir(d);
	out->corrupt_total = count_entries(q->corruptfd);
	atomic_store(&q->count, out->messages);
	return 0;
}
