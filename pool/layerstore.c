/* The content-addressed layer store (layerstore.h): <state>/layers/sha256/<hex>, each layer
 * unpacked into a tmp.* directory and published by rename, once per store however many
 * threads or processes want it; and the in-process wait for a layer or mount another thread
 * is making. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_int.h"
#include "layer.h"
#include "layerstore.h"

/* --- Layers being unpacked (or mounts being made) by this process --------------------- */

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_done = PTHREAD_COND_INITIALIZER;
static struct busy *busy_list;

static struct busy *busy_find(dev_t dev, ino_t ino, const char *hex)
{
	for (struct busy *b = busy_list; b; b = b->next)
		if (b->dev == dev && b->ino == ino && strcmp(b->hex, hex) == 0)
			return b;
	return NULL;
}

int layerstore_claim(int at, const char *hex, struct busy *b)
{
	struct stat st;
	if (fstat(at, &st) < 0)
		return -errno;
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	snprintf(b->hex, sizeof(b->hex), "%s", hex);
	pthread_mutex_lock(&busy_lock);
	while (busy_find(b->dev, b->ino, hex))
		pthread_cond_wait(&busy_done, &busy_lock);
	b->next = busy_list;
	busy_list = b;
	pthread_mutex_unlock(&busy_lock);
	return 0;
}

void layerstore_release(struct busy *b)
{
	pthread_mutex_lock(&busy_lock);
	for (struct busy **p = &busy_list; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	pthread_cond_broadcast(&busy_done);
	pthread_mutex_unlock(&busy_lock);
}

/* --- The store ------------------------------------------------------------------------ */

int layerstore_open(struct res *r, const char *base)
{
	int state = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (state < 0)
		return img__fail(r, -errno, "state directory %s: %s", base, strerror(errno));
	r->store = img__open_dir(state, "layers", 0700);
	close(state);
	if (r->store < 0)
		return img__fail(r, r->store, "%s/layers: %s", base, strerror(-r->store));
	r->sha = img__open_dir(r->store, "sha256", 0700);
	if (r->sha < 0)
		return img__fail(r, r->sha, "%s/layers/sha256: %s", base, strerror(-r->sha));
	return 0;
}

/* Bytes a tree takes on disk: blocks of each inode, a file with n links counting 1/n per
 * link (all its links are in the same layer, so the sum is exact). */
uint64_t layerstore_bytes(int at)
{
	int fd = fcntl(at, F_DUPFD_CLOEXEC, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	uint64_t sum = 0;
	struct stat st;
	if (fstat(at, &st) == 0)
		sum += (uint64_t)st.st_blocks * 512;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub =
			    openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				sum += layerstore_bytes(sub);
				close(sub);
			}
		} else {
			sum += (uint64_t)st.st_blocks * 512 / (st.st_nlink ? st.st_nlink : 1);
		}
	}
	closedir(d);
	return sum;
}

/* Unpacks layer d into tmp.<hex>.<pid>.<tid> and publishes it as sha256/<hex>. Called with
 * the layer claimed (layerstore_claim). */
static int unpack_layer(struct res *r, const struct desc *d, uint64_t index, uint64_t n)
{
	char tmp[128], blob[96], ebuf[64];
	snprintf(tmp, sizeof(tmp), "tmp.%s.%d.%d", d->hex, (int)getpid(), (int)gettid());
	snprintf(blob, sizeof(blob), "blobs/sha256/%s", d->hex);
	int fd = openat(r->layout, blob, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return img__fail(r, -errno, "blob %s: %s", blob, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		rc = img__fail(r, -EINVAL, "blob %s: not a regular file", blob);
	else if ((uint64_t)st.st_size != d->size)
		rc = img__fail(r, -EBADMSG, "blob is %llu bytes, the manifest says %llu: refused",
			       (unsigned long long)st.st_size, (unsigned long long)d->size);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	img__rm_tree_at(r->store, tmp); /* ours by name: a thread of a dead process with our ids */
	int root = img__open_dir(r->store, tmp, 0700);
	if (root < 0) {
		close(fd);
		return img__fail(r, root, "making %s: %s", tmp, img__errstr(root, ebuf, sizeof(ebuf)));
	}
	rc = layer_extract(r, d, fd, root, index, n);
	close(fd);
	if (rc == 0 && syncfs(root) < 0)
		rc = img__fail(r, -errno, "syncfs: %s", strerror(errno));
	close(root);
	if (rc == 0 && renameat2(r->store, tmp, r->sha, d->hex, RENAME_NOREPLACE) < 0) {
		/* EEXIST: another process published it first; its copy serves. */
		if (errno != EEXIST)
			rc = img__fail(r, -errno, "publishing %s: %s", tmp, strerror(errno));
		img__rm_tree_at(r->store, tmp);
	}
	if (rc < 0)
		img__rm_tree_at(r->store, tmp);
	return rc;
}

/* Makes layer d present in the store: found published (its blob is not read again), or
 * unpacked once however many threads ask at the same time. */
int layerstore_get(struct res *r, const struct desc *d, uint64_t index, uint64_t n)
{
	struct busy b;
	int rc = layerstore_claim(r->sha, d->hex, &b);
	if (rc < 0)
		return img__fail(r, rc, "the layer store: %s", strerror(-rc));
	struct stat st;
	if (fstatat(r->sha, d->hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		img__progress(r, index, n, d->size, d->size);
	else
		rc = unpack_layer(r, d, index, n);
	layerstore_release(&b);
	return rc;
}

/* Removes what a crashed resolve left: tmp.<hex>.<pid>.<tid> of a process that is gone, or
 * of ours but of no layer being unpacked now. */
void layerstore_sweep(struct res *r)
{
	int fd = fcntl(r->store, F_DUPFD_CLOEXEC, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct stat st;
	if (fstat(r->sha, &st) < 0) {
		closedir(d);
		return;
	}
	pthread_mutex_lock(&busy_lock);
	struct dirent *de;
	while ((de = readdir(d))) {
		char hex[65];
		int pid, tid;
		if (sscanf(de->d_name, "tmp.%64[0-9a-f].%d.%d", hex, &pid, &tid) != 3)
			continue;
		bool live = pid == getpid() ? busy_find(st.st_dev, st.st_ino, hex) != NULL
					    : (kill(pid, 0) == 0 || errno == EPERM);
		if (!live)
			img__rm_tree_at(dirfd(d), de->d_name);
	}
	pthread_mutex_unlock(&busy_lock);
	closedir(d);
}
