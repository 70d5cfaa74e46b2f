/*
 * smtp_session.h - one SMTP server session: an explicit state machine on a
 * bufferevent, one handler per command, DATA read line by line with
 * dot-unstuffing, bare-LF/CR refusal, size and loop checks, and the queue
 * commit before "250 queued".
 */
#ifndef MXB_SMTP_SESSION_H
#define MXB_SMTP_SESSION_H

#include <stdbool.h>

struct addr;
struct event_base;
struct smtp_server;
struct smtp_session;

/*
 * Start a session on the accepted socket `fd` (owned from here on: closed
 * with the session) for `client`, and send the banner.  With `refuse` set
 * the session only says `refuse` (a complete "421 ..." line) and closes.
 * Returns NULL (fd closed) when out of memory.  The session frees itself
 * when it ends and then calls smtp_server_session_gone.
 */
struct smtp_session *smtp_session_new(struct smtp_server *srv, struct event_base *base, int fd,
    const struct addr *client, const char *refuse);

/* End the session now (server shutdown); smtp_server_session_gone is not called. */
void smtp_session_free(struct smtp_session *s);

/* The client's address (borrowed). */
const struct addr *smtp_session_client(const struct smtp_session *s);

#endif
