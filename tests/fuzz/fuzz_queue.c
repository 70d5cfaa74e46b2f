/*
 * fuzz_queue.c - libFuzzer target: the queue file reader (queue_load: the
 * "MXBQ1" header, lengths, CRC-32 trailer, then the JSON envelope through
 * queue_env_from_json).
 *
 * The first input byte picks the mode.  Even: the rest is a whole queue
 * file, written to queue/<ID> in a scratch queue on /dev/shm and loaded, so
 * header, length and checksum checks are fuzzed.  Odd: the rest is an
 * envelope; the target wraps it in a correct header and trailer around a
 * fixed content so the checksum passes and the envelope parser is reached.
 * A loaded envelope must survive queue_env_to_json / queue_env_from_json
 * unchanged.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/log.h"
#include "smtp-relay/queue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ID "0123456789abcdef"
static const char content[] = "Subject: fuzz\r\n\r\nbody\r\n";

static struct queue *q;
static char dir[128], path[256];

/* Leave nothing behind on /dev/shm. */
static void
cleanup(void)
{
	static const char *const sub[] = {"/tmp", "/queue", "/corrupt", ""};
	char p[256];

	unlink(path);
	queue_close(q);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", dir, sub[i]);
		rmdir(p);
	}
}

static void
setup(void)
{
	log_init("fuzz", LOG_LEVEL_ERR, false);
	snprintf(dir, sizeof(dir), "/dev/shm/mxb-fuzz-queue.%ld", (long)getpid());
	if ((q = queue_open(dir, true)) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/queue/" FUZZ_ID, dir);
	atexit(cleanup);
}

static void
put_file(const void *a, size_t alen, const void *b, size_t blen, const void *c, size_t clen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1 || (alen && write(fd, a, alen) != (ssize_t)alen) ||
	    (blen && write(fd, b, blen) != (ssize_t)blen) ||
	    (clen && write(fd, c, clen) != (ssize_t)clen) || close(fd) == -1)
		abort();
}

/* Header + envelope + "\n" + content + trailer, as queue_commit writes it. */
static void
put_wrapped(const uint8_t *env, size_t envlen)
{
	char head[64], trailer[32];
	size_t hlen =
	    (size_t)snprintf(head, sizeof(head), "MXBQ1 %zu %zu\n", envlen, sizeof(content) - 1);
	char *body = malloc(envlen + 1 + sizeof(content) - 1);
	uint32_t crc;

	if (body == NULL)
		abort();
	memcpy(body, env, envlen);
	body[envlen] = '\n';
	memcpy(body + envlen + 1, content, sizeof(content) - 1);
	crc = queue_crc32(0, head, hlen);
	crc = queue_crc32(crc, body, envlen + sizeof(content));
	snprintf(trailer, sizeof(trailer), "END %08" PRIx32 "\n", crc);
	put_file(head, hlen, body, envlen + sizeof(content), trailer, 13);
	free(body);
}

static void
check_round_trip(const struct queue_env *env)
{
	struct json_object *o = queue_env_to_json(env);
	struct queue_env *back = queue_env_from_json(o);

	if (back == NULL || strcmp(back->id, env->id) != 0 || back->nrcpts != env->nrcpts ||
	    back->size != env->size || strcmp(back->sender, env->sender) != 0)
		abort();
	for (size_t i = 0; i < env->nrcpts; i++)
		if (strcmp(back->rcpts[i].address, env->rcpts[i].address) != 0 ||
		    back->rcpts[i].state != env->rcpts[i].state)
			abort();
	(void)queue_env_is_done(back);
	queue_env_free(back);
	json_object_put(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_env *env = NULL;
	char *body = NULL;
	size_t blen = 0;

	if (q == NULL)
		setup();
	if (size < 1)
		return 0;
	if (data[0] & 1)
		put_wrapped(data + 1, size - 1);
	else
		put_file(data + 1, size - 1, NULL, 0, NULL, 0);
	if (queue_load(q, FUZZ_ID, &env, &body, &blen) == QUEUE_OK) {
		if (env == NULL || blen != env->size || env->nrcpts == 0)
			abort();
		check_round_trip(env);
		queue_env_free(env);
		free(body);
	}
	return 0;
}
