/*
 * maildir.h - local delivery into Maildir folders (the qmail layout:
 * tmp/, new/, cur/), durable before it reports success.
 *
 * A message is written to <root>/<user>/tmp/<unique>, fsynced, linked into
 * new/ (never overwriting), the tmp/ name removed and new/ fsynced.  The
 * folders are created on first use (mode 0700).  Functions here block on
 * the disk: delivery calls them on a worker thread.  Thread-safe.
 */
#ifndef MXB_MAILDIR_H
#define MXB_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>

/* Longest user (local part) accepted as a folder name. */
#define MAILDIR_USER_MAX 64

/*
 * The folder name for a local part: lower case; NULL-free, no '/', not
 * starting with '.', printable ASCII.  Writes into out and returns 0, or -1
 * when the local part cannot name a folder (a permanent failure).
 */
int maildir_user(const char *local, char *out, size_t outlen);

/*
 * Deliver `content` (CRLF lines as queued) to <root>/<user>/new/ with a
 * Return-Path (sender, "" for <>) and a Delivered-To (rcpt) header first;
 * lines are stored with LF endings as Maildir readers expect.  Returns 0,
 * or -1 with errno set (nothing is left in new/ then).
 */
int maildir_deliver(const char *root, const char *user, const char *sender, const char *rcpt,
    const char *content, size_t len);

/* Create the root folder (0700) and, when uid is not -1, give it to uid/gid.
 * Called before privileges are dropped.  0 or -1 (logged). */
int maildir_prepare(const char *root, int uid, int gid);

#endif
