/* The image/layer store (image.h): an image spec resolved into read-only layer directories.
 * Here the OCI image layout is read and checked (oci-layout, index.json, the manifest, the
 * config) and img_resolve put together; the layers themselves are unpacked by layer.c into
 * the store of layerstore.c, the user looked up by imguser.c, erofs/squashfs mounted by
 * fsimage.c. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsimage.h"
#include "image.h"
#include "image_int.h"
#include "imguser.h"
#include "layerstore.h"

#define IMG_MAX_JSON   (8u << 20) /* oci-layout, index, manifest, config */
#define IMG_MAX_LAYERS 256        /* overlayfs takes up to 500 lower layers */
#define REF_NAME       "org.opencontainers.image.ref.name"

#if defined(__x86_64__)
#define IMG_ARCH "amd64"
#elif defined(__aarch64__)
#define IMG_ARCH "arm64"
#else
#define IMG_ARCH ""
#endif

#define MT_INDEX        "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST     "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG       "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIF "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CFG   "application/vnd.docker.container.image.v1+json"

/* Layer media types we unpack; libarchive finds the compression itself. */
static const char *const layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
};

/* --- OCI layout ----------------------------------------------------------------------- */

static bool is_hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == 0;
}

static int get_desc(struct res *r, json_t *j, struct desc *d, const char *what)
{
	json_t *digest = json_object_get(j, "digest"), *size = json_object_get(j, "size");
	const char *s = json_string_value(digest);
	d->media = json_string_value(json_object_get(j, "mediaType"));
	if (!s || !json_is_integer(size) || json_integer_value(size) < 0)
		return img__fail(r, -EINVAL, "%s descriptor without a digest or size", what);
	if (strncmp(s, "sha256:", 7) != 0 || !is_hex64(s + 7))
		return img__fail(r, -ENOTSUP, "%s %s: only sha256 digests are supported", what, s);
	snprintf(d->digest, sizeof(d->digest), "%s", s);
	snprintf(d->hex, sizeof(d->hex), "%s", s + 7);
	d->size = (uint64_t)json_integer_value(size);
	return 0;
}

/* Reads a small blob, checks its size and digest, and parses it as JSON. */
static int load_blob(struct res *r, const struct desc *d, const char *what, json_t **out)
{
	char path[96], hex[65];
	snprintf(path, sizeof(path), "blobs/sha256/%s", d->hex);
	if (d->size > IMG_MAX_JSON)
		return img__fail(r, -EFBIG, "%s %s: %llu bytes, more than we read", what, d->digest,
				 (unsigned long long)d->size);
	int fd = openat(r->layout, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return img__fail(r, -errno, "%s %s: %s", what, d->digest, strerror(errno));
	char *buf;
	size_t len;
	int rc = img__read_all(fd, IMG_MAX_JSON, &buf, &len);
	close(fd);
	if (rc < 0)
		return img__fail(r, rc, "%s %s: %s", what, d->digest, strerror(-rc));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	rc = -EIO;
	if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, buf, len))
		rc = img__sha256_final(md, hex);
	EVP_MD_CTX_free(md);
	if (rc < 0)
		rc = img__fail(r, rc, "sha256 failed");
	else if (len != d->size)
		rc = img__fail(r, -EBADMSG, "%s %s: blob is %zu bytes, the descriptor says %llu: refused",
			       what, d->digest, len, (unsigned long long)d->size);
	else if (strcmp(hex, d->hex) != 0)
		rc = img__fail(r, -EBADMSG, "%s %s: digest mismatch (blob is sha256:%s): refused", what,
			       d->digest, hex);
	if (rc == 0) {
		json_error_t je;
		*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
		if (!*out || !json_is_object(*out)) {
			json_decref(*out);
			rc = img__fail(r, -EINVAL, "%s %s: bad JSON: %s", what, d->digest, je.text);
		}
	}
	free(buf);
	return rc;
}

static int load_file(struct res *r, const char *name, json_t **out)
{
	int fd = openat(r->layout, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return img__fail(r, -errno, "%s: %s", name, strerror(errno));
	char *buf;
	size_t len;
	int rc = img__read_all(fd, IMG_MAX_JSON, &buf, &len);
	close(fd);
	if (rc < 0)
		return img__fail(r, rc, "%s: %s", name, strerror(-rc));
	json_error_t je;
	*out = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		return img__fail(r, -EINVAL, "%s: bad JSON: %s", name, je.text);
	}
	return 0;
}

static bool is_index(const char *media)
{
	return media && (strcmp(media, MT_INDEX) == 0 || strcmp(media, MT_DOCKER_LIST) == 0);
}

static bool is_manifest(const char *media)
{
	return media && (strcmp(media, MT_MANIFEST) == 0 || strcmp(media, MT_DOCKER_MANIF) == 0);
}

/* The entry of an index's manifests tagged tag, or NULL. */
static json_t *find_tag(json_t *index, const char *tag)
{
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(index, "manifests"), i, m)
	{
		const char *ref =
		    json_string_value(json_object_get(json_object_get(m, "annotations"), REF_NAME));
		if (ref && strcmp(ref, tag) == 0)
			return m;
	}
	return NULL;
}

/* In a nested index the tag has chosen: the manifest for linux on our architecture, or its
 * only manifest. */
static json_t *pick_platform(json_t *index)
{
	json_t *all = json_object_get(index, "manifests"), *m;
	size_t i;
	json_array_foreach(all, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *arch = json_string_value(json_object_get(p, "architecture"));
		if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, IMG_ARCH) == 0)
			return m;
	}
	return json_array_size(all) == 1 ? json_array_get(all, 0) : NULL;
}

/* Finds the manifest descriptor for tag: in index.json, or one level down in a nested index
 * (tagged itself, or holding the tagged manifest). *hold keeps the nested index alive. */
static int find_manifest(struct res *r, json_t *top, const char *tag, struct desc *d, json_t **hold)
{
	json_t *m = find_tag(top, tag);
	*hold = NULL;
	if (!m) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(top, "manifests"), i, e)
		{
			struct desc nd;
			if (!is_index(json_string_value(json_object_get(e, "mediaType"))))
				continue;
			int rc = get_desc(r, e, &nd, "nested index");
			if (rc == 0)
				rc = load_blob(r, &nd, "nested index", hold);
			if (rc < 0)
				return rc;
			if ((m = find_tag(*hold, tag)))
				break;
			json_decref(*hold);
			*hold = NULL;
		}
	}
	if (!m)
		return img__fail(r, -ENOENT, "no manifest tagged %s in index.json", tag);
	int rc = get_desc(r, m, d, "manifest");
	if (rc < 0 || !is_index(d->media))
		return rc;
	if (*hold)
		return img__fail(r, -ENOTSUP, "tag %s: an index nested more than one level", tag);
	if ((rc = load_blob(r, d, "nested index", hold)) < 0)
		return rc;
	if (!(m = pick_platform(*hold)))
		return img__fail(r, -ENOENT, "tag %s: no manifest for linux/%s in index %s", tag, IMG_ARCH,
				 d->digest);
	return get_desc(r, m, d, "manifest");
}

static bool known_layer(const char *media)
{
	for (size_t i = 0; media && i < sizeof(layer_types) / sizeof(layer_types[0]); i++)
		if (strcmp(media, layer_types[i]) == 0)
			return true;
	return false;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* Env, WorkingDir and User of the image config. */
static int take_config(struct res *r, json_t *cfg, struct img *out)
{
	json_t *c = json_object_get(cfg, "config"), *env = json_object_get(c, "Env"), *v;
	size_t i;
	if (json_array_size(env)) {
		out->env = calloc(json_array_size(env), sizeof(char *));
		if (!out->env)
			return img__fail(r, -ENOMEM, "out of memory");
	}
	json_array_foreach(env, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || !strchr(s, '='))
			return img__fail(r, -EINVAL, "config: Env entry %zu is not NAME=value", i);
		if (!(out->env[out->nenv++] = strdup(s)))
			return img__fail(r, -ENOMEM, "out of memory");
	}
	out->workdir = dup_or_null(json_string_value(json_object_get(c, "WorkingDir")));
	out->user = dup_or_null(json_string_value(json_object_get(c, "User")));
	return 0;
}

/* --- Putting an OCI image together ---------------------------------------------------- */

static int resolve_oci(struct res *r, const char *base, const char *ref, struct img *out)
{
	char path[PATH_MAX], tag[256] = "latest";
	snprintf(path, sizeof(path), "%s", ref);
	char *colon = strrchr(path, ':');
	if (colon && !strchr(colon, '/')) {
		*colon = 0;
		if (colon[1])
			snprintf(tag, sizeof(tag), "%s", colon + 1);
	}
	json_t *layout = NULL, *index = NULL, *nested = NULL, *manifest = NULL, *config = NULL;
	struct desc *layers = NULL;
	int rc;
	r->layout = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->layout < 0)
		return img__fail(r, -errno, "layout %s: %s", path, strerror(errno));
	if ((rc = load_file(r, "oci-layout", &layout)) < 0)
		goto out;
	const char *v = json_string_value(json_object_get(layout, "imageLayoutVersion"));
	if (!v || strncmp(v, "1.", 2) != 0) {
		rc = img__fail(r, -ENOTSUP, "oci-layout: imageLayoutVersion %s is not 1.x", v ? v : "(none)");
		goto out;
	}
	struct desc md, cd;
	if ((rc = load_file(r, "index.json", &index)) < 0 ||
	    (rc = find_manifest(r, index, tag, &md, &nested)) < 0)
		goto out;
	if (md.media && !is_manifest(md.media)) {
		rc = img__fail(r, -ENOTSUP, "manifest %s: media type %s is no image manifest", md.digest,
			       md.media);
		goto out;
	}
	if ((rc = load_blob(r, &md, "manifest", &manifest)) < 0)
		goto out;
	const char *mt = json_string_value(json_object_get(manifest, "mediaType"));
	if (mt && !is_manifest(mt)) {
		rc = img__fail(r, -ENOTSUP, "manifest %s: media type %s is no image manifest", md.digest, mt);
		goto out;
	}
	if ((rc = get_desc(r, json_object_get(manifest, "config"), &cd, "config")) < 0)
		goto out;
	if (!cd.media || (strcmp(cd.media, MT_CONFIG) != 0 && strcmp(cd.media, MT_DOCKER_CFG) != 0)) {
		rc = img__fail(r, -ENOTSUP, "config %s: media type %s is no image config", cd.digest,
			       cd.media ? cd.media : "(none)");
		goto out;
	}
	if ((rc = load_blob(r, &cd, "config", &config)) < 0)
		goto out;

	json_t *ls = json_object_get(manifest, "layers"), *l;
	size_t n = json_array_size(ls), i;
	if (!json_is_array(ls) || n > IMG_MAX_LAYERS) {
		rc = img__fail(r, -EINVAL, "manifest %s: no layers array, or more than %d layers", md.digest,
			       IMG_MAX_LAYERS);
		goto out;
	}
	layers = calloc(n ? n : 1, sizeof(*layers));
	out->layers = calloc(n ? n : 1, sizeof(char *));
	if (!layers || !out->layers) {
		rc = img__fail(r, -ENOMEM, "out of memory");
		goto out;
	}
	/* Every descriptor checked before a byte is unpacked. */
	json_array_foreach(ls, i, l)
	{
		if ((rc = get_desc(r, l, &layers[i], "layer")) < 0)
			goto out;
		if (!known_layer(layers[i].media)) {
			r->layer = layers[i].digest;
			rc = img__fail(r, -ENOTSUP, "media type %s is no layer we unpack",
				       layers[i].media ? layers[i].media : "(none)");
			goto out;
		}
	}
	if ((rc = layerstore_open(r, base)) < 0)
		goto out;
	layerstore_sweep(r);
	for (i = 0; i < n; i++) {
		r->layer = layers[i].digest;
		if ((rc = layerstore_get(r, &layers[i], i, n)) < 0)
			goto out;
		if (asprintf(&out->layers[i], "%s/layers/sha256/%s", base, layers[i].hex) < 0) {
			out->layers[i] = NULL;
			rc = img__fail(r, -ENOMEM, "out of memory");
			goto out;
		}
		out->nlayers++;
		int fd = openat(r->sha, layers[i].hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			out->bytes += layerstore_bytes(fd);
			close(fd);
		}
	}
	r->layer = NULL;
	snprintf(out->id, sizeof(out->id), "%s", md.digest);
	if ((rc = take_config(r, config, out)) < 0)
		goto out;
	rc = imguser_resolve(r, out);
out:
	free(layers);
	json_decref(layout);
	json_decref(index);
	json_decref(nested);
	json_decref(manifest);
	json_decref(config);
	return rc;
}

/* --- The API -------------------------------------------------------------------------- */

bool img_spec_is_image(const char *root)
{
	return root && (strncmp(root, "oci:", 4) == 0 || img__ends_with(root, ".erofs") ||
			img__ends_with(root, ".squashfs"));
}

int img_resolve(const char *state_dir, const char *spec, img_progress_fn fn, void *arg, struct img *out,
		char *err, size_t errsz)
{
	struct res r = { .spec = spec,
			 .err = err,
			 .errsz = errsz,
			 .fn = fn,
			 .arg = arg,
			 .layout = -1,
			 .store = -1,
			 .sha = -1 };
	char base[PATH_MAX];
	memset(out, 0, sizeof(*out));
	if (errsz)
		err[0] = 0;
	if (!img_spec_is_image(spec))
		return img__fail(&r, -EINVAL, "not an image (oci:PATH[:TAG], FILE.erofs or FILE.squashfs)");
	if (!realpath(state_dir, base))
		return img__fail(&r, -errno, "state directory %s: %s", state_dir, strerror(errno));
	int rc;
	if (!(out->spec = strdup(spec)))
		rc = img__fail(&r, -ENOMEM, "out of memory");
	else if (strncmp(spec, "oci:", 4) == 0)
		rc = resolve_oci(&r, base, spec + 4, out);
	else
		rc = fsimage_resolve(&r, base, out);
	out->skipped = r.skipped;
	if (r.layout >= 0)
		close(r.layout);
	if (r.store >= 0)
		close(r.store);
	if (r.sha >= 0)
		close(r.sha);
	if (rc < 0)
		img_free(out);
	return rc;
}

void img_free(struct img *img)
{
	for (unsigned i = 0; i < img->nlayers; i++)
		free(img->layers[i]);
	for (unsigned i = 0; i < img->nenv; i++)
		free(img->env[i]);
	free(img->layers);
	free(img->env);
	free(img->spec);
	free(img->workdir);
	free(img->user);
	memset(img, 0, sizeof(*img));
}
