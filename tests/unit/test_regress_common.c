/*
 * test_regress_common.c - regressions in common/ found while hardening.
 *
 * A libevent listener without an error callback retries a failing accept()
 * at once, forever, logging each time: out of descriptors, one pending
 * connection made smtp-relayd's status listener burn a whole core and write
 * 1.7 million "Error from accept() call" lines in two seconds.
 * listener_guard pauses the listener instead; this test exhausts the
 * descriptor table with a connection pending and checks that the loop stays
 * idle, then that the connection is accepted once descriptors are free.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/listener.h"
#include "common/log.h"
#include "tests/unit/tap.h"

#define MAX_FILL 4096

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	(void)l;
	(void)sa;
	(void)len;
	(*(int *)arg)++;
	close(fd);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Run the loop for `ms` milliseconds (or until stop_on_accept sees one). */
static void
run_for(struct event_base *base, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
test_guard_pauses_on_emfile(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	struct event_base *base = event_base_new();
	struct evconnlistener *l;
	struct rlimit old, low;
	int lfd, cfd, accepted = 0, nfill = 0;
	static int fill[MAX_FILL];
	double cpu;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ok(lfd != -1 && bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	        listen(lfd, 16) == 0 && getsockname(lfd, (struct sockaddr *)&sin, &slen) == 0,
	    "listening socket");
	l = evconnlistener_new(base, accept_cb, &accepted, LEV_OPT_CLOSE_ON_FREE, 0, lfd);
	ok(l != NULL, "listener");
	is_int(listener_guard(l, "test"), 0, "guard installed");

	/* Fill the descriptor table under a low limit, then connect. */
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = 256;
	ok(setrlimit(RLIMIT_NOFILE, &low) == 0, "soft limit lowered to 256");
	while (nfill < MAX_FILL && (fill[nfill] = dup(0)) != -1)
		nfill++;
	is_int(errno, EMFILE, "descriptor table full after %d dups", nfill);
	ok(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "client connected (pending)");

	cpu = cpu_seconds();
	run_for(base, 500);
	cpu = cpu_seconds() - cpu;
	is_int(accepted, 0, "nothing accepted while out of descriptors");
	ok(cpu < 0.2, "the loop stayed idle: %.3fs of CPU in 0.5s", cpu);

	/* Descriptors free again: the pause ends and the connection is served. */
	while (nfill > 0)
		close(fill[--nfill]);
	setrlimit(RLIMIT_NOFILE, &old);
	for (int i = 0; i < 30 && accepted == 0; i++)
		run_for(base, 100);
	is_int(accepted, 1, "accepted after the pause");

	listener_unguard(l);
	listener_unguard(l); /* unknown listener: a no-op */
	evconnlistener_free(l);
	close(cfd);
	event_base_free(base);
}

int
main(void)
{
	log_init("test_regress_common", LOG_LEVEL_WARN, false);
	test_guard_pauses_on_emfile();
	return tap_done();
}
