/* Length-prefixed frames over a non-blocking socket (see frame.h). */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define FRAME_READ_CHUNK 65536
#define FRAME_LEAD       4 /* see frame_io.in */

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
	free(f->ext);
	f->out = f->in = f->ext = NULL;
	f->out_off = f->out_len = f->out_cap = f->in_off = f->in_len = f->in_cap = 0;
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

/* Writes what is left of the owned frame: 0 when it is all out, 1 when the socket is full. */
static int flush_ext(struct frame_io *f)
{
	while (f->ext) {
		struct iovec iov[2];
		int n = 0;
		if (f->ext_off < 4)
			iov[n++] = (struct iovec){ f->ext_hdr + f->ext_off, 4 - f->ext_off };
		size_t done = f->ext_off < 4 ? 0 : f->ext_off - 4;
		iov[n++] = (struct iovec){ f->ext + done, f->ext_len - done };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(f->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		f->ext_off += (size_t)w;
		if (f->ext_off == 4 + f->ext_len) {
			free(f->ext);
			f->ext = NULL;
			f->ext_off = f->ext_len = 0;
		}
	}
	return 0;
}

int frame_send_owned(struct frame_io *f, uint8_t *msg, size_t len)
{
	if (len == 0 || len > f->max_frame) {
		free(msg);
		return -EMSGSIZE;
	}
	if (frame_pending(f)) {
		/* Behind other bytes: copied in order like any frame. */
		int rc = frame_send(f, msg, len);
		free(msg);
		return rc;
	}
	uint32_t l = (uint32_t)len;
	memcpy(f->ext_hdr, &l, 4);
	f->ext = msg;
	f->ext_len = len;
	f->ext_off = 0;
	return frame_flush(f);
}

int frame_flush(struct frame_io *f)
{
	int erc = flush_ext(f);
	if (erc)
		return erc;
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

/* Hands out the complete frames at the front of the input. Each frame is consumed before
 * the callback runs (and its bytes stay in place until the next call), so a callback that
 * frees f (its sandbox died) leaves nothing for us to touch: a non-zero return is passed
 * straight up, and no frame is ever handed out twice. */
static int deliver(struct frame_io *f, frame_fn fn, void *arg)
{
	for (;;) {
		uint8_t *base = f->in + FRAME_LEAD;
		if (f->in_off) {
			memmove(base, base + f->in_off, f->in_len);
			f->in_off = 0;
		}
		if (f->in_len < 4)
			return 0;
		uint32_t len;
		memcpy(&len, base, 4);
		if (len == 0 || len > f->max_frame)
			return -EBADMSG;
		if (f->in_len - 4 < len)
			return 0;
		f->in_off = 4 + (size_t)len;
		f->in_len -= 4 + (size_t)len;
		int rc = fn(arg, base + 4, len); /* 8-aligned: the lead and the length prefix */
		if (rc)
			return rc;
	}
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
			memcpy(&len, f->in + FRAME_LEAD, 4);
			if (len == 0 || len > f->max_frame)
				return -EBADMSG;
			if (4 + (size_t)len > f->in_len && 4 + (size_t)len - f->in_len > want)
				want = 4 + (size_t)len - f->in_len;
		}
		if ((rc = reserve(&f->in, &f->in_cap, FRAME_LEAD + f->in_len + want)))
			return rc;
		size_t at = FRAME_LEAD + f->in_len;
		ssize_t n = recv(f->fd, f->in + at, f->in_cap - at, MSG_DONTWAIT);
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
