/* test_metric_lbcd.c - the lbcd v3 codec and the weight <-> rating mapping. */
#include <string.h>

#include "metrics/lbcd.h"
#include "tests/unit/tap.h"

/* A v3 reply for 0 services as lbcd 3.5.2 sends it (reference 2.4). */
static const uint8_t real_reply[44] = {
    0x00, 0x03, 0x12, 0x34, 0x00, 0x01, 0x00, 0x01, /* v3, id, op 1, status OK */
    0x65, 0x53, 0xf1, 0x00,                         /* boot_time 1700000000 */
    0x65, 0x53, 0xf2, 0x00,                         /* current_time +256 */
    0x00, 0x00, 0x00, 0x00,                         /* user_mtime */
    0x00, 0x0c, 0x00, 0x12, 0x00, 0x09,             /* l1 12, l5 18, l15 9 */
    0x00, 0x02, 0x00, 0x01,                         /* tot 2, uniq 1 */
    0x00, 0x00, 0x05, 0x07, 0x00, 0x00,             /* console, -, tmp 5%, tmpdir 7%, -, n 0 */
    0x00, 0x00, 0x01, 0x82, 0x00, 0x00, 0x00, 0xc8, /* weight 386, incr 200 */
};

static void
test_request(void)
{
	static const char *const svc[] = {"default", "smtp"};
	uint8_t buf[LBCD_PACKET_MAX];
	struct lbcd_request req;
	size_t len;

	len = lbcd_request_build(buf, sizeof(buf), 0xabcd, NULL, 0);
	is_int((long long)len, 8, "v3 request for the default weight: 8 bytes");
	ok(memcmp(buf, "\x00\x03\xab\xcd\x00\x01\x00\x00", 8) == 0, "header bytes");
	len = lbcd_request_build(buf, sizeof(buf), 1, svc, 2);
	is_int((long long)len, 8 + 64, "two services: 8 + 2 * 32");
	ok(buf[7] == 2 && memcmp(buf + 8, "default\0", 8) == 0 && buf[8 + 32] == 's' &&
	        buf[8 + 63] == 0,
	    "names NUL-padded to 32 bytes");
	is_int((long long)lbcd_request_build(buf, 7, 1, NULL, 0), 0, "buffer too small");
	{
		const char *const long_name[] = {"abcdefghijabcdefghijabcdefghijab"};

		is_int((long long)lbcd_request_build(buf, sizeof(buf), 1, long_name, 1), 0,
		    "a 32-character name does not fit");
	}

	len = lbcd_request_build(buf, sizeof(buf), 77, NULL, 0);
	ok(lbcd_request_parse(buf, len, &req) == LBCD_OK && req.hdr.id == 77 && req.nservices == 0,
	    "agent parses a v3 request");
	is_int(lbcd_request_parse(buf, len + 1, &req), LBCD_E_LENGTH, "wrong length: silence");
	is_int(lbcd_request_parse(buf, 7, &req), LBCD_E_SHORT, "short: silence");
	buf[1] = 2;
	ok(lbcd_request_parse(buf, 8, &req) == LBCD_OK && req.hdr.version == 2, "v2 request");
	buf[1] = 4;
	is_int(lbcd_request_parse(buf, 8, &req), LBCD_E_VERSION, "v4 refused");
	is_int(lbcd_err_status(LBCD_E_VERSION), LBCD_ST_VERSION, "answered with status 3");
	buf[1] = 3;
	buf[5] = 2;
	is_int(lbcd_request_parse(buf, 8, &req), LBCD_E_OP, "op 2 refused");
	is_int(lbcd_err_status(LBCD_E_OP), LBCD_ST_UNKNOWN_OP, "answered with status 5");
	len = lbcd_request_build(buf, sizeof(buf), 1, svc, 2);
	is_int(lbcd_request_parse(buf, len, &req), LBCD_E_SERVICES, "service smtp not offered");
	is_int(lbcd_err_status(LBCD_E_SERVICES), LBCD_ST_ERROR, "answered with status 2");
	len = lbcd_request_build(buf, sizeof(buf), 1, svc, 1);
	ok(lbcd_request_parse(buf, len, &req) == LBCD_OK && req.nservices == 1 &&
	        strcmp(req.services[0], "default") == 0,
	    "service default offered");
	buf[7] = 6;
	is_int(lbcd_request_parse(buf, 8 + 6 * 32, &req), LBCD_E_LENGTH, "six services: silence");
}

static void
test_reply(void)
{
	uint8_t buf[LBCD_PACKET_MAX];
	struct lbcd_reply r, back;
	struct lbcd_request req;
	struct lbcd_header h = {3, 9, 1, 0};
	size_t len;

	ok(lbcd_reply_parse(real_reply, sizeof(real_reply), 0x1234, 0, &r) == LBCD_OK,
	    "lbcd's reply parses");
	ok(r.boot_time == 1700000000 && r.current_time == 1700000256 && r.l1 == 12 && r.l5 == 18 &&
	        r.l15 == 9 && r.tot_users == 2 && r.uniq_users == 1 && r.tmp_full == 5 &&
	        r.tmpdir_full == 7 && r.services == 0,
	    "host figures at the documented offsets");
	ok(r.weights[0].weight == 386 && r.weights[0].incr == 200, "default weight and increment");
	is_int(lbcd_reply_parse(real_reply, sizeof(real_reply), 0x1235, 0, &r), LBCD_E_ID,
	    "other id rejected");
	is_int(lbcd_reply_parse(real_reply, sizeof(real_reply) - 1, 0x1234, 0, &r), LBCD_E_LENGTH,
	    "short reply rejected");
	is_int(lbcd_reply_parse(real_reply, sizeof(real_reply), 0x1234, 1, &r), LBCD_E_LENGTH,
	    "reply for another service count rejected");
	memcpy(buf, real_reply, sizeof(real_reply));
	buf[1] = 2;
	is_int(lbcd_reply_parse(buf, sizeof(real_reply), 0x1234, 0, &r), LBCD_E_VERSION,
	    "v2 reply to a v3 request rejected");
	buf[1] = 3;
	buf[5] = 7;
	is_int(lbcd_reply_parse(buf, sizeof(real_reply), 0x1234, 0, &r), LBCD_E_OP, "bad op");

	/* Error header: status 2, header only. */
	len = lbcd_error_build(buf, sizeof(buf), &h, LBCD_ST_ERROR);
	is_int((long long)len, 8, "error reply is a bare header");
	is_int(lbcd_reply_parse(buf, len, 9, 0, &r), LBCD_E_STATUS, "error status recognised");
	is_int(r.hdr.status, LBCD_ST_ERROR, "status read back");

	/* Our responder's reply round-trips through the client parser. */
	memset(&req, 0, sizeof(req));
	req.hdr = (struct lbcd_header){3, 0x4242, 1, 1};
	req.nservices = 1;
	memset(&r, 0, sizeof(r));
	r.boot_time = 1;
	r.current_time = 2;
	r.l1 = 300;
	r.weights[0] = (struct lbcd_weight){1000, 200};
	r.weights[1] = (struct lbcd_weight){1000, 200};
	len = lbcd_reply_build(buf, sizeof(buf), &req, &r);
	is_int((long long)len, 52, "reply with one service: 44 + 8");
	ok(lbcd_reply_parse(buf, len, 0x4242, 1, &back) == LBCD_OK && back.l1 == 300 &&
	        back.services == 1 && back.weights[1].weight == 1000,
	    "built reply parses back");
	is_int((long long)lbcd_reply_build(buf, 51, &req, &r), 0, "buffer too small");
}

static void
test_mapping(void)
{
	int32_t prev = 200000;
	bool monotonic = true;

	is_int(lbcd_weight_to_rating(0), 100000, "weight 0 rates 100");
	is_int(lbcd_weight_to_rating(LBCD_SCALE), 50000, "weight SCALE rates 50");
	is_int(lbcd_weight_to_rating(200), 83333, "one lbcd step rates 83.333");
	is_int(lbcd_weight_to_rating(LBCD_WEIGHT_DOWN), 0, "do-not-use rates 0");
	ok(lbcd_weight_to_rating(LBCD_WEIGHT_DOWN - 1) >= 0, "huge weight: rating >= 0");
	for (uint32_t w = 0; w < 100000; w += 7) {
		int32_t r = lbcd_weight_to_rating(w);

		monotonic &= r <= prev;
		prev = r;
	}
	ok(monotonic, "rating never rises with the weight");

	is_int(lbcd_rating_to_weight(100000, false), 0, "rating 100 -> weight 0");
	is_int(lbcd_rating_to_weight(120000, false), 0, "rating above 100 -> weight 0");
	is_int(lbcd_rating_to_weight(50000, false), LBCD_SCALE, "rating 50 -> weight SCALE");
	is_int(lbcd_rating_to_weight(50000, true), LBCD_WEIGHT_DOWN, "draining -> do not use");
	is_int(lbcd_rating_to_weight(0, false), LBCD_WEIGHT_DOWN - 1,
	    "rating 0 -> busiest but usable");
	for (int32_t r = 1000; r <= 100000; r += 997) {
		int32_t back = lbcd_weight_to_rating(lbcd_rating_to_weight(r, false));

		if (back < r - 100 || back > r + 100) {
			ok(false, "round trip of rating %d gave %d", r, back);
			return;
		}
	}
	ok(true, "rating -> weight -> rating within 0.1");
}

int
main(void)
{
	test_request();
	test_reply();
	test_mapping();
	return tap_done();
}
