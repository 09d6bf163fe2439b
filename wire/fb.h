/* The generic FlatBuffers runtime of rolloutd: a builder that writes back to front into
 * memory the caller owns (a stack buffer or space reserved in a shared-memory ring), and
 * the raw readers the generated accessors in rollout_wire_gen.h are made of.
 *
 * Builder: no heap, no system calls. Errors are sticky: when something does not fit,
 * every later call does nothing and fb_finish() returns -ENOSPC, so a caller checks once.
 * Readers: only for buffers that passed the verifier (rw_Message_verify); they do no
 * bounds checks of their own. The format is little-endian, like every host we run on. */
#ifndef ROLLOUT_WIRE_FB_H
#define ROLLOUT_WIRE_FB_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "FlatBuffers are little-endian; so is this code");

/* A reference to an object already built: its distance from the end of the buffer.
 * 0 means "none" (no object can end exactly at the buffer's end and be referenced). */
typedef uint32_t fb_ref_t;

#define FB_MAX_TABLE_FIELDS 32

struct fb_builder {
	uint8_t *buf;       /* caller memory; the finished buffer ends up at buf[0] */
	uint32_t cap;       /* bytes of buf */
	uint32_t size;      /* bytes used, counted from the end of buf */
	uint32_t minalign;  /* largest alignment seen; the finished size is a multiple */
	int err;            /* 0 or -ENOSPC, sticky */
	uint32_t table_end; /* size when the open table started (0: no open table) */
	uint16_t nfields;
	uint16_t max_id;
	uint16_t field_id[FB_MAX_TABLE_FIELDS];
	uint32_t field_at[FB_MAX_TABLE_FIELDS];
};

/* buf must be 8-byte aligned; cap is clamped to what uoffsets can address. */
static inline void fb_builder_init(struct fb_builder *b, void *buf, size_t cap)
{
	b->buf = (uint8_t *)buf;
	b->cap = cap > 0x7ffffff8u ? 0x7ffffff8u : (uint32_t)cap;
	b->size = 0;
	b->minalign = 1;
	b->err = 0;
	b->table_end = 0;
	b->nfields = 0;
	b->max_id = 0;
}

/* Bytes still free in the builder (useful to size a vector built in place). */
static inline size_t fb_builder_free(const struct fb_builder *b)
{
	return b->err ? 0 : b->cap - b->size;
}

/* Makes room for n bytes preceded by padding so that, after n more bytes are pushed,
 * the size is a multiple of align (alignment is counted from the end of the buffer, and
 * the finished buffer is padded to minalign, so it holds at the start too). */
static inline bool fb__prep(struct fb_builder *b, uint32_t align, uint32_t n)
{
	if (b->err)
		return false;
	if (align > b->minalign)
		b->minalign = align;
	uint32_t pad = (uint32_t)(-(b->size + n)) & (align - 1);
	if ((uint64_t)b->size + pad + n > b->cap) {
		b->err = -ENOSPC;
		return false;
	}
	if (pad) {
		memset(b->buf + b->cap - b->size - pad, 0, pad);
		b->size += pad;
	}
	return true;
}

/* Pushes n bytes (space already prepared); returns their address. */
static inline uint8_t *fb__push(struct fb_builder *b, uint32_t n)
{
	b->size += n;
	return b->buf + b->cap - b->size;
}

static inline void fb__put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Writes a uoffset at the builder's current front pointing at ref. */
static inline void fb__push_uoffset(struct fb_builder *b, fb_ref_t ref)
{
	if (!fb__prep(b, 4, 4))
		return;
	uint8_t *p = fb__push(b, 4);
	fb__put_u32(p, b->size - ref);
}

static inline fb_ref_t fb_create_string_n(struct fb_builder *b, const char *s, size_t len)
{
	/* Padding is chosen so the length prefix lands 4-aligned after the bytes and the NUL;
	 * the room check covers the prefix too. */
	if (len > b->cap || !fb__prep(b, 4, (uint32_t)len + 1) || (uint64_t)b->size + len + 1 + 4 > b->cap) {
		b->err = -ENOSPC;
		return 0;
	}
	uint8_t *p = fb__push(b, (uint32_t)len + 1);
	if (len)
		memcpy(p, s, len);
	p[len] = 0;
	p = fb__push(b, 4);
	fb__put_u32(p, (uint32_t)len);
	return b->size;
}

static inline fb_ref_t fb_create_string(struct fb_builder *b, const char *s)
{
	return fb_create_string_n(b, s, strlen(s));
}

/* Reserves a vector of n elements of elem_size bytes (aligned to align) and returns a
 * pointer where the caller writes the elements before the next builder call; *ref gets
 * the vector's reference. NULL when it does not fit. */
static inline void *fb_start_vec(struct fb_builder *b, size_t n, uint32_t elem_size, uint32_t align,
				 fb_ref_t *ref)
{
	*ref = 0;
	if (n > (b->cap / (elem_size ? elem_size : 1))) {
		b->err = -ENOSPC;
		return NULL;
	}
	uint32_t bytes = (uint32_t)n * elem_size;
	/* The length prefix must be 4-aligned and the elements align-aligned. */
	if (!fb__prep(b, 4, bytes) || !fb__prep(b, align, bytes))
		return NULL;
	uint8_t *p = fb__push(b, bytes);
	if (!fb__prep(b, 4, 4))
		return NULL;
	fb__put_u32(fb__push(b, 4), (uint32_t)n);
	*ref = b->size;
	return p;
}

static inline uint8_t *fb_start_vec_u8(struct fb_builder *b, size_t len, fb_ref_t *ref)
{
	return (uint8_t *)fb_start_vec(b, len, 1, 1, ref);
}

static inline fb_ref_t fb_create_vec_u8(struct fb_builder *b, const void *data, size_t len)
{
	fb_ref_t ref;
	uint8_t *p = fb_start_vec_u8(b, len, &ref);
	if (p && len)
		memcpy(p, data, len);
	return ref;
}

static inline fb_ref_t fb_create_vec_u64(struct fb_builder *b, const uint64_t *v, size_t n)
{
	fb_ref_t ref;
	void *p = fb_start_vec(b, n, 8, 8, &ref);
	if (p && n)
		memcpy(p, v, n * 8);
	return ref;
}

/* A vector of strings or tables: refs[] are what fb_create_string / *_end returned. */
static inline fb_ref_t fb_create_vec_ref(struct fb_builder *b, const fb_ref_t *refs, size_t n)
{
	if (n > b->cap / 4 || !fb__prep(b, 4, (uint32_t)n * 4 + 4)) {
		b->err = -ENOSPC;
		return 0;
	}
	for (size_t i = n; i-- > 0;) {
		uint8_t *p = fb__push(b, 4);
		fb__put_u32(p, b->size - refs[i]);
	}
	fb__put_u32(fb__push(b, 4), (uint32_t)n);
	return b->size;
}

/* Tables. Between fb_table_start and fb_table_end only fb_table_add_* calls are allowed
 * (strings, vectors and sub-tables are built before the table that refers to them). */
static inline void fb_table_start(struct fb_builder *b)
{
	b->table_end = b->size ? b->size : 0;
	b->nfields = 0;
	b->max_id = 0;
}

static inline void fb__track(struct fb_builder *b, uint16_t id)
{
	if (b->nfields >= FB_MAX_TABLE_FIELDS) {
		b->err = -E2BIG;
		return;
	}
	b->field_id[b->nfields] = id;
	b->field_at[b->nfields++] = b->size;
	if (id > b->max_id)
		b->max_id = id;
}

#define FB__DEFINE_ADD(name, type, n)                                                                \
	static inline void fb_table_add_##name(struct fb_builder *b, uint16_t id, type v, type dflt) \
	{                                                                                            \
		if (v == dflt || !fb__prep(b, n, n))                                                 \
			return;                                                                      \
		memcpy(fb__push(b, n), &v, n);                                                       \
		fb__track(b, id);                                                                    \
	}
FB__DEFINE_ADD(u8, uint8_t, 1)
FB__DEFINE_ADD(i8, int8_t, 1)
FB__DEFINE_ADD(u16, uint16_t, 2)
FB__DEFINE_ADD(i16, int16_t, 2)
FB__DEFINE_ADD(u32, uint32_t, 4)
FB__DEFINE_ADD(i32, int32_t, 4)
FB__DEFINE_ADD(u64, uint64_t, 8)
FB__DEFINE_ADD(i64, int64_t, 8)
#undef FB__DEFINE_ADD

static inline void fb_table_add_bool(struct fb_builder *b, uint16_t id, bool v, bool dflt)
{
	fb_table_add_u8(b, id, v ? 1 : 0, dflt ? 1 : 0);
}

static inline void fb_table_add_ref(struct fb_builder *b, uint16_t id, fb_ref_t ref)
{
	if (!ref)
		return;
	fb__push_uoffset(b, ref);
	if (!b->err)
		fb__track(b, id);
}

/* Closes the open table and writes its vtable just before it. */
static inline fb_ref_t fb_table_end(struct fb_builder *b)
{
	if (!fb__prep(b, 4, 4))
		return 0;
	fb__push(b, 4); /* soffset to the vtable, written below */
	fb_ref_t table = b->size;
	uint32_t nslots = b->nfields ? (uint32_t)b->max_id + 1u : 0u;
	uint32_t vsize = 4 + 2 * nslots;
	if (!fb__prep(b, 2, vsize))
		return 0;
	uint8_t *vt = fb__push(b, vsize);
	uint16_t hdr[2] = { (uint16_t)vsize, (uint16_t)(table - b->table_end) };
	memcpy(vt, hdr, 4);
	memset(vt + 4, 0, vsize - 4);
	for (uint16_t i = 0; i < b->nfields; i++) {
		uint16_t off = (uint16_t)(table - b->field_at[i]);
		memcpy(vt + 4 + 2 * b->field_id[i], &off, 2);
	}
	int32_t soff = (int32_t)(b->size - table); /* table - vtable, vtable is below */
	memcpy(b->buf + b->cap - table, &soff, 4);
	b->nfields = 0;
	return table;
}

/* Writes the root offset and the 4-byte file identifier, then moves the finished buffer
 * to the start of the caller's memory. Returns its size, or the sticky error. */
static inline ssize_t fb_finish(struct fb_builder *b, fb_ref_t root, const char ident[4])
{
	if (!root && !b->err)
		b->err = -EINVAL;
	if (!fb__prep(b, b->minalign > 8 ? b->minalign : 8, 8))
		return b->err;
	memcpy(fb__push(b, 4), ident, 4);
	uint8_t *p = fb__push(b, 4);
	fb__put_u32(p, b->size - root);
	if (b->size != b->cap)
		memmove(b->buf, b->buf + b->cap - b->size, b->size);
	return (ssize_t)b->size;
}

/* ----------------------------------------------------------------- readers */

static inline uint32_t fb__u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Address of field slot id of table t, or NULL when absent. */
static inline const uint8_t *fb_field(const void *t, uint16_t id)
{
	const uint8_t *tp = (const uint8_t *)t;
	int32_t soff;
	memcpy(&soff, tp, 4);
	const uint8_t *vt = tp - soff;
	uint16_t vsize, off;
	memcpy(&vsize, vt, 2);
	if ((uint32_t)4 + 2u * id >= vsize)
		return NULL;
	memcpy(&off, vt + 4 + 2 * id, 2);
	return off ? tp + off : NULL;
}

#define FB__DEFINE_READ(name, type)                                              \
	static inline type fb_read_##name(const void *t, uint16_t id, type dflt) \
	{                                                                        \
		const uint8_t *p = fb_field(t, id);                              \
		type v;                                                          \
		if (!p)                                                          \
			return dflt;                                             \
		memcpy(&v, p, sizeof(v));                                        \
		return v;                                                        \
	}
FB__DEFINE_READ(u8, uint8_t)
FB__DEFINE_READ(i8, int8_t)
FB__DEFINE_READ(u16, uint16_t)
FB__DEFINE_READ(i16, int16_t)
FB__DEFINE_READ(u32, uint32_t)
FB__DEFINE_READ(i32, int32_t)
FB__DEFINE_READ(u64, uint64_t)
FB__DEFINE_READ(i64, int64_t)
#undef FB__DEFINE_READ

static inline bool fb_read_bool(const void *t, uint16_t id, bool dflt)
{
	return fb_read_u8(t, id, dflt ? 1 : 0) != 0;
}

/* Follows the uoffset in slot id; NULL when absent. */
static inline const uint8_t *fb_read_ref(const void *t, uint16_t id)
{
	const uint8_t *p = fb_field(t, id);
	return p ? p + fb__u32(p) : NULL;
}

static inline const char *fb_read_string(const void *t, uint16_t id, size_t *len)
{
	const uint8_t *s = fb_read_ref(t, id);
	if (!s) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = fb__u32(s);
	return (const char *)s + 4;
}

/* A vector's element count and first element; count 0 and NULL when absent. */
static inline size_t fb_read_vec(const void *t, uint16_t id, const void **elems)
{
	const uint8_t *v = fb_read_ref(t, id);
	if (!v) {
		*elems = NULL;
		return 0;
	}
	*elems = v + 4;
	return fb__u32(v);
}

/* Vectors of strings and of tables: elements are uoffsets relative to themselves. */
typedef struct {
	const uint8_t *elems;
	size_t len;
} fb_strvec_t, fb_tabvec_t;

static inline size_t fb_strvec_len(fb_strvec_t v)
{
	return v.len;
}

static inline const char *fb_strvec_at(fb_strvec_t v, size_t i)
{
	const uint8_t *e = v.elems + 4 * i;
	return (const char *)(e + fb__u32(e) + 4);
}

static inline size_t fb_strvec_at_len(fb_strvec_t v, size_t i)
{
	const uint8_t *e = v.elems + 4 * i;
	return fb__u32(e + fb__u32(e));
}

static inline size_t fb_tabvec_len(fb_tabvec_t v)
{
	return v.len;
}

static inline const void *fb_tabvec_at(fb_tabvec_t v, size_t i)
{
	const uint8_t *e = v.elems + 4 * i;
	return e + fb__u32(e);
}

static inline fb_strvec_t fb_read_refvec(const void *t, uint16_t id)
{
	const void *e;
	fb_strvec_t v;
	v.len = fb_read_vec(t, id, &e);
	v.elems = (const uint8_t *)e;
	return v;
}

/* The root table of a verified buffer. */
static inline const void *fb_root(const void *buf)
{
	const uint8_t *p = (const uint8_t *)buf;
	return p + fb__u32(p);
}

/* ----------------------------------------------------------------- verifier */

/* X(name, value, text): why a buffer was refused. Values never change meaning. */
#define FB_VERIFY_ERROR_MAP(X)                                                      \
	X(OK, 0, "ok")                                                              \
	X(BUFFER_NULL, 1, "buffer pointer is NULL")                                 \
	X(BUFFER_MISALIGNED, 2, "buffer is not 8-byte aligned in memory")           \
	X(BUFFER_TOO_SMALL, 3, "buffer shorter than root offset and identifier")    \
	X(BUFFER_TOO_LARGE, 4, "buffer larger than the size limit")                 \
	X(IDENTIFIER_MISMATCH, 5, "file identifier is not RLW1")                    \
	X(OFFSET_ZERO, 6, "offset of zero points at itself")                        \
	X(OFFSET_OUT_OF_BOUNDS, 7, "offset points past the end of the buffer")      \
	X(TABLE_MISALIGNED, 8, "table not 4-byte aligned")                          \
	X(TABLE_HEADER_OUT_OF_BOUNDS, 9, "table header past the end of the buffer") \
	X(VTABLE_OUT_OF_BOUNDS, 10, "vtable outside the buffer")                    \
	X(VTABLE_MISALIGNED, 11, "vtable not 2-byte aligned")                       \
	X(VTABLE_SIZE_INVALID, 12, "vtable size odd, too small or past the buffer") \
	X(TABLE_SIZE_INVALID, 13, "table size too small or past the buffer")        \
	X(FIELD_OUT_OF_TABLE, 14, "field lies outside its table")                   \
	X(FIELD_MISALIGNED, 15, "field not aligned to its size")                    \
	X(STRING_MISALIGNED, 16, "string length not 4-byte aligned")                \
	X(STRING_OUT_OF_BOUNDS, 17, "string runs past the end of the buffer")       \
	X(STRING_NOT_TERMINATED, 18, "string not NUL-terminated inside the buffer") \
	X(VECTOR_MISALIGNED, 19, "vector length or elements misaligned")            \
	X(VECTOR_OUT_OF_BOUNDS, 20, "vector runs past the end of the buffer")       \
	X(UNION_TYPE_UNKNOWN, 21, "union type tag names no member")                 \
	X(UNION_VALUE_MISSING, 22, "union type set without a value")                \
	X(UNION_TYPE_MISSING, 23, "union value present without a type")             \
	X(DEPTH_LIMIT, 24, "tables nested deeper than the limit")                   \
	X(TABLE_LIMIT, 25, "more tables than the limit")                            \
	X(BOOL_INVALID, 26, "bool field is neither 0 nor 1")                        \
	X(VECTOR_TOO_LONG, 27, "vector has more elements than the limit")

enum fb_verify_error {
#define FB__VERR_ENUM(name, value, text) FB_VERR_##name = value,
	FB_VERIFY_ERROR_MAP(FB__VERR_ENUM)
#undef FB__VERR_ENUM
};

struct fb_verify_opts {
	uint32_t max_size;    /* bytes; 0: 64 MiB */
	uint32_t max_depth;   /* table nesting; 0: 16 */
	uint32_t max_tables;  /* tables and strings+vectors visited; 0: 100000 */
	uint32_t max_vec_len; /* elements in one vector of tables/strings; 0: 65536 */
};

struct fb_verify_result {
	int error;       /* enum fb_verify_error */
	uint32_t offset; /* where the problem was found */
};

/* State shared by the generated per-table verifiers. */
struct fb_verifier {
	const uint8_t *buf;
	uint32_t len;
	uint32_t depth_left;
	uint32_t tables_left;
	uint32_t max_vec_len;
	int error;
	uint32_t offset;
};

const char *fb_verify_strerror(int code);
const char *fb_verify_err_name(int code);

/* Building blocks for generated verifiers: each returns 0 or sets v->error and returns
 * the negative code. `pos` is a byte offset in the buffer. */
int fb__verify_fail(struct fb_verifier *v, int code, uint32_t at);
/* Checks the table header at pos; on success *vt and *tsize describe its vtable. */
int fb__verify_table_start(struct fb_verifier *v, uint32_t pos, uint32_t *vt, uint32_t *vsize,
			   uint32_t *tsize);
void fb__verify_table_end(struct fb_verifier *v);
/* Position of field id inside the table, 0 when absent; checks it lies in the table and
 * is aligned to size. Returns <0 on error. */
int64_t fb__verify_field(struct fb_verifier *v, uint32_t pos, uint32_t vt, uint32_t vsize, uint32_t tsize,
			 uint16_t id, uint32_t size);
/* Follows a uoffset at fpos; returns the target or <0. */
int64_t fb__verify_uoffset(struct fb_verifier *v, uint32_t fpos);
int fb__verify_string(struct fb_verifier *v, uint32_t pos);
/* Checks a vector of n elements of elem_size at pos; *n gets the count. */
int fb__verify_vector(struct fb_verifier *v, uint32_t pos, uint32_t elem_size, uint32_t *n);

#endif
