/*
 * auth.h - SMTP AUTH (RFC 4954) credentials for smtp-relayd: a file of
 * "user:crypt-hash" lines, passwords checked with crypt_r(3) on the disk
 * pool's threads (yescrypt, bcrypt, sha512crypt: whatever libcrypt knows),
 * never on the event loop, and the per-client limit on failed attempts.
 *
 * Owned by smtp-relayd.c, lent to the SMTP server's sessions.  Everything
 * but the crypt itself runs on the loop's thread.
 */
#ifndef MXB_AUTH_H
#define MXB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct addr;
struct auth;
struct auth_check;
struct disk_pool;

/* Failed attempts a client address may make within AUTH_WINDOW seconds;
 * beyond them AUTH is refused with 421 until the window has passed. */
#define AUTH_MAX_FAILURES 3
#define AUTH_WINDOW       300
/* Client addresses remembered for that (fixed memory; the oldest is reused). */
#define AUTH_CLIENTS 1024
/* Checks in flight at once: crypt is CPU work on threads that also fsync
 * the queue, so it may take at most this many of them.  Beyond: 454. */
#define AUTH_MAX_PENDING 4
/* Longest user name and password taken. */
#define AUTH_NAME_MAX 255
#define AUTH_PASS_MAX 255

enum auth_result {
	AUTH_OK,     /* the password matches */
	AUTH_FAILED, /* unknown user or wrong password */
	AUTH_BUSY,   /* too many checks in flight, or out of memory: try later */
};

/*
 * Read `path` ("user:hash" per line; '#' comments and blank lines are
 * skipped; a hash must start with '$', so no plaintext or DES).  `pool`
 * runs the checks (NULL: the file is only validated, for -t).  NULL with
 * "PATH:LINE: why" logged (or in err when err is not NULL).
 */
struct auth *auth_new(const char *path, struct disk_pool *pool, char *err, size_t errlen);

/* Read the file again (SIGHUP); on failure the running users stay (logged).  0 or -1. */
int auth_reload(struct auth *a, const char *path);

/* NULL is a no-op.  Cancel every check first (auth_check_cancel). */
void auth_free(struct auth *a);

/*
 * Check `user` and the password pass[0..passlen) (copied; the caller may
 * wipe its copy at once).  done(result, arg) runs later on the loop's
 * thread unless cancelled.  NULL when AUTH_MAX_PENDING checks are in
 * flight or out of memory: answer AUTH_BUSY at once.
 */
typedef void (*auth_done_fn)(enum auth_result r, void *arg);
struct auth_check *auth_check(struct auth *a, const char *user, const char *pass, size_t passlen,
    auth_done_fn done, void *arg);

/* The caller goes away: done will not be called.  NULL is a no-op. */
void auth_check_cancel(struct auth_check *c);

/* Has `client`'s address failed AUTH_MAX_FAILURES times within AUTH_WINDOW? */
bool auth_is_blocked(struct auth *a, const struct addr *client);

/* Count a failed attempt of `client`'s address; a success forgets them. */
void auth_note_result(struct auth *a, const struct addr *client, bool ok);

/*
 * Decode base64 `in` (inlen octets, no blanks) into out (at most outmax
 * octets).  Returns the decoded length or -1 when it is not base64 or
 * too long.  Exposed for the unit tests.
 */
long auth_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outmax);

#endif
