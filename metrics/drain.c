/* drain.c - drain state in a file (see drain.h). */
#include "metrics/drain.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/fileio.h"

#define DRAIN_FILE_MAX 1024 /* larger files are read as far as this */

/* Copy at most `len - 1` bytes of the line at src, control characters as '?'. */
static void
copy_line(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && src[i] != '\n' && i + 1 < len; i++)
		dst[i] = ((unsigned char)src[i] >= 0x20 && src[i] != 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

static void
format_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
}

const char *
drain_invoker(char *buf, size_t len)
{
	const char *sudo = getenv("SUDO_USER");
	const struct passwd *pw;
	char login[DRAIN_WHO_MAX + 1];

	if (sudo != NULL && sudo[0] != '\0')
		copy_line(buf, len, sudo);
	else if (getlogin_r(login, sizeof(login)) == 0 && login[0] != '\0')
		copy_line(buf, len, login);
	else if ((pw = getpwuid(getuid())) != NULL)
		copy_line(buf, len, pw->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)getuid());
	return buf;
}

int
drain_set(const char *path, const char *reason)
{
	char text[DRAIN_FILE_MAX], why[DRAIN_REASON_MAX + 1], who[DRAIN_WHO_MAX + 1];
	char when[DRAIN_WHEN_MAX];
	mode_t old;
	int rc, saved;

	copy_line(why, sizeof(why), reason != NULL && reason[0] != '\0' ? reason : "drained");
	drain_invoker(who, sizeof(who));
	format_time(time(NULL), when, sizeof(when));
	snprintf(text, sizeof(text), "reason: %s\nby: %s\nat: %s\n", why, who, when);
	/* The daemons run with umask 077; the daemon's user must read this file. */
	old = umask(022);
	rc = file_write_atomic(path, text, strlen(text), 0644);
	saved = errno;
	umask(old);
	errno = saved;
	return rc;
}

int
drain_clear(const char *path)
{
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	return 0;
}

/* Take "name: value" lines; false when none of ours is there. */
static bool
parse_fields(const char *text, struct drain_info *info)
{
	static const char *const names[] = {"reason: ", "by: ", "at: "};
	char *const fields[] = {info->reason, info->by, info->at};
	const size_t sizes[] = {sizeof(info->reason), sizeof(info->by), sizeof(info->at)};
	bool any = false;

	for (const char *line = text; line != NULL && *line != '\0';) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strncmp(line, names[i], strlen(names[i])) != 0)
				continue;
			copy_line(fields[i], sizes[i], line + strlen(names[i]));
			any = true;
		}
		line = strchr(line, '\n');
		line = line != NULL ? line + 1 : NULL;
	}
	return any;
}

/* What the file itself says when its text does not: owner and mtime. */
static void
fill_from_stat(const struct stat *st, struct drain_info *info)
{
	const struct passwd *pw;

	if (info->by[0] == '\0') {
		if ((pw = getpwuid(st->st_uid)) != NULL)
			copy_line(info->by, sizeof(info->by), pw->pw_name);
		else
			snprintf(info->by, sizeof(info->by), "uid %u", (unsigned)st->st_uid);
	}
	if (info->at[0] == '\0')
		format_time(st->st_mtime, info->at, sizeof(info->at));
}

bool
drain_check(const char *path, struct drain_info *info)
{
	char text[DRAIN_FILE_MAX];
	struct stat st;

	if (stat(path, &st) == -1)
		return false;
	if (info == NULL)
		return true;
	memset(info, 0, sizeof(*info));
	if (!S_ISREG(st.st_mode)) { /* a FIFO would block the daemon */
		snprintf(info->reason, sizeof(info->reason), "(drain file is not a regular file)");
		fill_from_stat(&st, info);
		return true;
	}
	if (file_read_buf(path, text, sizeof(text)) == -1) {
		if (errno != EFBIG) {
			snprintf(info->reason, sizeof(info->reason), "(drain file unreadable: %s)",
			    strerror(errno));
			fill_from_stat(&st, info);
			return true;
		}
		text[sizeof(text) - 1] = '\0'; /* too long: what was read */
	}
	if (!parse_fields(text, info))
		copy_line(info->reason, sizeof(info->reason), text);
	fill_from_stat(&st, info);
	return true;
}

void
drain_describe(const struct drain_info *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s%s%s", d->reason[0] != '\0' ? d->reason : "drained",
	    d->by[0] != '\0' || d->at[0] != '\0' ? " (" : "", d->by[0] != '\0' ? "by " : "", d->by,
	    d->by[0] != '\0' && d->at[0] != '\0' ? " " : "", d->at[0] != '\0' ? "at " : "", d->at);
	if (d->by[0] != '\0' || d->at[0] != '\0')
		strncat(buf, ")", len - strlen(buf) - 1);
}

static struct json_object *
string_or_null(const char *s)
{
	return s[0] != '\0' ? json_object_new_string(s) : NULL;
}

struct json_object *
drain_to_json(const struct drain_info *d)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "reason", string_or_null(d->reason));
	json_object_object_add(o, "by", string_or_null(d->by));
	json_object_object_add(o, "at", string_or_null(d->at));
	return o;
}

static void
field_from_json(struct json_object *o, const char *name, char *dst, size_t len)
{
	struct json_object *v;

	dst[0] = '\0';
	if (json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string))
		copy_line(dst, len, json_object_get_string(v));
}

int
drain_from_json(struct json_object *o, struct drain_info *d)
{
	memset(d, 0, sizeof(*d));
	if (!json_object_is_type(o, json_type_object))
		return -1;
	field_from_json(o, "reason", d->reason, sizeof(d->reason));
	field_from_json(o, "by", d->by, sizeof(d->by));
	field_from_json(o, "at", d->at, sizeof(d->at));
	return 0;
}
