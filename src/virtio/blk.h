/* virtio-blk, the block device (virtio 1.2 §5.2), over a struct disk
 * (virtio/disk.h): one request queue, requests served asynchronously
 * through the disk's io_uring with up to DISK_QUEUE_DEPTH in flight.
 *
 * Features offered (§5.2.3): SEG_MAX, SIZE_MAX, BLK_SIZE, FLUSH,
 * TOPOLOGY, and DISCARD and WRITE_ZEROES on a writable disk, RO on a
 * read-only one. Requests (§5.2.6): IN and OUT (readv/writev), FLUSH
 * (fdatasync), GET_ID (the serial), DISCARD and WRITE_ZEROES
 * (fallocate); any other type gets VIRTIO_BLK_S_UNSUPP.
 *
 * Threads: requests are parsed and submitted in queue_ready (the worker,
 * device lock held); completions arrive on the disk's eventfd, which the
 * same worker watches (virtio_blk_attach), and are pushed to the used
 * ring under the device lock. A device reset waits for every request in
 * flight before the queue memory is forgotten; virtio_blk_replace_disk
 * waits for them too, but completes them.
 *
 * Wiring (see docs/virtio-blk.md):
 *
 *	struct disk *disk = disk_open(&spec, err, errlen);
 *	struct virtio_blk *blk = disk ? virtio_blk_create(disk, err, errlen) : NULL;
 *	struct virtio_pci *vp = blk ? virtio_pci_create(vm, bus, routing,
 *			virtio_blk_ops(blk), blk, err, errlen) : NULL;
 *	if (vp && virtio_blk_attach(blk, virtio_pci_dev(vp), vp->worker, err, errlen)) ...
 *
 * and after vm_join(): virtio_pci_destroy(vp), then virtio_blk_destroy(blk)
 * (which closes the disk).
 */
#ifndef POPEK_VIRTIO_BLK_H
#define POPEK_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/disk.h"
#include "virtio/virtio.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX       1
#define VIRTIO_BLK_F_SEG_MAX        2
#define VIRTIO_BLK_F_GEOMETRY       4
#define VIRTIO_BLK_F_RO             5
#define VIRTIO_BLK_F_BLK_SIZE       6
#define VIRTIO_BLK_F_FLUSH          9
#define VIRTIO_BLK_F_TOPOLOGY       10
#define VIRTIO_BLK_F_CONFIG_WCE     11
#define VIRTIO_BLK_F_MQ             12
#define VIRTIO_BLK_F_DISCARD        13
#define VIRTIO_BLK_F_WRITE_ZEROES   14

/* Request types (§5.2.6). */
#define VIRTIO_BLK_T_IN             0
#define VIRTIO_BLK_T_OUT            1
#define VIRTIO_BLK_T_FLUSH          4
#define VIRTIO_BLK_T_GET_ID         8
#define VIRTIO_BLK_T_GET_LIFETIME   10
#define VIRTIO_BLK_T_DISCARD        11
#define VIRTIO_BLK_T_WRITE_ZEROES   13
#define VIRTIO_BLK_T_SECURE_ERASE   14

/* Request status (§5.2.6). */
#define VIRTIO_BLK_S_OK             0
#define VIRTIO_BLK_S_IOERR          1
#define VIRTIO_BLK_S_UNSUPP         2

/* Flags of a discard / write-zeroes segment (§5.2.6). */
#define VIRTIO_BLK_WZ_UNMAP         1u

#define VIRTIO_BLK_ID_BYTES         20
#define VIRTIO_BLK_QUEUE_SIZE       256
/* Data buffers per request: the queue size less the header and status
 * descriptors, as QEMU (seg_max). */
#define VIRTIO_BLK_SEG_MAX          (VIRTIO_BLK_QUEUE_SIZE - 2)
/* Largest data buffer (size_max). Bounds a bounced request (cache=none
 * with unaligned buffers) to SEG_MAX * SIZE_MAX bytes. */
#define VIRTIO_BLK_SIZE_MAX         (128u * 1024)
/* Per discard / write-zeroes request: segments, and sectors per segment
 * (QEMU's limit, just under 2 GiB). */
#define VIRTIO_BLK_DISCARD_SEG_MAX  32
#define VIRTIO_BLK_DISCARD_SECTORS_MAX 0x3fffffu
/* Bytes of bounce buffers in flight at once (cache=none): one request
 * of the largest size a conforming driver can send fits. */
#define VIRTIO_BLK_BOUNCE_BUDGET    ((uint64_t)VIRTIO_BLK_SEG_MAX * VIRTIO_BLK_SIZE_MAX)

/* struct virtio_blk_config (§5.2.4) up to write_zeroes_may_unmap and its
 * padding; little-endian. */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

struct virtio_blk_stats {
	unsigned long long reads, writes, flushes, discards, write_zeroes, get_ids;
	unsigned long long read_bytes, write_bytes;
	unsigned long long ioerr, unsupp;     /* requests completed with these */
	unsigned long long bounced;           /* cache=none requests through a bounce buffer */
	unsigned long long throttled;         /* times the rate limiter made the queue wait */
};

struct rate_limit_params;
struct virtio_blk;
struct virtio_worker;

/* A virtio-blk device over disk, which it owns from now on (closed by
 * virtio_blk_destroy, or here on failure). NULL with err set. */
struct virtio_blk *virtio_blk_create(struct disk *disk, char *err, size_t errlen);

/* The device's description for virtio_pci_create(): its features depend
 * on the disk (RO, DISCARD...), so each device has its own. */
const struct virtio_device_ops *virtio_blk_ops(const struct virtio_blk *blk);

/* Connects the device to its virtio_dev (the transport's) and has worker
 * watch the disk's completion eventfd. worker may be NULL (tests: call
 * virtio_blk_complete() when disk_event_fd() is readable). Before the
 * vCPUs run. 0, or -errno with err set. */
int virtio_blk_attach(struct virtio_blk *blk, struct virtio_dev *dev, struct virtio_worker *worker,
		      char *err, size_t errlen);

/* Rate limits (NULL: none) for the requests the device starts from now
 * on (rate_limiter.h); at creation or at run time (PATCH /drives). New
 * limits start with full buckets; the same ones again change nothing. */
void virtio_blk_set_rate_limit(struct virtio_blk *blk, const struct rate_limit_params *p);

/* The limiter's timerfd is readable (tests without a worker): the queue is
 * kicked for another try. */
void virtio_blk_limiter_ready(struct virtio_blk *blk);

/* Reaps the disk's completions and pushes the finished requests to the
 * used ring; takes the device lock. The worker calls it. */
void virtio_blk_complete(struct virtio_blk *blk);

/* Requests in flight (submitted to the disk, or parked for bounce memory). */
unsigned virtio_blk_inflight(struct virtio_blk *blk);

struct disk *virtio_blk_disk(struct virtio_blk *blk);
/* A snapshot, under the device lock: not from a device callback. */
struct virtio_blk_stats virtio_blk_stats(struct virtio_blk *blk);

/* Changes the disk's backing file at run time, or re-reads its size when
 * path names the file it has (Firecracker's PATCH /drives/{id}). Takes the
 * device lock, so no new request starts; waits for the requests in
 * flight, which complete against the old file and are used as usual;
 * disk_replace() (same mode: a read-only disk stays read-only); rebuilds
 * the configuration (capacity, block sizes), bumps config_generation and
 * sends a configuration change notification (§2.5.1, §4.1.5.3: Linux then
 * re-reads the capacity); drops the lock and kicks the queue, so what the
 * driver made available meanwhile is processed, against the new file.
 * Requests beyond the new capacity then get IOERR. Statistics carry on.
 * On failure (one line in err, as disk_open's) the old file stays and the
 * configuration is untouched; the queue is kicked all the same.
 * Any thread but a device callback's (the lock is not recursive): the API
 * thread. Blocks while the requests in flight finish; vCPUs touching this
 * device wait for the lock meanwhile. 0 or -errno. */
int virtio_blk_replace_disk(struct virtio_blk *blk, const char *path, char *err, size_t errlen);

/* Waits for the requests in flight (their results are dropped), then
 * frees the device and closes the disk. After virtio_pci_destroy(). NULL
 * is fine. */
void virtio_blk_destroy(struct virtio_blk *blk);

#endif
