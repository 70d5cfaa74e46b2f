/*
 * queue.h - the crash-safe mail queue: one file per message holding the
 * envelope (json-c) and the content, committed with write, fsync, rename,
 * fsync of the directory before anyone is told "queued".
 *
 * Layout under the queue directory (docs/queue-format.md):
 *   tmp/       files being written; leftovers are removed by queue_recover
 *   queue/     committed messages, one file named by the queue ID
 *   corrupt/   damaged files, moved here (never deleted) with a log line
 *
 * Users: the SMTP server (queue_commit), delivery (queue_scan, queue_load,
 * queue_update, queue_commit for bounces, queue_remove) and smtp-relayctl.
 * A struct queue is used by one thread at a time; queue_commit and
 * queue_update touch no shared state besides the directory descriptors, so
 * several threads may each call them on the same queue concurrently.
 * Errors are logged here (with the queue ID) and errno is kept for callers
 * that need to tell ENOSPC apart.
 */
#ifndef MXB_QUEUE_H
#define MXB_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

/* 16 lower-case hex digits: microseconds of arrival << 12 | a sequence. */
#define QUEUE_ID_LEN         16
#define QUEUE_FORMAT_VERSION 1

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING,   /* not yet delivered; retried at next_retry */
	QUEUE_RCPT_DELIVERED, /* final: the next hop said 2xx */
	QUEUE_RCPT_FAILED,    /* final: permanent failure or give-up; bounce committed */
};

/* One recipient and its own delivery state: a plain value. */
struct queue_rcpt {
	char *address; /* "local@domain" or "postmaster"; owned by the envelope */
	enum queue_rcpt_state state;
	unsigned attempts;   /* delivery attempts so far */
	unsigned backoff;    /* retry steps taken: the wait doubles per step; a
	                      * flushed attempt takes none */
	time_t next_retry;   /* not before this time (pending only) */
	time_t last_attempt; /* 0 = never */
	char *last_error;    /* NULL or the last diagnostic, e.g. "451 4.4.1 ..." */
};

/* The envelope of one message.  Strings are owned by the envelope. */
struct queue_env {
	char id[QUEUE_ID_LEN + 1]; /* "" until committed */
	time_t arrival;
	char *sender;      /* "" for the null sender <> */
	char *client_addr; /* "192.0.2.1" or "local" for mail made here */
	char *client_helo; /* NULL when unknown */
	bool body_8bit;    /* MAIL FROM ... BODY=8BITMIME */
	bool is_bounce;    /* a delivery status notification made here */
	uint64_t size;     /* content octets (set by queue_commit / load) */
	struct queue_rcpt *rcpts;
	size_t nrcpts;
};

enum queue_status {
	QUEUE_OK = 0,
	QUEUE_ENOTFOUND, /* no such message */
	QUEUE_ECORRUPT,  /* the file is damaged (and was not moved) */
	QUEUE_EIO,       /* a system call failed (errno kept) */
};

const char *queue_strerror(enum queue_status st);

struct queue;

/*
 * Open (and create when `create`) the queue directory and its tmp/, queue/
 * and corrupt/ folders.  Returns NULL with the reason logged.
 */
struct queue *queue_open(const char *dir, bool create);
void queue_close(struct queue *q);

/*
 * Keep up to `max` files of removed messages (each at most max_size
 * octets) in tmp/ for later commits to overwrite, instead of unlinking
 * them and creating new ones (docs/queue-format.md "Spare files").  For
 * the daemon only, after queue_recover (which removes spares left by an
 * earlier run); once.  0, or -1 when out of memory (then none are kept).
 */
int queue_keep_spares(struct queue *q, unsigned max, uint64_t max_size);
/*
 * queue_remove without waiting for the fsync of queue/: the removal is
 * made durable by the next one, whoever runs it (a commit, another
 * removal, queue_dirsync_flush, queue_close).  For delivery, where a
 * removal lost in a crash means a second delivery, as the design allows;
 * never for an operator's removal.
 */
enum queue_status queue_remove_lazy(struct queue *q, const char *id);

/* Make lazy removals durable now if an fsync of queue/ is still owed:
 * 0, or -1 (errno) when that fsync failed.  Blocks: call from a worker. */
int queue_dirsync_flush(struct queue *q);

/* What smtp-relayd keeps: at most 256 files of at most 64 KiB (16 MiB). */
#define QUEUE_SPARES     256
#define QUEUE_SPARE_SIZE (64 * 1024)

/* Commits that overwrote a spare file so far. */
unsigned long queue_spares_reused(const struct queue *q);
const char *queue_dir(const struct queue *q);

/*
 * Messages in queue/ as this process knows them: set by queue_recover (to
 * out->messages), one more per queue_commit, one less per queue_remove
 * that unlinked a file and per queue_move_corrupt that moved one; never
 * below zero.  Safe from any thread (commits run on worker threads).
 */
size_t queue_count(const struct queue *q);

/* What queue_recover found; also what `smtp-relayctl analyze` reports. */
struct queue_recovery {
	size_t messages; /* good files in queue/ (orphans not counted) */
	size_t recipients_pending;
	size_t stale;         /* tmp/ leftovers (never acknowledged): removed */
	size_t damaged;       /* files in queue/ that fail validation: to corrupt/ */
	size_t orphans;       /* every recipient final but the file is left: removed */
	size_t stray;         /* names in queue/ that are not queue IDs: to corrupt/ */
	size_t corrupt_total; /* files in corrupt/ afterwards */
};

/*
 * Recovery and analysis: validate every file in queue/ (header, envelope,
 * lengths, checksum, ID = file name).  With `repair`, remove stale tmp/
 * files (those older than `tmp_min_age` seconds: 0 at daemon start-up when
 * nobody else writes), move damaged and stray files to corrupt/ with a log
 * line, and remove orphans.  Without it nothing changes and the counters say
 * what would be done.  `each` (may be NULL) is called for every finding with
 * a kind ("stale", "damaged", "orphan", "stray"), the name and a reason.
 * Returns 0 or -1 (logged).
 */
int queue_recover(struct queue *q, bool repair, unsigned tmp_min_age, struct queue_recovery *out,
    void (*each)(const char *kind, const char *name, const char *why, void *arg), void *arg);

/* Call cb for every committed queue ID (order unspecified); a non-zero
 * return from cb stops the scan and is returned.  -1 on a read error. */
int queue_scan(struct queue *q, int (*cb)(const char *id, void *arg), void *arg);

/* True when `id` has the form of a queue ID. */
bool queue_id_valid(const char *id);

/* The arrival time an ID encodes (Unix seconds with microseconds); 0 when invalid. */
double queue_id_arrival(const char *id);

/* Make a new, unique queue ID (thread-safe), e.g. for a Received: header
 * written before queue_commit. */
void queue_id_new(char id[QUEUE_ID_LEN + 1]);

/*
 * Commit a new message: env (id made here unless already set with
 * queue_id_new; size computed) and the
 * content given as `iovcnt` pieces (canonical CRLF lines, already
 * dot-unstuffed, with our Received: header first).  On return 0 the file
 * is durable: written, fsynced, renamed into queue/, directory fsynced.
 * On -1 nothing is left behind and errno tells why (ENOSPC, EDQUOT, EIO...).
 */
int queue_commit(struct queue *q, struct queue_env *env, const struct iovec *iov, int iovcnt);

/*
 * Spools: the content of a message still arriving, written to
 * tmp/<id>.data piece by piece so that memory does not grow with the
 * message (docs/queue-format.md).  A spool is never a queue file: recovery
 * removes it with the other tmp/ leftovers.  Used by one thread at a time.
 */
struct queue_spool;

/* Create tmp/<id>.data (O_EXCL).  NULL (logged, errno kept) on failure. */
struct queue_spool *queue_spool_new(struct queue *q, const char *id);

/* Append the pieces; 0, or -1 (logged, errno kept: ENOSPC, EDQUOT...). */
int queue_spool_write(struct queue_spool *sp, const struct iovec *iov, int iovcnt);

/* Octets written so far. */
uint64_t queue_spool_size(const struct queue_spool *sp);

/* Close and remove the spool file; NULL is a no-op. */
void queue_spool_free(struct queue_spool *sp);

/*
 * queue_commit with content = the `iovcnt` pieces followed by the spool's
 * octets (copied into the queue file, which is written, fsynced, renamed and
 * its folder fsynced as queue_commit does).  The spool is left as it is:
 * queue_spool_free it afterwards either way.
 */
int queue_commit_spool(struct queue *q, struct queue_env *env, const struct iovec *iov, int iovcnt,
    const struct queue_spool *sp);

/*
 * Load a message.  *env_out gets a new envelope (queue_env_free); when
 * content_out is not NULL it gets the content (malloc'd, free()) and its
 * length.  The checksum is always verified.
 */
enum queue_status queue_load(struct queue *q, const char *id, struct queue_env **env_out,
    char **content_out, size_t *content_len);

/*
 * Durably replace the envelope of a committed message (e.g. after one
 * recipient's state changed): the file is rewritten to tmp/ with the same
 * content, fsynced and renamed over the old one.  Returns 0 or -1.
 */
int queue_update(struct queue *q, const struct queue_env *env);

/*
 * Remove a message (unlink, fsync of the directory).  QUEUE_ENOTFOUND when
 * absent.  With spares kept (queue_keep_spares) a file of at most
 * max_size octets is renamed to tmp/spare.<N> instead of unlinked.
 */
enum queue_status queue_remove(struct queue *q, const char *id);

/*
 * Can the queue be written right now?  Create tmp/probe, write a few
 * octets, fsync and unlink it, as a commit would, as the user we run as
 * (access(2) would lie for root and knows nothing of read-only mounts or
 * full disks).  Returns 0, or -1 with errno set and *step naming the call
 * that failed ("open", "write", "fsync", "unlink").  Logs nothing; safe on
 * a worker thread alongside commits (one probe at a time).
 */
int queue_probe(struct queue *q, const char **step);

/* Octets of the queue's file system available to us (f_bavail * f_frsize)
 * into *avail; 0, or -1 with errno.  Logs nothing. */
int queue_space(struct queue *q, uint64_t *avail);

/*
 * Renames into queue/ and unlinks from it made durable so far, and the
 * fsyncs of queue/ that did it (group commit: fewer fsyncs than changes
 * when many threads commit at once).  Safe from any thread.
 */
void queue_dirsync_stats(struct queue *q, uint64_t *changes, uint64_t *fsyncs);

/* Move a damaged file to corrupt/ and log `why`.  Returns 0 or -1. */
int queue_move_corrupt(struct queue *q, const char *id, const char *why);

/* True when every recipient is final (delivered or failed): remove the file. */
bool queue_env_is_done(const struct queue_env *env);

/* Envelope helpers.  queue_env_new returns an empty envelope, or NULL. */
struct queue_env *queue_env_new(void);
void queue_env_free(struct queue_env *env);
/* Append a pending recipient (copied); 0 or -1. */
int queue_env_add_rcpt(struct queue_env *env, const char *address, time_t next_retry);
/* Replace a string field (copied; NULL allowed where documented); 0 or -1. */
int queue_env_set(char **field, const char *value);

/* The envelope as a JSON document (json_object_put when done), as stored. */
struct json_object *queue_env_to_json(const struct queue_env *env);
/* Parse a stored envelope; NULL when it is not a valid version-1 envelope. */
struct queue_env *queue_env_from_json(struct json_object *obj);

const char *queue_rcpt_state_name(enum queue_rcpt_state st);

/* CRC-32 (IEEE 802.3), continued from `crc` (start with 0). */
uint32_t queue_crc32(uint32_t crc, const void *data, size_t len);

#endif
