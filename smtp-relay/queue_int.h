/*
 * queue_int.h - private declarations shared by the queue's files: queue.c
 * (format, commit, load, update, remove) and queue_recover.c (start-up
 * recovery and `smtp-relayctl analyze`).  Not for use outside
 * smtp-relay/queue*.c.
 */
#ifndef MXB_QUEUE_INT_H
#define MXB_QUEUE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp-relay/queue.h"

/* Failed fsyncs of queue/ remembered for their late waiters. */
#define QUEUE_DIRSYNC_FAILS 16

/*
 * Group commit of queue/'s entries (queue_dirsync in queue.c): a rename
 * into queue/ or an unlink from it takes a ticket; the first fsync of
 * queue/ that starts after the ticket makes it durable.  One thread at a
 * time runs that fsync for every ticket taken so far while the others wait.
 */
struct queue_dirsync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t started;  /* fsyncs of queue/ begun */
	uint64_t finished; /* ... and ended; one runs when started > finished */
	/* The last failed fsyncs, for the waiters they covered (successes,
	 * the rule, need no record). */
	struct {
		uint64_t gen; /* which fsync (1, 2, ...) */
		int err;
	} fail[QUEUE_DIRSYNC_FAILS];
	uint64_t nfail; /* fsyncs of queue/ that failed */
	/* The fsync that makes the last lazy removal durable (one that starts
	 * after it): pending while finished < lazy. */
	uint64_t lazy;
	uint64_t tickets; /* changes made durable so far, for queue_dirsync_stats */
};

/*
 * Spare files (queue_keep_spares): the files of removed messages, renamed
 * to tmp/spare.<N> instead of unlinked, for the next commit to overwrite.
 * A commit then allocates no inode and a removal frees none (on a busy
 * ext4 without a journal, allocating one cost 250-400 us of CPU).  A stack
 * of their numbers; `busy` counts removals between taking a number and
 * their rename, so the bound holds.
 */
#define QUEUE_SPARE_PREFIX "spare."
struct queue_spares {
	pthread_mutex_t lock;
	unsigned *stack; /* numbers of tmp/spare.<N> free for a commit */
	unsigned n, busy, max;
	unsigned next;       /* the number the next spare gets */
	uint64_t max_size;   /* larger files are unlinked, not kept */
	atomic_ulong reused; /* commits that overwrote a spare */
};

struct queue {
	char *dir;
	int tmpfd;
	int queuefd;
	int corruptfd;
	/* Messages in queue/: set by queue_recover, kept by commit, remove and
	 * move_corrupt.  Atomic: commits run on the disk pool's threads. */
	atomic_size_t count;
	struct queue_dirsync dirsync;
	struct queue_spares spares;
};

/*
 * Read and validate the file queue/<id>: *env_out and, when content is not
 * NULL, the content as queue_load gives them.  Logs nothing: *why tells
 * what is wrong for QUEUE_ECORRUPT ("" otherwise).
 */
enum queue_status queue_load_env(struct queue *q, const char *id, struct queue_env **env_out,
    char **content, size_t *clen, const char **why);

#endif
