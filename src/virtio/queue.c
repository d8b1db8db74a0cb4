#include "virtio/queue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "virtio/virtio.h"

/* Offsets, in uint16_t units, of the fields of the avail and used rings
 * (§2.7.6, §2.7.8). */
#define AVAIL_FLAGS     0
#define AVAIL_IDX       1
#define AVAIL_RING      2
#define USED_FLAGS      0
#define USED_IDX        1
#define USED_RING       2          /* elems start here, 8 bytes each */

/* Guest memory is shared with a guest that may write it at any moment:
 * every load is a single atomic access, so a value is read once and the
 * compiler cannot fetch it again later (double fetch). */
static inline uint16_t load16(const uint16_t *p, int order)
{
	return le16toh(__atomic_load_n(p, order));
}

static inline void store16(uint16_t *p, uint16_t v, int order)
{
	__atomic_store_n(p, htole16(v), order);
}

static uint16_t *used_event(struct virtq *q)
{
	return &q->avail[AVAIL_RING + q->size];
}

static uint16_t *avail_event(struct virtq *q)
{
	/* After the flags, idx and size 8-byte elements. */
	return &q->used[USED_RING + 4 * (size_t)q->size];
}

void virtq_reset(struct virtq *q, uint16_t max_size)
{
	memset(q, 0, sizeof(*q));
	q->max_size = max_size;
	q->size = max_size;
}

static int enable_fail(struct virtq *q, const char *why)
{
	q->error = why;
	return -EINVAL;
}

static void *map_part(const struct virtq *q, uint64_t gpa, uint64_t len, uint64_t align)
{
	if (gpa & (align - 1))
		return NULL;
	return guest_memory_ptr(q->mem, gpa, len);
}

int virtq_enable(struct virtq *q, const struct guest_memory *mem, uint64_t features)
{
	uint16_t n = q->size;

	q->enabled = false;
	q->error = NULL;
	/* §2.7: the queue size is a power of two; popek offers max_size. */
	if (n == 0 || (n & (n - 1)) || n > q->max_size)
		return enable_fail(q, "queue size is not a power of two within the maximum");
	q->mem = mem;
	q->desc = map_part(q, q->desc_addr, VIRTQ_DESC_BYTES(n), VIRTQ_DESC_ALIGN);
	if (!q->desc)
		return enable_fail(q, "descriptor table not in RAM or misaligned");
	q->avail = map_part(q, q->driver_addr, VIRTQ_AVAIL_BYTES(n), VIRTQ_AVAIL_ALIGN);
	if (!q->avail)
		return enable_fail(q, "available ring not in RAM or misaligned");
	q->used = map_part(q, q->device_addr, VIRTQ_USED_BYTES(n), VIRTQ_USED_ALIGN);
	if (!q->used)
		return enable_fail(q, "used ring not in RAM or misaligned");
	q->event_idx = features & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	q->indirect = features & (1ULL << VIRTIO_F_RING_INDIRECT_DESC);
	q->last_avail_idx = 0;
	q->used_idx = 0;
	q->signalled_used = 0;
	q->signalled_used_valid = false;
	q->broken = false;
	/* §2.7.10.2: the device sets flags to 0 with EVENT_IDX, and popek
	 * never asks for suppression through the flag without it. The
	 * driver initialised the used ring, but a hostile one may not
	 * have. */
	store16(&q->used[USED_FLAGS], 0, __ATOMIC_RELAXED);
	if (q->event_idx)
		store16(avail_event(q), 0, __ATOMIC_RELAXED);
	q->enabled = true;
	return 0;
}

static int fail(struct virtq *q, const char *why)
{
	q->broken = true;
	q->error = why;
	return -EIO;
}

/* Reads descriptor i of a table once, field by field (the table may be an
 * unaligned indirect table, hence memcpy, then a compiler barrier so the
 * copy cannot be replaced by later reads of guest memory). */
static void read_desc(const struct virtq_desc *table, unsigned i, struct virtq_desc *d)
{
	memcpy(d, &table[i], sizeof(*d));
	__asm__ __volatile__("" ::: "memory");
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

/* The number of entries the driver has made available, or -1 when avail
 * idx is more than a ring ahead of us (§2.7.13.3: the driver adds at most
 * size entries before the device consumed them). */
static int avail_count(struct virtq *q)
{
	/* Acquire: the ring entries (and the descriptors they name) written
	 * before idx are visible once idx is (§2.7.13.3). */
	uint16_t idx = load16(&q->avail[AVAIL_IDX], __ATOMIC_ACQUIRE);
	uint16_t n = idx - q->last_avail_idx;

	return n > q->size ? -1 : n;
}

static int walk_chain(struct virtq *q, uint16_t head, struct virtq_req *req)
{
	const struct virtq_desc *table = q->desc;
	unsigned table_size = q->size, idx = head, seen = 0;
	bool in_indirect = false, seen_write = false;
	uint64_t total = 0;
	struct virtq_desc d;

	req->head = head;
	req->nread = req->nwrite = 0;
	req->read_len = req->write_len = 0;
	for (;;) {
		/* A chain visits each entry of its table at most once, so
		 * one longer than the table loops (§2.7.5.2). */
		if (++seen > table_size)
			return fail(q, "descriptor chain loops or is longer than its table");
		read_desc(table, idx, &d);

		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* §2.7.5.3.1: only when negotiated, never inside an
			 * indirect table, never together with NEXT. */
			if (!q->indirect)
				return fail(q, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
			if (in_indirect)
				return fail(q, "indirect descriptor inside an indirect table");
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return fail(q, "indirect descriptor with NEXT set");
			if (d.len == 0 || d.len % sizeof(struct virtq_desc) ||
			    d.len / sizeof(struct virtq_desc) > VIRTQ_MAX_INDIRECT)
				return fail(q, "indirect table length is 0, not a multiple of 16 or too large");
			table = guest_memory_ptr(q->mem, d.addr, d.len);
			if (!table)
				return fail(q, "indirect table not in RAM");
			/* §2.7.5.3.2: the WRITE flag of this descriptor is
			 * ignored; the table restarts the count. */
			table_size = d.len / sizeof(struct virtq_desc);
			idx = 0;
			seen = 0;
			in_indirect = true;
			continue;
		}

		if (req->nread + req->nwrite >= VIRTQ_MAX_CHAIN)
			return fail(q, "descriptor chain longer than VIRTQ_MAX_CHAIN");
		/* §2.7.5.2: 2^32 bytes in total at most. d.len < 2^32 and
		 * total <= 2^32 before, so this cannot overflow. */
		total += d.len;
		if (total > VIRTQ_MAX_CHAIN_BYTES)
			return fail(q, "descriptor chain longer than 2^32 bytes");
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			if (d.len) {
				void *p = guest_memory_ptr(q->mem, d.addr, d.len);

				if (!p)
					return fail(q, "buffer not in RAM");
				req->iov[req->nread + req->nwrite++] =
					(struct iovec){ .iov_base = p, .iov_len = d.len };
			}
			/* Zero-length buffers carry no data: no iovec. */
			req->write_len += d.len;
			seen_write = true;
		} else {
			/* §2.7.4.2: device-writable descriptors come after
			 * all device-readable ones (zero-length ones count:
			 * they carry no data but still break the order). */
			if (seen_write)
				return fail(q, "device-readable descriptor after a device-writable one");
			if (d.len) {
				void *p = guest_memory_ptr(q->mem, d.addr, d.len);

				if (!p)
					return fail(q, "buffer not in RAM");
				req->iov[req->nread++] = (struct iovec){ .iov_base = p, .iov_len = d.len };
			}
			req->read_len += d.len;
		}

		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= table_size)
			return fail(q, "next descriptor index out of range");
		idx = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_req *req)
{
	uint16_t head;
	int n, ret;

	if (q->broken)
		return -EIO;
	if (!q->enabled)
		return 0;
	n = avail_count(q);
	if (n == 0 && q->event_idx) {
		/* §2.7.10: ask for a notification when the driver makes
		 * entry last_avail_idx available, then look again: the
		 * driver may have added one before it saw avail_event. The
		 * full fence orders our store before that load (the driver
		 * pairs it with its own fence between writing idx and
		 * reading avail_event). */
		store16(avail_event(q), q->last_avail_idx, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		n = avail_count(q);
	}
	if (n < 0)
		return fail(q, "available index more than the queue size ahead");
	if (n == 0)
		return 0;

	head = load16(&q->avail[AVAIL_RING + (q->last_avail_idx & (q->size - 1))], __ATOMIC_RELAXED);
	if (head >= q->size)
		return fail(q, "available ring entry out of range");
	ret = walk_chain(q, head, req);
	if (ret)
		return ret;
	q->last_avail_idx++;
	return 1;
}

void virtq_push(struct virtq *q, const struct virtq_req *req, uint32_t written)
{
	struct virtq_used_elem *elem;

	if (!q->enabled || q->broken)
		return;
	/* §2.7.8.2: len is what was written at least; never more than the
	 * writable buffers can hold. */
	if (written > req->write_len)
		written = (uint32_t)req->write_len;
	elem = (struct virtq_used_elem *)&q->used[USED_RING] + (q->used_idx & (q->size - 1));
	__atomic_store_n(&elem->id, htole32(req->head), __ATOMIC_RELAXED);
	__atomic_store_n(&elem->len, htole32(written), __ATOMIC_RELAXED);
	q->used_idx++;
	/* Release: the element and the data written to the buffers are
	 * visible before the new idx is (§2.7.8.2: len is set before idx). */
	store16(&q->used[USED_IDX], q->used_idx, __ATOMIC_RELEASE);
}

bool virtq_needs_notify(struct virtq *q)
{
	uint16_t old, new;
	bool valid;

	if (!q->enabled || q->broken)
		return false;
	/* Our used->idx store must be visible before we read what the
	 * driver asked for, or we could miss its update (it writes
	 * used_event, fences, then reads used->idx). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	old = q->signalled_used;
	valid = q->signalled_used_valid;
	new = q->used_idx;
	if (old == new)
		return false;   /* nothing pushed since the last decision */
	q->signalled_used = new;
	q->signalled_used_valid = true;
	if (!q->event_idx) {
		/* §2.7.7.2: flags 1 means no notification. */
		return !(load16(&q->avail[AVAIL_FLAGS], __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	if (!valid)
		return true;
	return vring_need_event(load16(used_event(q), __ATOMIC_RELAXED), new, old);
}

bool virtq_has_avail(struct virtq *q)
{
	if (!q->enabled || q->broken)
		return false;
	return avail_count(q) != 0;
}

size_t virtq_req_read(const struct virtq_req *req, uint64_t offset, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < req->nread && done < len; i++) {
		const struct iovec *v = &req->iov[i];
		size_t n;

		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		n = v->iov_len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)dst + done, (uint8_t *)v->iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t virtq_req_write(const struct virtq_req *req, uint64_t offset, const void *src, size_t len)
{
	const struct iovec *w = req->iov + req->nread;
	size_t done = 0;

	for (unsigned i = 0; i < req->nwrite && done < len; i++) {
		const struct iovec *v = &w[i];
		size_t n;

		if (offset >= v->iov_len) {
			offset -= v->iov_len;
			continue;
		}
		n = v->iov_len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)v->iov_base + offset, (const uint8_t *)src + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
