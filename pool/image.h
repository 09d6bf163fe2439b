/* The image/layer store of rollout-pool: turns a profile's root that names an image into
 * read-only directories ready to be overlayfs lower layers. Two kinds of image:
 *
 *   oci:PATH[:TAG]   an OCI image layout (skopeo copy, umoci, podman save --format oci-dir);
 *                    TAG defaults to "latest". Each layer is verified against its digest and
 *                    size, unpacked once into <state_dir>/layers/sha256/<hex>/ (whiteouts in
 *                    overlayfs format: a 0/0 character device, trusted.overlay.opaque="y") and
 *                    shared by every image that has it.
 *   FILE.erofs       a read-only filesystem image, mounted read-only, nosuid, nodev through a
 *   FILE.squashfs    loop device at <state_dir>/mnt/<first 16 hex of its sha256>; one layer.
 *                    These carry no config: env, workdir and user stay empty (NULL/0).
 *
 * Unpacking refuses the whole image on the first hostile entry (a path with "..", an
 * absolute path, a path through a symlink, a hardlink out of the layer), on a digest or size
 * mismatch and on a truncated layer; nothing is then left behind but the layers of the image
 * already published. Device nodes, fifos and sockets are left out (counted in skipped),
 * setuid/setgid bits cleared, and extended attributes from the tar are not applied (they
 * could fake overlayfs' own). Whiteouts and the opaque xattr need root (CAP_MKNOD,
 * CAP_SYS_ADMIN for trusted.*), as do ownership from the tar and the loop mount. */
#ifndef ROLLOUT_POOL_IMAGE_H
#define ROLLOUT_POOL_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A resolved image. Everything is allocated by img_resolve and freed by img_free. */
struct img {
	char *spec;    /* as configured */
	char **layers; /* absolute directories, BOTTOM FIRST (OCI order); for erofs/squashfs one: the mount
			  point */
	unsigned nlayers;
	char **env; /* "NAME=value" from the image config's Env (may be 0) */
	unsigned nenv;
	char *workdir;     /* config WorkingDir or NULL */
	char *user;        /* config User or NULL, as written ("0", "root", "1000:1000", "app") */
	uint32_t uid, gid; /* User resolved: numeric, or looked up in the image's /etc/passwd and
			    * /etc/group (top layer wins); 0 when User is empty */
	char id[72];       /* "sha256:<hex>" of the manifest (OCI) or of the file's contents
			    * (erofs/squashfs): identifies the image */
	uint64_t bytes;    /* unpacked size on disk (sum of layers); erofs/squashfs: the file's size */
	uint64_t skipped;  /* device nodes, fifos and sockets left out of the layers this call
			    * unpacked (layers found already unpacked add nothing) */
};

/* Progress of img_resolve, called from the resolving thread. For each layer of an OCI image:
 * once with done_bytes 0 when its blob starts being read, then after each chunk read with the
 * compressed bytes read so far (total_bytes: the blob's size); a layer already in the store
 * gets a single call with done_bytes == total_bytes. For erofs/squashfs the bytes hashed,
 * layer_digest NULL, layer_index 0 of 1. */
typedef void (*img_progress_fn)(void *arg, const char *spec, const char *layer_digest, uint64_t layer_index,
				uint64_t nlayers, uint64_t done_bytes, uint64_t total_bytes);

/* Whether a profile root names an image: the "oci:" prefix, or a name ending in .erofs or
 * .squashfs. */
bool img_spec_is_image(const char *root);

/* Resolves spec into out (zeroed first). Blocking, may take seconds: call from a thread, never
 * the event loop. Thread-safe: two threads resolving images that share a layer unpack it once
 * (the second waits or finds it done). state_dir must exist; layers/ and mnt/ are made in it.
 * Removes what a crashed resolve left (layers/tmp.*) first. fn may be NULL. Returns 0, or
 * -errno with a one-line message in err naming the image spec and, where it applies, the
 * layer digest; out then holds nothing to free. */
int img_resolve(const char *state_dir, const char *spec, img_progress_fn fn, void *arg, struct img *out,
		char *err, size_t errsz);

/* Frees what img_resolve allocated (not the layers on disk nor the mount). Safe on a zeroed
 * struct and twice. */
void img_free(struct img *img);
/* Replaces the image's User (a profile's override) and resolves it like the config's: uid,
 * name, with :gid or :group. 0 or -errno with a message naming the image in err. */
int img_set_user(struct img *img, const char *user, char *err, size_t errsz);

#endif
