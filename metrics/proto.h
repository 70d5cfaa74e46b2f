/*
 * proto.h - the metricd poll protocol (UDP): build and validate packets.
 *
 * docs/protocol-metrics.md is the specification; this is its only
 * implementation.  Every packet starts with the same 20-byte header
 * (magic "MXBM", version, type, flags, sequence, nonce); a request is 48
 * bytes, a reply 80, an error 28, and each grows by a 32-byte HMAC-SHA256
 * tag over everything before it when the header flag METRIC_H_SIGNED is set.
 * A reply is at most 1.7 times its request: no amplification.
 *
 * Keys are `struct config_key` (common/config.h) and must use hmac-sha256;
 * NULL means unsigned.  Everything here is pure and thread-safe; the parse
 * functions are the one place packets are validated: code after a METRIC_OK
 * may trust every field.
 */
#ifndef MXB_METRICS_PROTO_H
#define MXB_METRICS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_key;

#define METRIC_MAGIC       0x4d58424dU /* "MXBM" */
#define METRIC_VERSION     1
#define METRIC_NONCE_LEN   8
#define METRIC_TAG_LEN     32
#define METRIC_HEADER_LEN  20
#define METRIC_REQUEST_LEN 48
#define METRIC_REPLY_LEN   80
#define METRIC_ERROR_LEN   28
#define METRIC_PACKET_MAX  (METRIC_REPLY_LEN + METRIC_TAG_LEN)

enum metric_type {
	METRIC_T_REQUEST = 1,
	METRIC_T_REPLY = 2,
	METRIC_T_ERROR = 3,
};

/* Header flags. */
#define METRIC_H_SIGNED 0x0001 /* a tag follows the body */

/*
 * Reply status flags (struct metric_values.flags).  The METRIC_F_UNAVAILABLE
 * bits each mean "this member cannot take mail right now"; the agent then
 * reports rating 0, and a broker leaves the member out at once (a reported
 * state, not a missed poll).
 */
#define METRIC_F_DRAINING     0x0001 /* operator drain: rating is 0 */
#define METRIC_F_RELAY        0x0002 /* sessions/capacity read from the relay */
#define METRIC_F_RELAY_DOWN   0x0004 /* relay-status set but not answering */
#define METRIC_F_CPU_DERIVED  0x0008 /* cpu-rating derived from the CPU count */
#define METRIC_F_PENALTY      0x0010 /* the memory penalty applied */
#define METRIC_F_RELAY_FULL   0x0020 /* relay at max-sessions */
#define METRIC_F_QUEUE_FAIL   0x0040 /* relay's queue not writable */
#define METRIC_F_DISK_RESERVE 0x0080 /* queue file system below its reserve */
#define METRIC_F_PAUSED       0x0100 /* intake paused (or a reason we do not know) */
#define METRIC_F_LBCD         0x8000 /* not on the wire: mapped from lbcd */

#define METRIC_F_UNAVAILABLE                                                                       \
	(METRIC_F_RELAY_DOWN | METRIC_F_RELAY_FULL | METRIC_F_QUEUE_FAIL | METRIC_F_DISK_RESERVE | \
	    METRIC_F_PAUSED)

/* Error codes carried by an error packet. */
enum metric_code {
	METRIC_CODE_VERSION = 1,      /* version not spoken; body has ours */
	METRIC_CODE_MALFORMED = 2,    /* wrong type, length, flags or padding */
	METRIC_CODE_NO_KEY = 3,       /* signed request, the agent has no key */
	METRIC_CODE_BADSIG = 4,       /* keyed agent: the tag does not verify */
	METRIC_CODE_SIG_REQUIRED = 5, /* keyed agent: the request is unsigned */
};

/* Outcome of a parse. */
enum metric_err {
	METRIC_OK = 0,
	METRIC_E_SHORT,    /* shorter than a header */
	METRIC_E_MAGIC,    /* not our protocol */
	METRIC_E_VERSION,  /* another protocol version */
	METRIC_E_TYPE,     /* unexpected packet type */
	METRIC_E_LENGTH,   /* wrong length for its type */
	METRIC_E_FLAGS,    /* unknown header flags */
	METRIC_E_RESERVED, /* reserved bytes not zero */
	METRIC_E_UNSIGNED, /* a key is required and there is no tag */
	METRIC_E_NO_KEY,   /* a tag but no key to check it */
	METRIC_E_TAG,      /* the tag does not verify */
	METRIC_E_SEQ,      /* sequence number not the one sent */
	METRIC_E_NONCE,    /* nonce not the one sent */
	METRIC_E_REMOTE,   /* a valid error packet: see metric_reply.code */
};

/* The header fields, as parsed from (or echoed into) a packet. */
struct metric_header {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t seq;
	uint8_t nonce[METRIC_NONCE_LEN];
};

/* What an agent reports: fixed-point so it round-trips exactly. */
struct metric_values {
	int32_t rating;       /* thousandths */
	int32_t availability; /* thousandths */
	int32_t workload;     /* thousandths */
	int32_t penalty;      /* thousandths, as applied (>= 0) */
	uint32_t load;        /* thousandths of a percent, 0..100000 */
	uint16_t cpu_rating;  /* 1..100 */
	uint16_t flags;       /* METRIC_F_* */
	uint32_t sessions;
	uint32_t capacity;
	uint64_t free_bytes;  /* memory available */
	uint64_t goal_bytes;  /* memory goal (0 = none) */
	uint64_t computed_ms; /* Unix time of the computation, milliseconds */
	uint32_t interval;    /* compute-interval, seconds */
};

/* A validated reply or error packet. */
struct metric_reply {
	struct metric_header hdr;
	struct metric_values v;  /* METRIC_OK only */
	uint16_t code;           /* METRIC_E_REMOTE only: enum metric_code */
	uint16_t remote_version; /* METRIC_E_REMOTE only */
	bool authenticated;      /* signed and verified (false when unkeyed) */
};

/*
 * Write a request into buf (at least METRIC_REQUEST_LEN + METRIC_TAG_LEN
 * bytes), signed when key is not NULL.  Returns its length, or 0 when buf
 * is too small.
 */
size_t metric_request_build(uint8_t *buf, size_t len, uint32_t seq,
    const uint8_t nonce[METRIC_NONCE_LEN], const struct config_key *key);

/*
 * The agent's validating function.  With `key`, only requests carrying a
 * valid tag are METRIC_OK; without, only unsigned ones.  `hdr` is filled
 * whenever the header could be read (every result but SHORT and MAGIC), so
 * an agent may answer with an unsigned error packet: without a key VERSION,
 * LENGTH/TYPE/FLAGS/RESERVED (malformed) and NO_KEY; with a key TAG
 * (METRIC_CODE_BADSIG) and UNSIGNED (METRIC_CODE_SIG_REQUIRED), which are
 * only returned for a request of exactly the right length, so the 28-byte
 * error stays smaller than the request.  It must stay silent on the rest.
 */
enum metric_err metric_request_parse(
    const uint8_t *buf, size_t len, const struct config_key *key, struct metric_header *hdr);

/*
 * Write the reply to request `req` (echoing its sequence and nonce), signed
 * when key is not NULL.  Returns the length, or 0 when buf is too small.
 */
size_t metric_reply_build(uint8_t *buf, size_t len, const struct metric_header *req,
    const struct metric_values *v, const struct config_key *key);

/* Same for an error packet carrying `code` and our version. */
size_t metric_error_build(uint8_t *buf, size_t len, const struct metric_header *req,
    enum metric_code code, const struct config_key *key);

/*
 * The poller's validating function: accept `buf` only as the answer to the
 * request with `seq` and `nonce`, signed with `key` when key is not NULL
 * (and unsigned when it is NULL).  METRIC_OK fills out->v; METRIC_E_REMOTE
 * means a valid error packet (out->code); anything else must be discarded.
 * One exception to "signed when keyed": an unsigned error packet whose code
 * is a key code (metric_code_is_key) and that echoes seq and nonce is
 * METRIC_E_REMOTE too, with out->authenticated false -- an agent with
 * another key cannot sign its "bad signature".  Such an answer can only
 * ever fail a poll, never make it succeed.
 */
enum metric_err metric_reply_parse(const uint8_t *buf, size_t len, const struct config_key *key,
    uint32_t seq, const uint8_t nonce[METRIC_NONCE_LEN], struct metric_reply *out);

/*
 * Read the sequence number of a packet that looks like ours (magic and
 * length only; nothing else is checked): lets a poller find the pending
 * request before validating with metric_reply_parse.  Returns true if found.
 */
bool metric_packet_seq(const uint8_t *buf, size_t len, uint32_t *seq);

const char *metric_strerror(enum metric_err e);

/* "bad signature", "signature required", ...; "unknown error code". */
const char *metric_code_str(unsigned code);

/* True for NO_KEY, BADSIG and SIG_REQUIRED: the two sides' keys disagree. */
bool metric_code_is_key(unsigned code);

/*
 * A short reason for the first METRIC_F_UNAVAILABLE bit set in `flags`
 * ("relay not answering", "relay at max-sessions", "queue not writable",
 * "disk below reserve", "relay paused"), or NULL when none is set.  Static
 * strings; thread-safe.
 */
const char *metric_unavailable_str(uint16_t flags);

#endif
