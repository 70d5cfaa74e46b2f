/* dsn.c - RFC 3464 delivery status notifications and RFC 3463 status codes. */
#include "smtp-relay/dsn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-relay/queue.h"

/* The original header section is attached up to this size (then cut at a line). */
#define DSN_HEADERS_MAX (64 * 1024)

const char *
dsn_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0 && len > 0)
		buf[0] = '\0';
	return buf;
}

/* "d.ddd.ddd" with the class digit `cls` at p; returns its length or 0. */
static size_t
status_len(const char *p, char cls)
{
	size_t i = 0;

	if (p[i++] != cls || p[i++] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		size_t start = i;

		while (p[i] >= '0' && p[i] <= '9' && i - start < 3)
			i++;
		if (i == start || (part == 0 && p[i++] != '.'))
			return 0;
	}
	return (p[i] == '\0' || p[i] == ' ') ? i : 0;
}

const char *
dsn_status(unsigned code, const char *reply, char *out, size_t outlen)
{
	char cls = code / 100 == 5 ? '5' : code / 100 == 2 ? '2' : '4';
	size_t n;

	/* The enhanced code follows the reply code: "550 5.1.1 text". */
	if (reply != NULL && strlen(reply) > 4 && reply[3] == ' ' &&
	    (n = status_len(reply + 4, cls)) != 0 && n < outlen) {
		memcpy(out, reply + 4, n);
		out[n] = '\0';
		return out;
	}
	snprintf(out, outlen, "%c.0.0", cls);
	return out;
}

/* The original header section: up to and including the empty line. */
static size_t
header_len(const char *content, size_t len)
{
	const char *end = memmem(content, len, "\r\n\r\n", 4);
	size_t n = end != NULL ? (size_t)(end - content) + 2 : len;

	if (n > DSN_HEADERS_MAX) {
		n = DSN_HEADERS_MAX;
		while (n > 0 && content[n - 1] != '\n')
			n--;
	}
	return n;
}

static void
write_human(FILE *f, const struct dsn_rcpt *rcpts, size_t n, const char *mta)
{
	fprintf(f,
	    "This is the mail system at host %s.\r\n\r\n"
	    "Your message could not be delivered to the recipients below, or is\r\n"
	    "still waiting for them. Its headers are attached.\r\n\r\n",
	    mta);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "<%s> (%s): %s%s%s\r\n", rcpts[i].address,
		    strcmp(rcpts[i].action, "delayed") == 0 ? "delayed, still being retried"
		                                            : "could not be delivered",
		    rcpts[i].remote_mta != NULL ? rcpts[i].remote_mta : "",
		    rcpts[i].remote_mta != NULL ? " said: " : "",
		    rcpts[i].diagnostic != NULL ? rcpts[i].diagnostic : rcpts[i].status);
}

static void
write_status(
    FILE *f, const struct queue_env *env, const struct dsn_rcpt *rcpts, size_t n, const char *mta)
{
	char date[64];

	fprintf(f, "Reporting-MTA: dns; %s\r\nX-Queue-ID: %s\r\n", mta, env->id);
	if (env->sender[0] != '\0')
		fprintf(f, "X-Original-Sender: rfc822; %s\r\n", env->sender);
	fprintf(f, "Arrival-Date: %s\r\n", dsn_date(env->arrival, date, sizeof(date)));
	for (size_t i = 0; i < n; i++) {
		const struct dsn_rcpt *r = &rcpts[i];

		fprintf(f,
		    "\r\nFinal-Recipient: rfc822; %s\r\nOriginal-Recipient: rfc822; %s\r\n"
		    "Action: %s\r\nStatus: %s\r\n",
		    r->address, r->address, r->action, r->status);
		if (r->remote_mta != NULL)
			fprintf(f, "Remote-MTA: dns; %s\r\n", r->remote_mta);
		if (r->diagnostic != NULL)
			fprintf(f, "Diagnostic-Code: %s; %s\r\n",
			    r->remote_mta != NULL ? "smtp" : "X-mxbroker", r->diagnostic);
		if (r->last_attempt != 0)
			fprintf(f, "Last-Attempt-Date: %s\r\n",
			    dsn_date(r->last_attempt, date, sizeof(date)));
	}
}

char *
dsn_build(const struct queue_env *env, const char *content, size_t len,
    const struct dsn_rcpt *rcpts, size_t nrcpts, const char *mta, const char *to, const char *id,
    time_t now, size_t *outlen)
{
	char date[64], *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	bool delayed = true;

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < nrcpts; i++)
		delayed &= strcmp(rcpts[i].action, "delayed") == 0;
	dsn_date(now, date, sizeof(date));
	fprintf(f, "Received: by %s (mxbroker) id %s; %s\r\n", mta, id, date);
	fprintf(f,
	    "Date: %s\r\nFrom: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\nSubject: %s\r\nMessage-ID: <%s.dsn@%s>\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s/%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n",
	    date, mta, to,
	    delayed ? "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender",
	    id, mta, id, mta);
	fprintf(f,
	    "--%s/%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
	    id, mta);
	write_human(f, rcpts, nrcpts, mta);
	fprintf(f,
	    "\r\n--%s/%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n",
	    id, mta);
	write_status(f, env, rcpts, nrcpts, mta);
	fprintf(f,
	    "\r\n--%s/%s\r\nContent-Description: Undelivered Message Headers\r\n"
	    "Content-Type: text/rfc822-headers\r\n\r\n",
	    id, mta);
	fwrite(content, 1, header_len(content, len), f);
	fprintf(f, "\r\n--%s/%s--\r\n", id, mta);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	*outlen = size;
	return buf;
}
