/* Table-driven YAML configuration for both daemons (libcyaml underneath). Each daemon lists
 * its keys once, in an X-macro table: name, type, default, range and doc string. From that
 * one table come the libcyaml schema (CFG_CYAML_FIELD), the defaults and range checks
 * (cfg_apply) and the reference (cfg_reference: `--config-reference`, docs/config.md), so
 * the shipped configs, --check-config and the docs cannot drift apart.
 *
 * A table row: X(S, TYPE, name, default, lo, hi, extra, doc)
 *   S      the C struct holding the section
 *   TYPE   STR (char *), U32 (uint32_t), SEQ (pointer + name##_count; extra is the
 *          element's cyaml schema), MAP (pointer to a mapping; extra is its field array),
 *          ENUM (int; extra is a cyaml_strval_t array naming the values lo..hi; an absent
 *          key leaves 0, so the default is the name of value 0)
 *   default  text form, NULL for none. For U32 an absent key or 0 takes the default.
 *   lo, hi   U32: the accepted range after defaults; STR: length; SEQ: entries
 */
#ifndef ROLLOUT_COMMON_CFG_H
#define ROLLOUT_COMMON_CFG_H

#include <cyaml/cyaml.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum cfg_type { CFG_STR, CFG_U32, CFG_SEQ, CFG_MAP, CFG_ENUM };

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset, count_offset;
	const char *def;
	uint64_t lo, hi;
	const char *doc;
};

#define CFG_CYAML_FIELD(S, T, name, def, lo, hi, extra, doc) CFG__CYAML_##T(S, name, lo, hi, extra),
#define CFG__CYAML_STR(S, name, lo, hi, extra) \
	CYAML_FIELD_STRING_PTR(#name, CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, S, name, lo, hi)
#define CFG__CYAML_U32(S, name, lo, hi, extra) CYAML_FIELD_UINT(#name, CYAML_FLAG_OPTIONAL, S, name)
#define CFG__CYAML_SEQ(S, name, lo, hi, extra) \
	CYAML_FIELD_SEQUENCE(#name, CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, S, name, extra, 0, hi)
#define CFG__CYAML_MAP(S, name, lo, hi, extra) \
	CYAML_FIELD_MAPPING_PTR(#name, CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, S, name, extra)
#define CFG__CYAML_ENUM(S, name, lo, hi, extra) \
	CYAML_FIELD_ENUM(#name, CYAML_FLAG_OPTIONAL, S, name, extra, (hi) + 1)

#define CFG_KEY_ROW(S, T, name, def, lo, hi, extra, doc) \
	{ #name, CFG_##T, offsetof(S, name), CFG__COUNT_##T(S, name), def, lo, hi, doc },
#define CFG__COUNT_STR(S, name) 0
#define CFG__COUNT_U32(S, name) 0
#define CFG__COUNT_MAP(S, name) 0
#define CFG__COUNT_ENUM(S, name) 0
#define CFG__COUNT_SEQ(S, name) offsetof(S, name##_count)

/* Checks that path is a non-empty regular file and loads it against schema. On failure
 * returns -EINVAL (or -errno) and writes "PATH: what[: cyaml's detail with line]" to err. */
int cfg_load(const char *path, const cyaml_schema_value_t *schema, void **doc, char *err, size_t errsz);
void cfg_free(const cyaml_schema_value_t *schema, void *doc);

/* Fills defaults into obj and checks ranges, for the rows of one section (section names
 * the mapping in messages, e.g. "rolloutd" or "pool.profiles[2]"). 0 or -EINVAL with err. */
int cfg_apply(void *obj, const struct cfg_key *keys, size_t n, const char *path, const char *section,
	      char *err, size_t errsz);

/* Writes "PATH:LINE: section.key: message" (LINE where the key is found in the file; the
 * nth occurrence, counting from 0, for keys of list entries). Returns -EINVAL. */
int cfg_fail(char *err, size_t errsz, const char *path, const char *key, unsigned nth, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The reference of one section as a Markdown table: key, type, default, range, doc. */
void cfg_reference(FILE *f, const char *section, const struct cfg_key *keys, size_t n);

extern const cyaml_config_t cfg_cyaml_config;
extern const cyaml_schema_value_t cfg_string_schema; /* an element of a list of strings */
extern const cyaml_schema_value_t cfg_u32_schema;    /* an element of a list of integers */

#endif
