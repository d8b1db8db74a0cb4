#include "virtio/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* Alignments above this are not believable for direct I/O (and would
 * make bounce buffers silly). */
#define DIO_ALIGN_MAX   65536

/* --- --disk PATH[,ro][,serial=ID][,cache=none|writeback] --- */

static bool serial_char_ok(char c)
{
	/* Printable ASCII without blanks: the guest shows it as an ID
	 * (/sys/block/vda/serial, /dev/disk/by-id). */
	return c > 0x20 && c < 0x7f;
}

int disk_spec_parse(const char *arg, struct disk_spec *out, char *err, size_t errlen)
{
	bool seen_ro = false, seen_serial = false, seen_cache = false;
	const char *p = arg ? arg : "";
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	/* The path, up to the first single comma; ",," is a comma in it
	 * (QEMU's convention). */
	for (; *p; p++) {
		if (*p == ',') {
			if (p[1] != ',')
				break;
			p++;
		}
		if (n == sizeof(out->path) - 1) {
			snprintf(err, errlen, "--disk: path too long (at most %zu bytes)",
				 sizeof(out->path) - 1);
			return -EINVAL;
		}
		out->path[n++] = *p;
	}
	out->path[n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "--disk %s: empty path", arg ? arg : "");
		return -EINVAL;
	}

	while (*p == ',') {
		const char *key = ++p, *val = NULL;
		size_t klen, vlen = 0;

		while (*p && *p != ',' && *p != '=')
			p++;
		klen = (size_t)(p - key);
		if (*p == '=') {
			val = ++p;
			while (*p && *p != ',')
				p++;
			vlen = (size_t)(p - val);
		}
		if (klen == 0) {
			snprintf(err, errlen, "--disk %s: empty option", arg);
			return -EINVAL;
		}
#define KEY_IS(s) (klen == sizeof(s) - 1 && memcmp(key, s, klen) == 0)
		if (KEY_IS("ro")) {
			if (val) {
				snprintf(err, errlen, "--disk %s: ro takes no value", arg);
				return -EINVAL;
			}
			if (seen_ro)
				goto twice;
			seen_ro = true;
			out->readonly = true;
		} else if (KEY_IS("serial")) {
			if (seen_serial)
				goto twice;
			seen_serial = true;
			if (!val || vlen == 0) {
				snprintf(err, errlen, "--disk %s: serial needs a value (serial=ID)", arg);
				return -EINVAL;
			}
			if (vlen > DISK_SERIAL_MAX) {
				snprintf(err, errlen,
					 "--disk %s: serial is %zu bytes, at most %d (VIRTIO_BLK_ID_BYTES)",
					 arg, vlen, DISK_SERIAL_MAX);
				return -EINVAL;
			}
			for (size_t i = 0; i < vlen; i++) {
				if (!serial_char_ok(val[i])) {
					snprintf(err, errlen,
						 "--disk %s: serial may hold only printable ASCII without spaces",
						 arg);
					return -EINVAL;
				}
			}
			memcpy(out->serial, val, vlen);
			out->serial[vlen] = '\0';
		} else if (KEY_IS("cache")) {
			if (seen_cache)
				goto twice;
			seen_cache = true;
			if (val && vlen == 4 && memcmp(val, "none", 4) == 0) {
				out->direct = true;
			} else if (val && vlen == 9 && memcmp(val, "writeback", 9) == 0) {
				out->direct = false;
			} else {
				snprintf(err, errlen, "--disk %s: cache must be none or writeback", arg);
				return -EINVAL;
			}
		} else {
			snprintf(err, errlen,
				 "--disk %s: unknown option '%.*s' (expected ro, serial=ID, cache=none|writeback)",
				 arg, (int)klen, key);
			return -EINVAL;
		}
#undef KEY_IS
	}
	return 0;
twice:
	snprintf(err, errlen, "--disk %s: an option is given twice", arg);
	return -EINVAL;
}

/* --- opening --- */

static bool power_of_two(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* One line for an open() or stat() failure of d->path. */
static void open_error(const struct disk *d, int e, char *err, size_t errlen)
{
	const char *path = d->path;

	switch (e) {
	case ENOENT:
		snprintf(err, errlen, "disk %s: no such file", path);
		break;
	case ENOTDIR:
		snprintf(err, errlen, "disk %s: a component of the path is not a directory", path);
		break;
	case EISDIR:
		snprintf(err, errlen, "disk %s: is a directory", path);
		break;
	case EACCES:
	case EPERM:
		snprintf(err, errlen, "disk %s: permission denied%s", path,
			 d->readonly ? "" : " (for read-only use, add ,ro)");
		break;
	case EROFS:
		snprintf(err, errlen, "disk %s: on a read-only file system (add ,ro)", path);
		break;
	case ETXTBSY:
		snprintf(err, errlen, "disk %s: busy (an executable being run, or a swap file)", path);
		break;
	case EBUSY:
		snprintf(err, errlen, "disk %s: in use (mounted, or opened exclusively by another process)",
			 path);
		break;
	case EINVAL:
		if (d->direct) {
			snprintf(err, errlen,
				 "disk %s: cache=none: the file system does not support O_DIRECT", path);
			break;
		}
		/* fall through */
	default:
		snprintf(err, errlen, "disk %s: %s", path, strerror(e));
		break;
	}
}

/* Sets dio_mem_align and dio_offset_align for cache=none. */
static int probe_dio(struct disk *d, char *err, size_t errlen)
{
	uint32_t mem = 0, off = 0;

#ifdef STATX_DIOALIGN
	{
		struct statx stx;

		/* Linux 6.1: the file system's (or device's) own answer. */
		if (statx(d->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
		    (stx.stx_mask & STATX_DIOALIGN)) {
			if (stx.stx_dio_offset_align == 0) {
				snprintf(err, errlen,
					 "disk %s: cache=none: the file system does not support O_DIRECT",
					 d->path);
				return -EINVAL;
			}
			mem = stx.stx_dio_mem_align;
			off = stx.stx_dio_offset_align;
		}
	}
#endif
	if (!off) {
		/* Older kernels: what O_DIRECT always accepted, the logical
		 * block size for both; 512 for a file (most file systems;
		 * one on a 4Kn device refuses, and the I/O errors say so). */
		mem = off = d->blockdev ? d->logical_block_size : DISK_SECTOR_SIZE;
	}
	if (!mem)
		mem = 1;
	if (!power_of_two(mem) || !power_of_two(off) || mem > DIO_ALIGN_MAX || off > DIO_ALIGN_MAX) {
		snprintf(err, errlen, "disk %s: cache=none: unusable direct I/O alignment (%u, %u)",
			 d->path, mem, off);
		return -EINVAL;
	}
	d->dio_mem_align = mem;
	d->dio_offset_align = off;
	return 0;
}

static int probe_size(struct disk *d, const struct stat *st, char *err, size_t errlen)
{
	if (d->blockdev) {
		uint64_t bytes;
		int lbs = 0, e;
		unsigned int pbs = 0;

		if (ioctl(d->fd, BLKGETSIZE64, &bytes) < 0) {
			e = errno;
			snprintf(err, errlen, "disk %s: BLKGETSIZE64: %s", d->path, strerror(e));
			return -e;
		}
		if (ioctl(d->fd, BLKSSZGET, &lbs) < 0 || lbs < DISK_SECTOR_SIZE ||
		    !power_of_two((uint64_t)lbs) || lbs > DIO_ALIGN_MAX) {
			snprintf(err, errlen, "disk %s: no usable logical block size", d->path);
			return -EINVAL;
		}
		if (ioctl(d->fd, BLKPBSZGET, &pbs) < 0 || pbs < (unsigned)lbs || !power_of_two(pbs))
			pbs = (unsigned)lbs;
		d->size = bytes;
		d->logical_block_size = (uint32_t)lbs;
		d->physical_block_size = pbs;
	} else {
		d->size = (uint64_t)st->st_size;
		d->logical_block_size = DISK_SECTOR_SIZE;
		d->physical_block_size = DISK_SECTOR_SIZE;
	}
	if (d->size < DISK_SECTOR_SIZE) {
		snprintf(err, errlen, "disk %s: smaller than one 512-byte sector", d->path);
		return -EINVAL;
	}
	if (d->size % DISK_SECTOR_SIZE)
		pr_warn("disk %s: size is not a multiple of 512 bytes: the last %u bytes are not used",
			d->path, (unsigned)(d->size % DISK_SECTOR_SIZE));
	return 0;
}

/* Size, block sizes and direct-I/O alignments of the open d->fd (st: its
 * fstat) into d. */
static int probe(struct disk *d, const struct stat *st, char *err, size_t errlen)
{
	int ret = probe_size(d, st, err, errlen);

	if (ret)
		return ret;
	d->dio_mem_align = d->dio_offset_align = 1;
	if (d->direct) {
		ret = probe_dio(d, err, errlen);
		if (ret)
			return ret;
		/* The guest aligns its I/O to blk_size: make that enough for
		 * O_DIRECT. */
		if (d->logical_block_size < d->dio_offset_align)
			d->logical_block_size = d->dio_offset_align;
		if (d->physical_block_size < d->logical_block_size)
			d->physical_block_size = d->logical_block_size;
	}
	return 0;
}

/* The file part of a disk, shared by disk_open and disk_replace: opens
 * d->path as d->readonly and d->direct say, checks what it is, locks it
 * and probes it (probe). Sets fd, blockdev, size, block sizes and
 * alignments; touches nothing else. 0, or -errno with err set, nothing
 * left open (fd -1) and those fields not to be used. */
static int open_file(struct disk *d, char *err, size_t errlen)
{
	int flags = (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct stat st;
	int fl, ret;

	d->fd = -1;
	if (!d->path[0]) {
		snprintf(err, errlen, "disk: empty path");
		return -EINVAL;
	}
	/* A read-write block device is claimed O_EXCL: the kernel then
	 * refuses it while mounted. stat() first to know which it is; the
	 * fstat() below checks what was actually opened. */
	if (stat(d->path, &st) < 0) {
		ret = -errno;
		open_error(d, -ret, err, errlen);
		return ret;
	}
	if (S_ISDIR(st.st_mode)) {
		open_error(d, EISDIR, err, errlen);
		return -EISDIR;
	}
	if (S_ISBLK(st.st_mode) && !d->readonly)
		flags |= O_EXCL;
	if (d->direct)
		flags |= O_DIRECT;

	/* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
	d->fd = open(d->path, flags);
	if (d->fd < 0) {
		ret = -errno;
		open_error(d, -ret, err, errlen);
		return ret;
	}
	if (fstat(d->fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "disk %s: fstat: %s", d->path, strerror(-ret));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		open_error(d, EISDIR, err, errlen);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "disk %s: not a regular file or block device", d->path);
		goto fail;
	}
	d->blockdev = S_ISBLK(st.st_mode);
	fl = fcntl(d->fd, F_GETFL);
	if (fl < 0 || fcntl(d->fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		ret = -errno;
		snprintf(err, errlen, "disk %s: fcntl: %s", d->path, strerror(-ret));
		goto fail;
	}
	/* Advisory, per open file description: released when fd closes,
	 * also when popek dies. */
	if (flock(d->fd, (d->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK)
			snprintf(err, errlen, "disk %s: in use by another process (locked)", d->path);
		else
			snprintf(err, errlen, "disk %s: cannot lock: %s", d->path, strerror(-ret));
		goto fail;
	}
	ret = probe(d, &st, err, errlen);
	if (ret)
		goto fail;
	return 0;
fail:
	close(d->fd);
	d->fd = -1;
	return ret;
}

static int setup_ring(struct disk *d, char *err, size_t errlen)
{
	int ret = io_uring_queue_init(DISK_QUEUE_DEPTH, &d->ring, 0);

	if (ret < 0) {
		snprintf(err, errlen, "disk %s: io_uring: %s%s", d->path, strerror(-ret),
			 ret == -EPERM ? " (disabled by sysctl kernel.io_uring_disabled?)" : "");
		return ret;
	}
	d->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->event_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "disk %s: eventfd: %s", d->path, strerror(errno));
		io_uring_queue_exit(&d->ring);
		return ret;
	}
	ret = io_uring_register_eventfd(&d->ring, d->event_fd);
	if (ret < 0) {
		snprintf(err, errlen, "disk %s: io_uring_register_eventfd: %s", d->path, strerror(-ret));
		close(d->event_fd);
		d->event_fd = -1;
		io_uring_queue_exit(&d->ring);
		return ret;
	}
	return 0;
}

static void describe(const struct disk *d)
{
	pr_debug("disk %s: %llu bytes, %s%s%s, block %u/%u", d->path, (unsigned long long)d->size,
		 d->blockdev ? "block device" : "file", d->readonly ? ", read-only" : "",
		 d->direct ? ", O_DIRECT" : "", d->logical_block_size, d->physical_block_size);
}

struct disk *disk_open(const struct disk_spec *spec, char *err, size_t errlen)
{
	struct disk *d = calloc(1, sizeof(*d));

	if (!d || !(d->path = strdup(spec->path))) {
		free(d);
		snprintf(err, errlen, "disk %s: out of memory", spec->path);
		return NULL;
	}
	d->fd = -1;
	d->event_fd = -1;
	d->readonly = spec->readonly;
	d->direct = spec->direct;
	memcpy(d->serial, spec->serial, sizeof(d->serial));
	d->serial[DISK_SERIAL_MAX] = '\0';

	if (open_file(d, err, errlen))
		goto fail;
	if (setup_ring(d, err, errlen))
		goto fail;
	describe(d);
	return d;
fail:
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d);
	return NULL;
}

/* One file: the same inode, or the same block device through another
 * node (its O_EXCL would refuse a second open too). */
static bool same_file(const struct stat *a, const struct stat *b)
{
	if (a->st_dev == b->st_dev && a->st_ino == b->st_ino)
		return true;
	return S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode) && a->st_rdev == b->st_rdev;
}

int disk_replace(struct disk *d, const char *path, char *err, size_t errlen)
{
	struct disk n = { .readonly = d->readonly, .direct = d->direct, .fd = -1 };
	struct stat cur, st;
	int ret;

	if (d->inflight) {
		snprintf(err, errlen, "disk %s: %u operations in flight", d->path, d->inflight);
		return -EBUSY;
	}
	if (!path || strnlen(path, DISK_PATH_MAX) == DISK_PATH_MAX) {
		snprintf(err, errlen, "disk: path too long (at most %d bytes)", DISK_PATH_MAX - 1);
		return -EINVAL;
	}
	n.path = strdup(path);
	if (!n.path) {
		snprintf(err, errlen, "disk %s: out of memory", path);
		return -ENOMEM;
	}
	if (fstat(d->fd, &cur) == 0 && stat(path, &st) == 0 && same_file(&cur, &st)) {
		/* The file we have (resized?): a second open file description
		 * would conflict with our own flock (and O_EXCL). Re-probe
		 * through our fd. */
		n.fd = d->fd;
		n.blockdev = d->blockdev;
		ret = probe(&n, &cur, err, errlen);
	} else {
		ret = open_file(&n, err, errlen);
	}
	if (ret) {
		free(n.path);
		return ret;
	}
	/* The ring registers only the eventfd, no files (no
	 * IORING_REGISTER_FILES): every SQE names d->fd when prepared, and
	 * none is in flight. Closing the old fd drops its lock. */
	if (n.fd != d->fd)
		close(d->fd);
	d->fd = n.fd;
	d->blockdev = n.blockdev;
	d->size = n.size;
	d->logical_block_size = n.logical_block_size;
	d->physical_block_size = n.physical_block_size;
	d->dio_mem_align = n.dio_mem_align;
	d->dio_offset_align = n.dio_offset_align;
	free(d->path);
	d->path = n.path;
	describe(d);
	return 0;
}

void disk_close(struct disk *d)
{
	void *tag;
	int res;

	if (!d)
		return;
	if (d->event_fd >= 0) {
		/* The kernel may still be reading or writing the buffers of
		 * what is in flight: let it finish first. */
		while (disk_wait(d, &tag, &res) > 0)
			;
		io_uring_queue_exit(&d->ring);
		close(d->event_fd);
	}
	close(d->fd);
	free(d->path);
	free(d);
}

bool disk_dio_aligned(const struct disk *d, uint64_t offset, const struct iovec *iov, unsigned n)
{
	uint64_t mem_mask = d->dio_mem_align - 1, off_mask = d->dio_offset_align - 1;

	if (!d->direct)
		return true;
	if (offset & off_mask)
		return false;
	for (unsigned i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base & mem_mask) || (iov[i].iov_len & off_mask))
			return false;
	return true;
}

/* --- asynchronous operations --- */

static struct io_uring_sqe *get_sqe(struct disk *d)
{
	struct io_uring_sqe *sqe;

	if (d->inflight >= DISK_QUEUE_DEPTH)
		return NULL;
	sqe = io_uring_get_sqe(&d->ring);
	if (sqe)
		d->inflight++;
	return sqe;
}

int disk_prep_readv(struct disk *d, const struct iovec *iov, unsigned n, uint64_t offset, void *tag)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_readv(sqe, d->fd, iov, n, offset);
	io_uring_sqe_set_data(sqe, tag);
	return 0;
}

int disk_prep_writev(struct disk *d, const struct iovec *iov, unsigned n, uint64_t offset,
		     bool sync, void *tag)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_writev2(sqe, d->fd, iov, n, offset, sync ? RWF_DSYNC : 0);
	io_uring_sqe_set_data(sqe, tag);
	return 0;
}

int disk_prep_flush(struct disk *d, void *tag)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data(sqe, tag);
	return 0;
}

int disk_prep_fallocate(struct disk *d, int mode, uint64_t offset, uint64_t len, void *tag)
{
	struct io_uring_sqe *sqe = get_sqe(d);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_fallocate(sqe, d->fd, mode, (off_t)offset, (off_t)len);
	io_uring_sqe_set_data(sqe, tag);
	return 0;
}

int disk_submit(struct disk *d)
{
	while (io_uring_sq_ready(&d->ring)) {
		int ret = io_uring_submit(&d->ring);

		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		if (ret == 0)
			return -EAGAIN;
	}
	return 0;
}

static int take(struct disk *d, struct io_uring_cqe *cqe, void **tag, int *res)
{
	*tag = io_uring_cqe_get_data(cqe);
	*res = cqe->res;
	io_uring_cqe_seen(&d->ring, cqe);
	d->inflight--;
	return 1;
}

int disk_reap(struct disk *d, void **tag, int *res)
{
	struct io_uring_cqe *cqe;
	int ret = io_uring_peek_cqe(&d->ring, &cqe);

	if (ret == -EAGAIN)
		return 0;
	if (ret < 0)
		return ret;
	return take(d, cqe, tag, res);
}

int disk_wait(struct disk *d, void **tag, int *res)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (d->inflight == 0)
		return 0;
	/* What is only queued would never complete. */
	ret = disk_submit(d);
	if (ret < 0)
		return ret;
	do
		ret = io_uring_wait_cqe(&d->ring, &cqe);
	while (ret == -EINTR);
	if (ret < 0)
		return ret;
	return take(d, cqe, tag, res);
}
