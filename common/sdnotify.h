/* sdnotify.h - telling the service manager (systemd Type=notify) how a daemon is doing. */
#ifndef MXB_SDNOTIFY_H
#define MXB_SDNOTIFY_H

/*
 * The sd_notify(3) datagram protocol without libsystemd: each call sends one
 * datagram of "KEY=value" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@').
 * When $NOTIFY_SOCKET is unset or empty every call is a no-op, so a daemon
 * run by hand or by a test behaves as before.  A failed send is logged once
 * (log_warn) and otherwise ignored: readiness is a courtesy to the service
 * manager and never a reason to stop serving.  $NOTIFY_SOCKET is left in
 * the environment because reloads notify again.  Main thread only; safe to
 * call after privileges are dropped (each call opens and closes its own
 * socket).
 */

/*
 * READY=1 and MAINPID=<getpid()>: call once the sockets are bound, the
 * privileges dropped and the first configuration loaded (the daemon answers
 * from now on), and again when a reload has finished, successfully or not.
 */
void sdnotify_ready(void);

/*
 * RELOADING=1 and MONOTONIC_USEC=<now>: call when a reload (SIGHUP) starts;
 * follow it with sdnotify_ready() when the reload is over.
 */
void sdnotify_reloading(void);

/* STATUS=<text>: a one-line status shown by `systemctl status`. */
void sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1: call when shutdown begins (the event loop has ended). */
void sdnotify_stopping(void);

#endif
