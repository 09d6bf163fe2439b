/* The generic half of the FlatBuffers verifier: bounds, alignment and limit checks on
 * tables, vtables, offsets, strings and vectors. The schema-specific half (which field
 * has which type) is generated into rollout_wire_gen.c and calls these. All arithmetic
 * is done in 64 bits so no attacker-chosen value can wrap a check. */
#include "fb.h"

const char *fb_verify_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
#define FB__VERR_STR(name, value, text) \
	case value:                     \
		return text;
		FB_VERIFY_ERROR_MAP(FB__VERR_STR)
#undef FB__VERR_STR
	}
	return "unknown verifier error";
}

const char *fb_verify_err_name(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
#define FB__VERR_NAME(name, value, text) \
	case value:                      \
		return #name;
		FB_VERIFY_ERROR_MAP(FB__VERR_NAME)
#undef FB__VERR_NAME
	}
	return "UNKNOWN";
}

int fb__verify_fail(struct fb_verifier *v, int code, uint32_t at)
{
	if (!v->error) {
		v->error = code;
		v->offset = at;
	}
	return -code;
}

int fb__verify_table_start(struct fb_verifier *v, uint32_t pos, uint32_t *vt, uint32_t *vsize,
			   uint32_t *tsize)
{
	if (v->depth_left == 0)
		return fb__verify_fail(v, FB_VERR_DEPTH_LIMIT, pos);
	if (v->tables_left == 0)
		return fb__verify_fail(v, FB_VERR_TABLE_LIMIT, pos);
	v->depth_left--;
	v->tables_left--;
	if (pos & 3)
		return fb__verify_fail(v, FB_VERR_TABLE_MISALIGNED, pos);
	if ((uint64_t)pos + 4 > v->len)
		return fb__verify_fail(v, FB_VERR_TABLE_HEADER_OUT_OF_BOUNDS, pos);
	int32_t soff;
	memcpy(&soff, v->buf + pos, 4);
	int64_t vpos = (int64_t)pos - soff;
	if (vpos < 0 || vpos + 4 > (int64_t)v->len)
		return fb__verify_fail(v, FB_VERR_VTABLE_OUT_OF_BOUNDS, pos);
	if (vpos & 1)
		return fb__verify_fail(v, FB_VERR_VTABLE_MISALIGNED, (uint32_t)vpos);
	uint16_t hdr[2];
	memcpy(hdr, v->buf + vpos, 4);
	if (hdr[0] < 4 || (hdr[0] & 1) || vpos + hdr[0] > (int64_t)v->len)
		return fb__verify_fail(v, FB_VERR_VTABLE_SIZE_INVALID, (uint32_t)vpos);
	if (hdr[1] < 4 || (uint64_t)pos + hdr[1] > v->len)
		return fb__verify_fail(v, FB_VERR_TABLE_SIZE_INVALID, pos);
	*vt = (uint32_t)vpos;
	*vsize = hdr[0];
	*tsize = hdr[1];
	return 0;
}

void fb__verify_table_end(struct fb_verifier *v)
{
	v->depth_left++;
}

int64_t fb__verify_field(struct fb_verifier *v, uint32_t pos, uint32_t vt, uint32_t vsize, uint32_t tsize,
			 uint16_t id, uint32_t size)
{
	uint32_t slot = 4u + 2u * id;
	if (slot + 2 > vsize)
		return 0;
	uint16_t off;
	memcpy(&off, v->buf + vt + slot, 2);
	if (!off)
		return 0;
	if ((uint32_t)off + size > tsize)
		return fb__verify_fail(v, FB_VERR_FIELD_OUT_OF_TABLE, pos + off);
	uint32_t fpos = pos + off;
	if (fpos & (size - 1))
		return fb__verify_fail(v, FB_VERR_FIELD_MISALIGNED, fpos);
	return fpos;
}

int64_t fb__verify_uoffset(struct fb_verifier *v, uint32_t fpos)
{
	uint32_t off;
	memcpy(&off, v->buf + fpos, 4);
	if (off == 0)
		return fb__verify_fail(v, FB_VERR_OFFSET_ZERO, fpos);
	uint64_t target = (uint64_t)fpos + off;
	if (target >= v->len)
		return fb__verify_fail(v, FB_VERR_OFFSET_OUT_OF_BOUNDS, fpos);
	return (int64_t)target;
}

int fb__verify_string(struct fb_verifier *v, uint32_t pos)
{
	if (v->tables_left == 0)
		return fb__verify_fail(v, FB_VERR_TABLE_LIMIT, pos);
	v->tables_left--;
	if (pos & 3)
		return fb__verify_fail(v, FB_VERR_STRING_MISALIGNED, pos);
	if ((uint64_t)pos + 4 > v->len)
		return fb__verify_fail(v, FB_VERR_STRING_OUT_OF_BOUNDS, pos);
	uint32_t n;
	memcpy(&n, v->buf + pos, 4);
	uint64_t end = (uint64_t)pos + 4 + n; /* the NUL terminator's position */
	if (end >= v->len)
		return fb__verify_fail(v, FB_VERR_STRING_OUT_OF_BOUNDS, pos);
	if (v->buf[end] != 0)
		return fb__verify_fail(v, FB_VERR_STRING_NOT_TERMINATED, (uint32_t)end);
	return 0;
}

int fb__verify_vector(struct fb_verifier *v, uint32_t pos, uint32_t elem_size, uint32_t *n)
{
	if (v->tables_left == 0)
		return fb__verify_fail(v, FB_VERR_TABLE_LIMIT, pos);
	v->tables_left--;
	if ((pos & 3) || (elem_size == 8 && ((pos + 4) & 7)))
		return fb__verify_fail(v, FB_VERR_VECTOR_MISALIGNED, pos);
	if ((uint64_t)pos + 4 > v->len)
		return fb__verify_fail(v, FB_VERR_VECTOR_OUT_OF_BOUNDS, pos);
	memcpy(n, v->buf + pos, 4);
	if ((uint64_t)pos + 4 + (uint64_t)*n * elem_size > v->len)
		return fb__verify_fail(v, FB_VERR_VECTOR_OUT_OF_BOUNDS, pos);
	return 0;
}
