/* shm segments: one sealed memfd per attached trainer, laid out as ring_abi.h says. The
 * creator (rolloutd) sizes, seals, binds and prefaults it; the attacher (librollout) checks
 * everything about the fd and the header before it trusts a single offset. */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "rollout/error.h"

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)
#define CTL_BASE       1024u /* ring control blocks start after the header */

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* Free huge pages of the default size, and that size, from /proc/meminfo. */
static uint64_t hugepages_free(uint64_t *page_size)
{
	FILE *f = fopen("/proc/meminfo", "re");
	uint64_t free_pages = 0, kib = 0;
	char line[128];
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;
		if (sscanf(line, "HugePages_Free: %llu", &v) == 1)
			free_pages = v;
		else if (sscanf(line, "Hugepagesize: %llu kB", &v) == 1)
			kib = v;
	}
	fclose(f);
	*page_size = kib * 1024;
	return kib ? free_pages : 0;
}

static int fill_desc(struct shm_ring_desc *d, uint32_t size, uint32_t max_record)
{
	if (!size)
		size = SHM_DEFAULT_RING_SIZE;
	if (!pow2(size) || size < SHM_RING_MIN_SIZE || size > SHM_RING_MAX_SIZE)
		return -EINVAL;
	uint32_t limit = size / 2 - 16;
	if (!max_record)
		max_record = SHM_DEFAULT_MAX_RECORD < limit ? SHM_DEFAULT_MAX_RECORD : limit;
	if (max_record > limit)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->size = size;
	d->max_record = max_record;
	return 0;
}

/* Binds [base, base+len) to node with MPOL_BIND. Returns 0, or -errno when the kernel
 * refuses; no NUMA support at all is not an error (the pages simply go where they go). */
static int bind_node(void *base, size_t len, int node)
{
	if (numa_available() < 0)
		return 0;
	if (node > numa_max_node())
		return -EINVAL;
	unsigned long mask[16] = { 0 };
	mask[node / (8 * sizeof(unsigned long))] |= 1ul << (node % (8 * sizeof(unsigned long)));
	if (mbind(base, len, MPOL_BIND, mask, sizeof(mask) * 8, MPOL_MF_MOVE | MPOL_MF_STRICT) < 0)
		return -errno;
	return 0;
}

int shm_seg_create(struct shm_seg *seg, const struct shm_seg_opts *o)
{
	struct shm_seg_hdr h;
	int rc;
	memset(&h, 0, sizeof(h));
	memset(seg, 0, sizeof(*seg));
	seg->fd = -1;
	if ((rc = fill_desc(&h.sq, o->sq_size, o->sq_max_record)) ||
	    (rc = fill_desc(&h.cq, o->cq_size, o->cq_max_record)))
		return rc;
	if (o->features & ~SHM_FEAT_KNOWN)
		return -EINVAL;

	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), hpage = 0;
	h.sq.ctl_off = CTL_BASE;
	h.cq.ctl_off = CTL_BASE + sizeof(struct shm_ring_ctl);
	h.sq.data_off = align_up(h.cq.ctl_off + sizeof(struct shm_ring_ctl), page);
	h.cq.data_off = h.sq.data_off + h.sq.size;
	uint64_t size = align_up(h.cq.data_off + h.cq.size, page);

	int fd = -1;
	if (o->try_hugepages) {
		uint64_t nfree = hugepages_free(&hpage);
		uint64_t hsize = hpage ? align_up(size, hpage) : 0;
		if (hpage && nfree * hpage >= hsize) {
			fd = memfd_create("rollout-seg", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
			if (fd >= 0) {
				size = hsize;
				seg->hugepages = true;
			}
		}
	}
	if (fd < 0)
		fd = memfd_create("rollout-seg", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		goto fail_fd;
	}
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail_fd;
	}
	h.memory_node = -1;
	if (o->memory_node >= 0) {
		rc = bind_node(base, size, o->memory_node);
		if (rc)
			goto fail_map;
		if (numa_available() >= 0)
			h.memory_node = o->memory_node;
	}
	/* Prefault every page now, on the bound node, so the data path never takes a fault. */
	memset(base, 0, size);

	h.magic = SHM_SEG_MAGIC;
	h.abi_version = SHM_SEG_ABI_VERSION;
	h.features = o->features | (seg->hugepages ? SHM_FEAT_HUGEPAGES : 0);
	h.seg_size = size;
	h.hdr_size = sizeof(h);
	h.page_size = (uint32_t)(seg->hugepages ? hpage : page);
	h.live.epoch = o->epoch;
	h.live.state = SHM_STATE_LIVE;
	memcpy(base, &h, sizeof(h));

	seg->fd = fd;
	seg->base = base;
	seg->size = size;
	seg->creator = true;
	seg->hdr = h;
	return 0;
fail_map:
	munmap(base, size);
fail_fd:
	close(fd);
	return rc;
}

/* The checks a reader of a foreign segment needs before it uses any of its offsets. */
static int check_desc(const struct shm_ring_desc *d, uint64_t seg_size)
{
	if (!pow2(d->size) || d->size < SHM_RING_MIN_SIZE || d->size > SHM_RING_MAX_SIZE)
		return ROLLOUT_E_ABI;
	if (d->max_record == 0 || d->max_record > d->size / 2 - 16)
		return ROLLOUT_E_ABI;
	if (d->ctl_off < sizeof(struct shm_seg_hdr) || d->ctl_off % SHM_CACHELINE ||
	    d->ctl_off > seg_size - sizeof(struct shm_ring_ctl))
		return ROLLOUT_E_ABI;
	if (d->data_off % SHM_CACHELINE || d->data_off > seg_size || seg_size - d->data_off < d->size)
		return ROLLOUT_E_ABI;
	return 0;
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int shm_seg_attach(struct shm_seg *seg, int fd, uint64_t expected_size)
{
	struct stat st;
	memset(seg, 0, sizeof(*seg));
	seg->fd = -1;
	if (fstat(fd, &st) < 0)
		return -errno;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS)
		return -EPERM; /* not a memfd, or one the peer could still shrink under us */
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct shm_seg_hdr) ||
	    (expected_size && (uint64_t)st.st_size != expected_size))
		return -EMSGSIZE;
	size_t size = (size_t)st.st_size;
	/* Populated up front, like the creator's prefault: the data path never takes a fault. */
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	struct shm_seg_hdr h;
	memcpy(&h, base, sizeof(h));
	int rc = 0;
	if (h.magic != SHM_SEG_MAGIC || h.abi_version != SHM_SEG_ABI_VERSION ||
	    (h.features & ~SHM_FEAT_KNOWN) || h.hdr_size != sizeof(h))
		rc = ROLLOUT_E_ABI;
	else if (h.seg_size != size)
		rc = -EMSGSIZE;
	else if ((rc = check_desc(&h.sq, size)) || (rc = check_desc(&h.cq, size)))
		;
	else if (overlap(h.sq.ctl_off, sizeof(struct shm_ring_ctl), h.cq.ctl_off,
			 sizeof(struct shm_ring_ctl)) ||
		 overlap(h.sq.data_off, h.sq.size, h.cq.data_off, h.cq.size) ||
		 overlap(h.sq.data_off, h.sq.size, 0, h.cq.ctl_off + sizeof(struct shm_ring_ctl)) ||
		 overlap(h.cq.data_off, h.cq.size, 0, h.cq.ctl_off + sizeof(struct shm_ring_ctl)) ||
		 overlap(h.sq.data_off, h.sq.size, 0, h.sq.ctl_off + sizeof(struct shm_ring_ctl)) ||
		 overlap(h.cq.data_off, h.cq.size, 0, h.sq.ctl_off + sizeof(struct shm_ring_ctl)))
		rc = ROLLOUT_E_ABI;
	if (rc) {
		munmap(base, size);
		return rc;
	}
	seg->fd = fd;
	seg->base = base;
	seg->size = size;
	seg->hugepages = h.features & SHM_FEAT_HUGEPAGES;
	seg->creator = false;
	seg->hdr = h;
	return 0;
}

void shm_seg_close(struct shm_seg *seg)
{
	if (seg->base) {
		struct shm_seg_hdr *h = seg->base;
		shm_store_release(&h->live.state, SHM_STATE_CLOSING);
		munmap(seg->base, seg->size);
	}
	if (seg->fd >= 0)
		close(seg->fd);
	seg->base = NULL;
	seg->fd = -1;
}

uint32_t shm_seg_state(const struct shm_seg *seg)
{
	const struct shm_seg_hdr *h = seg->base;
	return shm_load_acquire(&h->live.state);
}

void shm_seg_heartbeat(struct shm_seg *seg)
{
	struct shm_seg_hdr *h = seg->base;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	shm_store_relaxed(seg->creator ? &h->live.owner_heartbeat : &h->live.client_heartbeat, now);
}

int shm_page_node(const void *addr, size_t len)
{
	if (numa_available() < 0)
		return -ENOSYS;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(page - 1);
	size_t n = (size_t)(((uintptr_t)addr + len - start + page - 1) / page);
	void **pages = malloc(n * sizeof(*pages));
	int *status = malloc(n * sizeof(*status));
	int node = -ENOENT;
	if (!pages || !status) {
		node = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		pages[i] = (void *)(start + i * page);
	if (move_pages(0, (unsigned long)n, pages, NULL, status, 0) < 0) {
		node = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (status[i] < 0) {
			node = status[i];
			break;
		}
		if (i == 0)
			node = status[0];
		else if (status[i] != node) {
			node = -EXDEV;
			break;
		}
	}
out:
	free(pages);
	free(status);
	return node;
}
