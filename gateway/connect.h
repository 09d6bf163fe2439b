/* Connect protocol pieces the gateway speaks (connectrpc.com/docs/protocol), JSON codec
 * only: the envelope framing of streaming calls (1 flag byte, 4-byte big-endian length,
 * then the message), error codes with their names and HTTP statuses, and the end-of-stream
 * message. Pure functions over buffers: no sockets, no allocation except where said. */
#ifndef ROLLOUT_GATEWAY_CONNECT_H
#define ROLLOUT_GATEWAY_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#define CONNECT_FLAG_COMPRESSED 0x01
#define CONNECT_FLAG_END        0x02
#define CONNECT_HDR             5

/* The codes of the Connect protocol (same numbers as gRPC). */
enum connect_code {
	CONNECT_OK = 0,
	CONNECT_CANCELED = 1,
	CONNECT_UNKNOWN = 2,
	CONNECT_INVALID_ARGUMENT = 3,
	CONNECT_DEADLINE_EXCEEDED = 4,
	CONNECT_NOT_FOUND = 5,
	CONNECT_ALREADY_EXISTS = 6,
	CONNECT_PERMISSION_DENIED = 7,
	CONNECT_RESOURCE_EXHAUSTED = 8,
	CONNECT_FAILED_PRECONDITION = 9,
	CONNECT_ABORTED = 10,
	CONNECT_OUT_OF_RANGE = 11,
	CONNECT_UNIMPLEMENTED = 12,
	CONNECT_INTERNAL = 13,
	CONNECT_UNAVAILABLE = 14,
	CONNECT_DATA_LOSS = 15,
	CONNECT_UNAUTHENTICATED = 16,
};

/* "not_found", ... as written in error bodies; "unknown" for values out of range. */
const char *connect_code_name(enum connect_code c);
/* HTTP status of a unary error response with this code. */
unsigned connect_code_http(enum connect_code c);

/* Writes the 5-byte envelope header for a message of len bytes into hdr. */
void connect_envelope_hdr(uint8_t hdr[CONNECT_HDR], uint8_t flags, uint32_t len);

/* Reads one envelope from buf: on success returns the bytes consumed (header + message)
 * and points *msg and *len at the message inside buf; 0 when buf holds less than one whole
 * envelope; -EPROTO for a compressed message (never negotiated) and -E2BIG when the
 * declared length exceeds max. */
long connect_envelope_read(const uint8_t *buf, size_t n, size_t max, uint8_t *flags, const uint8_t **msg,
			   uint32_t *len);

/* The JSON of an end-of-stream message: "{}" for CONNECT_OK, else
 * {"error":{"code":"...","message":"..."}}. Returns a malloc'd string (caller frees) or
 * NULL when out of memory. */
char *connect_end_json(enum connect_code c, const char *message);
/* The JSON body of a unary error: {"code":"...","message":"..."}. Caller frees. */
char *connect_error_json(enum connect_code c, const char *message);

#endif
