/*
 * fuzz_socketmap.c - libFuzzer target: Postfix socketmap requests
 * (socketmap_parse_request), as a stream of pipelined netstrings.
 *
 * The input is consumed the way the server does it: parse, drain what was
 * used, repeat until more input is needed or the stream is refused.  Each
 * step also re-parses every prefix of the remaining input, which must say
 * "need more" (0) or refuse (-1), never accept a request longer than what it
 * was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/socketmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_request(const char *buf, size_t len, int used, const char *name, const char *key)
{
	size_t nl = strlen(name), kl = strlen(key);

	if ((size_t)used > len || nl == 0 || kl == 0 || buf[used - 1] != ',')
		abort();
	/* "LEN:NAME KEY," with LEN = nl + 1 + kl. */
	if (memcmp(buf + used - 1 - kl, key, kl) != 0 || buf[used - 2 - kl] != ' ')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[64], key[SOCKETMAP_REQUEST_MAX + 1];
	char *buf = malloc(size ? size : 1);
	size_t off = 0;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	while (off < size) {
		int used = socketmap_parse_request(
		    buf + off, size - off, name, sizeof(name), key, sizeof(key));

		if (used <= 0)
			break;
		check_request(buf + off, size - off, used, name, key);
		/* A shorter prefix of a complete request is never complete. */
		if (socketmap_parse_request(
		        buf + off, (size_t)used - 1, name, sizeof(name), key, sizeof(key)) > 0)
			abort();
		off += (size_t)used;
	}
	/* Tiny output buffers: refused, never overflowed. */
	(void)socketmap_parse_request(buf, size, name, 2, key, 2);
	free(buf);
	return 0;
}
