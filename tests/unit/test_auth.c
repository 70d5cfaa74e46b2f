/* test_auth.c - the AUTH credentials file, base64 responses and the failure limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/addr.h"
#include "smtp-relay/auth.h"
#include "tests/unit/tap.h"

static void
test_base64(void)
{
	unsigned char out[600];
	long n;

	n = auth_base64_decode("AGFsaWNlAHNlY3JldA==", 20, out, sizeof(out));
	ok(n == 13 && memcmp(out, "\0alice\0secret", 13) == 0, "PLAIN response");
	is_int(auth_base64_decode("Ym9i", 4, out, sizeof(out)), 3, "no padding");
	is_int(auth_base64_decode("Ym9", 3, out, sizeof(out)), -1, "length not a multiple of 4");
	is_int(auth_base64_decode("Ym9i!A==", 8, out, sizeof(out)), -1, "not base64");
	is_int(auth_base64_decode("Y=9i", 4, out, sizeof(out)), -1, "padding in the middle");
	is_int(auth_base64_decode("AGFsaWNlAHNlY3JldA==", 20, out, 5), -1, "too long for out");
	is_int(auth_base64_decode("", 0, out, sizeof(out)), -1, "empty");
}

static char *
write_file(const char *text)
{
	static char path[] = "/tmp/test_auth.XXXXXX";
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_auth.XXXXXX");
	fd = mkstemp(path);
	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return NULL;
	close(fd);
	return path;
}

static void
test_file(void)
{
	char err[512];
	char *path = write_file("# users\n\nalice:$6$salt$hash\n  bob:$2b$05$x  \n");
	struct auth *a = auth_new(path, NULL, err, sizeof(err));

	ok(a != NULL, "comments, blank lines and spaces are fine");
	auth_free(a);
	unlink(path);
	path = write_file("alice:$6$salt$hash\nbob:secret\n");
	a = auth_new(path, NULL, err, sizeof(err));
	ok(a == NULL && strstr(err, ":2: not a crypt(3) hash") != NULL, "plaintext refused: %s",
	    err);
	unlink(path);
	path = write_file("alice\n");
	a = auth_new(path, NULL, err, sizeof(err));
	ok(a == NULL && strstr(err, ":1: expected user:hash") != NULL, "no colon: %s", err);
	unlink(path);
	a = auth_new("/nonexistent/users", NULL, err, sizeof(err));
	ok(a == NULL && strstr(err, "/nonexistent/users: No such file") != NULL, "missing: %s",
	    err);
}

static void
test_limit(void)
{
	char err[512];
	char *path = write_file("alice:$6$salt$hash\n");
	struct auth *a = auth_new(path, NULL, err, sizeof(err));
	struct addr c1, c2;

	unlink(path);
	addr_parse("192.0.2.1", 0, &c1);
	addr_parse("192.0.2.2", 0, &c2);
	ok(!auth_is_blocked(a, &c1), "a new client is not blocked");
	for (int i = 0; i < AUTH_MAX_FAILURES - 1; i++)
		auth_note_result(a, &c1, false);
	ok(!auth_is_blocked(a, &c1), "below the limit");
	auth_note_result(a, &c1, false);
	ok(auth_is_blocked(a, &c1), "blocked at the limit");
	ok(!auth_is_blocked(a, &c2), "others are not");
	auth_note_result(a, &c2, false);
	auth_note_result(a, &c2, true);
	auth_note_result(a, &c2, false);
	auth_note_result(a, &c2, false);
	ok(!auth_is_blocked(a, &c2), "a success forgets the failures");
	ok(auth_check(a, "alice", "x", 1, NULL, NULL) == NULL, "no pool: no check");
	auth_free(a);
}

int
main(void)
{
	test_base64();
	test_file();
	test_limit();
	return tap_done();
}
