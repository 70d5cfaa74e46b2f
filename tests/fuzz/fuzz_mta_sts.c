/*
 * fuzz_mta_sts.c - libFuzzer target: what a policy domain publishes for
 * MTA-STS (RFC 8461), as smtp-relayd's mta_sts module reads it.
 *
 * The first octet chooses the parser: 0 the HTTPS policy body
 * (mta_sts_policy_parse), 1 the _mta-sts TXT record (mta_sts_txt_parse),
 * 2 a policy cache file (mta_sts_cache_parse for "example.test"); the rest is
 * the text.  An accepted policy is then matched against a few MX names and
 * copied.
 *
 * Checks beyond memory safety: an accepted policy has a known mode, max_age
 * within the RFC's year, mx patterns only when allowed and each a lower-case
 * name or "*." and one, at most MTA_STS_MX_MAX of them; an accepted id is
 * 1..32 letters and digits; a refused policy leaves nothing allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-relay/mta_sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MTA_STS_ID_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		        (id[i] >= '0' && id[i] <= '9')))
			abort();
}

static void
check_policy(const struct mta_sts_policy *p)
{
	static const char *const hosts[] = {
	    "mx.example.test", "a.mx.example.test", "example.test", "MX1.EXAMPLE.TEST."};
	struct mta_sts_policy copy;

	if (p->mode > MTA_STS_MODE_ENFORCE || p->max_age > MTA_STS_MAX_AGE_MAX ||
	    p->nmx > MTA_STS_MX_MAX || (p->mode != MTA_STS_MODE_NONE && p->nmx == 0))
		abort();
	for (size_t i = 0; i < p->nmx; i++) {
		const char *m = p->mx[i];

		if (strncmp(m, "*.", 2) == 0)
			m += 2;
		if (*m == '\0' || strchr(m, '*') != NULL || m[strlen(m) - 1] == '.')
			abort();
		for (; *m != '\0'; m++)
			if (*m >= 'A' && *m <= 'Z')
				abort();
	}
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		(void)mta_sts_mx_matches(p, hosts[i]);
	if (mta_sts_policy_copy(&copy, p) == 0) {
		if (copy.nmx != p->nmx)
			abort();
		mta_sts_policy_clear(&copy);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1;
	struct mta_sts_policy p;
	char id[MTA_STS_ID_MAX + 1], err[128];

	if (size == 0 || size > MTA_STS_BODY_MAX + 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (mta_sts_policy_parse(text, size - 1, &p, err, sizeof(err)) == 0) {
			check_policy(&p);
			mta_sts_policy_clear(&p);
		} else if (p.mx != NULL || p.nmx != 0 || err[0] == '\0') {
			abort();
		}
		break;
	case 1:
		if (mta_sts_txt_parse(text, size - 1, id) == 1)
			check_id(id);
		break;
	default:
		if (mta_sts_cache_parse(text, size - 1, "example.test", &p) == 0) {
			check_id(p.id);
			check_policy(&p);
			mta_sts_policy_clear(&p);
		}
		break;
	}
	return 0;
}
