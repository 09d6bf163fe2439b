/* Length-prefixed frames over a non-blocking socket (see frame.h). */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_READ_CHUNK 65536

void frame_init(struct frame_io *f, int fd, uint32_t max_frame)
{
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->max_frame = max_frame;
}

void frame_fini(struct frame_io *f)
{
	free(f->out);
	free(f->in);
	free(f->msg);
	f->out = f->in = f->msg = NULL;
	f->out_off = f->out_len = f->out_cap = f->in_len = f->in_cap = f->msg_cap = 0;
}

/* Makes room for `need` bytes after the first `keep` of *buf (cap *cap). */
static int reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	uint8_t *b = realloc(*buf, n);
	if (!b)
		return -ENOMEM;
	*buf = b;
	*cap = n;
	return 0;
}

int frame_flush(struct frame_io *f)
{
	while (f->out_off < f->out_len) {
		ssize_t n =
		    send(f->fd, f->out + f->out_off, f->out_len - f->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		f->out_off += (size_t)n;
	}
	f->out_off = f->out_len = 0;
	/* A 64 MiB put should not pin 64 MiB per sandbox for ever after. */
	if (f->out_cap > (1u << 20)) {
		free(f->out);
		f->out = NULL;
		f->out_cap = 0;
	}
	return 0;
}

int frame_send(struct frame_io *f, const void *msg, size_t len)
{
	if (len == 0 || len > f->max_frame)
		return -EMSGSIZE;
	if (f->out_off && f->out_off == f->out_len)
		f->out_off = f->out_len = 0;
	int rc = reserve(&f->out, &f->out_cap, f->out_len + 4 + len);
	if (rc)
		return rc;
	uint32_t l = (uint32_t)len;
	memcpy(f->out + f->out_len, &l, 4);
	memcpy(f->out + f->out_len + 4, msg, len);
	f->out_len += 4 + len;
	return frame_flush(f);
}

/* Hands out the complete frames at the front of the input buffer. Each frame leaves the
 * buffer before the callback runs, so a callback that frees f (its sandbox died) leaves
 * nothing for us to touch: a non-zero return is passed straight up. */
static int deliver(struct frame_io *f, frame_fn fn, void *arg)
{
	while (f->in_len >= 4) {
		uint32_t len;
		memcpy(&len, f->in, 4);
		if (len == 0 || len > f->max_frame)
			return -EBADMSG;
		if (f->in_len - 4 < len)
			return 0;
		/* The verifier wants an aligned buffer; the frame sits 4 bytes into the input. */
		int rc = reserve(&f->msg, &f->msg_cap, len);
		if (rc)
			return rc;
		memcpy(f->msg, f->in + 4, len);
		f->in_len -= 4 + (size_t)len;
		memmove(f->in, f->in + 4 + len, f->in_len);
		if ((rc = fn(arg, f->msg, len)))
			return rc;
	}
	return 0;
}

int frame_receive(struct frame_io *f, frame_fn fn, void *arg)
{
	/* Frames left over when a callback stopped the previous call go first. */
	int rc = deliver(f, fn, arg);
	if (rc)
		return rc;
	for (;;) {
		/* Room for the frame under way, read in chunks: never more than one frame ahead. */
		size_t want = FRAME_READ_CHUNK;
		if (f->in_len >= 4) {
			uint32_t len;
			memcpy(&len, f->in, 4);
			if (len == 0 || len > f->max_frame)
				return -EBADMSG;
			if (4 + (size_t)len > f->in_len && 4 + (size_t)len - f->in_len > want)
				want = 4 + (size_t)len - f->in_len;
		}
		if ((rc = reserve(&f->in, &f->in_cap, f->in_len + want)))
			return rc;
		ssize_t n = recv(f->fd, f->in + f->in_len, f->in_cap - f->in_len, MSG_DONTWAIT);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		f->in_len += (size_t)n;
		if ((rc = deliver(f, fn, arg)))
			return rc;
		if (!f->in_len && f->in_cap > (1u << 20)) {
			free(f->in);
			f->in = NULL;
			f->in_cap = 0;
		}
	}
}
