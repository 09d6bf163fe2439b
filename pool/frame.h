/* Framing between the pool and a sandbox's init: a u32 length (host order, never 0, at
 * most max_frame) then a wire Message. Both directions are non-blocking: what the socket
 * does not take now waits in a per-sandbox output buffer (the caller watches EPOLLOUT),
 * and partial input waits for the rest, so one slow sandbox never stalls the event loop. */
#ifndef ROLLOUT_POOL_FRAME_H
#define ROLLOUT_POOL_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct frame_io {
	int fd;             /* non-blocking stream socket; not owned */
	uint32_t max_frame; /* largest message accepted either way */
	uint8_t *out;       /* bytes out[off..len) still to write */
	size_t out_off, out_len, out_cap;
	/* A big frame handed over whole (frame_send_owned): written from the caller's buffer,
	 * before what waits in out (queued after it), and freed once written. */
	uint8_t *ext;
	size_t ext_len, ext_off; /* ext_off counts the 4 header bytes, then the message */
	uint8_t ext_hdr[4];
	/* Bytes read: they start at in + FRAME_LEAD + in_off (in_len of them). The lead puts
	 * a frame's message 8 bytes into the buffer, so it is handed out where it lies,
	 * aligned, without a copy; in_off is what the last frame handed out still holds. */
	uint8_t *in;
	size_t in_off, in_len, in_cap;
};

void frame_init(struct frame_io *f, int fd, uint32_t max_frame);
/* Frees the buffers; the fd stays with its owner. */
void frame_fini(struct frame_io *f);

/* Queues one frame and writes what the socket takes now. 0: all written; 1: bytes wait
 * for EPOLLOUT (call frame_flush then); -EMSGSIZE (len is 0 or over max_frame), -ENOMEM,
 * or -errno of the write (EPIPE: the sandbox is gone). */
int frame_send(struct frame_io *f, const void *msg, size_t len);
/* frame_send for a malloc'ed msg the frame takes over (freed when written, or at once on
 * an error): a big request goes to the sandbox without another copy. */
int frame_send_owned(struct frame_io *f, uint8_t *msg, size_t len);
/* Writes pending bytes: 0 when none are left, 1 when some still wait, or -errno. */
int frame_flush(struct frame_io *f);
static inline bool frame_pending(const struct frame_io *f)
{
	return f->ext || f->out_off < f->out_len;
}

/* Called with each complete frame (msg is 8-aligned, valid until the callback returns).
 * A non-zero return stops frame_receive at once, without touching f again (the callback
 * may have freed it), and frame_receive returns it. */
typedef int (*frame_fn)(void *arg, const uint8_t *msg, size_t len);
/* Reads what is there and hands out every complete frame. 0 when the socket would block,
 * -EPIPE at end of file, -EBADMSG for a length of 0 or over max_frame, -ENOMEM, -errno,
 * or the callback's non-zero return. */
int frame_receive(struct frame_io *f, frame_fn fn, void *arg);

#endif
