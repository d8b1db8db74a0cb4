/* Split virtqueues (virtio 1.2 §2.7), device side.
 *
 * The three rings live in guest RAM and the guest is hostile: every index,
 * address, length and flag it wrote is checked before use, and each value
 * is read from guest memory exactly once (a second read could see a
 * different value). Host pointers come only from guest_memory_ptr(),
 * which refuses any range that is not entirely RAM.
 *
 * A broken ring (a driver that violated one of the spec's MUSTs in a way
 * the device cannot work around) marks the queue broken: virtq_pop()
 * returns -EIO from then on and the device model (virtio.c) sets
 * DEVICE_NEEDS_RESET (§2.1.2). Nothing of the chain is used.
 *
 * Threading: a virtq is used by one thread at a time (the device's worker,
 * with the device lock held); the transport configures it only while it
 * is disabled, under the same lock.
 */
#ifndef POPEK_VIRTIO_QUEUE_H
#define POPEK_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/memory.h"

/* The largest queue size popek offers (a power of two, §2.7: at most
 * 32768); QEMU's VIRTQUEUE_MAX_SIZE. */
#define VIRTQ_MAX_SIZE          1024
/* Descriptors one request may hold, indirect ones included: bounds the
 * iovec array of struct virtq_req. §2.7.5.3.1 says a chain MUST NOT be
 * longer than the queue size, but Linux puts more entries in an indirect
 * table when the device allows it (virtio-blk seg_max) and QEMU accepts
 * that, so indirect chains are held to this fixed limit instead; direct
 * chains are held to the queue size (a longer one must loop). */
#define VIRTQ_MAX_CHAIN         1024
/* Entries of one indirect table (§2.7.5.3.1). */
#define VIRTQ_MAX_INDIRECT      VIRTQ_MAX_CHAIN
/* §2.7.5.2: drivers MUST NOT add a chain longer than 2^32 bytes in total. */
#define VIRTQ_MAX_CHAIN_BYTES   (1ULL << 32)

/* Descriptor flags (§2.7.5). */
#define VIRTQ_DESC_F_NEXT       1
#define VIRTQ_DESC_F_WRITE      2
#define VIRTQ_DESC_F_INDIRECT   4
/* Ring flags (§2.7.6, §2.7.8). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY  1

/* Ring layouts (§2.7.5, §2.7.6, §2.7.8), all little-endian. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* Bytes of each part for a queue of size n, with the event-index fields
 * (used_event, avail_event) included: §2.7 sizes them so. */
#define VIRTQ_DESC_BYTES(n)     (16ULL * (n))
#define VIRTQ_AVAIL_BYTES(n)    (6ULL + 2ULL * (n))
#define VIRTQ_USED_BYTES(n)     (6ULL + 8ULL * (n))
/* Alignment each part must have (§2.7, table "Virtqueue Part Alignment"). */
#define VIRTQ_DESC_ALIGN        16
#define VIRTQ_AVAIL_ALIGN       2
#define VIRTQ_USED_ALIGN        4

struct virtq {
	/* Set by the transport while the queue is disabled (virtio 1.2
	 * §4.1.4.3: queue_size, queue_desc, queue_driver, queue_device). */
	uint16_t max_size;         /* what the device offers */
	uint16_t size;             /* what the driver chose; checked on enable */
	uint64_t desc_addr, driver_addr, device_addr;

	/* Set by virtq_enable(). */
	bool enabled;
	bool event_idx;            /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;             /* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	const struct guest_memory *mem;
	struct virtq_desc *desc;   /* host views of the rings */
	uint16_t *avail;           /* flags, idx, ring[size], used_event */
	uint16_t *used;            /* flags, idx, then elems; avail_event */

	/* Device-side state. */
	uint16_t last_avail_idx;   /* next avail ring entry to consume */
	uint16_t used_idx;         /* our used->idx (never read back) */
	uint16_t signalled_used;   /* used_idx when we last notified */
	bool signalled_used_valid;
	bool broken;               /* the driver broke the ring: see error */
	const char *error;         /* why, for the log */
};

/* One descriptor chain, as host iovecs pointing into guest RAM: first the
 * device-readable buffers (nread of them, read_len bytes), then the
 * device-writable ones (nwrite, write_len bytes). Zero-length descriptors
 * are skipped. The guest may change these bytes at any time: copy what
 * you parse before checking it. About 16 KiB: allocate, don't put many
 * on a stack. */
struct virtq_req {
	uint16_t head;             /* the chain's head index, for the used ring */
	unsigned nread, nwrite;
	uint64_t read_len, write_len;
	struct iovec iov[VIRTQ_MAX_CHAIN];
};

static inline struct iovec *virtq_req_write_iov(struct virtq_req *req)
{
	return req->iov + req->nread;
}

/* Back to the state after device reset (§2.4): disabled, size = max_size,
 * addresses 0. */
void virtq_reset(struct virtq *q, uint16_t max_size);

/* queue_enable = 1 (§4.1.4.3.2): checks the size (a power of two, 1 to
 * max_size, §2.7) and that each part lies entirely in guest RAM and is
 * aligned (§2.7), then maps the rings. features: the negotiated feature
 * bits (for EVENT_IDX and INDIRECT_DESC). Returns 0, or -EINVAL with
 * q->error set (the queue stays disabled). */
int virtq_enable(struct virtq *q, const struct guest_memory *mem, uint64_t features);

/* Takes the next available chain. Returns 1 with req filled, 0 when the
 * ring is empty (then, with EVENT_IDX, avail_event asks the driver to
 * notify on the next buffer, §2.7.10, and the ring was checked again
 * after that, so nothing can be missed), or -EIO when the queue is broken
 * (now or earlier): the caller stops and the device needs a reset.
 * Pop until it returns 0 to be sure of being kicked again. */
int virtq_pop(struct virtq *q, struct virtq_req *req);

/* Gives back the last n chains virtq_pop() returned, as QEMU's
 * virtqueue_unpop: the device used none of them (no buffers for a whole
 * frame, a rate limiter said wait), and the driver may not change an
 * available entry before it is used (§2.7.13), so popping them again
 * later finds the same chains, checked again. No notification is asked
 * for: the caller comes back by itself (new buffers, a timer). */
static inline void virtq_unpop(struct virtq *q, unsigned n)
{
	q->last_avail_idx -= (uint16_t)n;
}

/* Puts the chain back in the used ring with the number of bytes written
 * to its writable buffers (clamped to req->write_len), then publishes
 * used->idx with release semantics (§2.7.8, §2.7.13.3). */
void virtq_push(struct virtq *q, const struct virtq_req *req, uint32_t written);

/* Whether the driver wants a used-buffer notification for what was
 * pushed since the last time this returned true (§2.7.7.2, §2.7.10):
 * with EVENT_IDX, vring_need_event on used_event; otherwise unless
 * VIRTQ_AVAIL_F_NO_INTERRUPT is set. Records the decision point. */
bool virtq_needs_notify(struct virtq *q);

/* Whether buffers are available (a snapshot; 0 on a broken queue). */
bool virtq_has_avail(struct virtq *q);

/* §2.7.10: notify iff new_idx moved past event_idx since old_idx, in
 * 16-bit wrapping arithmetic. */
static inline bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

/* Gather from the readable part, starting offset bytes in; returns bytes
 * copied (less than len when the buffers end first). */
size_t virtq_req_read(const struct virtq_req *req, uint64_t offset, void *dst, size_t len);
/* Scatter into the writable part, starting offset bytes in; returns bytes
 * copied. */
size_t virtq_req_write(const struct virtq_req *req, uint64_t offset, const void *src, size_t len);

#endif
