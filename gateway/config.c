/* rollout-gateway configuration (see config.h): a table of keys, each with its type, its
 * default and its bounds; every error names file, line and key. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "rollout/rollout.h"

#define MAX_CONFIG_BYTES (1u << 20)

struct ctx {
	const char *name;
	yaml_document_t *doc;
	char *err;
	size_t errcap;
};

static int fail(struct ctx *x, const yaml_node_t *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct ctx *x, const yaml_node_t *at, const char *key, const char *fmt, ...)
{
	int n = snprintf(x->err, x->errcap, "%s:%lu: %s%s", x->name,
			 at ? (unsigned long)at->start_mark.line + 1 : 0ul, key ? key : "", key ? ": " : "");
	if (n >= 0 && (size_t)n < x->errcap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(x->err + n, x->errcap - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_str(struct ctx *x, const yaml_node_t *v, const char *key, char **out)
{
	const char *s = scalar(v);
	if (!s || !*s)
		return fail(x, v, key, "expected a non-empty string");
	if (strlen(s) > 4096)
		return fail(x, v, key, "longer than 4096 bytes");
	free(*out);
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int get_u32(struct ctx *x, const yaml_node_t *v, const char *key, uint32_t lo, uint32_t hi,
		   uint32_t *out)
{
	const char *s = scalar(v);
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return fail(x, v, key, "expected an unsigned integer");
	errno = 0;
	unsigned long long u = strtoull(s, &end, 10);
	if (*end || errno)
		return fail(x, v, key, "expected an unsigned integer, got \"%s\"", s);
	if (u < lo || u > hi)
		return fail(x, v, key, "%llu is outside %u..%u", u, lo, hi);
	*out = (uint32_t)u;
	return 0;
}

static int get_bool(struct ctx *x, const yaml_node_t *v, const char *key, bool *out)
{
	const char *s = scalar(v);
	if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
		*out = true;
	else if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")))
		*out = false;
	else
		return fail(x, v, key, "expected true or false");
	return 0;
}

static int get_listen(struct ctx *x, const yaml_node_t *v, const char *key, char **out)
{
	int rc = get_str(x, v, key, out);
	if (rc)
		return rc;
	const char *colon = strrchr(*out, ':');
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || colon == *out || !colon[1] || *end || port < 0 || port > 65535)
		return fail(x, v, key, "expected HOST:PORT, got \"%s\"", *out);
	return 0;
}

static int get_keys(struct ctx *x, const yaml_node_t *v, struct gw_config *c)
{
	if (!v || v->type != YAML_SEQUENCE_NODE)
		return fail(x, v, "api_keys", "expected a list of strings");
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n == 0 || n > 1024)
		return fail(x, v, "api_keys", "expected 1 to 1024 keys");
	c->api_keys = calloc(n, sizeof(char *));
	if (!c->api_keys)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = yaml_document_get_node(x->doc, v->data.sequence.items.start[i]);
		int rc = get_str(x, it, "api_keys", &c->api_keys[i]);
		c->napi_keys = i + 1;
		if (rc)
			return rc;
		if (strlen(c->api_keys[i]) < 8)
			return fail(x, it, "api_keys",
				    "a key shorter than 8 characters is too easy to guess");
	}
	return 0;
}

static int get_templates(struct ctx *x, const yaml_node_t *v, struct gw_config *c)
{
	if (!v || v->type != YAML_MAPPING_NODE)
		return fail(x, v, "templates", "expected a map of template id -> profile");
	size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	if (n == 0 || n > 4096)
		return fail(x, v, "templates", "expected 1 to 4096 templates");
	c->templates = calloc(n, sizeof(*c->templates));
	if (!c->templates)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *val = yaml_document_get_node(x->doc, p->value);
		c->ntemplates = i + 1;
		int rc = get_str(x, k, "templates", &c->templates[i].id);
		if (!rc)
			rc = get_str(x, val, "templates", &c->templates[i].profile);
		if (rc)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->templates[j].id, c->templates[i].id))
				return fail(x, k, "templates", "template \"%s\" listed twice",
					    c->templates[i].id);
	}
	return 0;
}

/* One row per key of the section. */
enum kind { K_LISTEN, K_STR, K_U32, K_BOOL, K_KEYS, K_TEMPLATES, K_GPU };
struct row {
	const char *key;
	enum kind kind;
	size_t off;
	uint32_t lo, hi;
};
#define O(f) offsetof(struct gw_config, f)
static const struct row rows[] = {
	{ "listen", K_LISTEN, O(listen), 0, 0 },
	{ "socket", K_STR, O(socket), 0, 0 },
	{ "api_keys", K_KEYS, 0, 0, 0 },
	{ "templates", K_TEMPLATES, 0, 0, 0 },
	{ "workdir", K_STR, O(workdir), 0, 0 },
	{ "default_timeout_s", K_U32, O(default_timeout_s), 1, 30 * 86400 },
	{ "max_timeout_s", K_U32, O(max_timeout_s), 1, 30 * 86400 },
	{ "max_body_bytes", K_U32, O(max_body_bytes), 1024, 1u << 30 },
	{ "max_output_bytes", K_U32, O(max_output_bytes), 1024, 1u << 30 },
	{ "max_sandboxes", K_U32, O(max_sandboxes), 1, 1u << 24 },
	{ "max_connections", K_U32, O(max_connections), 4, 1u << 20 },
	{ "client_timeout_s", K_U32, O(client_timeout_s), 1, 3600 },
	{ "open_timeout_ms", K_U32, O(open_timeout_ms), 100, 3600000 },
	{ "login_shell", K_BOOL, O(login_shell), 0, 0 },
	{ "gpu", K_GPU, O(gpu), 0, 4096 },
};

static int section(struct ctx *x, const yaml_node_t *sec, struct gw_config *c)
{
	if (sec->type != YAML_MAPPING_NODE)
		return fail(x, sec, "gateway", "expected a mapping");
	for (yaml_node_pair_t *p = sec->data.mapping.pairs.start; p < sec->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(x->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(x->doc, p->value);
		const char *key = scalar(k);
		const struct row *r = NULL;
		for (size_t i = 0; key && i < sizeof(rows) / sizeof(rows[0]); i++)
			if (!strcmp(rows[i].key, key))
				r = &rows[i];
		if (!r)
			return fail(x, k, key ? key : "?", "unknown key in the gateway section");
		for (yaml_node_pair_t *q = sec->data.mapping.pairs.start; q < p; q++)
			if (!strcmp(scalar(yaml_document_get_node(x->doc, q->key)) ?: "", key))
				return fail(x, k, key, "key given twice");
		char *base = (char *)c;
		int rc = 0;
		uint32_t u;
		switch (r->kind) {
		case K_LISTEN:
			rc = get_listen(x, v, key, (char **)(base + r->off));
			break;
		case K_STR:
			rc = get_str(x, v, key, (char **)(base + r->off));
			break;
		case K_U32:
			rc = get_u32(x, v, key, r->lo, r->hi, (uint32_t *)(base + r->off));
			break;
		case K_BOOL:
			rc = get_bool(x, v, key, (bool *)(base + r->off));
			break;
		case K_KEYS:
			rc = get_keys(x, v, c);
			break;
		case K_TEMPLATES:
			rc = get_templates(x, v, c);
			break;
		case K_GPU:
			if (scalar(v) && !strcmp(scalar(v), "-1")) {
				c->gpu = -1;
				break;
			}
			rc = get_u32(x, v, key, r->lo, r->hi, &u);
			c->gpu = (int)u;
			break;
		}
		if (rc)
			return rc;
	}
	if (!c->listen)
		return fail(x, sec, "listen", "required (HOST:PORT)");
	if (!c->napi_keys)
		return fail(x, sec, "api_keys", "required (a list of keys the SDK may send)");
	if (c->default_timeout_s > c->max_timeout_s)
		return fail(x, sec, "default_timeout_s", "larger than max_timeout_s (%u)", c->max_timeout_s);
	if (c->workdir[0] != '/')
		return fail(x, sec, "workdir", "must be an absolute path");
	return 0;
}

static int defaults(struct gw_config *c)
{
	memset(c, 0, sizeof(*c));
	c->workdir = strdup("/tmp");
	c->default_timeout_s = 300;
	c->max_timeout_s = 86400;
	c->max_body_bytes = 512u << 10;
	c->max_output_bytes = 256u << 10;
	c->max_sandboxes = 4096;
	c->max_connections = 1024;
	c->client_timeout_s = 30;
	c->open_timeout_ms = 30000;
	c->gpu = -1;
	return c->workdir ? 0 : -ENOMEM;
}

/* The SDK's default template is "base": with no templates listed it opens "default". */
static int default_templates(struct gw_config *c)
{
	c->templates = calloc(1, sizeof(*c->templates));
	if (!c->templates)
		return -ENOMEM;
	c->ntemplates = 1;
	c->templates[0].id = strdup("base");
	c->templates[0].profile = strdup("default");
	return c->templates[0].id && c->templates[0].profile ? 0 : -ENOMEM;
}

int gw_config_parse(const char *name, const char *text, size_t len, struct gw_config *c, char *err,
		    size_t errcap)
{
	int rc = defaults(c);
	if (rc)
		return rc;
	struct ctx x = { .name = name, .err = err, .errcap = errcap };
	yaml_parser_t parser;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errcap, "%s:%lu: %s", name, (unsigned long)parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "YAML syntax error");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	x.doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	const yaml_node_t *sec = NULL, *rd = NULL;
	if (!root || root->type != YAML_MAPPING_NODE) {
		rc = fail(&x, root, NULL, "expected a mapping with a gateway: section");
		goto out;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		const char *k = scalar(yaml_document_get_node(&doc, p->key));
		if (k && !strcmp(k, "gateway")) {
			if (sec) {
				rc = fail(&x, yaml_document_get_node(&doc, p->key), "gateway",
					  "section given twice");
				goto out;
			}
			sec = yaml_document_get_node(&doc, p->value);
		} else if (k && !strcmp(k, "rolloutd")) {
			rd = yaml_document_get_node(&doc, p->value);
		}
	}
	if (!sec) {
		rc = fail(&x, root, "gateway", "section missing");
		goto out;
	}
	if ((rc = section(&x, sec, c)))
		goto out;
	if (!c->ntemplates && (rc = default_templates(c)))
		goto out;
	/* Default attach socket: rolloutd's own from the same file, else the library's. */
	if (!c->socket && rd && rd->type == YAML_MAPPING_NODE)
		for (yaml_node_pair_t *p = rd->data.mapping.pairs.start; p < rd->data.mapping.pairs.top;
		     p++) {
			const char *k = scalar(yaml_document_get_node(&doc, p->key));
			const char *v = scalar(yaml_document_get_node(&doc, p->value));
			if (k && v && !strcmp(k, "socket"))
				c->socket = strdup(v);
		}
	if (!c->socket)
		c->socket = strdup(ROLLOUT_DEFAULT_SOCKET);
	rc = c->socket ? 0 : -ENOMEM;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int gw_config_load(const char *path, struct gw_config *c, char *err, size_t errcap)
{
	memset(c, 0, sizeof(*c));
	/* O_NONBLOCK: a FIFO given as the config must be refused, not waited on. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errcap, "%s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	FILE *f = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_CONFIG_BYTES ||
	    !(f = fdopen(fd, "r"))) {
		close(fd);
		snprintf(err, errcap, "%s: not a regular file of at most 1 MiB", path);
		return -EINVAL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	buf[n] = 0;
	if (n == 0) {
		free(buf);
		snprintf(err, errcap, "%s: empty file", path);
		return -EINVAL;
	}
	int rc = gw_config_parse(path, buf, n, c, err, errcap);
	free(buf);
	return rc;
}

void gw_config_free(struct gw_config *c)
{
	free(c->listen);
	free(c->socket);
	free(c->workdir);
	for (size_t i = 0; i < c->napi_keys; i++)
		free(c->api_keys[i]);
	free(c->api_keys);
	for (size_t i = 0; i < c->ntemplates; i++) {
		free(c->templates[i].id);
		free(c->templates[i].profile);
	}
	free(c->templates);
	memset(c, 0, sizeof(*c));
}

const char *gw_config_profile(const struct gw_config *c, const char *id)
{
	for (size_t i = 0; id && i < c->ntemplates; i++)
		if (!strcmp(c->templates[i].id, id))
			return c->templates[i].profile;
	return NULL;
}

static bool ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = (unsigned char)(la != lb);
	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return d == 0;
}

bool gw_config_key_ok(const struct gw_config *c, const char *key)
{
	bool ok = false;
	for (size_t i = 0; key && i < c->napi_keys; i++)
		ok |= ct_equal(c->api_keys[i], key);
	return ok;
}
