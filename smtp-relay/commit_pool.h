/*
 * commit_pool.h - queue commits off the event loop: a few threads run
 * queue_commit (write, fsync, rename, fsync of the directory) so that many
 * sessions' fsyncs overlap and the file system can group them, while the
 * loop keeps serving.  The result comes back on the loop's thread.
 */
#ifndef MXB_COMMIT_POOL_H
#define MXB_COMMIT_POOL_H

struct event_base;
struct evbuffer;
struct queue;
struct queue_env;
struct commit_pool;
struct commit_job;

/* Threads that run commits; most of their time is spent waiting in fsync. */
#define COMMIT_POOL_THREADS 8

/*
 * Called on the loop's thread when a commit is done: rc 0 (env->id holds
 * the queue ID; the message is durable) or -1 with err = errno.  env is
 * borrowed for the call only.
 */
typedef void (*commit_done_fn)(int rc, int err, const struct queue_env *env, void *arg);

/* Start `nthreads` threads committing into q (borrowed).  NULL (logged) on failure. */
struct commit_pool *commit_pool_new(struct event_base *base, struct queue *q, unsigned nthreads);

/*
 * Commit `env` with content = `head` (may be NULL) followed by `body`.  The
 * pool takes ownership of env, head (malloc'd) and body; done(arg) runs
 * later on the loop thread unless the job is cancelled.  Returns the job, or
 * NULL when out of memory (nothing taken over then).
 */
struct commit_job *commit_pool_submit(struct commit_pool *p, struct queue_env *env, char *head,
    struct evbuffer *body, commit_done_fn done, void *arg);

/*
 * Other disk work off the loop (delivery: queue_update, queue_remove,
 * Maildir writes): run(arg) on a worker thread, then after(arg) on the
 * loop's thread.  Jobs are not cancellable; arg must live until after()
 * ran.  Returns 0, or -1 when out of memory (nothing runs then).
 */
typedef void (*commit_run_fn)(void *arg);
typedef void (*commit_after_fn)(void *arg);
int commit_pool_run(struct commit_pool *p, commit_run_fn run, commit_after_fn after, void *arg);

/*
 * Also tell `fn` (NULL: nobody) the outcome of every commit_pool_submit
 * job, cancelled ones included, on the loop's thread before the job's own
 * done: how smtp-relayd's intake learns that the queue stopped (or started
 * again) taking writes.
 */
void commit_pool_set_observer(struct commit_pool *p, commit_done_fn fn, void *arg);

/*
 * The caller goes away: done will not be called.  The commit itself still
 * completes (a message may be queued that its client never saw acknowledged;
 * it is never half-written).
 */
void commit_pool_cancel(struct commit_pool *p, struct commit_job *job);

/* Finish the jobs in hand, stop the threads; NULL is a no-op.  Cancel
 * every job first: no callback runs from here. */
void commit_pool_free(struct commit_pool *p);

#endif
