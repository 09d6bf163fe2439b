/* The sandbox table (see sandbox.h). */
#include "sandbox.h"

#include "backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t gw_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gw_registry_init(struct gw_registry *r, size_t nbuckets)
{
	memset(r, 0, sizeof(*r));
	r->nbuckets = nbuckets;
	r->tab = calloc(nbuckets, sizeof(*r->tab));
	return r->tab ? 0 : -ENOMEM;
}

static void sandbox_free(struct gw_sandbox *sb)
{
	while (sb->procs)
		gw_proc_free(sb->procs);
	free(sb->template_id);
	free(sb->profile);
	json_decref(sb->metadata);
	json_decref(sb->envs);
	free(sb);
}

void gw_registry_destroy(struct gw_registry *r)
{
	while (r->head)
		gw_sandbox_remove(r, r->head);
	free(r->tab);
	r->tab = NULL;
}

static size_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % n);
}

/* Random lowercase alphanumerics: ids and tokens nobody can guess. */
static void random_alnum(char *out, size_t n)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char raw[64];
	size_t got = 0;
	while (got < n) {
		ssize_t k = getrandom(raw + got, n - got, 0);
		if (k > 0)
			got += (size_t)k;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = al[raw[i] % 36]; /* 256 % 36 bias is irrelevant at 100+ bits */
	out[n] = 0;
}

struct gw_sandbox *gw_sandbox_new(const char *template_id, const char *profile)
{
	struct gw_sandbox *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return NULL;
	random_alnum(sb->id, GW_SB_ID_LEN);
	sb->id[0] = 'i'; /* E2B ids start with a letter */
	random_alnum(sb->token, GW_SB_TOKEN_LEN);
	sb->template_id = strdup(template_id);
	sb->profile = strdup(profile);
	sb->metadata = json_object();
	sb->envs = json_object();
	sb->refs = 1;
	sb->next_pid = 1000;
	if (!sb->template_id || !sb->profile || !sb->metadata || !sb->envs) {
		sandbox_free(sb);
		return NULL;
	}
	return sb;
}

void gw_sandbox_add(struct gw_registry *r, struct gw_sandbox *sb)
{
	size_t h = hash(sb->id, r->nbuckets);
	sb->hnext = r->tab[h];
	r->tab[h] = sb;
	sb->seq = ++r->seq;
	sb->prev = r->tail;
	sb->next = NULL;
	if (r->tail)
		r->tail->next = sb;
	else
		r->head = sb;
	r->tail = sb;
	r->count++;
}

struct gw_sandbox *gw_sandbox_find(struct gw_registry *r, const char *id)
{
	for (struct gw_sandbox *sb = r->tab[hash(id, r->nbuckets)]; sb; sb = sb->hnext)
		if (!strcmp(sb->id, id))
			return sb;
	return NULL;
}

void gw_sandbox_remove(struct gw_registry *r, struct gw_sandbox *sb)
{
	if (sb->dead)
		return;
	for (struct gw_sandbox **pp = &r->tab[hash(sb->id, r->nbuckets)]; *pp; pp = &(*pp)->hnext)
		if (*pp == sb) {
			*pp = sb->hnext;
			break;
		}
	if (sb->prev)
		sb->prev->next = sb->next;
	else
		r->head = sb->next;
	if (sb->next)
		sb->next->prev = sb->prev;
	else
		r->tail = sb->prev;
	r->count--;
	sb->dead = true;
	gw_sandbox_unref(sb);
}

void gw_sandbox_ref(struct gw_sandbox *sb)
{
	sb->refs++;
}

void gw_sandbox_unref(struct gw_sandbox *sb)
{
	if (--sb->refs == 0)
		sandbox_free(sb);
}

bool gw_sandbox_metadata_match(const struct gw_sandbox *sb, const json_t *want)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)want, k, v)
	{
		json_t *have = json_object_get(sb->metadata, k);
		if (!have || !json_is_string(have) || !json_is_string(v) ||
		    strcmp(json_string_value(have), json_string_value(v)))
			return false;
	}
	return true;
}

static int unhex(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decodes s[0..n) (and '+' as space) into a new string; NULL when malformed. */
static char *pct_decode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *w = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*w++ = s[i] == '+' ? ' ' : s[i];
			continue;
		}
		if (i + 2 >= n || unhex(s[i + 1]) < 0 || unhex(s[i + 2]) < 0) {
			free(o);
			return NULL;
		}
		*w++ = (char)(unhex(s[i + 1]) << 4 | unhex(s[i + 2]));
		i += 2;
	}
	*w = 0;
	return o;
}

/* The JS SDK encodes each key and value with encodeURIComponent before building the
 * URLSearchParams string, so after the form decoding each part is decoded once more. */
static char *decode2(const char *s, size_t n)
{
	char *once = pct_decode(s, n);
	char *twice = once ? pct_decode(once, strlen(once)) : NULL;
	free(once);
	return twice;
}

json_t *gw_metadata_filter_parse(const char *q)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);
		if (!eq || eq == q)
			goto bad;
		char *k = decode2(q, (size_t)(eq - q));
		char *v = decode2(eq + 1, n - (size_t)(eq - q) - 1);
		int rc = k && v ? json_object_set_new(o, k, json_string(v)) : -1;
		free(k);
		free(v);
		if (rc)
			goto bad;
		q = amp ? amp + 1 : NULL;
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

struct gw_proc *gw_proc_new(struct gw_sandbox *sb)
{
	struct gw_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->sb = sb;
	p->pid = sb->next_pid++;
	p->next = sb->procs;
	sb->procs = p;
	return p;
}

struct gw_proc *gw_proc_find(struct gw_sandbox *sb, uint32_t pid, const char *tag)
{
	for (struct gw_proc *p = sb->procs; p; p = p->next)
		if (tag ? (p->tag && !strcmp(p->tag, tag)) : p->pid == pid)
			return p;
	return NULL;
}

void gw_proc_free(struct gw_proc *p)
{
	for (struct gw_proc **pp = &p->sb->procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	json_decref(p->config);
	gw_op_free(p->op);
	free(p->tag);
	free(p->in);
	free(p);
}
