/*
 * disk_pool.h - the disk work of smtp-relayd off the event loop: a few
 * threads run queue commits (write, fsync, rename, fsync of the directory)
 * so that many sessions' fsyncs overlap and the file system can group them,
 * and delivery's envelope updates, removals, bounces and Maildir files, and
 * the intake's probe, while the loop keeps serving.  Results come back on
 * the loop's thread.
 *
 * One pool per process, owned by smtp-relayd.c and lent to the SMTP server,
 * its sessions, delivery and the intake.  Its users free their jobs' owners
 * only after disk_pool_free (which joins the threads), sessions excepted:
 * they cancel their commits first.
 */
#ifndef MXB_DISK_POOL_H
#define MXB_DISK_POOL_H

struct event_base;
struct evbuffer;
struct queue;
struct queue_env;
struct disk_pool;
struct commit_job;

/* Worker threads; most of their time is spent waiting in fsync. */
#define DISK_POOL_THREADS 8

/*
 * Called on the loop's thread when a commit is done: rc 0 (env->id holds
 * the queue ID; the message is durable) or -1 with err = errno.  env is
 * borrowed for the call only.
 */
typedef void (*commit_done_fn)(int rc, int err, const struct queue_env *env, void *arg);

/* Start `nthreads` threads committing into q (borrowed).  NULL (logged) on failure. */
struct disk_pool *disk_pool_new(struct event_base *base, struct queue *q, unsigned nthreads);

/*
 * Commit `env` with content = `head` (may be NULL) followed by `body`.  The
 * pool takes ownership of env, head (malloc'd) and body; done(arg) runs
 * later on the loop thread unless the job is cancelled.  Returns the job, or
 * NULL when out of memory (nothing taken over then).
 */
struct commit_job *disk_pool_commit(struct disk_pool *p, struct queue_env *env, char *head,
    struct evbuffer *body, commit_done_fn done, void *arg);

/*
 * Other disk work off the loop (delivery: queue_update, queue_remove,
 * Maildir writes): run(arg) on a worker thread, then after(arg) on the
 * loop's thread.  Jobs are not cancellable; arg must live until after()
 * ran.  Returns 0, or -1 when out of memory (nothing runs then).
 */
typedef void (*disk_run_fn)(void *arg);
typedef void (*disk_after_fn)(void *arg);
int disk_pool_run(struct disk_pool *p, disk_run_fn run, disk_after_fn after, void *arg);

/*
 * Also tell `fn` (NULL: nobody) the outcome of every disk_pool_commit
 * job, cancelled ones included, on the loop's thread before the job's own
 * done: how smtp-relayd's intake learns that the queue stopped (or started
 * again) taking writes.
 */
void disk_pool_set_observer(struct disk_pool *p, commit_done_fn fn, void *arg);

/*
 * The caller goes away: done will not be called.  The commit itself still
 * completes (a message may be queued that its client never saw acknowledged;
 * it is never half-written).
 */
void disk_pool_cancel(struct disk_pool *p, struct commit_job *job);

/* Finish the jobs in hand, stop the threads; NULL is a no-op.  Cancel
 * every job first: no callback runs from here. */
void disk_pool_free(struct disk_pool *p);

#endif
