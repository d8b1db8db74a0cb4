#include "virtio/blk.h"

#include <endian.h>
#include <errno.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/rate_limiter.h"
#include "virtio/worker.h"

/* The request header (§5.2.6: struct virtio_blk_req up to data). */
struct blk_outhdr {
	uint32_t type;
	uint32_t reserved;   /* ioprio in legacy: a hint, ignored */
	uint64_t sector;
} __attribute__((packed));

/* One segment of a discard or write-zeroes request (§5.2.6). */
struct blk_dwz {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
} __attribute__((packed));

_Static_assert(sizeof(struct blk_outhdr) == 16, "virtio_blk_req header");
_Static_assert(sizeof(struct blk_dwz) == 16, "virtio_blk_discard_write_zeroes");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "§5.2.4 layout");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32, "§5.2.4 layout");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36, "§5.2.4 layout");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "§5.2.4 layout");
_Static_assert(sizeof(struct virtio_blk_config) == 60, "§5.2.4 layout");

#define HDR_BYTES       sizeof(struct blk_outhdr)
/* Zero-filled buffer for writing zeroes where fallocate cannot. */
#define ZERO_BUF_BYTES  (64 * 1024)
#define ZERO_IOVS       16
/* Host I/O errors are worth a warning; a guest could cause many. */
#define MAX_WARNINGS    8

/* How a discard or write-zeroes segment is being carried out. */
enum fstage {
	ST_PUNCH,               /* FALLOC_FL_PUNCH_HOLE: deallocate, reads give zeroes */
	ST_DISCARD_BDEV,        /* block device discard (PUNCH_HOLE | NO_HIDE_STALE) */
	ST_ZERO_RANGE,          /* FALLOC_FL_ZERO_RANGE: zeroes, stays allocated */
	ST_PUNCH_THEN_ALLOC,    /* no ZERO_RANGE: punch, then allocate again */
	ST_ALLOC,
	ST_WRITE,               /* neither: write zeroes */
	ST_SYNC,                /* write-through: fdatasync before completing */
};

struct blk_range {
	uint64_t off, len;      /* bytes */
	bool unmap;
};

struct blk_slot {
	struct blk_slot *next_free;
	bool busy;

	/* For the used ring. */
	uint16_t head;
	uint64_t write_len;
	uint8_t *status;        /* last writable byte: guest RAM */
	uint8_t result;
	uint64_t prefix;        /* bytes written from the start of the writable part */

	uint32_t type;
	uint64_t data_len;

	/* IN / OUT: the guest's data buffers, and what goes to the disk
	 * (those, or the bounce buffer). */
	uint64_t offset;        /* disk byte offset of the next I/O */
	uint64_t remaining;
	unsigned niov;
	struct iovec iov[VIRTIO_BLK_SEG_MAX];
	struct iovec *wiov;
	unsigned wn;
	void *bounce;
	struct iovec biov;

	/* DISCARD / WRITE_ZEROES. */
	struct blk_range seg[VIRTIO_BLK_DISCARD_SEG_MAX];
	unsigned nseg, iseg;
	enum fstage stage;
	uint64_t zoff, zleft;   /* ST_WRITE progress in the current segment */
	struct iovec ziov[ZERO_IOVS];
};

struct virtio_blk {
	struct disk *disk;
	struct virtio_device_ops ops;
	struct virtio_blk_config config;    /* little-endian, as the guest reads it */
	struct virtio_dev *dev;

	/* Under the device lock. */
	struct blk_slot *slots;
	struct blk_slot *free_slots;
	unsigned busy;                      /* slots in use */
	struct blk_slot *parked;            /* waits for bounce memory */
	uint64_t bounce_bytes;              /* in flight */
	bool stalled;                       /* stopped popping: kick when a slot frees */
	bool writethrough;                  /* FLUSH not negotiated (§5.2.6.2) */
	bool no_punch, no_zero_range;       /* what the file system refused */
	struct virtq_req *req;              /* popped chain being parsed */
	struct virtq_req *push_req;         /* head and write_len for virtq_push */
	void *zeros;
	struct virtio_blk_stats stats;
	struct rate_limiter limiter;        /* consumed under the device lock */
};

static void warn_io(const struct virtio_blk *blk, const char *what, int err)
{
	static unsigned warnings;

	if (__atomic_fetch_add(&warnings, 1, __ATOMIC_RELAXED) < MAX_WARNINGS)
		pr_warn("virtio-blk %s: %s: %s", blk->disk->path, what, strerror(err));
	else
		pr_debug("virtio-blk %s: %s: %s", blk->disk->path, what, strerror(err));
}

/* --- slots --- */

static struct blk_slot *slot_get(struct virtio_blk *blk)
{
	struct blk_slot *s = blk->free_slots;

	if (!s)
		return NULL;
	blk->free_slots = s->next_free;
	s->busy = true;
	s->bounce = NULL;
	s->result = VIRTIO_BLK_S_IOERR;
	s->prefix = 0;
	s->nseg = s->iseg = 0;
	blk->busy++;
	return s;
}

static void slot_put(struct virtio_blk *blk, struct blk_slot *s)
{
	if (s->bounce) {
		free(s->bounce);
		s->bounce = NULL;
		blk->bounce_bytes -= s->data_len;
	}
	s->busy = false;
	s->next_free = blk->free_slots;
	blk->free_slots = s;
	blk->busy--;
}

static void count(struct virtio_blk *blk, const struct blk_slot *s)
{
	struct virtio_blk_stats *st = &blk->stats;

	if (s->result == VIRTIO_BLK_S_IOERR) {
		st->ioerr++;
		return;
	}
	if (s->result == VIRTIO_BLK_S_UNSUPP) {
		st->unsupp++;
		return;
	}
	switch (s->type) {
	case VIRTIO_BLK_T_IN:
		st->reads++;
		st->read_bytes += s->data_len;
		break;
	case VIRTIO_BLK_T_OUT:
		st->writes++;
		st->write_bytes += s->data_len;
		break;
	case VIRTIO_BLK_T_FLUSH:
		st->flushes++;
		break;
	case VIRTIO_BLK_T_GET_ID:
		st->get_ids++;
		break;
	case VIRTIO_BLK_T_DISCARD:
		st->discards++;
		break;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st->write_zeroes++;
		break;
	}
}

/* The request is over: status byte, used ring (unless the queue is being
 * torn down: push false), slot back. */
static void finish(struct virtio_blk *blk, struct blk_slot *s, bool push)
{
	struct virtq *vq;
	uint64_t written;

	if (push) {
		/* The status is the last writable byte; what precedes it in
		 * the writable part was written only on success (IN data,
		 * GET_ID): §2.7.8.2, len counts bytes written from the start
		 * of the writable buffers. */
		if (s->result != VIRTIO_BLK_S_OK)
			s->prefix = 0;
		written = s->prefix;
		if (s->prefix == s->write_len - 1)
			written = s->write_len;
		__atomic_store_n(s->status, s->result, __ATOMIC_RELAXED);
		blk->push_req->head = s->head;
		blk->push_req->write_len = s->write_len;
		vq = blk->dev ? virtio_dev_vq(blk->dev, 0) : NULL;
		if (vq)
			virtq_push(vq, blk->push_req, (uint32_t)written);   /* release: status first */
		count(blk, s);
	}
	slot_put(blk, s);
}

/* --- data helpers --- */

/* The part [skip, skip + len) of src as iovecs in dst (at most max);
 * -1 when it takes more. */
static int carve(const struct iovec *src, unsigned n, uint64_t skip, uint64_t len,
		 struct iovec *dst, unsigned max)
{
	unsigned out = 0;

	for (unsigned i = 0; i < n && len; i++) {
		uint64_t l = src[i].iov_len, take;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		take = l - skip < len ? l - skip : len;
		if (out == max)
			return -1;
		dst[out].iov_base = (uint8_t *)src[i].iov_base + skip;
		dst[out].iov_len = take;
		out++;
		len -= take;
		skip = 0;
	}
	return (int)out;
}

static void iov_advance(struct iovec **iov, unsigned *n, uint64_t bytes)
{
	while (bytes && *n) {
		if (bytes >= (*iov)->iov_len) {
			bytes -= (*iov)->iov_len;
			(*iov)++;
			(*n)--;
		} else {
			(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + bytes;
			(*iov)->iov_len -= bytes;
			bytes = 0;
		}
	}
}

static void gather(const struct iovec *iov, unsigned n, uint8_t *dst)
{
	for (unsigned i = 0; i < n; i++) {
		memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
}

static void scatter(const struct iovec *iov, unsigned n, const uint8_t *src)
{
	for (unsigned i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, src, iov[i].iov_len);
		src += iov[i].iov_len;
	}
}

/* [sector, sector + sectors) inside the disk, without overflow. */
static bool in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t sectors)
{
	uint64_t cap = disk_sectors(blk->disk);

	return sector <= cap && sectors <= cap - sector;
}

/* --- starting requests --- */

enum start {
	DONE,           /* complete it now with s->result */
	SUBMITTED,      /* an operation is queued on the disk */
	PARKED,         /* waits for bounce memory */
	FATAL,          /* the device needs a reset; nothing to push */
};

static enum start submit_rw(struct virtio_blk *blk, struct blk_slot *s)
{
	int ret;

	if (s->type == VIRTIO_BLK_T_IN)
		ret = disk_prep_readv(blk->disk, s->wiov, s->wn, s->offset, s);
	else
		ret = disk_prep_writev(blk->disk, s->wiov, s->wn, s->offset, blk->writethrough, s);
	if (ret) {
		warn_io(blk, "queueing I/O", -ret);
		return DONE;
	}
	return SUBMITTED;
}

/* IN or OUT with valid buffers: straight from guest RAM, or through a
 * bounce buffer when O_DIRECT cannot take the guest's alignment. */
static enum start start_rw(struct virtio_blk *blk, struct blk_slot *s)
{
	struct disk *disk = blk->disk;
	size_t align;

	s->remaining = s->data_len;
	s->wiov = s->iov;
	s->wn = s->niov;
	if (disk_dio_aligned(disk, s->offset, s->iov, s->niov))
		return submit_rw(blk, s);

	if (s->data_len > VIRTIO_BLK_BOUNCE_BUDGET) {
		pr_debug("virtio-blk %s: unaligned request of %llu bytes: too large to bounce",
			 disk->path, (unsigned long long)s->data_len);
		return DONE;
	}
	if (blk->bounce_bytes + s->data_len > VIRTIO_BLK_BOUNCE_BUDGET) {
		/* Memory comes back as requests complete: one in flight
		 * at least, since a lone request always fits. */
		return PARKED;
	}
	align = disk->dio_mem_align > 4096 ? disk->dio_mem_align : 4096;
	if (posix_memalign(&s->bounce, align, s->data_len)) {
		s->bounce = NULL;
		warn_io(blk, "bounce buffer", ENOMEM);
		return DONE;
	}
	blk->bounce_bytes += s->data_len;
	blk->stats.bounced++;
	if (s->type == VIRTIO_BLK_T_OUT)
		gather(s->iov, s->niov, s->bounce);
	s->biov.iov_base = s->bounce;
	s->biov.iov_len = s->data_len;
	s->wiov = &s->biov;
	s->wn = 1;
	return submit_rw(blk, s);
}

static enum start parse_rw(struct virtio_blk *blk, struct blk_slot *s, const struct virtq_req *req,
			   uint64_t sector)
{
	struct disk *disk = blk->disk;
	int n;

	/* §5.2.6.2: a write to a read-only device fails and writes nothing. */
	if (s->type == VIRTIO_BLK_T_OUT && disk->readonly)
		return DONE;
	/* IN: data is the writable part before the status byte; OUT: the
	 * readable part after the header. §2.6.4: wherever the driver split
	 * its buffers. */
	if (s->type == VIRTIO_BLK_T_IN) {
		s->data_len = req->write_len - 1;
		n = carve(virtq_req_write_iov((struct virtq_req *)req), req->nwrite, 0, s->data_len,
			  s->iov, VIRTIO_BLK_SEG_MAX);
	} else {
		s->data_len = req->read_len - HDR_BYTES;
		n = carve(req->iov, req->nread, HDR_BYTES, s->data_len, s->iov, VIRTIO_BLK_SEG_MAX);
	}
	/* §5.2.6.1: data in multiples of 512 bytes, not beyond capacity;
	 * at most seg_max buffers. */
	if (s->data_len % DISK_SECTOR_SIZE || !in_range(blk, sector, s->data_len / DISK_SECTOR_SIZE) ||
	    n < 0) {
		pr_debug("virtio-blk %s: bad %s: sector %llu, %llu bytes, %d buffers", disk->path,
			 s->type == VIRTIO_BLK_T_IN ? "read" : "write", (unsigned long long)sector,
			 (unsigned long long)s->data_len, n);
		return DONE;
	}
	s->niov = (unsigned)n;
	s->offset = sector * DISK_SECTOR_SIZE;
	if (s->data_len == 0) {
		s->result = VIRTIO_BLK_S_OK;
		return DONE;
	}
	/* O_DIRECT: a partial block cannot be done without read-modify-
	 * write; blk_size told the driver the granule. */
	if (disk->direct && ((s->offset | s->data_len) & (disk->dio_offset_align - 1))) {
		pr_debug("virtio-blk %s: cache=none: I/O not aligned to %u bytes", disk->path,
			 disk->dio_offset_align);
		return DONE;
	}
	return start_rw(blk, s);
}

static enum start submit_fstage(struct virtio_blk *blk, struct blk_slot *s)
{
	struct disk *disk = blk->disk;
	struct blk_range *r = &s->seg[s->iseg];
	int ret = 0;

	switch (s->stage) {
	case ST_PUNCH:
	case ST_PUNCH_THEN_ALLOC:
		ret = disk_prep_fallocate(disk, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  r->off, r->len, s);
		break;
	case ST_DISCARD_BDEV:
		/* blkdev_fallocate(): this combination is a plain discard
		 * (BLKDISCARD) on the kernels that have it. */
		ret = disk_prep_fallocate(disk, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE |
					  FALLOC_FL_NO_HIDE_STALE, r->off, r->len, s);
		break;
	case ST_ZERO_RANGE:
		ret = disk_prep_fallocate(disk, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					  r->off, r->len, s);
		break;
	case ST_ALLOC:
		ret = disk_prep_fallocate(disk, FALLOC_FL_KEEP_SIZE, r->off, r->len, s);
		break;
	case ST_WRITE: {
		uint64_t left = s->zleft;
		unsigned n = 0;

		while (left && n < ZERO_IOVS) {
			size_t l = left < ZERO_BUF_BYTES ? left : ZERO_BUF_BYTES;

			s->ziov[n].iov_base = blk->zeros;
			s->ziov[n].iov_len = l;
			left -= l;
			n++;
		}
		ret = disk_prep_writev(disk, s->ziov, n, s->zoff, false, s);
		break;
	}
	case ST_SYNC:
		ret = disk_prep_flush(disk, s);
		break;
	}
	if (ret) {
		warn_io(blk, "queueing I/O", -ret);
		s->result = VIRTIO_BLK_S_IOERR;
		return DONE;
	}
	return SUBMITTED;
}

/* Picks how to do segment s->iseg, or the final sync, and queues it;
 * DONE when there is nothing left. */
static enum start next_segment(struct virtio_blk *blk, struct blk_slot *s)
{
	struct disk *disk = blk->disk;
	struct blk_range *r;

	if (s->iseg == s->nseg) {
		s->result = VIRTIO_BLK_S_OK;
		/* Without FLUSH negotiated every completed write must be
		 * stable (§5.2.6.2); zeroes written are writes. */
		if (s->type == VIRTIO_BLK_T_WRITE_ZEROES && blk->writethrough && s->stage != ST_SYNC) {
			s->stage = ST_SYNC;
			return submit_fstage(blk, s);
		}
		return DONE;
	}
	r = &s->seg[s->iseg];
	if (s->type == VIRTIO_BLK_T_DISCARD) {
		/* §5.2.6.2: the device MAY deallocate; when the host cannot,
		 * the discard succeeds doing nothing. */
		if (blk->no_punch) {
			s->iseg++;
			return next_segment(blk, s);
		}
		s->stage = disk->blockdev ? ST_DISCARD_BDEV : ST_PUNCH;
	} else if (r->unmap && !blk->no_punch) {
		/* PUNCH_HOLE reads back zeroes (on a block device: zero-out
		 * that may unmap, without falling back to writing). */
		s->stage = ST_PUNCH;
	} else if (!blk->no_zero_range) {
		s->stage = ST_ZERO_RANGE;
	} else if (!blk->no_punch && !disk->blockdev) {
		s->stage = ST_PUNCH_THEN_ALLOC;
	} else {
		s->stage = ST_WRITE;
		s->zoff = r->off;
		s->zleft = r->len;
	}
	return submit_fstage(blk, s);
}

static enum start parse_dwz(struct virtio_blk *blk, struct blk_slot *s, const struct virtq_req *req)
{
	struct blk_dwz dwz[VIRTIO_BLK_DISCARD_SEG_MAX];
	bool discard = s->type == VIRTIO_BLK_T_DISCARD;
	uint64_t n;

	if (!virtio_dev_has_feature(blk->dev, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES)) {
		s->result = VIRTIO_BLK_S_UNSUPP;
		return DONE;
	}
	if (blk->disk->readonly)
		return DONE;
	/* §5.2.6.1: whole segments, at most max_*_seg of them. */
	s->data_len = req->read_len - HDR_BYTES;
	n = s->data_len / sizeof(dwz[0]);
	if (s->data_len == 0 || s->data_len % sizeof(dwz[0]) || n > VIRTIO_BLK_DISCARD_SEG_MAX)
		return DONE;
	/* Guest memory: one copy, then only the copy is looked at. */
	if (virtq_req_read(req, HDR_BYTES, dwz, s->data_len) != s->data_len)
		return DONE;
	/* §5.2.6.2: unknown flags, and unmap on a discard, are UNSUPP. */
	for (unsigned i = 0; i < n; i++) {
		uint32_t flags = le32toh(dwz[i].flags);

		if ((flags & ~VIRTIO_BLK_WZ_UNMAP) || (discard && (flags & VIRTIO_BLK_WZ_UNMAP))) {
			s->result = VIRTIO_BLK_S_UNSUPP;
			return DONE;
		}
	}
	/* Everything is checked before anything is done. */
	s->nseg = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t sector = le64toh(dwz[i].sector);
		uint32_t num = le32toh(dwz[i].num_sectors);

		if (num > VIRTIO_BLK_DISCARD_SECTORS_MAX || !in_range(blk, sector, num))
			return DONE;
		if (num == 0)
			continue;
		s->seg[s->nseg].off = sector * DISK_SECTOR_SIZE;
		s->seg[s->nseg].len = (uint64_t)num * DISK_SECTOR_SIZE;
		s->seg[s->nseg].unmap = le32toh(dwz[i].flags) & VIRTIO_BLK_WZ_UNMAP;
		s->nseg++;
	}
	s->iseg = 0;
	s->stage = ST_PUNCH;
	return next_segment(blk, s);
}

/* Checks one popped chain and starts it. */
static enum start start_request(struct virtio_blk *blk, struct blk_slot *s, const struct virtq_req *req)
{
	const struct iovec *last;
	struct blk_outhdr hdr;
	uint64_t sector;
	char id[VIRTIO_BLK_ID_BYTES];

	s->head = req->head;
	s->write_len = req->write_len;
	s->data_len = 0;
	/* The status byte ends the last writable buffer. Without one the
	 * request cannot even fail: the driver broke the protocol. */
	if (req->nwrite == 0) {
		virtio_dev_needs_reset(blk->dev, "virtio-blk request without a writable status byte");
		return FATAL;
	}
	last = &req->iov[req->nread + req->nwrite - 1];
	s->status = (uint8_t *)last->iov_base + last->iov_len - 1;

	/* The 16-byte header, copied once. */
	if (req->read_len < HDR_BYTES || virtq_req_read(req, 0, &hdr, HDR_BYTES) != HDR_BYTES) {
		pr_debug("virtio-blk %s: request header shorter than 16 bytes", blk->disk->path);
		s->type = ~0u;
		return DONE;
	}
	s->type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);

	switch (s->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return parse_rw(blk, s, req, sector);
	case VIRTIO_BLK_T_FLUSH:
		if (blk->disk->readonly) {
			s->result = VIRTIO_BLK_S_OK;   /* nothing was written */
			return DONE;
		}
		s->stage = ST_SYNC;
		return submit_fstage(blk, s);
	case VIRTIO_BLK_T_GET_ID: {
		/* §5.2.6: up to 20 bytes, NUL-padded; the driver gives 20
		 * (§5.2.6.1), a smaller buffer gets what fits. */
		uint64_t room = req->write_len - 1;

		memset(id, 0, sizeof(id));
		memcpy(id, blk->disk->serial, strnlen(blk->disk->serial, sizeof(id)));
		s->data_len = room < sizeof(id) ? room : sizeof(id);
		s->prefix = virtq_req_write(req, 0, id, s->data_len);
		s->result = VIRTIO_BLK_S_OK;
		return DONE;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_dwz(blk, s, req);
	default:
		/* GET_LIFETIME, SECURE_ERASE, zoned and legacy SCSI types:
		 * not offered (§5.2.6.2 for the zoned ones). */
		s->result = VIRTIO_BLK_S_UNSUPP;
		return DONE;
	}
}

/* --- completions --- */

/* A result for slot s; DONE when the request is over. */
static enum start step(struct virtio_blk *blk, struct blk_slot *s, int res)
{
	if (s->type == VIRTIO_BLK_T_IN || s->type == VIRTIO_BLK_T_OUT) {
		if (res <= 0) {
			/* 0: the file ended early (it shrank under us). */
			warn_io(blk, s->type == VIRTIO_BLK_T_IN ? "read" : "write", res ? -res : ENODATA);
			s->result = VIRTIO_BLK_S_IOERR;
			return DONE;
		}
		if ((uint64_t)res < s->remaining) {
			/* Short: the rest, from where it stopped. */
			s->remaining -= (uint64_t)res;
			s->offset += (uint64_t)res;
			iov_advance(&s->wiov, &s->wn, (uint64_t)res);
			return submit_rw(blk, s) == SUBMITTED ? SUBMITTED : DONE;
		}
		if (s->type == VIRTIO_BLK_T_IN) {
			if (s->bounce)
				scatter(s->iov, s->niov, s->bounce);
			s->prefix = s->data_len;
		}
		s->result = VIRTIO_BLK_S_OK;
		return DONE;
	}
	if (s->type == VIRTIO_BLK_T_FLUSH || s->stage == ST_SYNC) {
		if (res < 0)
			warn_io(blk, "fdatasync", -res);
		s->result = res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
		return DONE;
	}

	/* DISCARD / WRITE_ZEROES */
	if (res == -EOPNOTSUPP || (res == -EINVAL && s->stage == ST_DISCARD_BDEV)) {
		switch (s->stage) {
		case ST_DISCARD_BDEV:
			/* Not a discard this kernel does: try zero-out with
			 * unmap, which is allowed to deallocate. */
			s->stage = ST_PUNCH;
			return submit_fstage(blk, s);
		case ST_PUNCH:
			if (s->type == VIRTIO_BLK_T_DISCARD) {
				if (!blk->disk->blockdev)
					blk->no_punch = true;
				s->iseg++;
				return next_segment(blk, s);
			}
			blk->no_punch = true;
			return next_segment(blk, s);
		case ST_ZERO_RANGE:
			blk->no_zero_range = true;
			return next_segment(blk, s);
		case ST_PUNCH_THEN_ALLOC:
			blk->no_punch = true;
			return next_segment(blk, s);
		case ST_ALLOC:
			/* Zeroes are there already; keeping the space
			 * allocated was only a courtesy. */
			s->iseg++;
			return next_segment(blk, s);
		default:
			break;
		}
	}
	if (s->stage == ST_WRITE) {
		if (res <= 0) {
			warn_io(blk, "writing zeroes", res ? -res : EIO);
			s->result = VIRTIO_BLK_S_IOERR;
			return DONE;
		}
		s->zoff += (uint64_t)res;
		s->zleft -= (uint64_t)res < s->zleft ? (uint64_t)res : s->zleft;
		if (s->zleft)
			return submit_fstage(blk, s);
		s->iseg++;
		return next_segment(blk, s);
	}
	if (res < 0 && s->stage != ST_ALLOC) {
		if (s->type == VIRTIO_BLK_T_DISCARD) {
			/* A discard that did not happen lost nothing. */
			pr_debug("virtio-blk %s: discard: %s", blk->disk->path, strerror(-res));
			s->iseg++;
			return next_segment(blk, s);
		}
		warn_io(blk, "write zeroes", -res);
		s->result = VIRTIO_BLK_S_IOERR;
		return DONE;
	}
	if (s->stage == ST_PUNCH_THEN_ALLOC) {
		s->stage = ST_ALLOC;
		return submit_fstage(blk, s);
	}
	s->iseg++;
	return next_segment(blk, s);
}

static void process(struct virtio_blk *blk, struct virtq *vq, bool *pushed);

/* Slot s got result res: its next step, or its end (used ring). */
static void completed(struct virtio_blk *blk, struct blk_slot *s, int res, bool *pushed, bool *freed)
{
	if (step(blk, s, res) != SUBMITTED) {
		finish(blk, s, true);
		*pushed = true;
		*freed = true;
		/* Per request, as QEMU: the guest starts on the first while
		 * the rest are reaped; the event index drops the interrupts
		 * it did not ask for. */
		if (blk->dev)
			virtio_notify_queue(blk->dev, 0);
	}
}

/* Tries the parked request again: completions freed bounce memory. */
static void unpark(struct virtio_blk *blk, bool *pushed)
{
	struct blk_slot *s = blk->parked;
	enum start st = start_rw(blk, s);

	if (st != PARKED) {
		blk->parked = NULL;
		if (st != SUBMITTED) {
			finish(blk, s, true);
			*pushed = true;
		}
	}
}

static void reap(struct virtio_blk *blk, bool *pushed, bool *freed)
{
	void *tag;
	int res;

	while (disk_reap(blk->disk, &tag, &res) > 0)
		completed(blk, tag, res, pushed, freed);
	if (blk->parked && *freed)
		unpark(blk, pushed);
}

static void complete_locked(struct virtio_blk *blk)
{
	bool pushed = false, freed = false;
	int ret;

	reap(blk, &pushed, &freed);
	ret = disk_submit(blk->disk);
	if (ret < 0)
		virtio_dev_needs_reset(blk->dev, "virtio-blk: io_uring submission failed");
	if (pushed)
		virtio_notify_queue(blk->dev, 0);
	if (freed && blk->stalled && !blk->parked) {
		/* queue_ready stopped for want of a slot: have the worker
		 * call it again. */
		blk->stalled = false;
		virtio_dev_kick(blk->dev, 0);
	}
}

void virtio_blk_complete(struct virtio_blk *blk)
{
	uint64_t v;

	if (!blk->dev)
		return;
	/* Before reaping: a completion posted after the reap signals it
	 * again. */
	if (read(disk_event_fd(blk->disk), &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("virtio-blk: reading the completion eventfd: %s", strerror(errno));
	virtio_dev_lock(blk->dev);
	complete_locked(blk);
	virtio_dev_unlock(blk->dev);
}

static void completion_ready(void *opaque)
{
	virtio_blk_complete(opaque);
}

static void limiter_ready(void *opaque)
{
	virtio_blk_limiter_ready(opaque);
}

/* --- the device --- */

/* What a request costs the bandwidth bucket: its data bytes for reads and
 * writes (Firecracker's accounting), nothing for the others, which take
 * an op only. From the lengths the chain walk checked; a malformed
 * request is charged as it looks and fails later. */
static uint64_t request_bytes(const struct virtq_req *req)
{
	struct blk_outhdr hdr;

	if (req->read_len < HDR_BYTES || virtq_req_read(req, 0, &hdr, HDR_BYTES) != HDR_BYTES)
		return 0;
	switch (le32toh(hdr.type)) {
	case VIRTIO_BLK_T_IN:
		return req->write_len ? req->write_len - 1 : 0;    /* less the status byte */
	case VIRTIO_BLK_T_OUT:
		return req->read_len - HDR_BYTES;
	default:
		return 0;
	}
}

static void process(struct virtio_blk *blk, struct virtq *vq, bool *pushed)
{
	/* A guest refilling the ring as fast as requests fail at once
	 * (UNSUPP, GET_ID) would hold the worker here: a ring's worth,
	 * then come back through the kick eventfd. */
	unsigned budget = vq->size;

	blk->stalled = false;
	while (!blk->parked) {
		struct blk_slot *s;
		enum start st;

		if (!blk->free_slots) {
			blk->stalled = true;
			return;
		}
		if (virtq_pop(vq, blk->req) <= 0)   /* empty, or broken: the core resets */
			return;
		if (!rate_limiter_consume(&blk->limiter, request_bytes(blk->req))) {
			/* Back in the ring until the limiter's timer. */
			virtq_unpop(vq, 1);
			return;
		}
		s = slot_get(blk);
		st = start_request(blk, s, blk->req);
		if (st == FATAL) {
			slot_put(blk, s);
			return;
		}
		if (st == PARKED) {
			blk->parked = s;
			blk->stalled = true;
			return;
		}
		if (st == DONE) {
			finish(blk, s, true);
			*pushed = true;
		}
		if (--budget == 0) {
			virtio_dev_kick(blk->dev, 0);
			return;
		}
	}
}

static void blk_queue_ready(struct virtio_dev *d, unsigned q)
{
	struct virtio_blk *blk = virtio_dev_opaque(d);
	struct virtq *vq = virtio_dev_vq(d, q);
	bool pushed = false, freed = false;
	int ret;

	if (!vq)
		return;
	/* Set by virtio_blk_attach already: written only when it was not,
	 * as other threads read it unlocked (virtio_blk_replace_disk). */
	if (blk->dev != d)
		blk->dev = d;
	/* Completions first: they free slots (the worker gets here on a
	 * kick while their eventfd may wait its turn). */
	reap(blk, &pushed, &freed);
	process(blk, vq, &pushed);
	ret = disk_submit(blk->disk);
	if (ret < 0)
		virtio_dev_needs_reset(d, "virtio-blk: io_uring submission failed");
	if (pushed)
		virtio_notify_queue(d, q);
}

/* Waits for everything in flight (device lock held, or no transport).
 * push false (reset, teardown): forgets it: nothing is pushed (the queue
 * is gone, or going), nothing touches guest memory afterwards. push true
 * (a disk replacement): every request, the parked one included, runs to
 * its end as usual and goes to the used ring. 0, or -errno when waiting
 * failed (then, with push, requests may be left in flight). */
static int drain(struct virtio_blk *blk, bool push)
{
	bool pushed = false, freed = false;
	void *tag;
	int res, ret;

	do {
		while ((ret = disk_wait(blk->disk, &tag, &res)) > 0) {
			if (push)
				completed(blk, tag, res, &pushed, &freed);
			else
				finish(blk, tag, false);
		}
		/* Nothing in flight: a parked request fits now (alone, a
		 * request always does). */
		if (push && ret == 0 && blk->parked)
			unpark(blk, &pushed);
	} while (push && ret == 0 && blk->disk->inflight);
	if (ret < 0)
		pr_err("virtio-blk %s: waiting for I/O: %s", blk->disk->path, strerror(-ret));
	if (!push && blk->parked) {
		finish(blk, blk->parked, false);
		blk->parked = NULL;
	}
	if (!push)
		blk->stalled = false;
	if (pushed && blk->dev)
		virtio_notify_queue(blk->dev, 0);
	return ret;
}

static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *blk = virtio_dev_opaque(d);

	/* §2.4: after reset the device uses no buffer of the driver's;
	 * reads in flight would still write into them. Wait (on this
	 * vCPU, as QEMU drains on reset). */
	drain(blk, false);
	blk->writethrough = false;
}

static int blk_activate(struct virtio_dev *d)
{
	struct virtio_blk *blk = virtio_dev_opaque(d);

	if (blk->dev != d)
		blk->dev = d;
	/* §5.2.6.2 case 1: FLUSH offered but not negotiated means every
	 * write is stable when completed. */
	blk->writethrough = !virtio_dev_has_feature(d, VIRTIO_BLK_F_FLUSH);
	return 0;
}

static void blk_read_config(struct virtio_dev *d, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_blk *blk = virtio_dev_opaque(d);

	/* The core checked that the access lies inside config_size. */
	memcpy(data, (const uint8_t *)&blk->config + offset, len);
}

static const struct virtio_device_ops blk_ops_template = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nqueues = 1,
	.max_queue_size = VIRTIO_BLK_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_blk_config),
	.read_config = blk_read_config,
	/* writeback is writable only with CONFIG_WCE, not offered. */
	.write_config = NULL,
	.activate = blk_activate,
	.queue_ready = blk_queue_ready,
	.reset = blk_reset,
};

static unsigned log2u(uint32_t v)
{
	unsigned n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

static void build_config(struct virtio_blk *blk)
{
	struct virtio_blk_config *c = &blk->config;
	struct disk *disk = blk->disk;
	uint32_t per_phys = disk->physical_block_size / disk->logical_block_size;

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(disk_sectors(disk));
	c->size_max = htole32(VIRTIO_BLK_SIZE_MAX);
	c->seg_max = htole32(VIRTIO_BLK_SEG_MAX);
	c->blk_size = htole32(disk->logical_block_size);
	c->topology.physical_block_exp = (uint8_t)log2u(per_phys);
	c->topology.alignment_offset = 0;
	c->topology.min_io_size = htole16((uint16_t)per_phys);
	c->topology.opt_io_size = htole32(0);
	c->num_queues = htole16(1);
	c->max_discard_sectors = htole32(VIRTIO_BLK_DISCARD_SECTORS_MAX);
	c->max_discard_seg = htole32(VIRTIO_BLK_DISCARD_SEG_MAX);
	c->discard_sector_alignment = htole32(disk->logical_block_size / DISK_SECTOR_SIZE);
	c->max_write_zeroes_sectors = htole32(VIRTIO_BLK_DISCARD_SECTORS_MAX);
	c->max_write_zeroes_seg = htole32(VIRTIO_BLK_DISCARD_SEG_MAX);
	/* Write zeroes with unmap punches a hole: it can deallocate. */
	c->write_zeroes_may_unmap = 1;
}

struct virtio_blk *virtio_blk_create(struct disk *disk, char *err, size_t errlen)
{
	struct virtio_blk *blk = calloc(1, sizeof(*blk));
	uint64_t f;
	int ret;

	if (!blk)
		goto oom;
	blk->disk = disk;
	ret = rate_limiter_init(&blk->limiter);
	if (ret) {
		snprintf(err, errlen, "virtio-blk %s: rate limiter timer: %s", disk->path,
			 strerror(-ret));
		free(blk);
		disk_close(disk);
		return NULL;
	}
	blk->slots = calloc(DISK_QUEUE_DEPTH, sizeof(*blk->slots));
	blk->req = malloc(sizeof(*blk->req));
	blk->push_req = calloc(1, sizeof(*blk->push_req));
	if (posix_memalign(&blk->zeros, 4096, ZERO_BUF_BYTES))
		blk->zeros = NULL;
	if (!blk->slots || !blk->req || !blk->push_req || !blk->zeros)
		goto oom;
	memset(blk->zeros, 0, ZERO_BUF_BYTES);
	for (unsigned i = DISK_QUEUE_DEPTH; i-- > 0;) {
		blk->slots[i].next_free = blk->free_slots;
		blk->free_slots = &blk->slots[i];
	}

	f = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_SIZE_MAX) |
	    (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
	    (1ULL << VIRTIO_BLK_F_TOPOLOGY);
	if (disk->readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	else
		f |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	blk->ops = blk_ops_template;
	blk->ops.features = f;
	build_config(blk);
	return blk;
oom:
	snprintf(err, errlen, "virtio-blk %s: out of memory", disk->path);
	if (blk) {
		rate_limiter_destroy(&blk->limiter);
		free(blk->zeros);
		free(blk->push_req);
		free(blk->req);
		free(blk->slots);
		free(blk);
	}
	disk_close(disk);
	return NULL;
}

const struct virtio_device_ops *virtio_blk_ops(const struct virtio_blk *blk)
{
	return &blk->ops;
}

int virtio_blk_attach(struct virtio_blk *blk, struct virtio_dev *dev, struct virtio_worker *worker,
		      char *err, size_t errlen)
{
	int ret;

	blk->dev = dev;
	if (!worker)
		return 0;
	ret = virtio_worker_watch(worker, disk_event_fd(blk->disk), completion_ready, blk);
	if (!ret)
		ret = virtio_worker_watch(worker, rate_limiter_fd(&blk->limiter), limiter_ready, blk);
	if (ret)
		snprintf(err, errlen, "virtio-blk %s: worker: %s", blk->disk->path, strerror(-ret));
	return ret;
}

void virtio_blk_limiter_ready(struct virtio_blk *blk)
{
	rate_limiter_timer_fired(&blk->limiter);
	/* The queue again, through the worker's usual path. */
	if (blk->dev)
		virtio_dev_kick(blk->dev, 0);
}

void virtio_blk_set_rate_limit(struct virtio_blk *blk, const struct rate_limit_params *p)
{
	if (rate_limiter_update(&blk->limiter, p) && blk->dev)
		virtio_dev_kick(blk->dev, 0);
}

unsigned virtio_blk_inflight(struct virtio_blk *blk)
{
	return blk->busy;
}

struct disk *virtio_blk_disk(struct virtio_blk *blk)
{
	return blk->disk;
}

struct virtio_blk_stats virtio_blk_stats(struct virtio_blk *blk)
{
	struct virtio_blk_stats st;

	if (blk->dev)
		virtio_dev_lock(blk->dev);
	st = blk->stats;
	st.throttled = rate_limiter_throttled(&blk->limiter);
	if (blk->dev)
		virtio_dev_unlock(blk->dev);
	return st;
}

int virtio_blk_replace_disk(struct virtio_blk *blk, const char *path, char *err, size_t errlen)
{
	struct virtio_dev *dev = blk->dev;
	uint32_t old_bs = blk->disk->logical_block_size;
	int ret;

	/* The device lock stops new requests: queue_ready and the
	 * completion handler run under it. */
	if (dev)
		virtio_dev_lock(dev);
	/* What is in flight completes against the old file and is used as
	 * usual (reset's wait, but pushing). */
	ret = drain(blk, true);
	if (ret < 0) {
		snprintf(err, errlen, "disk %s: waiting for I/O in flight: %s", blk->disk->path,
			 strerror(-ret));
		if (dev)
			virtio_dev_needs_reset(dev, "virtio-blk: waiting for I/O failed");
		goto out;
	}
	ret = disk_replace(blk->disk, path, err, errlen);
	if (ret)
		goto out;
	/* What the old file system refused, the new one may do. */
	blk->no_punch = blk->no_zero_range = false;
	build_config(blk);
	if (blk->disk->logical_block_size != old_bs)
		pr_warn("virtio-blk %s: logical block size %u, was %u: a driver may keep the old one "
			"(Linux re-reads only the capacity)", blk->disk->path,
			blk->disk->logical_block_size, old_bs);
	/* §2.5.1, §4.1.4.3: a new config_generation, then the configuration
	 * change notification (§4.1.5.3); under the lock, so a driver never
	 * reads the new capacity with the old generation after it. */
	if (dev)
		virtio_config_changed(dev);
	pr_info("virtio-blk: now on %s, %llu sectors", blk->disk->path,
		(unsigned long long)disk_sectors(blk->disk));
out:
	if (dev) {
		virtio_dev_unlock(dev);
		/* Requests the driver queued meanwhile (and any stall):
		 * the worker looks at the avail ring again. */
		virtio_dev_kick(dev, 0);
	}
	return ret;
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
	if (!blk)
		return;
	/* The transport (and its worker) is gone: no lock to take, and the
	 * virtio_dev may be freed already. */
	blk->dev = NULL;
	drain(blk, false);
	disk_close(blk->disk);
	rate_limiter_destroy(&blk->limiter);
	free(blk->zeros);
	free(blk->push_req);
	free(blk->req);
	free(blk->slots);
	free(blk);
}
