/* disk_pool.c - queue commits on worker threads, results back on the loop. */
#include "smtp-relay/disk_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
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
	struct evbuffer *body;
	commit_done_fn done; /* NULL once cancelled */
	disk_run_fn run;     /* a generic job (disk_pool_run) when set */
	disk_after_fn after;
	void *arg;
	int rc;
	int err;
	TAILQ_ENTRY(commit_job) link;
};

TAILQ_HEAD(job_list, commit_job);

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

static void
job_free(struct commit_job *job)
{
	queue_env_free(job->env);
	free(job->head);
	if (job->body != NULL)
		evbuffer_free(job->body);
	free(job);
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
		TAILQ_INSERT_TAIL(&p->done, job, link);
		if (write(p->efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
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

struct commit_job *
disk_pool_commit(struct disk_pool *p, struct queue_env *env, char *head, struct evbuffer *body,
    commit_done_fn done, void *arg)
{
	struct commit_job *job = calloc(1, sizeof(*job));

	if (job == NULL)
		return NULL;
	job->env = env;
	job->head = head;
	job->body = body;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&p->lock);
	TAILQ_INSERT_TAIL(&p->todo, job, link);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
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
	pthread_mutex_lock(&p->lock);
	TAILQ_INSERT_TAIL(&p->todo, job, link);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
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
