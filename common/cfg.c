/* Table-driven configuration (see cfg.h). Before libcyaml sees a file, a libyaml pass
 * refuses what a schema cannot bound: files over 1 MiB, nesting deeper than 32 and YAML
 * aliases (an alias bomb expands exponentially). */
#include "cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CFG_MAX_BYTES (1u << 20)
#define CFG_MAX_DEPTH 32

/* libcyaml reports through a callback: collected here for the one load in progress (the
 * daemons load their config once, on the main thread). */
static char cyaml_msg[1024];
static size_t cyaml_len;

static void cfg_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	(void)ctx;
	if (level < CYAML_LOG_ERROR || cyaml_len + 1 >= sizeof(cyaml_msg))
		return;
	int n = vsnprintf(cyaml_msg + cyaml_len, sizeof(cyaml_msg) - cyaml_len, fmt, args);
	if (n > 0)
		cyaml_len =
		    cyaml_len + (size_t)n < sizeof(cyaml_msg) ? cyaml_len + (size_t)n : sizeof(cyaml_msg) - 1;
}

const cyaml_config_t cfg_cyaml_config = {
	.log_fn = cfg_log,
	.mem_fn = cyaml_mem,
	.log_level = CYAML_LOG_ERROR,
	.flags = CYAML_CFG_NO_ALIAS,
};

const cyaml_schema_value_t cfg_u32_schema = {
	CYAML_VALUE_UINT(CYAML_FLAG_DEFAULT, uint32_t),
};

const cyaml_schema_value_t cfg_string_schema = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, 4096),
};

static int vfail(char *err, size_t cap, const char *prefix, const char *fmt, va_list ap)
{
	int n = snprintf(err, cap, "%s", prefix);
	if (n >= 0 && (size_t)n < cap)
		vsnprintf(err + n, cap - (size_t)n, fmt, ap);
	return -EINVAL;
}

static int fail_path(char *err, size_t cap, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_path(char *err, size_t cap, const char *path, const char *fmt, ...)
{
	char prefix[512];
	snprintf(prefix, sizeof(prefix), "%s: ", path);
	va_list ap;
	va_start(ap, fmt);
	vfail(err, cap, prefix, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Line (1-based) of the nth "key:" in the file, 0 when not found. */
static unsigned key_line(const char *path, const char *key, unsigned nth)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char line[4096];
	unsigned no = 0, found = 0, seen = 0;
	size_t kl = strlen(key);
	while (!found && fgets(line, sizeof(line), f)) {
		no++;
		for (char *p = line; (p = strstr(p, key)); p += kl) {
			bool start = p == line || strchr(" \t-{,", p[-1]);
			if (start && p[kl] == ':' && seen++ == nth) {
				found = no;
				break;
			}
		}
	}
	fclose(f);
	return found;
}

int cfg_fail(char *err, size_t errsz, const char *path, const char *key, unsigned nth, const char *fmt, ...)
{
	const char *leaf = strrchr(key, '.');
	leaf = leaf ? leaf + 1 : key;
	char bare[128];
	snprintf(bare, sizeof(bare), "%s", leaf);
	char *br = strchr(bare, '[');
	if (br)
		*br = 0;
	unsigned line = key_line(path, bare, nth);
	char prefix[768];
	if (line)
		snprintf(prefix, sizeof(prefix), "%s:%u: %s: ", path, line, key);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s: ", path, key);
	va_list ap;
	va_start(ap, fmt);
	vfail(err, errsz, prefix, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The structural pre-pass: depth and aliases, with the line of the offence. */
static int precheck(const char *path, FILE *f, char *err, size_t errsz)
{
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_file(&p, f);
	int depth = 0, rc = 0;
	for (bool done = false; !done && !rc;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			rc = fail_path(err, errsz, path, "line %zu: YAML syntax: %s", p.problem_mark.line + 1,
				       p.problem ? p.problem : "error");
			break;
		}
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (++depth > CFG_MAX_DEPTH)
				rc = fail_path(err, errsz, path, "line %zu: nested deeper than %d levels",
					       ev.start_mark.line + 1, CFG_MAX_DEPTH);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		case YAML_ALIAS_EVENT:
			rc = fail_path(err, errsz, path, "line %zu: YAML aliases are not accepted in configs",
				       ev.start_mark.line + 1);
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

int cfg_load(const char *path, const cyaml_schema_value_t *schema, void **doc, char *err, size_t errsz)
{
	struct stat st;
	*doc = NULL;
	/* Opened first, checked on the descriptor: a FIFO or a directory never blocks or
	 * half-parses. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fail_path(err, errsz, path, "%s", strerror(errno));
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		close(fd);
		return fail_path(err, errsz, path, "%s", strerror(e));
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return fail_path(err, errsz, path, "not a regular file");
	}
	if (st.st_size == 0) {
		fclose(f);
		return fail_path(err, errsz, path, "empty file");
	}
	if (st.st_size > CFG_MAX_BYTES) {
		fclose(f);
		return fail_path(err, errsz, path, "larger than %u bytes", CFG_MAX_BYTES);
	}
	int rc = precheck(path, f, err, errsz);
	fclose(f);
	if (rc)
		return rc;
	cyaml_len = 0;
	cyaml_msg[0] = 0;
	cyaml_err_t cr = cyaml_load_file(path, &cfg_cyaml_config, schema, (cyaml_data_t **)doc, NULL);
	if (cr != CYAML_OK) {
		while (cyaml_len && cyaml_msg[cyaml_len - 1] == '\n')
			cyaml_msg[--cyaml_len] = 0;
		for (char *c = cyaml_msg; *c; c++)
			if (*c == '\n')
				*c = ';';
		*doc = NULL;
		return fail_path(err, errsz, path, "%s%s%s", cyaml_strerror(cr), cyaml_msg[0] ? ": " : "",
				 cyaml_msg);
	}
	return 0;
}

void cfg_free(const cyaml_schema_value_t *schema, void *doc)
{
	if (doc)
		cyaml_free(&cfg_cyaml_config, schema, doc, 0);
}

int cfg_apply(void *obj, const struct cfg_key *keys, size_t n, const char *path, const char *section,
	      char *err, size_t errsz)
{
	unsigned nth = 0;
	const char *br = strrchr(section, '[');
	if (br)
		nth = (unsigned)strtoul(br + 1, NULL, 10);
	for (size_t i = 0; i < n; i++) {
		const struct cfg_key *k = &keys[i];
		char *base = (char *)obj + k->offset;
		char name[160];
		snprintf(name, sizeof(name), "%s.%s", section, k->name);
		switch (k->type) {
		case CFG_STR: {
			char **s = (char **)base;
			if (!*s && k->def && !(*s = strdup(k->def)))
				return -ENOMEM;
			if (*s && (strlen(*s) < k->lo || strlen(*s) > k->hi))
				return cfg_fail(err, errsz, path, name, nth,
						"length %zu is outside %" PRIu64 "..%" PRIu64, strlen(*s),
						k->lo, k->hi);
			break;
		}
		case CFG_U32: {
			uint32_t *v = (uint32_t *)base;
			if (!*v && k->def)
				*v = (uint32_t)strtoul(k->def, NULL, 0);
			if (*v < k->lo || *v > k->hi)
				return cfg_fail(err, errsz, path, name, nth,
						"%u is outside the accepted range %" PRIu64 "..%" PRIu64, *v,
						k->lo, k->hi);
			break;
		}
		case CFG_SEQ: {
			unsigned count = *(unsigned *)((char *)obj + k->count_offset);
			if (count < k->lo)
				return cfg_fail(err, errsz, path, name, nth,
						"needs at least %" PRIu64 " entr%s", k->lo,
						k->lo == 1 ? "y" : "ies");
			break;
		}
		case CFG_ENUM: {
			int v = *(int *)base;
			if (v < 0 || (uint64_t)v < k->lo || (uint64_t)v > k->hi)
				return cfg_fail(err, errsz, path, name, nth, "%d is not a known value", v);
			break;
		}
		case CFG_MAP:
			break;
		}
	}
	return 0;
}

void cfg_reference(FILE *f, const char *section, const struct cfg_key *keys, size_t n)
{
	static const char *const tn[] = { "string", "integer", "list", "mapping", "name" };
	fprintf(f, "| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		const struct cfg_key *k = &keys[i];
		char range[64] = "";
		if (k->type == CFG_U32)
			snprintf(range, sizeof(range), "%" PRIu64 "..%" PRIu64, k->lo, k->hi);
		else if (k->type == CFG_SEQ && k->lo)
			snprintf(range, sizeof(range), "at least %" PRIu64, k->lo);
		fprintf(f, "| `%s.%s` | %s | %s%s%s | %s | %s |\n", section, k->name, tn[k->type],
			k->def ? "`" : "", k->def ? k->def : "", k->def ? "`" : "", range, k->doc);
	}
}
