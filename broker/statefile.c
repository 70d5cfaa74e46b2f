/* statefile.c - save and restore the published sets (JSON, atomic). */
#include "broker/statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
};

static const char *
family_key(int family)
{
	return family == AF_INET ? "A" : "AAAA";
}

/* The "clusters" object of a parsed file, or NULL when it is not ours. */
static struct json_object *
parse_root(struct json_object *root)
{
	struct json_object *v, *c;

	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "version", &v) ||
	    json_object_get_int(v) != STATEFILE_VERSION ||
	    !json_object_object_get_ex(root, "clusters", &c) ||
	    !json_object_is_type(c, json_type_object))
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
		sf->clusters = root != NULL ? parse_root(root) : NULL;
		if (sf->clusters == NULL)
			log_warnx(
			    "state file %s: unreadable or not a brokerd state file: ignored", path);
		json_object_put(root);
	}
	if (sf->clusters == NULL)
		sf->clusters = json_object_new_object();
	if (sf->clusters == NULL) {
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
	free(sf->path);
	free(sf);
}
