/* disk_pool.c - queue commits on worker threads, results back on the loop. */
#include "smtp-relay/disk_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "common/log.h"
#include "smtp-relay/queue.h"

struct commit_job {
	struct queue_env *env;
	char *head;
	struct evbuffer *body;    /* the content, or what follows the spool */
	struct disk_spool *spool; /* disk_pool_commit_spool: owned */
	commit_done_fn done;      /* NULL once cancelled */
	disk_run_fn run;          /* a generic job (disk_pool_run) when set */
	disk_after_fn after;
	void *arg;
	int rc;
	int err;
	TAILQ_ENTRY(commit_job) link;
};

TAILQ_HEAD(job_list, commit_job);

struct disk_spool {
	struct disk_pool *pool;
	struct queue_spool *qs; /* NULL until the first write made the file */
	char id[QUEUE_ID_LEN + 1];
	struct evbuffer *buf; /* the write in hand */
	spool_done_fn done;
	void *arg;
	int err;
	bool busy;  /* a write is in the pool */
	bool freed; /* the owner went away: remove the file when idle */
};

struct disk_pool {
	struct queue *queue;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job_list todo; /* waiting for a thread */
	struct job_list done; /* waiting for the loop */
	bool stopping;
	pthread_t *threads;
	unsigned nthreads;
	int efd; /* eventfd: wakes the loop when `done` grows */
	struct event *ev;
	commit_done_fn observer; /* loop thread only */
	void *observer_arg;
};

static void spool_struct_free(struct disk_spool *sp);

static void
job_free(struct commit_job *job)
{
	spool_struct_free(job->spool);
	queue_env_free(job->env);
	free(job->head);
	if (job->body != NULL)
		evbuffer_free(job->body);
	free(job);
}

/* Append buf to the spool (made on first use) and empty buf: 0 or an errno. */
static int
spool_append(struct queue *q, struct disk_spool *sp, struct evbuffer *buf)
{
	int n = evbuffer_peek(buf, -1, NULL, NULL, 0);
	struct evbuffer_iovec *v;
	int err = 0;

	if (n == 0)
		return 0;
	if (sp->qs == NULL && (sp->qs = queue_spool_new(q, sp->id)) == NULL)
		return errno;
	if ((v = calloc((size_t)n, sizeof(*v))) == NULL)
		return ENOMEM;
	evbuffer_peek(buf, -1, NULL, v, n);
	/* evbuffer_iovec is laid out as struct iovec (libevent says so). */
	if (queue_spool_write(sp->qs, (const struct iovec *)v, n) == -1)
		err = errno;
	free(v);
	evbuffer_drain(buf, evbuffer_get_length(buf));
	return err;
}

/* A commit from a spool: the tail into the spool, then the queue file. */
static void
job_run_spool(struct disk_pool *p, struct commit_job *job)
{
	struct iovec head = {job->head, job->head != NULL ? strlen(job->head) : 0};
	int err = 0;

	if (job->body != NULL)
		err = spool_append(p->queue, job->spool, job->body);
	if (err == 0 && job->spool->qs == NULL)
		job->spool->qs = queue_spool_new(p->queue, job->env->id);
	if (err == 0 && job->spool->qs == NULL)
		err = errno;
	if (err == 0 &&
	    queue_commit_spool(p->queue, job->env, &head, head.iov_len > 0, job->spool->qs) == -1)
		err = errno;
	queue_spool_free(job->spool->qs);
	job->spool->qs = NULL;
	job->rc = err != 0 ? -1 : 0;
	job->err = err;
}

/* Runs on a worker thread: the job is owned by this thread meanwhile. */
static void
job_run(struct disk_pool *p, struct commit_job *job)
{
	int n;
	struct iovec *iov;
	int k = 0;

	if (job->run != NULL) {
		job->run(job->arg);
		return;
	}
	if (job->spool != NULL) {
		job_run_spool(p, job);
		return;
	}
	n = evbuffer_peek(job->body, -1, NULL, NULL, 0);
	iov = calloc((size_t)n + 1, sizeof(*iov));
	if (iov == NULL) {
		job->rc = -1;
		job->err = ENOMEM;
		return;
	}
	if (job->head != NULL) {
		iov[0].iov_base = job->head;
		iov[0].iov_len = strlen(job->head);
		k = 1;
	}
	evbuffer_peek(job->body, -1, NULL, (struct evbuffer_iovec *)&iov[k], n);
	job->rc = queue_commit(p->queue, job->env, iov, n + k);
	job->err = job->rc == -1 ? errno : 0;
	free(iov);
}

static void *
worker(void *arg)
{
	struct disk_pool *p = arg;
	struct commit_job *job;
	uint64_t one = 1;
	bool wake;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (TAILQ_EMPTY(&p->todo) && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if ((job = TAILQ_FIRST(&p->todo)) == NULL)
			break;
		TAILQ_REMOVE(&p->todo, job, link);
		pthread_mutex_unlock(&p->lock);
		job_run(p, job);
		pthread_mutex_lock(&p->lock);
		/* The loop takes the whole list at once: wake it only for the
		 * first job of a batch (a group commit ends many together). */
		wake = TAILQ_EMPTY(&p->done);
		TAILQ_INSERT_TAIL(&p->done, job, link);
		if (wake && write(p->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			log_warn("disk pool: eventfd");
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* On the loop: hand finished jobs to their owners. */
static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct disk_pool *p = arg;
	struct job_list ready = TAILQ_HEAD_INITIALIZER(ready);
	struct commit_job *job;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("disk pool: eventfd");
	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&ready, &p->done, link);
	pthread_mutex_unlock(&p->lock);
	while ((job = TAILQ_FIRST(&ready)) != NULL) {
		TAILQ_REMOVE(&ready, job, link);
		if (job->run == NULL && p->observer != NULL)
			p->observer(job->rc, job->err, job->env, p->observer_arg);
		if (job->after != NULL)
			job->after(job->arg);
		else if (job->done != NULL)
			job->done(job->rc, job->err, job->env, job->arg);
		job_free(job);
	}
}

struct disk_pool *
disk_pool_new(struct event_base *base, struct queue *q, unsigned nthreads)
{
	struct disk_pool *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->threads = calloc(nthreads, sizeof(*p->threads))) == NULL) {
		free(p);
		log_warnx("disk pool: out of memory");
		return NULL;
	}
	p->queue = q;
	p->efd = -1;
	TAILQ_INIT(&p->todo);
	TAILQ_INIT(&p->done);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, wake_cb, p)) == NULL ||
	    event_add(p->ev, NULL) == -1) {
		log_warn("disk pool: eventfd");
		disk_pool_free(p);
		return NULL;
	}
	for (; p->nthreads < nthreads; p->nthreads++) {
		if ((errno = pthread_create(&p->threads[p->nthreads], NULL, worker, p)) != 0) {
			log_warn("disk pool: pthread_create");
			disk_pool_free(p);
			return NULL;
		}
	}
	return p;
}

/* Queue a job for the threads. */
static void
job_submit(struct disk_pool *p, struct commit_job *job)
{
	pthread_mutex_lock(&p->lock);
	TAILQ_INSERT_TAIL(&p->todo, job, link);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static struct commit_job *
commit_job_new(
    struct queue_env *env, char *head, struct evbuffer *body, commit_done_fn done, void *arg)
{
	struct commit_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->env = env;
	job->head = head;
	job->body = body;
	job->done = done;
	job->arg = arg;
	return job;
}

struct commit_job *
disk_pool_commit(struct disk_pool *p, struct queue_env *env, char *head, struct evbuffer *body,
    commit_done_fn done, void *arg)
{
	struct commit_job *job = commit_job_new(env, head, body, done, arg);

	if (job != NULL)
		job_submit(p, job);
	return job;
}

int
disk_pool_run(struct disk_pool *p, disk_run_fn run, disk_after_fn after, void *arg)
{
	struct commit_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return -1;
	job->run = run;
	job->after = after;
	job->arg = arg;
	job_submit(p, job);
	return 0;
}

void
disk_pool_set_observer(struct disk_pool *p, commit_done_fn fn, void *arg)
{
	p->observer = fn;
	p->observer_arg = arg;
}

void
disk_pool_cancel(struct disk_pool *p, struct commit_job *job)
{
	/* The loop is the only reader of job->done; the lock orders it with
	 * the worker's hand-over all the same. */
	pthread_mutex_lock(&p->lock);
	job->done = NULL;
	pthread_mutex_unlock(&p->lock);
}

/* ---- spools ---- */

static void
spool_struct_free(struct disk_spool *sp)
{
	if (sp == NULL)
		return;
	queue_spool_free(sp->qs);
	if (sp->buf != NULL)
		evbuffer_free(sp->buf);
	free(sp);
}

struct disk_spool *
disk_spool_new(struct disk_pool *p, const char *id)
{
	struct disk_spool *sp = calloc(1, sizeof(*sp));

	if (sp == NULL || (sp->buf = evbuffer_new()) == NULL) {
		free(sp);
		return NULL;
	}
	sp->pool = p;
	snprintf(sp->id, sizeof(sp->id), "%s", id);
	return sp;
}

/* Worker: the write in hand. */
static void
spool_write_run(void *arg)
{
	struct disk_spool *sp = arg;

	sp->err = spool_append(sp->pool->queue, sp, sp->buf);
}

/* Worker: remove the file of a spool whose owner went away. */
static void
spool_remove_run(void *arg)
{
	struct disk_spool *sp = arg;

	queue_spool_free(sp->qs);
	sp->qs = NULL;
}

static void
spool_remove_after(void *arg)
{
	spool_struct_free(arg);
}

/* Loop: the owner is gone and no write is in hand; the unlink of a big
 * file may take a while, so it runs on a worker too. */
static void
spool_discard(struct disk_spool *sp)
{
	if (sp->qs == NULL ||
	    disk_pool_run(sp->pool, spool_remove_run, spool_remove_after, sp) == -1)
		spool_struct_free(sp);
}

/* Loop: the write is done. */
static void
spool_write_after(void *arg)
{
	struct disk_spool *sp = arg;

	sp->busy = false;
	if (sp->freed)
		spool_discard(sp);
	else
		sp->done(sp->err, sp->arg);
}

int
disk_spool_write(struct disk_spool *sp, struct evbuffer *buf, spool_done_fn done, void *arg)
{
	if (sp->busy || evbuffer_add_buffer(sp->buf, buf) == -1)
		return -1;
	sp->done = done;
	sp->arg = arg;
	sp->err = 0;
	sp->busy = true;
	if (disk_pool_run(sp->pool, spool_write_run, spool_write_after, sp) == -1) {
		sp->busy = false;
		evbuffer_add_buffer(buf, sp->buf);
		return -1;
	}
	return 0;
}

bool
disk_spool_is_busy(const struct disk_spool *sp)
{
	return sp->busy;
}

void
disk_spool_free(struct disk_spool *sp)
{
	if (sp == NULL)
		return;
	sp->freed = true;
	if (!sp->busy)
		spool_discard(sp);
}

struct commit_job *
disk_pool_commit_spool(struct disk_pool *p, struct queue_env *env, char *head,
    struct disk_spool *sp, struct evbuffer *tail, commit_done_fn done, void *arg)
{
	struct commit_job *job = commit_job_new(env, head, tail, done, arg);

	if (job == NULL)
		return NULL;
	job->spool = sp;
	job_submit(p, job);
	return job;
}

/* At disk_pool_free: spool work whose after() will never run. */
static void
job_abandon(struct commit_job *job)
{
	struct disk_spool *sp = job->arg;

	if (job->after == spool_write_after && sp->freed)
		spool_struct_free(sp);
	else if (job->after == spool_remove_after)
		spool_struct_free(sp);
}

void
disk_pool_free(struct disk_pool *p)
{
	struct commit_job *job;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while ((job = TAILQ_FIRST(&p->done)) != NULL) {
		TAILQ_REMOVE(&p->done, job, link);
		job_abandon(job);
		job_free(job);
	}
	if (p->ev != NULL)
		event_free(p->ev);
	if (p->efd != -1)
		close(p->efd);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->threads);
	free(p);
}
