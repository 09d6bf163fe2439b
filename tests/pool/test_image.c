/* The image/layer store (pool/image.c): OCI layouts built here at run time with libarchive's
 * writer (no downloaded image). A normal two-layer image unpacked exactly (whiteout, opaque
 * dir, hardlink, symlink, modes, owners, times, User by name) and mounted as an overlay; one
 * image per hostile case, each refused with nothing written outside the store; two threads
 * sharing a layer; erofs and squashfs files when their mkfs tools exist. Whiteouts, owners
 * and mounts need root: without it those tests skip. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "image.h"
#include "loopdev.h"

#define T0 1700000000L /* every entry's mtime */

#define MT_TAR  "application/vnd.oci.image.layer.v1.tar"
#define MT_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

static char top[PATH_MAX]; /* this run's directory: layouts, stores, outside/ */
static bool is_root;       /* whiteouts, owners and mounts: the tests that need them skip */

/* --- Building layers and layouts ------------------------------------------------------ */

enum { E_DIR, E_FILE, E_SYMLINK, E_HARDLINK, E_FIFO, E_CHR };

struct tent {
	int type;
	const char *path;
	unsigned mode, uid, gid;
	const char *data; /* file contents, or a link's target */
};

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static la_ssize_t buf_write(struct archive *a, void *arg, const void *data, size_t len)
{
	(void)a;
	struct buf *b = arg;
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return (la_ssize_t)len;
}

/* A tar of ents (until one without a path), compressed by media type. */
static struct buf make_tar(const struct tent *ents, const char *media)
{
	struct buf b = { 0 };
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1); /* no padding: truncation must cut real data */
	if (strcmp(media, MT_GZIP) == 0)
		archive_write_add_filter_gzip(a);
	else if (strcmp(media, MT_ZSTD) == 0)
		archive_write_add_filter_zstd(a);
	assert_int_equal(archive_write_open(a, &b, NULL, buf_write, NULL), ARCHIVE_OK);
	for (const struct tent *t = ents; t->path; t++) {
		struct archive_entry *e = archive_entry_new();
		static const unsigned types[] = {
			AE_IFDIR, AE_IFREG, AE_IFLNK, AE_IFREG, AE_IFIFO, AE_IFCHR
		};
		archive_entry_set_pathname(e, t->path);
		archive_entry_set_filetype(e, types[t->type]);
		archive_entry_set_perm(e, t->mode);
		archive_entry_set_uid(e, t->uid);
		archive_entry_set_gid(e, t->gid);
		archive_entry_set_mtime(e, T0, 0);
		size_t size = t->type == E_FILE && t->data ? strlen(t->data) : 0;
		archive_entry_set_size(e, (la_int64_t)size);
		if (t->type == E_SYMLINK)
			archive_entry_set_symlink(e, t->data);
		if (t->type == E_HARDLINK)
			archive_entry_set_hardlink(e, t->data);
		if (t->type == E_DIR && t->data) /* an xattr the store must not apply */
			archive_entry_xattr_add_entry(e, t->data, "y", 1);
		if (t->type == E_CHR)
			archive_entry_set_rdev(e, makedev(1, 3));
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (size)
			assert_int_equal(archive_write_data(a, t->data, size), (la_ssize_t)size);
		archive_entry_free(e);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	return b;
}

static void sha256_hex(const void *p, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned n = 0;
	EVP_Digest(p, len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static void write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static __attribute__((format(printf, 2, 3))) void mkpath(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, PATH_MAX, fmt, ap);
	va_end(ap);
}

/* A blob of the layout; its descriptor (size may be misstated) in desc. */
static void put_blob(const char *layout, const void *p, size_t len, const char *media, long size_delta,
		     char *desc, size_t descsz, char digest[72])
{
	char hex[65], path[PATH_MAX];
	sha256_hex(p, len, hex);
	mkpath(path, "%s/blobs/sha256/%s", layout, hex);
	write_file(path, p, len);
	snprintf(digest, 72, "sha256:%s", hex);
	snprintf(desc, descsz, "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%ld}", media, digest,
		 (long)len + size_delta);
}

struct layer {
	struct buf tar;
	const char *media;
	long size_delta; /* misstates the size in the manifest */
	char digest[72];
};

enum { NEST_NONE, NEST_TAGGED_INDEX, NEST_INNER_TAG };

/* Writes an OCI layout at top/name holding one image tagged tag: its layers bottom first and
 * a config with the given "config" members. Returns the manifest digest in mdigest. */
static void make_layout(const char *name, const char *tag, struct layer *layers, int n, const char *config,
			int nest, char mdigest[72])
{
	char layout[PATH_MAX], path[PATH_MAX], digest[72];
	mkpath(layout, "%s/%s", top, name);
	mkpath(path, "%s/blobs/sha256", layout);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", path);
	assert_int_equal(system(cmd), 0);
	mkpath(path, "%s/oci-layout", layout);
	write_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);

	char cfg[4096], cfgdesc[512], *man = malloc(65536);
	snprintf(cfg, sizeof(cfg),
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{%s},"
		 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		 config);
	put_blob(layout, cfg, strlen(cfg), "application/vnd.oci.image.config.v1+json", 0, cfgdesc,
		 sizeof(cfgdesc), digest);
	int len =
	    snprintf(man, 65536,
		     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		     "\"config\":%s,\"layers\":[",
		     cfgdesc);
	for (int i = 0; i < n; i++) {
		char d[512];
		put_blob(layout, layers[i].tar.p, layers[i].tar.len, layers[i].media, layers[i].size_delta, d,
			 sizeof(d), layers[i].digest);
		len += snprintf(man + len, 65536 - (size_t)len, "%s%s", i ? "," : "", d);
	}
	len += snprintf(man + len, 65536 - (size_t)len, "]}");
	char mdesc[512], idx[2048], inner[1024], idesc[512], tagged[256];
	put_blob(layout, man, (size_t)len, "application/vnd.oci.image.manifest.v1+json", 0, mdesc,
		 sizeof(mdesc), mdigest);
	free(man);
	snprintf(tagged, sizeof(tagged), "\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}",
		 tag);
	/* mdesc ends in '}': descriptors get members spliced in before it. */
	mdesc[strlen(mdesc) - 1] = 0;
	if (nest == NEST_NONE) {
		snprintf(idx, sizeof(idx), "{\"schemaVersion\":2,\"manifests\":[%s,%s}]}", mdesc, tagged);
	} else {
		if (nest == NEST_TAGGED_INDEX)
			snprintf(inner, sizeof(inner),
				 "{\"schemaVersion\":2,\"manifests\":[%s,\"platform\":{\"os\":\"linux\","
				 "\"architecture\":\"amd64\"}}]}",
				 mdesc);
		else
			snprintf(inner, sizeof(inner), "{\"schemaVersion\":2,\"manifests\":[%s,%s}]}", mdesc,
				 tagged);
		put_blob(layout, inner, strlen(inner), "application/vnd.oci.image.index.v1+json", 0, idesc,
			 sizeof(idesc), digest);
		idesc[strlen(idesc) - 1] = 0;
		snprintf(idx, sizeof(idx), "{\"schemaVersion\":2,\"manifests\":[%s%s%s}]}", idesc,
			 nest == NEST_TAGGED_INDEX ? "," : "", nest == NEST_TAGGED_INDEX ? tagged : "");
	}
	mkpath(path, "%s/index.json", layout);
	write_file(path, idx, strlen(idx));
}

/* --- Reading the store back ----------------------------------------------------------- */

static char listing[65536];
static const char *list_root;
static char *lines[1024];
static int nlines;

static int list_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	if (ftw->level == 0)
		return 0;
	char line[512], extra[256] = "";
	const char *rel = path + strlen(list_root) + 1;
	char type = S_ISDIR(st->st_mode)   ? 'd'
		    : S_ISREG(st->st_mode) ? 'f'
		    : S_ISLNK(st->st_mode) ? 'l'
		    : S_ISCHR(st->st_mode) ? 'c'
					   : '?';
	if (S_ISREG(st->st_mode)) {
		char data[128] = "";
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(data, 1, sizeof(data) - 1, f) : 0;
		if (f)
			fclose(f);
		data[n] = 0;
		for (char *p = data; *p; p++)
			if (*p == '\n')
				*p = '|';
		snprintf(extra, sizeof(extra), " n=%lu \"%s\"", (unsigned long)st->st_nlink, data);
	} else if (S_ISLNK(st->st_mode)) {
		char target[200];
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = 0;
		snprintf(extra, sizeof(extra), " -> %s", target);
	} else if (S_ISCHR(st->st_mode)) {
		snprintf(extra, sizeof(extra), " %u/%u", major(st->st_rdev), minor(st->st_rdev));
	} else if (S_ISDIR(st->st_mode)) {
		char y = 0;
		if (lgetxattr(path, "trusted.overlay.opaque", &y, 1) == 1 && y == 'y')
			snprintf(extra, sizeof(extra), " opaque");
	}
	/* Whiteouts are made now, not at T0: their time is not the tar's. */
	char t[32] = "";
	if (!S_ISCHR(st->st_mode))
		snprintf(t, sizeof(t), " t=%ld", (long)st->st_mtim.tv_sec - T0);
	snprintf(line, sizeof(line), "%s %c%04o %u:%u%s%s", rel, type, st->st_mode & 07777, st->st_uid,
		 st->st_gid, t, extra);
	assert_true(nlines < 1024);
	lines[nlines++] = strdup(line);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry under dir, one sorted line each: "path type+mode uid:gid t=mtime-T0 extra". */
static const char *list_tree(const char *dir)
{
	list_root = dir;
	nlines = 0;
	assert_int_equal(nftw(dir, list_one, 16, FTW_PHYS), 0);
	qsort(lines, (size_t)nlines, sizeof(lines[0]), cmp_str);
	size_t len = 0;
	listing[0] = 0;
	for (int i = 0; i < nlines; i++) {
		len += (size_t)snprintf(listing + len, sizeof(listing) - len, "%s\n", lines[i]);
		free(lines[i]);
	}
	return listing;
}

/* Names in a directory, sorted, space-separated ("" when empty or missing). */
static const char *names(const char *dir)
{
	static char out[4096];
	char *v[256];
	int n = 0;
	DIR *d = opendir(dir);
	out[0] = 0;
	if (!d)
		return out;
	struct dirent *de;
	while ((de = readdir(d)) && n < 256)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			v[n++] = strdup(de->d_name);
	closedir(d);
	qsort(v, (size_t)n, sizeof(v[0]), cmp_str);
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? " " : "", v[i]);
		free(v[i]);
	}
	return out;
}

static char *hex_of(const char *digest)
{
	return (char *)digest + 7;
}

/* --- The normal image ----------------------------------------------------------------- */

static const struct tent base_ents[] = {
	{ E_DIR, "./", 0755, 0, 0, NULL },
	{ E_DIR, "etc/", 0755, 0, 0, NULL },
	{ E_FILE, "etc/passwd", 0644, 0, 0,
	  "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n" },
	{ E_FILE, "etc/group", 0644, 0, 0, "root:x:0:\nstaff:x:50:app\napp:x:1001:\n" },
	{ E_DIR, "usr/", 0755, 0, 0, NULL },
	{ E_DIR, "usr/bin/", 0755, 0, 0, NULL },
	{ E_FILE, "usr/bin/tool", 04755, 1000, 1001, "tool" }, /* setuid: stripped */
	{ E_HARDLINK, "usr/bin/tool2", 0755, 1000, 1001, "usr/bin/tool" },
	{ E_SYMLINK, "usr/bin/sh", 0777, 0, 0, "tool" },
	{ E_SYMLINK, "usr/bin/abs", 0777, 0, 0, "/etc/passwd" }, /* stored, never followed */
	{ E_FILE, "old.txt", 0644, 0, 0, "old" },
	{ E_DIR, "opq/", 0755, 0, 0, NULL },
	{ E_FILE, "opq/lower.txt", 0644, 0, 0, "lower" },
	{ E_DIR, "secret/", 02750, 1000, 1001, NULL },            /* setgid dir: stripped */
	{ E_DIR, "fake/", 0755, 0, 0, "trusted.overlay.opaque" }, /* only whiteouts make opaque dirs */
	{ E_DIR, "dev/", 0755, 0, 0, NULL },
	{ E_CHR, "dev/null", 0666, 0, 0, NULL },  /* neutralised */
	{ E_FIFO, "dev/fifo", 0600, 0, 0, NULL }, /* neutralised */
	{ 0 },
};
static const char base_list[] = "dev d0755 0:0 t=0\n"
				"etc d0755 0:0 t=0\n"
				"etc/group f0644 0:0 t=0 n=1 \"root:x:0:|staff:x:50:app|app:x:1001:|\"\n"
				"etc/passwd f0644 0:0 t=0 n=1 "
				"\"root:x:0:0:root:/root:/bin/sh|app:x:1000:1001::/home/app:/bin/sh|\"\n"
				"fake d0755 0:0 t=0\n"
				"old.txt f0644 0:0 t=0 n=1 \"old\"\n"
				"opq d0755 0:0 t=0\n"
				"opq/lower.txt f0644 0:0 t=0 n=1 \"lower\"\n"
				"secret d0750 1000:1001 t=0\n"
				"usr d0755 0:0 t=0\n"
				"usr/bin d0755 0:0 t=0\n"
				"usr/bin/abs l0777 0:0 t=0 -> /etc/passwd\n"
				"usr/bin/sh l0777 0:0 t=0 -> tool\n"
				"usr/bin/tool f0755 1000:1001 t=0 n=2 \"tool\"\n"
				"usr/bin/tool2 f0755 1000:1001 t=0 n=2 \"tool\"\n";

static const struct tent top_ents[] = {
	{ E_FILE, ".wh.old.txt", 0644, 0, 0, "" },      { E_DIR, "opq/", 0755, 0, 0, NULL },
	{ E_FILE, "opq/.wh..wh..opq", 0644, 0, 0, "" }, { E_FILE, "opq/upper.txt", 0644, 0, 0, "upper" },
	{ E_FILE, "new.txt", 0600, 1000, 1001, "new" }, { 0 },
};
static const char top_list[] = "new.txt f0600 1000:1001 t=0 n=1 \"new\"\n"
			       "old.txt c0000 0:0 0/0\n"
			       "opq d0755 0:0 t=0 opaque\n"
			       "opq/upper.txt f0644 0:0 t=0 n=1 \"upper\"\n";

static const char normal_config[] =
    "\"Env\":[\"PATH=/usr/bin\",\"GREETING=hello world\"],\"WorkingDir\":\"/work\",\"User\":\"app\"";

struct calls {
	int starts[8], ends[8]; /* per layer index: done 0, done == total */
	uint64_t last_done[8];
	char digest[8][72];
};

static void on_progress(void *arg, const char *spec, const char *digest, uint64_t i, uint64_t n,
			uint64_t done, uint64_t total)
{
	struct calls *c = arg;
	assert_non_null(spec);
	assert_true(i < n && i < 8);
	assert_true(done <= total);
	assert_true(done >= c->last_done[i] || done == 0);
	c->last_done[i] = done;
	if (digest)
		snprintf(c->digest[i], 72, "%s", digest);
	if (done == 0)
		c->starts[i]++;
	if (done == total)
		c->ends[i]++;
}

static struct layer base_layer(void)
{
	return (struct layer){ .tar = make_tar(base_ents, MT_GZIP), .media = MT_GZIP };
}

static struct layer top_layer(void)
{
	return (struct layer){ .tar = make_tar(top_ents, MT_ZSTD), .media = MT_ZSTD };
}

static void state_dir(char *out, const char *name)
{
	mkpath(out, "%s/%s", top, name);
	mkdir(out, 0700);
}

static void test_normal_image(void **unused)
{
	(void)unused;
	if (!is_root)
		skip();
	struct layer l[2] = { base_layer(), top_layer() };
	char md[72], state[PATH_MAX], spec[PATH_MAX], err[512], path[PATH_MAX];
	make_layout("normal", "v1", l, 2, normal_config, NEST_NONE, md);
	state_dir(state, "state-normal");
	mkpath(spec, "oci:%s/normal:v1", top);
	struct img img;
	struct calls c = { 0 };
	assert_true(img_spec_is_image(spec));
	int rc = img_resolve(state, spec, on_progress, &c, &img, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(img.spec, spec);
	assert_string_equal(img.id, md);
	assert_int_equal(img.nlayers, 2);
	for (int i = 0; i < 2; i++) {
		mkpath(path, "%s/layers/sha256/%s", state, hex_of(l[i].digest));
		assert_string_equal(img.layers[i], path); /* bottom first */
		assert_int_equal(c.starts[i], 1);
		assert_int_equal(c.ends[i], 1);
		assert_string_equal(c.digest[i], l[i].digest);
	}
	assert_string_equal(list_tree(img.layers[0]), base_list);
	assert_string_equal(list_tree(img.layers[1]), top_list);
	struct stat st;
	assert_int_equal(stat(img.layers[0], &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(img.skipped, 2);
	assert_int_equal(img.nenv, 2);
	assert_string_equal(img.env[0], "PATH=/usr/bin");
	assert_string_equal(img.env[1], "GREETING=hello world");
	assert_string_equal(img.workdir, "/work");
	assert_string_equal(img.user, "app");
	assert_int_equal(img.uid, 1000);
	assert_int_equal(img.gid, 1001);
	assert_true(img.bytes > 0);
	uint64_t bytes = img.bytes;
	/* Nothing else in the store: no tmp.* left. */
	mkpath(path, "%s/layers", state);
	assert_string_equal(names(path), "sha256");
	img_free(&img);
	img_free(&img);

	/* Again, the layers' blobs gone: published layers are reused without reading them. */
	for (int i = 0; i < 2; i++) {
		mkpath(path, "%s/normal/blobs/sha256/%s", top, hex_of(l[i].digest));
		assert_int_equal(unlink(path), 0);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(img_resolve(state, spec, on_progress, &c, &img, err, sizeof(err)), 0);
	assert_int_equal(c.starts[0] + c.starts[1], 0);
	assert_int_equal(c.ends[0] + c.ends[1], 2);
	assert_int_equal(img.skipped, 0);
	assert_int_equal(img.bytes, bytes);
	assert_string_equal(list_tree(img.layers[0]), base_list);

	/* The overlay the pool will mount: the whiteout hides old.txt, the opaque dir hides
	 * opq/lower.txt, the rest shows. */
	char mnt[PATH_MAX], opts[PATH_MAX * 2 + 32];
	mkpath(mnt, "%s/overlay", top);
	assert_int_equal(mkdir(mnt, 0755), 0);
	snprintf(opts, sizeof(opts), "lowerdir=%s:%s", img.layers[1], img.layers[0]);
	assert_int_equal(mount("overlay", mnt, "overlay", MS_RDONLY, opts), 0);
	const char *absent[] = { "old.txt", "opq/lower.txt", "dev/null" };
	const char *present[] = { "opq/upper.txt", "new.txt", "usr/bin/tool", "usr/bin/tool2", "etc/passwd" };
	for (size_t i = 0; i < 3; i++) {
		mkpath(path, "%s/%s", mnt, absent[i]);
		assert_int_equal(lstat(path, &st), -1);
		assert_int_equal(errno, ENOENT);
	}
	for (size_t i = 0; i < 5; i++) {
		mkpath(path, "%s/%s", mnt, present[i]);
		assert_int_equal(lstat(path, &st), 0);
	}
	mkpath(path, "%s/opq", mnt);
	assert_string_equal(names(path), "upper.txt");
	assert_int_equal(umount(mnt), 0);
	img_free(&img);
	free(l[0].tar.p);
	free(l[1].tar.p);
}

/* User and its lookups: by name, by number, with a group, hidden by a whiteout, replaced by
 * an opaque etc. Each image adds one small layer on the normal image's two. */
static void test_user(void **unused)
{
	(void)unused;
	if (!is_root)
		skip();
	static const struct tent hide_passwd[] = { { E_DIR, "etc/", 0755, 0, 0, NULL },
						   { E_FILE, "etc/.wh.passwd", 0644, 0, 0, "" },
						   { 0 } };
	static const struct tent new_etc[] = { { E_DIR, "etc/", 0755, 0, 0, NULL },
					       { E_FILE, "etc/.wh..wh..opq", 0644, 0, 0, "" },
					       { E_FILE, "etc/passwd", 0644, 0, 0,
						 "app:x:2000:2002::/:/bin/sh\n" },
					       { 0 } };
	static const struct tent nothing[] = { { E_DIR, "tmp/", 01777, 0, 0, NULL }, { 0 } };
	struct {
		const char *user;
		const struct tent *third;
		int rc;
		uint32_t uid, gid;
		const char *msg;
	} cases[] = {
		{ "app", nothing, 0, 1000, 1001, NULL },
		{ "app:staff", nothing, 0, 1000, 50, NULL },
		{ "1000", nothing, 0, 1000, 1001, NULL },
		{ "4242", nothing, 0, 4242, 0, NULL },
		{ "0:0", nothing, 0, 0, 0, NULL },
		{ "1000:1000", nothing, 0, 1000, 1000, NULL },
		{ "", nothing, 0, 0, 0, NULL },
		{ "app:nogroup", nothing, -ENOENT, 0, 0, "group nogroup is not in the image's /etc/group" },
		{ "nobody", nothing, -ENOENT, 0, 0, "user nobody is not in the image's /etc/passwd" },
		{ "app", hide_passwd, -ENOENT, 0, 0, "user app is not in the image's /etc/passwd" },
		{ "app", new_etc, 0, 2000, 2002, NULL },
	};
	char state[PATH_MAX], spec[PATH_MAX], err[512], md[72], name[32], config[128];
	state_dir(state, "state-user");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct layer l[3] = { base_layer(),
				      top_layer(),
				      { .tar = make_tar(cases[i].third, MT_TAR), .media = MT_TAR } };
		snprintf(name, sizeof(name), "user%zu", i);
		snprintf(config, sizeof(config), "\"User\":\"%s\"", cases[i].user);
		make_layout(name, "latest", l, 3, config, NEST_NONE, md);
		mkpath(spec, "oci:%s/%s", top, name); /* no tag: latest */
		struct img img;
		int rc = img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err));
		print_message("User \"%s\": %d %s\n", cases[i].user, rc, err);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_int_equal(img.uid, cases[i].uid);
			assert_int_equal(img.gid, cases[i].gid);
			if (cases[i].user[0])
				assert_string_equal(img.user, cases[i].user);
			else
				assert_null(img.user);
			assert_null(img.workdir);
			assert_int_equal(img.nenv, 0);
		} else {
			assert_non_null(strstr(err, spec));
			assert_non_null(strstr(err, cases[i].msg));
		}
		img_free(&img);
		for (int j = 0; j < 3; j++)
			free(l[j].tar.p);
	}
}

/* --- Hostile images ------------------------------------------------------------------- */

/* Resolves a one-layer (or given) image that must be refused: the error names the image and
 * the layer and says why, the store holds no layer of it and no tmp.*, outside/ stays empty. */
static void refused(const char *name, struct layer *l, int n, const char *tag, const char *want_tag,
		    int want_rc, const char *why, int bad_layer)
{
	char md[72], state[PATH_MAX], spec[PATH_MAX], err[512], path[PATH_MAX], outside[PATH_MAX], sname[64];
	make_layout(name, tag, l, n, "\"User\":\"0\"", NEST_NONE, md);
	snprintf(sname, sizeof(sname), "state-%s", name);
	state_dir(state, sname);
	mkpath(spec, "oci:%s/%s:%s", top, name, want_tag);
	struct img img;
	int rc = img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err));
	print_message("%s: %d %s\n", name, rc, err);
	assert_int_equal(rc, want_rc);
	assert_null(img.layers);
	assert_null(img.spec);
	assert_non_null(strstr(err, spec));
	assert_non_null(strstr(err, why));
	if (bad_layer >= 0)
		assert_non_null(strstr(err, l[bad_layer].digest));
	assert_null(strchr(err, '\n'));
	mkpath(path, "%s/layers", state);
	assert_null(strstr(names(path), "tmp."));
	mkpath(path, "%s/layers/sha256", state);
	/* Layers below the bad one may be published; the bad one never is. */
	if (bad_layer >= 0)
		for (int i = bad_layer; i < n; i++)
			assert_null(strstr(names(path), hex_of(l[i].digest)));
	mkpath(outside, "%s/outside", top);
	assert_string_equal(names(outside), "");
	assert_string_equal(names("/tmp/rollout-image-escape"), "");
}

static void test_hostile_paths(void **unused)
{
	(void)unused;
	char outside[PATH_MAX];
	mkpath(outside, "%s/outside", top);
	struct {
		const char *name;
		struct tent ents[4];
		int rc;
		const char *why;
	} cases[] = {
		{ "dotdot",
		  { { E_FILE, "ok", 0644, 0, 0, "ok" }, { E_FILE, "../../../outside/x", 0644, 0, 0, "x" } },
		  -EPERM,
		  "entry ../../../outside/x: absolute path, '..' or too long: refused" },
		{ "dotdot-inner",
		  { { E_DIR, "a/", 0755, 0, 0, NULL },
		    { E_FILE, "a/../../../../outside/x", 0644, 0, 0, "x" } },
		  -EPERM,
		  "'..'" },
		{ "absolute",
		  { { E_FILE, "/tmp/rollout-image-escape/x", 0644, 0, 0, "x" } },
		  -EPERM,
		  "absolute path" },
		{ "symlink-then-file",
		  { { E_SYMLINK, "lnk", 0777, 0, 0, outside }, { E_FILE, "lnk/x", 0644, 0, 0, "x" } },
		  -EPERM,
		  "entry lnk/x: path through a symlink or a non-directory: refused" },
		{ "symlink-rel-then-dir",
		  { { E_SYMLINK, "lnk", 0777, 0, 0, "../../../outside" },
		    { E_DIR, "lnk/sub/", 0755, 0, 0, NULL } },
		  -EPERM,
		  "path through a symlink" },
		{ "symlink-then-hardlink",
		  { { E_SYMLINK, "lnk", 0777, 0, 0, outside },
		    { E_FILE, "f", 0644, 0, 0, "f" },
		    { E_HARDLINK, "lnk/x", 0644, 0, 0, "f" } },
		  -EPERM,
		  "path through a symlink" },
		{ "hardlink-dotdot",
		  { { E_HARDLINK, "x", 0644, 0, 0, "../../../outside/y" } },
		  -EPERM,
		  "entry x: hardlink target outside the layer" },
		{ "hardlink-absolute",
		  { { E_HARDLINK, "x", 0644, 0, 0, "/etc/passwd" } },
		  -EPERM,
		  "entry x: hardlink target outside the layer" },
		{ "hardlink-through-symlink",
		  { { E_SYMLINK, "etc", 0777, 0, 0, "/etc" }, { E_HARDLINK, "x", 0644, 0, 0, "etc/passwd" } },
		  -EPERM,
		  "entry x: hardlink target through a symlink or missing" },
		{ "hardlink-missing",
		  { { E_HARDLINK, "x", 0644, 0, 0, "nowhere" } },
		  -ENOENT,
		  "entry x: hardlink" },
	};
	mkdir("/tmp/rollout-image-escape", 0755);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* A good layer first (published), then the hostile one. */
		static const struct tent good[] = { { E_FILE, "good", 0644, 0, 0, "good" }, { 0 } };
		struct layer l[2] = { { .tar = make_tar(good, MT_TAR), .media = MT_TAR },
				      { .tar = make_tar(cases[i].ents, MT_GZIP), .media = MT_GZIP } };
		refused(cases[i].name, l, 2, "latest", "latest", cases[i].rc, cases[i].why, 1);
		free(l[0].tar.p);
		free(l[1].tar.p);
	}
	rmdir("/tmp/rollout-image-escape");
}

static void test_hostile_blobs(void **unused)
{
	(void)unused;
	static const struct tent ents[] = {
		{ E_DIR, "d/", 0755, 0, 0, NULL },
		{ E_FILE, "d/a", 0644, 0, 0,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "a" },
		{ 0 },
	};
	char path[PATH_MAX];

	/* A byte of a file's data changed after the digest was taken. */
	struct layer l = { .tar = make_tar(ents, MT_TAR), .media = MT_TAR };
	char *a = memmem(l.tar.p, l.tar.len, "aaaa", 4);
	assert_non_null(a);
	make_layout("mismatch", "latest", &l, 1, "", NEST_NONE, path);
	mkpath(path, "%s/mismatch/blobs/sha256/%s", top, hex_of(l.digest));
	*a = 'b';
	write_file(path, l.tar.p, l.tar.len);
	*a = 'a';
	/* refused() writes the layout again: do it by hand here. */
	char state[PATH_MAX], spec[PATH_MAX], err[512];
	struct img img;
	state_dir(state, "state-mismatch");
	mkpath(spec, "oci:%s/mismatch", top);
	assert_int_equal(img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err)), -EBADMSG);
	print_message("mismatch: %s\n", err);
	assert_non_null(strstr(err, spec));
	assert_non_null(strstr(err, l.digest));
	assert_non_null(strstr(err, "digest mismatch"));
	mkpath(path, "%s/layers", state);
	assert_string_equal(names(path), "sha256");
	mkpath(path, "%s/layers/sha256", state);
	assert_string_equal(names(path), "");

	/* The same, compressed: gzip's own check may fire first; the message still says digest. */
	struct layer g = { .tar = make_tar(ents, MT_GZIP), .media = MT_GZIP };
	make_layout("mismatch-gz", "latest", &g, 1, "", NEST_NONE, path);
	mkpath(path, "%s/mismatch-gz/blobs/sha256/%s", top, hex_of(g.digest));
	g.tar.p[g.tar.len / 2] ^= 0xff;
	write_file(path, g.tar.p, g.tar.len);
	state_dir(state, "state-mismatch-gz");
	mkpath(spec, "oci:%s/mismatch-gz", top);
	assert_int_equal(img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, g.digest));
	assert_non_null(strstr(err, "digest mismatch"));
	free(g.tar.p);

	/* Truncated, with a descriptor that matches the truncated bytes: only the tar reader can
	 * tell. Uncompressed and gzip. */
	struct layer t = { .tar = make_tar(ents, MT_TAR), .media = MT_TAR };
	t.tar.len = 1050; /* d/ and d/a headers (512 each), then inside d/a's 88 bytes */
	refused("truncated", &t, 1, "latest", "latest", -EIO, "not a readable tar layer", 0);
	free(t.tar.p);
	t = (struct layer){ .tar = make_tar(ents, MT_GZIP), .media = MT_GZIP };
	t.tar.len /= 2;
	refused("truncated-gz", &t, 1, "latest", "latest", -EIO, "not a readable tar layer", 0);
	free(t.tar.p);

	/* A size in the manifest that is not the blob's. */
	l.size_delta = 1;
	refused("size", &l, 1, "latest", "latest", -EBADMSG, "the manifest says", 0);
	l.size_delta = 0;

	/* An unknown layer media type: refused before anything is unpacked. */
	l.media = "application/vnd.example.layer.v1.cpio";
	refused("media", &l, 1, "latest", "latest", -ENOTSUP,
		"media type application/vnd.example.layer.v1.cpio", 0);
	l.media = MT_TAR;

	/* A missing tag names the image and the tag. */
	refused("tag", &l, 1, "v1", "v2", -ENOENT, "no manifest tagged v2", -1);
	free(l.tar.p);
}

/* A nested index, tagged at the top (picked by platform) or holding the tagged manifest. */
static void test_nested_index(void **unused)
{
	(void)unused;
	static const struct tent ents[] = { { E_FILE, "hello", 0644, 0, 0, "hi" }, { 0 } };
	char md[72], state[PATH_MAX], spec[PATH_MAX], err[512];
	state_dir(state, "state-nested");
	for (int nest = NEST_TAGGED_INDEX; nest <= NEST_INNER_TAG; nest++) {
		struct layer l = { .tar = make_tar(ents, MT_TAR), .media = MT_TAR };
		char name[32];
		snprintf(name, sizeof(name), "nested%d", nest);
		make_layout(name, "t", &l, 1, "\"WorkingDir\":\"/w\"", nest, md);
		mkpath(spec, "oci:%s/%s:t", top, name);
		struct img img;
		int rc = img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err));
		if (rc)
			print_error("%s\n", err);
		assert_int_equal(rc, 0);
		assert_string_equal(img.id, md);
		assert_string_equal(img.workdir, "/w");
		assert_int_equal(img.nlayers, 1);
		img_free(&img);
		free(l.tar.p);
	}
}

/* A corrupt manifest blob (digest mismatch) names the manifest's digest. */
static void test_bad_manifest(void **unused)
{
	(void)unused;
	static const struct tent ents[] = { { E_FILE, "hello", 0644, 0, 0, "hi" }, { 0 } };
	struct layer l = { .tar = make_tar(ents, MT_TAR), .media = MT_TAR };
	char md[72], state[PATH_MAX], spec[PATH_MAX], err[512], path[PATH_MAX];
	make_layout("badmanifest", "latest", &l, 1, "", NEST_NONE, md);
	mkpath(path, "%s/badmanifest/blobs/sha256/%s", top, hex_of(md));
	FILE *f = fopen(path, "r+");
	assert_non_null(f);
	fputc(' ', f);
	fclose(f);
	state_dir(state, "state-badmanifest");
	mkpath(spec, "oci:%s/badmanifest", top);
	struct img img;
	assert_int_equal(img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, spec));
	assert_non_null(strstr(err, md));
	assert_non_null(strstr(err, "digest mismatch"));
	mkpath(path, "%s/badmanifest/oci-layout", top);
	write_file(path, "{\"imageLayoutVersion\":\"2.0.0\"}", 30);
	assert_int_equal(img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "imageLayoutVersion 2.0.0 is not 1.x"));
	assert_int_equal(img_resolve(state, "/not/an/image", NULL, NULL, &img, err, sizeof(err)), -EINVAL);
	mkpath(spec, "oci:%s/no-such-layout", top);
	assert_int_equal(img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, spec));
	free(l.tar.p);
}

/* A crash left a tmp dir: the next resolve removes it. One of a live thread is kept. */
static void test_leftover_tmp(void **unused)
{
	(void)unused;
	static const struct tent ents[] = { { E_FILE, "hello", 0644, 0, 0, "hi" }, { 0 } };
	struct layer l = { .tar = make_tar(ents, MT_TAR), .media = MT_TAR };
	char md[72], state[PATH_MAX], spec[PATH_MAX], err[512], path[PATH_MAX];
	make_layout("leftover", "latest", &l, 1, "", NEST_NONE, md);
	state_dir(state, "state-leftover");
	/* pid 2^22+1 is above pid_max's ceiling: no such process. */
	mkpath(path, "%s/layers", state);
	mkdir(path, 0700);
	mkpath(path, "%s/layers/tmp.%064d.4194305.4194305", state, 0);
	assert_int_equal(mkdir(path, 0700), 0);
	mkpath(path, "%s/layers/tmp.%064d.4194305.4194305/sub", state, 0);
	assert_int_equal(mkdir(path, 0700), 0);
	mkpath(spec, "oci:%s/leftover", top);
	struct img img;
	assert_int_equal(img_resolve(state, spec, NULL, NULL, &img, err, sizeof(err)), 0);
	mkpath(path, "%s/layers", state);
	assert_string_equal(names(path), "sha256");
	img_free(&img);
	free(l.tar.p);
}

/* --- Two threads, one shared layer ---------------------------------------------------- */

struct racer {
	char state[PATH_MAX], spec[PATH_MAX], err[512];
	struct img img;
	struct calls c;
	int rc;
	pthread_barrier_t *go;
};

static void *race(void *p)
{
	struct racer *r = p;
	pthread_barrier_wait(r->go);
	r->rc = img_resolve(r->state, r->spec, on_progress, &r->c, &r->img, r->err, sizeof(r->err));
	return NULL;
}

static void test_two_threads_share_a_layer(void **unused)
{
	(void)unused;
	/* A shared base big enough (4 MiB, incompressible) that the second thread arrives while
	 * the first still unpacks it. */
	size_t big = 4u << 20;
	char *data = malloc(big + 1);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + (rand() % 26));
	data[big] = 0;
	struct tent shared[] = { { E_FILE, "big", 0644, 0, 0, data }, { 0 } };
	static const struct tent one[] = { { E_FILE, "one", 0644, 0, 0, "1" }, { 0 } };
	static const struct tent two[] = { { E_FILE, "two", 0644, 0, 0, "2" }, { 0 } };
	struct layer a[2] = { { .tar = make_tar(shared, MT_TAR), .media = MT_TAR },
			      { .tar = make_tar(one, MT_TAR), .media = MT_TAR } };
	struct layer b[2] = { { .tar = make_tar(shared, MT_TAR), .media = MT_TAR },
			      { .tar = make_tar(two, MT_TAR), .media = MT_TAR } };
	free(data);
	char md[72], path[PATH_MAX];
	make_layout("race-a", "latest", a, 2, "", NEST_NONE, md);
	make_layout("race-b", "latest", b, 2, "", NEST_NONE, md);
	assert_string_equal(a[0].digest, b[0].digest);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	static struct racer r[2];
	pthread_t t[2];
	for (int i = 0; i < 2; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		mkpath(r[i].state, "%s/state-race", top);
		mkpath(r[i].spec, "oci:%s/race-%c", top, 'a' + i);
		r[i].go = &go;
	}
	mkdir(r[0].state, 0700);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		if (r[i].rc)
			print_error("%s\n", r[i].err);
		assert_int_equal(r[i].rc, 0);
	}
	pthread_barrier_destroy(&go);
	/* One copy: three layers in the store, the base read by one thread only. */
	assert_string_equal(r[0].img.layers[0], r[1].img.layers[0]);
	assert_int_equal(r[0].c.starts[0] + r[1].c.starts[0], 1);
	assert_int_equal(r[0].c.ends[0] + r[1].c.ends[0], 2);
	mkpath(path, "%s/layers/sha256", r[0].state);
	char want[256];
	const char *h[3] = { hex_of(a[0].digest), hex_of(a[1].digest), hex_of(b[1].digest) };
	qsort(h, 3, sizeof(h[0]), cmp_str);
	snprintf(want, sizeof(want), "%s %s %s", h[0], h[1], h[2]);
	assert_string_equal(names(path), want);
	mkpath(path, "%s/layers", r[0].state);
	assert_string_equal(names(path), "sha256");
	for (int i = 0; i < 2; i++) {
		img_free(&r[i].img);
		free(a[i].tar.p);
		free(b[i].tar.p);
	}
}

/* --- erofs / squashfs ----------------------------------------------------------------- */

static bool have(const char *tool)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static int mounts_at(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int n = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *p = line;
		for (int i = 0; i < 4 && p; i++)
			p = strchr(p + 1, ' ');
		if (p && strncmp(p + 1, path, strlen(path)) == 0 && p[1 + strlen(path)] == ' ')
			n++;
	}
	if (f)
		fclose(f);
	return n;
}

static void fsimage(const char *kind, unsigned flags)
{
	char src[PATH_MAX], file[PATH_MAX], cmd[PATH_MAX * 4], state[PATH_MAX], err[512], path[PATH_MAX];
	mkpath(src, "%s/fs-%s", top, kind);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/etc && echo hello > %s/etc/hello && chmod 4755 %s/etc/hello",
		 src, src, src);
	assert_int_equal(system(cmd), 0);
	mkpath(file, "%s/image.%s", top, kind);
	if (strcmp(kind, "erofs") == 0)
		snprintf(cmd, sizeof(cmd), "mkfs.erofs --quiet %s %s >/dev/null", file, src);
	else
		snprintf(cmd, sizeof(cmd), "mksquashfs %s %s -noappend -quiet >/dev/null", src, file);
	assert_int_equal(system(cmd), 0);
	state_dir(state, "state-fs");

	FILE *f = fopen(file, "r");
	assert_non_null(f);
	static char data[64 << 20];
	size_t len = fread(data, 1, sizeof(data), f);
	fclose(f);
	char hex[65], id[72];
	sha256_hex(data, len, hex);
	snprintf(id, sizeof(id), "sha256:%s", hex);

	struct img img;
	struct calls c = { 0 };
	assert_true(img_spec_is_image(file));
	int rc = img_resolve(state, file, on_progress, &c, &img, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(img.id, id);
	assert_int_equal(img.nlayers, 1);
	mkpath(path, "%s/mnt/%.16s", state, hex);
	assert_string_equal(img.layers[0], path);
	assert_int_equal(img.bytes, len);
	assert_null(img.env);
	assert_null(img.workdir);
	assert_null(img.user);
	assert_int_equal(img.uid, 0);
	assert_int_equal(c.starts[0], 1);
	assert_int_equal(c.ends[0], 1);
	mkpath(path, "%s/etc/hello", img.layers[0]);
	char got[16] = "";
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(got, sizeof(got), f));
	fclose(f);
	assert_string_equal(got, "hello\n");
	/* Read-only, nosuid, nodev. */
	assert_int_equal(open(path, O_WRONLY), -1);
	assert_int_equal(errno, EROFS);
	assert_int_equal(mounts_at(img.layers[0]), 1);
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	bool seen = false;
	while (fgets(line, sizeof(line), mi))
		if (strstr(line, img.layers[0])) {
			seen = true;
			assert_non_null(strstr(line, " ro,nosuid,nodev"));
			assert_non_null(strstr(line, kind));
		}
	fclose(mi);
	assert_true(seen);

	/* Again: the existing mount is reused, not stacked. */
	struct img again;
	assert_int_equal(img_resolve(state, file, NULL, NULL, &again, err, sizeof(err)), 0);
	assert_string_equal(again.layers[0], img.layers[0]);
	assert_int_equal(mounts_at(img.layers[0]), 1);
	img_free(&again);
	assert_int_equal(umount(img.layers[0]), 0);

	/* The loop device the pre-5.8 way, mounted by hand. */
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(loopdev_mount(fd, kind, img.layers[0], flags), 0);
	close(fd);
	assert_int_equal(access(path, R_OK), 0);
	assert_int_equal(umount(img.layers[0]), 0);
	img_free(&img);
}

static void test_erofs(void **unused)
{
	(void)unused;
	if (!is_root)
		skip();
	if (!have("mkfs.erofs"))
		skip();
	fsimage("erofs", LOOPDEV_LEGACY);
}

static void test_squashfs(void **unused)
{
	(void)unused;
	if (!is_root)
		skip();
	if (!have("mksquashfs"))
		skip();
	fsimage("squashfs", LOOPDEV_LEGACY);
}

static void test_spec(void **unused)
{
	(void)unused;
	assert_true(img_spec_is_image("oci:/images/x"));
	assert_true(img_spec_is_image("oci:/images/x:v1"));
	assert_true(img_spec_is_image("/images/root.erofs"));
	assert_true(img_spec_is_image("/images/root.squashfs"));
	assert_false(img_spec_is_image("system"));
	assert_false(img_spec_is_image("/"));
	assert_false(img_spec_is_image("/images/root.erofs.bak"));
	assert_false(img_spec_is_image(NULL));
}

int main(void)
{
	/* As root, our mounts stay in our own namespace and go with it. */
	is_root = geteuid() == 0;
	if (is_root && (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)) {
		perror("test_image: unshare");
		return 77;
	}
	if (!is_root)
		fprintf(stderr, "test_image: not root: the whiteout, owner and mount tests skip\n");
	snprintf(top, sizeof(top), "/tmp/test_image.XXXXXX");
	if (!mkdtemp(top))
		return 1;
	char outside[PATH_MAX];
	mkpath(outside, "%s/outside", top);
	mkdir(outside, 0755);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),
		cmocka_unit_test(test_normal_image),
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_hostile_paths),
		cmocka_unit_test(test_hostile_blobs),
		cmocka_unit_test(test_nested_index),
		cmocka_unit_test(test_bad_manifest),
		cmocka_unit_test(test_leftover_tmp),
		cmocka_unit_test(test_two_threads_share_a_layer),
		cmocka_unit_test(test_erofs),
		cmocka_unit_test(test_squashfs),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	if (!failed || !getenv("KEEP")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
		if (system(cmd) != 0)
			failed++;
	}
	return failed ? 1 : 0;
}
