/* The host side of a virtual disk: a raw image file or a host block
 * device, opened, locked and sized (again when disk_replace changes or
 * re-reads the file), then read and written asynchronously through
 * io_uring.
 *
 *   --disk PATH[,ro][,serial=ID][,cache=none|writeback]
 *
 * Locking: an advisory flock() on the open file, exclusive for a
 * read-write disk and shared for a read-only one, taken without waiting:
 * two popek processes cannot both write one image, and none can write an
 * image another one reads (or the other way round). A read-write block
 * device is also opened O_EXCL, which the kernel refuses while the
 * device is mounted or claimed by another exclusive opener.
 *
 * cache=none opens the file O_DIRECT (no host page cache). The kernel
 * then wants the file offset and every buffer length aligned to the
 * direct-I/O offset alignment, and buffer addresses to the memory
 * alignment (statx STATX_DIOALIGN; else the logical block size of a
 * device, 512 for a file): disk_dio_aligned() tells whether an I/O
 * qualifies; virtio-blk bounces the ones that do not (docs/virtio-blk.md).
 *
 * Asynchronous I/O: one io_uring per disk, DISK_QUEUE_DEPTH entries, with
 * an eventfd registered (disk_event_fd) that becomes readable when
 * completions are posted; the device's worker thread watches it. Every
 * operation carries a tag handed back with its result (a byte count or
 * -errno, as the system call would return). The ring is not locked:
 * one thread at a time (virtio-blk holds the device lock).
 */
#ifndef POPEK_VIRTIO_DISK_H
#define POPEK_VIRTIO_DISK_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/rate_limiter.h"

/* A path as the kernel takes it (PATH_MAX). */
#define DISK_PATH_MAX       4096
/* virtio 1.2 §5.2.6: the device ID string, NUL-padded, up to 20 bytes
 * (VIRTIO_BLK_ID_BYTES). */
#define DISK_SERIAL_MAX     20
/* Operations in flight at once, per disk. */
#define DISK_QUEUE_DEPTH    128
#define DISK_SECTOR_SIZE    512

/* What --disk says. */
struct disk_spec {
	char path[DISK_PATH_MAX];
	bool readonly;                      /* ro */
	bool direct;                        /* cache=none: O_DIRECT */
	char serial[DISK_SERIAL_MAX + 1];   /* serial=ID; "" when not given */
	struct rate_limit_params limit;     /* the API's rate_limiter; zero: none */
};

struct disk {
	char *path;
	int fd;
	bool readonly;
	bool direct;
	bool blockdev;                      /* a host block device, else a regular file */
	uint64_t size;                      /* bytes */
	uint32_t logical_block_size;        /* reported to the guest (blk_size) */
	uint32_t physical_block_size;
	/* O_DIRECT constraints (both 1 without cache=none). */
	uint32_t dio_mem_align;
	uint32_t dio_offset_align;
	char serial[DISK_SERIAL_MAX + 1];

	struct io_uring ring;
	int event_fd;
	unsigned inflight;                  /* submitted or queued, not yet reaped */
};

/* Parses the argument of --disk: "PATH[,KEY[=VALUE]]..." with keys ro,
 * serial=ID (1 to 20 printable ASCII characters), cache=none or
 * cache=writeback (the default). A comma inside PATH is written ",,".
 * Returns 0, or -EINVAL with one line in err naming the problem. */
int disk_spec_parse(const char *arg, struct disk_spec *out, char *err, size_t errlen);

/* Opens, checks, locks and sizes the disk and sets up its io_uring.
 * NULL with one line in err ("disk PATH: ...") on failure. */
struct disk *disk_open(const struct disk_spec *spec, char *err, size_t errlen);

/* Changes the file under an open disk (Firecracker's PATCH /drives/{id}),
 * keeping its io_uring and eventfd, mode (readonly, direct) and serial.
 * Nothing may be in flight (-EBUSY otherwise: the caller drains). path is
 * opened, checked, locked and probed exactly as disk_open does; then the
 * new fd, path, size, block sizes and alignments replace the old ones and
 * the old fd is closed (its lock with it). When path names the file the
 * disk already has (same st_dev and st_ino, or the same block device), it
 * is not opened again (our own flock would refuse it): only its size and
 * block sizes are probed again, e.g. after the file was resized. 0, or
 * -errno with one line in err ("disk PATH: ...", as disk_open) and d
 * unchanged. Same threading as the ring: one thread at a time. */
int disk_replace(struct disk *d, const char *path, char *err, size_t errlen);

/* Waits for every operation in flight (their results are dropped), then
 * closes everything. NULL is fine. */
void disk_close(struct disk *d);

/* Capacity in 512-byte sectors (a partial last sector is not usable). */
static inline uint64_t disk_sectors(const struct disk *d)
{
	return d->size / DISK_SECTOR_SIZE;
}

/* Whether an I/O of these buffers at offset can go to the file as it is
 * under O_DIRECT (always true without it). */
bool disk_dio_aligned(const struct disk *d, uint64_t offset, const struct iovec *iov, unsigned n);

/* --- asynchronous operations --- */

/* Readable when completions may be waiting: read it (it is non-blocking),
 * then disk_reap() until it returns 0. */
static inline int disk_event_fd(const struct disk *d)
{
	return d->event_fd;
}

/* Queue an operation (not yet submitted). iov must stay valid until
 * disk_submit() returns. 0, or -EBUSY when DISK_QUEUE_DEPTH operations
 * are already in flight. */
int disk_prep_readv(struct disk *d, const struct iovec *iov, unsigned n, uint64_t offset, void *tag);
/* sync: RWF_DSYNC, the data is on stable storage when it completes. */
int disk_prep_writev(struct disk *d, const struct iovec *iov, unsigned n, uint64_t offset,
		     bool sync, void *tag);
/* fdatasync(): IORING_FSYNC_DATASYNC. */
int disk_prep_flush(struct disk *d, void *tag);
/* fallocate(2) with mode (FALLOC_FL_*). */
int disk_prep_fallocate(struct disk *d, int mode, uint64_t offset, uint64_t len, void *tag);

/* Hands the queued operations to the kernel. 0 or -errno. */
int disk_submit(struct disk *d);

/* Takes one completion: 1 with its tag and result, 0 when there is none
 * (disk_reap) or nothing is in flight (disk_wait), or -errno. disk_wait
 * blocks until one arrives. */
int disk_reap(struct disk *d, void **tag, int *res);
int disk_wait(struct disk *d, void **tag, int *res);

#endif
