/* The image's User turned into a uid and gid (imguser.h), as docker does it: numeric, or
 * looked up in /etc/passwd and /etc/group as the merged layers show them, never through the
 * host's own databases. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image_int.h"
#include "imguser.h"

#define IMG_MAX_ETCFILE (4u << 20) /* /etc/passwd, /etc/group */

/* Reads etc/NAME as the merged image shows it: layers searched top down, a whiteout hides it,
 * an opaque etc hides the layers below. *out NULL when absent. */
static int read_etc(const struct img *img, const char *name, char **out)
{
	*out = NULL;
	for (unsigned i = img->nlayers; i-- > 0;) {
		int layer = open(img->layers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (layer < 0)
			return -errno;
		struct stat st;
		int rc = 0;
		bool stop = false;
		if (fstatat(layer, "etc", &st, AT_SYMLINK_NOFOLLOW) < 0) {
			close(layer);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(layer);
			return 0; /* whited out, or a file or symlink hiding what is below */
		}
		int etc = openat(layer, "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(layer);
		if (etc < 0)
			return -errno;
		char y;
		stop = fgetxattr(etc, OPAQUE_XATTR, &y, 1) == 1 && y == 'y';
		if (fstatat(etc, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			/* Read if a file; as anything else (a whiteout, a symlink) it hides the
			 * lower ones all the same. */
			stop = true;
			if (S_ISREG(st.st_mode)) {
				int fd = openat(etc, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
				size_t len;
				rc = fd < 0 ? -errno : img__read_all(fd, IMG_MAX_ETCFILE, out, &len);
				if (fd >= 0)
					close(fd);
			}
		}
		close(etc);
		if (rc < 0 || stop)
			return rc;
	}
	return 0;
}

static bool parse_u32(const char *s, uint32_t *v)
{
	if (!*s)
		return false;
	uint64_t x = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > UINT32_MAX)
			return false;
	}
	*v = (uint32_t)x;
	return true;
}

/* Finds in a passwd or group file the line whose field key_field (0: name, 2: id) equals key;
 * returns fields 2 and 3 (passwd: uid, gid; group: gid). */
static bool etc_lookup(const char *file, int key_field, const char *key, uint32_t *id, uint32_t *id2)
{
	for (const char *line = file; line && *line;) {
		const char *nl = strchrnul(line, '\n');
		char copy[1024], *f[4] = { 0 }, *p = copy;
		snprintf(copy, sizeof(copy), "%.*s", (int)(nl - line), line);
		line = *nl ? nl + 1 : nl;
		for (int i = 0; i < 4 && p; i++) {
			f[i] = p;
			if ((p = strchr(p, ':')))
				*p++ = 0;
		}
		uint32_t a = 0, b = 0;
		if (!f[2] || !parse_u32(f[2], &a) || strcmp(f[key_field], key) != 0)
			continue;
		if (f[3])
			parse_u32(f[3], &b);
		*id = a;
		if (id2)
			*id2 = b;
		return true;
	}
	return false;
}

/* User as docker reads it: "uid", "name", either with ":gid" or ":group". A numeric uid not in
 * passwd runs with gid 0. */
int imguser_resolve(struct res *r, struct img *img)
{
	if (!img->user)
		return 0;
	char user[256], *group = NULL, *passwd = NULL, *groups = NULL;
	snprintf(user, sizeof(user), "%s", img->user);
	if ((group = strchr(user, ':')))
		*group++ = 0;
	int rc = read_etc(img, "passwd", &passwd);
	if (rc < 0)
		return img__fail(r, rc, "reading /etc/passwd: %s", strerror(-rc));
	uint32_t uid = 0, gid = 0, pgid = 0;
	if (parse_u32(user, &uid)) {
		if (etc_lookup(passwd, 2, user, &uid, &pgid))
			gid = pgid;
	} else if (etc_lookup(passwd, 0, user, &uid, &pgid)) {
		gid = pgid;
	} else {
		rc = img__fail(r, -ENOENT, "user %s is not in the image's /etc/passwd", user);
	}
	if (rc == 0 && group && !parse_u32(group, &gid)) {
		rc = read_etc(img, "group", &groups);
		if (rc < 0)
			rc = img__fail(r, rc, "reading /etc/group: %s", strerror(-rc));
		else if (!etc_lookup(groups, 0, group, &gid, NULL))
			rc = img__fail(r, -ENOENT, "group %s is not in the image's /etc/group", group);
	}
	free(passwd);
	free(groups);
	img->uid = uid;
	img->gid = gid;
	return rc;
}

int img_set_user(struct img *img, const char *user, char *err, size_t errsz)
{
	struct res r = { .spec = img->spec, .err = err, .errsz = errsz };
	err[0] = 0;
	char *copy = strdup(user);
	if (!copy)
		return -ENOMEM;
	free(img->user);
	img->user = copy;
	return imguser_resolve(&r, img);
}
