/* test_maildir.c - folder names and a delivery into a temporary Maildir. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp-relay/maildir.h"
#include "tests/unit/tap.h"

static void
test_user(void)
{
	char u[MAILDIR_USER_MAX + 1];

	ok(maildir_user("Alice", u, sizeof(u)) == 0, "Alice");
	is_str(u, "alice", "lower case");
	ok(maildir_user("first.last+tag", u, sizeof(u)) == 0, "dots and plus");
	ok(maildir_user("", u, sizeof(u)) == -1, "empty");
	ok(maildir_user(".hidden", u, sizeof(u)) == -1, "leading dot");
	ok(maildir_user("..", u, sizeof(u)) == -1, "dot dot");
	ok(maildir_user("a/b", u, sizeof(u)) == -1, "slash");
	ok(maildir_user("\"a b\"", u, sizeof(u)) == -1, "quoted");
	ok(maildir_user("a\tb", u, sizeof(u)) == -1, "control");
	ok(maildir_user("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", u,
	       sizeof(u)) == -1,
	    "65 octets");
}

/* The single entry of dir (not . or ..) into name; the count of entries. */
static int
entries(const char *dir, char *name, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(name, len, "%s", e->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static void
test_deliver(void)
{
	char root[] = "/tmp/test_maildir.XXXXXX", path[512], name[300], buf[512];
	static const char content[] = "Subject: x\r\n\r\nline\r\n.dot\r\n";
	FILE *f;
	size_t n;

	ok(mkdtemp(root) != NULL, "temp dir");
	ok(maildir_deliver(root, "bob", "a@b.test", "bob@local.test", content, strlen(content)) ==
	        0,
	    "delivered");
	ok(maildir_deliver(root, "bob", "", "bob@local.test", content, strlen(content)) == 0,
	    "again, from <>");
	snprintf(path, sizeof(path), "%s/bob/new", root);
	is_int(entries(path, name, sizeof(name)), 2, "two files in new/");
	snprintf(path, sizeof(path), "%s/bob/tmp", root);
	is_int(entries(path, name, sizeof(name)), 0, "tmp/ empty");
	snprintf(path, sizeof(path), "%s/bob/cur", root);
	is_int(entries(path, name, sizeof(name)), 0, "cur/ exists");
	snprintf(path, sizeof(path), "%s/bob/new", root);
	entries(path, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/bob/new/%s", root, name);
	f = fopen(path, "rb");
	n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f != NULL)
		fclose(f);
	ok(strstr(buf, "Delivered-To: bob@local.test\nSubject: x\n\nline\n.dot\n") != NULL,
	    "LF lines, headers first");
	ok(strncmp(buf, "Return-Path: <", 14) == 0, "Return-Path");
	ok(maildir_deliver("/nonexistent/root", "bob", "", "x", "a", 1) == -1, "no root: -1");
	snprintf(buf, sizeof(buf), "rm -rf '%s'", root);
	ok(system(buf) == 0, "cleaned up");
}

int
main(void)
{
	test_user();
	test_deliver();
	return tap_done();
}
