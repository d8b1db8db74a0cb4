/* virtio-balloon, the traditional memory balloon (virtio 1.2 §5.5).
 *
 * The host sets a target (num_pages, in 4 KiB pages) and the guest driver
 * gives that many pages to the balloon: it sends their frame numbers on
 * the inflate queue, and the device hands the host pages behind them back
 * to the host (madvise MADV_DONTNEED on guest RAM's private anonymous
 * mapping, MADV_REMOVE on a shared one). A later access by the guest
 * (after deflating) faults in a zeroed page: deflate only counts.
 *
 * Queues: inflateq (0), deflateq (1), statsq (2, VIRTIO_BALLOON_F_STATS_VQ).
 * Offered: STATS_VQ, and DEFLATE_ON_OOM unless configured off (with it the
 * guest may take pages back when it runs out of memory, so the target is
 * advice, not a limit). Not offered: MUST_TELL_HOST (nothing to do before
 * the guest reuses a page), free page hinting, page poison, reporting.
 *
 * Statistics (§5.5.6.3): the driver keeps one buffer in statsq; the
 * device holds it, and every stats_interval seconds (a timerfd on the
 * device's worker) gives it back (used), which asks the driver to add it
 * again with fresh values; the device parses them on arrival.
 *
 * Threads: the queues and the timer run on the device's worker under the
 * device lock; set_target/actual/stats may be called from any thread (an
 * inner lock guards the values they share).
 *
 * Wiring (src/vmm/builder.c), after pci_attach():
 *
 *	struct balloon_params bc = BALLOON_PARAMS_DEFAULT;
 *	struct virtio_balloon *b = virtio_balloon_create(&vm->mem, &bc, err, errlen);
 *	struct virtio_pci *vp = b ? virtio_pci_create(vm, &bus, &routing,
 *			virtio_balloon_ops(b), b, err, errlen) : NULL;
 *	if (!vp || virtio_balloon_attach(b, virtio_pci_dev(vp), vp->worker, err, errlen))
 *		... error ...
 *
 * then virtio_balloon_set_target() whenever the target changes (API).
 * Teardown: virtio_pci_destroy(vp), then virtio_balloon_destroy(b).
 */
#ifndef POPEK_VIRTIO_BALLOON_H
#define POPEK_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/virtio.h"
#include "vmm/memory.h"

struct virtio_worker;

/* Feature bits (§5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2

/* Page frame numbers are of 4 KiB pages whatever the guest's page size
 * (§5.5.6). */
#define VIRTIO_BALLOON_PFN_SHIFT        12
#define VIRTIO_BALLOON_PAGE_SIZE        (1ULL << VIRTIO_BALLOON_PFN_SHIFT)

#define VIRTIO_BALLOON_INFLATEQ         0
#define VIRTIO_BALLOON_DEFLATEQ         1
#define VIRTIO_BALLOON_STATSQ           2
#define VIRTIO_BALLOON_QUEUE_SIZE       128

/* Statistics tags (§5.5.6.4); 10-15 are Linux's additions
 * (include/uapi/linux/virtio_balloon.h, Linux 6.12), not in virtio 1.2. */
#define VIRTIO_BALLOON_S_SWAP_IN        0
#define VIRTIO_BALLOON_S_SWAP_OUT       1
#define VIRTIO_BALLOON_S_MAJFLT         2
#define VIRTIO_BALLOON_S_MINFLT         3
#define VIRTIO_BALLOON_S_MEMFREE        4
#define VIRTIO_BALLOON_S_MEMTOT         5
#define VIRTIO_BALLOON_S_AVAIL          6
#define VIRTIO_BALLOON_S_CACHES         7
#define VIRTIO_BALLOON_S_HTLB_PGALLOC   8
#define VIRTIO_BALLOON_S_HTLB_PGFAIL    9
#define VIRTIO_BALLOON_S_OOM_KILL       10
#define VIRTIO_BALLOON_S_ALLOC_STALL    11
#define VIRTIO_BALLOON_S_ASYNC_SCAN     12
#define VIRTIO_BALLOON_S_DIRECT_SCAN    13
#define VIRTIO_BALLOON_S_ASYNC_RECLAIM  14
#define VIRTIO_BALLOON_S_DIRECT_RECLAIM 15
#define VIRTIO_BALLOON_S_NR             16

/* One statistic in the stats buffer (§5.5.6.3), little-endian. */
#define VIRTIO_BALLOON_STAT_SIZE        10

/* The device configuration (§5.5.4) up to actual: free_page_hint_cmd_id
 * and poison_val belong to features not offered. */
struct virtio_balloon_config {
	uint32_t num_pages;        /* le32: the target, set by the device */
	uint32_t actual;           /* le32: pages in the balloon, set by the driver */
};

struct balloon_params {
	uint64_t target;           /* initial target, bytes (rounded down to 4 KiB) */
	unsigned stats_interval;   /* seconds between statistics requests; 0: none */
	bool deflate_on_oom;       /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	bool shared_memory;        /* guest RAM is a shared mapping: MADV_REMOVE */
};

#define BALLOON_PARAMS_DEFAULT { .deflate_on_oom = true }

/* The guest's last report. Sizes in bytes, events in counts, as the
 * driver sent them (§5.5.6.4); present has bit 1 << tag set for each
 * statistic the report held (the others read 0). */
struct balloon_stats {
	uint32_t present;
	uint64_t swap_in, swap_out;
	uint64_t major_faults, minor_faults;
	uint64_t free_memory, total_memory, available_memory, disk_caches;
	uint64_t hugetlb_allocations, hugetlb_failures;
	uint64_t oom_kills, alloc_stalls;
	uint64_t async_scans, direct_scans, async_reclaims, direct_reclaims;
	uint64_t updates;          /* reports received since creation */
	uint64_t updated_ns;       /* CLOCK_MONOTONIC time of the last one */
};

/* What the device did (approximate while it runs). */
struct balloon_counters {
	uint64_t inflated_pages;   /* PFNs received on inflateq */
	uint64_t deflated_pages;   /* PFNs received on deflateq */
	uint64_t discarded_pages;  /* pages handed back to the host */
	uint64_t discard_calls;    /* madvise calls (adjacent pages batched) */
	uint64_t bad_pfns;         /* PFNs outside guest RAM, skipped */
};

struct virtio_balloon;

/* NULL with err set on failure. mem must outlive the device. */
struct virtio_balloon *virtio_balloon_create(const struct guest_memory *mem,
					     const struct balloon_params *cfg,
					     char *err, size_t errlen);
void virtio_balloon_destroy(struct virtio_balloon *b);

/* The device type for virtio_pci_create / virtio_dev_init. */
const struct virtio_device_ops *virtio_balloon_ops(struct virtio_balloon *b);

/* Ties the device to its virtio_dev (for configuration interrupts) and
 * watches the statistics timer on the worker (w NULL: tests call
 * virtio_balloon_timer_event). Returns 0 or -errno with err set. */
int virtio_balloon_attach(struct virtio_balloon *b, struct virtio_dev *d,
			  struct virtio_worker *w, char *err, size_t errlen);

/* Sets the balloon's target size: num_pages = bytes / 4096, and a
 * configuration change interrupt when it changed (§5.5.6: the driver acts
 * on it). Any thread. Returns 0, or -ERANGE when bytes exceeds guest
 * RAM. */
int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes);
uint64_t virtio_balloon_target(struct virtio_balloon *b);
/* Bytes the driver says the balloon holds (actual * 4096). Any thread. */
uint64_t virtio_balloon_actual(struct virtio_balloon *b);

/* The guest's last statistics: 0, or -ENODATA when none arrived yet. */
int virtio_balloon_stats(struct virtio_balloon *b, struct balloon_stats *out);
void virtio_balloon_counters(struct virtio_balloon *b, struct balloon_counters *out);

/* Changes the statistics interval (seconds; 0 stops the requests). Any
 * thread. Returns 0 or -errno. */
int virtio_balloon_set_stats_interval(struct virtio_balloon *b, unsigned seconds);

/* The worker's handler for the statistics timer (opaque: the balloon),
 * and the timerfd it watches. */
void virtio_balloon_timer_event(void *opaque);
int virtio_balloon_timer_fd(struct virtio_balloon *b);

#endif
