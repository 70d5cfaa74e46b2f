/* statefile.c - save and restore the published sets (JSON, atomic). */
#include "broker/statefile.h"

#include <errno.h>
#include <inttypes.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/fileio.h"
#include "common/addr.h"
#include "common/log.h"

#define STATEFILE_VERSION 1

struct statefile {
	char *path;
	struct json_object *clusters; /* name -> {"A": [...], "AAAA": [...]} */
	struct json_object *zones;    /* name -> {"serial": N, "digest": "hex"} */
	struct json_object *drains;   /* cluster -> member -> {"reason", "who", "since"} */
};

static const char *
family_key(int family)
{
	return family == AF_INET ? "A" : "AAAA";
}

/* The object `key` of a parsed file (a reference), or NULL when absent. */
static struct json_object *
parse_member(struct json_object *root, const char *key)
{
	struct json_object *v, *c;

	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "version", &v) ||
	    json_object_get_int(v) != STATEFILE_VERSION ||
	    !json_object_object_get_ex(root, key, &c) || !json_object_is_type(c, json_type_object))
		return NULL;
	return json_object_get(c);
}

struct statefile *
statefile_load(const char *path)
{
	struct statefile *sf = calloc(1, sizeof(*sf));
	struct json_object *root;

	if (sf == NULL || (sf->path = strdup(path)) == NULL) {
		free(sf);
		return NULL;
	}
	if (access(path, F_OK) == 0) {
		root = json_object_from_file(path);
		sf->clusters = root != NULL ? parse_member(root, "clusters") : NULL;
		sf->zones = root != NULL ? parse_member(root, "zones") : NULL;
		sf->drains = root != NULL ? parse_member(root, "drains") : NULL;
		if (sf->clusters == NULL)
			log_warnx(
			    "state file %s: unreadable or not a brokerd state file: ignored", path);
		json_object_put(root);
	}
	if (sf->clusters == NULL)
		sf->clusters = json_object_new_object();
	if (sf->zones == NULL)
		sf->zones = json_object_new_object();
	if (sf->drains == NULL)
		sf->drains = json_object_new_object();
	if (sf->clusters == NULL || sf->zones == NULL || sf->drains == NULL) {
		statefile_free(sf);
		return NULL;
	}
	return sf;
}

size_t
statefile_get(
    const struct statefile *sf, const char *name, int family, struct addr *out, size_t max)
{
	struct json_object *c, *list;
	size_t n = 0;

	if (!json_object_object_get_ex(sf->clusters, name, &c) ||
	    !json_object_object_get_ex(c, family_key(family), &list) ||
	    !json_object_is_type(list, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(list) && n < max; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(list, i));

		if (s != NULL && addr_parse(s, 0, &out[n]) == 0 && addr_family(&out[n]) == family)
			n++;
	}
	return n;
}

int
statefile_set(struct statefile *sf, const char *name, int family, const struct addr *v, size_t n)
{
	struct json_object *c, *list = json_object_new_array();
	char buf[ADDR_STRLEN];

	if (list == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(
		    list, json_object_new_string(addr_host_str(&v[i], buf, sizeof(buf))));
	if (!json_object_object_get_ex(sf->clusters, name, &c)) {
		c = json_object_new_object();
		if (c == NULL || json_object_object_add(sf->clusters, name, c) != 0) {
			json_object_put(c);
			json_object_put(list);
			return -1;
		}
	}
	return json_object_object_add(c, family_key(family), list) == 0 ? 0 : -1;
}

int
statefile_get_serial(
    const struct statefile *sf, const char *zone, uint32_t *serial, uint64_t *digest)
{
	struct json_object *z, *s, *d;
	const char *hex, *end;
	int64_t v;

	if (!json_object_object_get_ex(sf->zones, zone, &z) ||
	    !json_object_object_get_ex(z, "serial", &s) ||
	    !json_object_object_get_ex(z, "digest", &d) || !json_object_is_type(s, json_type_int) ||
	    (hex = json_object_get_string(d)) == NULL)
		return -1;
	v = json_object_get_int64(s);
	if (v < 0 || v > UINT32_MAX || strlen(hex) != 16)
		return -1;
	errno = 0;
	*digest = strtoull(hex, (char **)&end, 16);
	if (errno != 0 || *end != '\0')
		return -1;
	*serial = (uint32_t)v;
	return 0;
}

int
statefile_set_serial(struct statefile *sf, const char *zone, uint32_t serial, uint64_t digest)
{
	struct json_object *z = json_object_new_object();
	char hex[17];

	snprintf(hex, sizeof(hex), "%016" PRIx64, digest);
	if (z == NULL || json_object_object_add(z, "serial", json_object_new_int64(serial)) != 0 ||
	    json_object_object_add(z, "digest", json_object_new_string(hex)) != 0 ||
	    json_object_object_add(sf->zones, zone, z) != 0) {
		json_object_put(z);
		return -1;
	}
	return 0;
}

/* A string member of o copied (cut to fit) into buf; "" when absent. */
static void
copy_string(struct json_object *o, const char *key, char *buf, size_t len)
{
	struct json_object *v;
	const char *s;

	buf[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) &&
	    (s = json_object_get_string(v)) != NULL)
		snprintf(buf, len, "%s", s);
}

int
statefile_get_drain(const struct statefile *sf, const char *cluster, const char *member,
    struct statefile_drain *out)
{
	struct json_object *c, *m, *since;

	if (!json_object_object_get_ex(sf->drains, cluster, &c) ||
	    !json_object_is_type(c, json_type_object) ||
	    !json_object_object_get_ex(c, member, &m) || !json_object_is_type(m, json_type_object))
		return -1;
	copy_string(m, "reason", out->reason, sizeof(out->reason));
	copy_string(m, "who", out->who, sizeof(out->who));
	out->since = json_object_object_get_ex(m, "since", &since) &&
	        json_object_is_type(since, json_type_int)
	    ? json_object_get_int64(since)
	    : 0;
	return 0;
}

static struct json_object *
drain_json(const struct statefile_drain *d)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "reason", json_object_new_string(d->reason));
	json_object_object_add(o, "who", json_object_new_string(d->who));
	json_object_object_add(o, "since", json_object_new_int64(d->since));
	return o;
}

int
statefile_set_drain(
    struct statefile *sf, const char *cluster, const char *member, const struct statefile_drain *d)
{
	struct json_object *c, *o;

	if (!json_object_object_get_ex(sf->drains, cluster, &c)) {
		if (d == NULL)
			return 0;
		if ((c = json_object_new_object()) == NULL ||
		    json_object_object_add(sf->drains, cluster, c) != 0) {
			json_object_put(c);
			return -1;
		}
	}
	if (d == NULL) {
		json_object_object_del(c, member);
		if (json_object_object_length(c) == 0)
			json_object_object_del(sf->drains, cluster);
		return 0;
	}
	if ((o = drain_json(d)) == NULL || json_object_object_add(c, member, o) != 0) {
		json_object_put(o);
		return -1;
	}
	return 0;
}

size_t
statefile_prune_drains(struct statefile *sf,
    bool (*keep)(const char *cluster, const char *member, void *arg), void *arg)
{
	struct json_object *next = json_object_new_object(), *nc;
	size_t dropped = 0;

	if (next == NULL)
		return 0;
	json_object_object_foreach(sf->drains, cname, c)
	{
		if (!json_object_is_type(c, json_type_object))
			continue;
		json_object_object_foreach(c, mname, m)
		{
			if (!keep(cname, mname, arg)) {
				dropped++;
				continue;
			}
			if (!json_object_object_get_ex(next, cname, &nc)) {
				nc = json_object_new_object();
				json_object_object_add(next, cname, nc);
			}
			json_object_object_add(nc, mname, json_object_get(m));
		}
	}
	json_object_put(sf->drains);
	sf->drains = next;
	return dropped;
}

/* Can uid (groups: gid and its supplementary ones) write into dir? */
static bool
user_may_write(const struct stat *st, const struct passwd *pw)
{
	gid_t groups[64];
	int n = 64;

	if (pw->pw_uid == 0)
		return true;
	if (st->st_uid == pw->pw_uid)
		return (st->st_mode & (S_IWUSR | S_IXUSR)) == (S_IWUSR | S_IXUSR);
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		n = 0;
	for (int i = 0; i < n; i++)
		if (groups[i] == st->st_gid)
			return (st->st_mode & (S_IWGRP | S_IXGRP)) == (S_IWGRP | S_IXGRP);
	return (st->st_mode & (S_IWOTH | S_IXOTH)) == (S_IWOTH | S_IXOTH);
}

int
statefile_check_dir(const char *path, const char *user, char *why, size_t len)
{
	char *copy = strdup(path), *probe = NULL, *dir;
	const struct passwd *pw;
	struct stat st;
	int fd = -1, rc = -1;

	if (copy == NULL) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	dir = dirname(copy);
	/* Run as root for a daemon that drops to `user`: judge for that user
	 * (a user that does not exist is the privilege drop's error to report). */
	if (user != NULL && geteuid() == 0 && (pw = getpwnam(user)) != NULL) {
		if (stat(dir, &st) == -1)
			snprintf(why, len, "%s: %s", dir, strerror(errno));
		else if (!S_ISDIR(st.st_mode))
			snprintf(why, len, "%s is not a folder", dir);
		else if (!user_may_write(&st, pw))
			snprintf(why, len, "user %s cannot create files in %s", user, dir);
		else
			rc = 0;
		goto done;
	}
	if (asprintf(&probe, "%s/.brokerd-probe.XXXXXX", dir) == -1) {
		probe = NULL;
		snprintf(why, len, "out of memory");
		goto done;
	}
	if ((fd = mkstemp(probe)) == -1) {
		snprintf(why, len, "cannot create a file in %s: %s", dir, strerror(errno));
		goto done;
	}
	unlink(probe);
	rc = 0;
done:
	if (fd != -1)
		close(fd);
	free(probe);
	free(copy);
	return rc;
}

int
statefile_save(struct statefile *sf)
{
	struct json_object *root = json_object_new_object();
	const char *text;
	int rc = -1;

	if (root == NULL)
		goto done;
	json_object_object_add(root, "version", json_object_new_int(STATEFILE_VERSION));
	json_object_object_add(root, "saved", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(root, "clusters", json_object_get(sf->clusters));
	json_object_object_add(root, "zones", json_object_get(sf->zones));
	json_object_object_add(root, "drains", json_object_get(sf->drains));
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
	rc = file_write_atomic(sf->path, text, strlen(text), 0644);
done:
	if (rc == -1)
		log_warn("state file %s: cannot save", sf->path);
	json_object_put(root);
	return rc;
}

void
statefile_free(struct statefile *sf)
{
	if (sf == NULL)
		return;
	json_object_put(sf->clusters);
	json_object_put(sf->zones);
	json_object_put(sf->drains);
	free(sf->path);
	free(sf);
}
