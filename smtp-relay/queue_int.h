/*
 * queue_int.h - private declarations shared by the queue's files: queue.c
 * (format, commit, load, update, remove) and queue_recover.c (start-up
 * recovery and `smtp-relayctl analyze`).  Not for use outside
 * smtp-relay/queue*.c.
 */
#ifndef MXB_QUEUE_INT_H
#define MXB_QUEUE_INT_H

#include <stdatomic.h>
#include <stddef.h>

#include "smtp-relay/queue.h"

struct queue {
	char *dir;
	int tmpfd;
	int queuefd;
	int corruptfd;
	/* Messages in queue/: set by queue_recover, kept by commit, remove and
	 * move_corrupt.  Atomic: commits run on the disk pool's threads. */
	atomic_size_t count;
};

/*
 * Read and validate the file queue/<id>: *env_out and, when content is not
 * NULL, the content as queue_load gives them.  Logs nothing: *why tells
 * what is wrong for QUEUE_ECORRUPT ("" otherwise).
 */
enum queue_status queue_load_env(struct queue *q, const char *id, struct queue_env **env_out,
    char **content, size_t *clen, const char **why);

#endif
