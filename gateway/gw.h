/* rollout-gateway: shared types of the daemon's modules. One event thread owns
 * everything here: libmicrohttpd runs in external-polling mode from that thread and
 * librollout is used only from it, so nothing is locked. A request that waits on rolloutd
 * suspends its HTTP connection; the op's completion queues the answer and resumes it. */
#ifndef ROLLOUT_GATEWAY_GW_H
#define ROLLOUT_GATEWAY_GW_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "config.h"
#include "connect.h"
#include "metrics.h"
#include "route.h"
#include "sandbox.h"

/* E2B's envd version the sandboxes report. The SDK turns features on by it: >= 0.4.0
 * sends no default user, >= 0.5.2 allows closeStdin; below 0.5.7 uploads stay multipart
 * (no octet-stream or gzip bodies) and below 0.6.2 no file metadata is sent. */
#define GW_ENVD_VERSION "0.5.6"

struct gw {
	struct gw_config cfg;
	struct MHD_Daemon *mhd;
	struct gw_backend be;
	struct gw_registry reg;
	struct gw_metrics *m;
	rollout_client *rc;
	bool stopping;
	unsigned open_creates; /* creates waiting on rolloutd (count toward max_sandboxes) */
};

/* A streaming response (Connect server stream): enveloped messages appended by the
 * producer, drained by libmicrohttpd through a content reader that suspends the
 * connection when it runs dry. Freed when libmicrohttpd drops the response. */
struct gw_stream {
	struct gw *g;
	struct MHD_Connection *conn;
	uint8_t *buf;
	size_t len, off, cap;
	bool end, suspended, closed;
	int64_t last_ms;      /* wall clock of the last message: keepalives go out when it is old */
	struct gw_proc *proc; /* observed process, NULL once detached */
	struct gw_stream *pnext;
};

#define GW_MAX_UPLOAD_FILES 64

struct gw_upload {
	char *path; /* as sent (multipart filename or ?path=) */
	uint8_t *data;
	size_t len, cap;
};

struct gw_req {
	struct gw *g;
	struct MHD_Connection *conn;
	struct gw_route route;
	uint64_t t0_ns;
	char *body;
	size_t len, cap;
	bool too_big, malformed, dispatched, suspended, queued;
	struct MHD_PostProcessor *pp; /* multipart upload of POST /files */
	struct gw_upload *up;         /* POST /files: the files of the upload */
	unsigned nup, pending;
	bool failed;
	json_t *result;
	struct gw_sandbox *sb; /* referenced while an op for this request is in flight */
	struct gw_stream *stream;
	struct MHD_Response *resp; /* ready to queue */
	unsigned status;
};

/* Replies. Each builds the response; the caller's request is answered at once or, when
 * it was suspended, resumed with it. */
void gw_reply(struct gw_req *rq, unsigned status, const char *ctype, const void *body, size_t len);
void gw_reply_json(struct gw_req *rq, unsigned status, json_t *obj); /* steals obj */
/* E2B's REST error shape: {"code": status, "message": msg}. */
void gw_reply_error(struct gw_req *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A Connect error: for unary RPCs the HTTP status of the code with a JSON body, for
 * streaming RPCs a 200 whose stream ends with the error. */
void gw_reply_connect_error(struct gw_req *rq, enum connect_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Starts the streaming response of rq (Connect server stream). */
struct gw_stream *gw_stream_open(struct gw_req *rq);
/* Appends one enveloped JSON message (steals obj). */
void gw_stream_msg(struct gw_stream *s, json_t *obj);
/* Appends the end-of-stream message (CONNECT_OK or an error) and finishes the stream. */
void gw_stream_end(struct gw_stream *s, enum connect_code code, const char *message);

/* Parses the JSON body of rq; on failure answers (400) and returns NULL. */
json_t *gw_req_json(struct gw_req *rq);
/* An op started for rq counts in rq->pending; its callback ends with gw_req_op_done(),
 * which frees a request whose connection went away meanwhile. */
void gw_req_op_done(struct gw_req *rq);
const char *gw_req_header(struct gw_req *rq, const char *name);
const char *gw_req_query(struct gw_req *rq, const char *name);

/* Handlers (control.c, process.c, files.c): each answers rq or leaves it pending on an op. */
void gw_control(struct gw_req *rq);
void gw_envd(struct gw_req *rq, struct gw_sandbox *sb);

/* Kills a sandbox: out of the table, its commands' streams ended, Close sent. */
void gw_sandbox_kill(struct gw *g, struct gw_sandbox *sb, const char *why);
/* Kills every sandbox whose end_ms has passed; returns ms until the next one is due. */
int gw_expire(struct gw *g);

/* process.c: the process.Process RPCs; body is the request message. */
void gw_process_rpc(struct gw_req *rq, struct gw_sandbox *sb, json_t *body);
/* Ends the streams of commands that never reached the pool (sandbox killed). */
void gw_procs_abort(struct gw_sandbox *sb);
void gw_proc_detach_stream(struct gw_stream *s);
/* Sends a keepalive event on the process streams of sb silent for interval_ms. */
void gw_procs_keepalive(struct gw_sandbox *sb, int64_t now_ms, int64_t interval_ms);

/* An absolute path in the sandbox: relative paths (and ~) are taken from the workdir.
 * Caller frees. */
char *gw_abs_path(struct gw *g, const char *p);

/* JSON helpers. */
json_t *gw_json_bytes_b64(const uint8_t *p, size_t n);
/* Decodes base64 (standard alphabet, padding optional); returns bytes or -EINVAL. */
long gw_b64_decode(const char *in, uint8_t *out, size_t cap);
/* A JSON string from bytes that may not be UTF-8 (invalid sequences become U+FFFD). */
json_t *gw_json_text(const char *p, size_t n);
char *gw_iso8601(int64_t ms, char *buf, size_t cap);

#endif
