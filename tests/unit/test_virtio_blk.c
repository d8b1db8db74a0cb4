/* virtio-blk (src/virtio/blk.c) on the device model with a fake
 * transport, rings crafted in a real guest memory and a temporary image
 * file: configuration and features, reads and writes byte for byte
 * against the file (however the driver splits its buffers), flush,
 * GET_ID, discard and write zeroes, read-only refusal, every malformed
 * request, many requests in flight, cache=none with unaligned buffers,
 * reset with I/O in flight, and the worker thread delivering completions. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/blk.h"
#include "virtio/disk.h"
#include "virtio/rate_limiter.h"
#include "virtio/virtio.h"
#include "virtio/worker.h"
#include "vmm/memory.h"

#define RAM         (16ULL << 20)
#define QSIZE       256
#define DESC        0x10000ULL
#define AVAIL       0x20000ULL
#define USED        0x30000ULL
#define HDR(i)      (0x40000ULL + 64ULL * (i))     /* header; status at +32 */
#define STATUS(i)   (HDR(i) + 32)
#define TABLE(i)    (0x60000ULL + 64ULL * (i))     /* indirect tables */
#define DATA        0x100000ULL
#define DISK_BYTES  (1ULL << 20)
#define SECTORS     (DISK_BYTES / 512)

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct fx {
	char path[64];
	struct guest_memory mem;
	struct disk *disk;
	struct virtio_blk *blk;
	struct virtio_dev dev;
	struct virtio_worker *worker;
	int queue_irqs, config_irqs;
	uint16_t avail_idx;
	unsigned next_desc;
	int file;       /* the image, for checking */
	char path2[64]; /* a second image, for virtio_blk_replace_disk */
};

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) + 3);
}

static void notify_queue(void *opaque, unsigned q)
{
	struct fx *f = opaque;

	assert_int_equal(q, 0);
	__atomic_fetch_add(&f->queue_irqs, 1, __ATOMIC_RELAXED);
}

static void notify_config(void *opaque)
{
	struct fx *f = opaque;

	__atomic_fetch_add(&f->config_irqs, 1, __ATOMIC_RELAXED);
}

static uint64_t offered(struct fx *f)
{
	return virtio_dev_device_features(&f->dev, 0) |
	       ((uint64_t)virtio_dev_device_features(&f->dev, 1) << 32);
}

/* The driver's side of §3.1.1 with the features given. */
static void driver_init(struct fx *f, uint64_t features)
{
	struct virtq *q;

	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_driver_features(&f->dev, 0, (uint32_t)features);
	virtio_dev_set_driver_features(&f->dev, 1, (uint32_t)(features >> 32));
	virtio_dev_set_status(&f->dev, 0x0b);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0b);
	q = virtio_dev_queue(&f->dev, 0);
	assert_int_equal(q->max_size, VIRTIO_BLK_QUEUE_SIZE);
	q->size = QSIZE;
	q->desc_addr = DESC;
	q->driver_addr = AVAIL;
	q->device_addr = USED;
	assert_int_equal(virtio_dev_queue_enable(&f->dev, 0), 0);
	virtio_dev_set_status(&f->dev, 0x0f);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
	virtio_dev_unlock(&f->dev);
	f->avail_idx = 0;
	f->next_desc = 0;
}

static struct fx *make_in(const char *dir, const char *opts, bool flush)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct virtio_transport t = { notify_queue, notify_config, f };
	char arg[256], err[256];
	struct disk_spec spec;
	uint8_t *buf = malloc(DISK_BYTES);
	int fd;

	assert_non_null(f);
	assert_non_null(buf);
	assert_int_equal(guest_memory_init(&f->mem, RAM), 0);
	snprintf(f->path, sizeof(f->path), "%s/popek-blk-XXXXXX", dir);
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	for (uint64_t i = 0; i < DISK_BYTES; i++)
		buf[i] = pattern(i);
	assert_int_equal(write(fd, buf, DISK_BYTES), DISK_BYTES);
	close(fd);
	free(buf);
	f->file = open(f->path, O_RDONLY);
	assert_true(f->file >= 0);

	snprintf(arg, sizeof(arg), "%s%s", f->path, opts);
	assert_int_equal(disk_spec_parse(arg, &spec, err, sizeof(err)), 0);
	f->disk = disk_open(&spec, err, sizeof(err));
	if (!f->disk)
		fail_msg("%s", err);
	f->blk = virtio_blk_create(f->disk, err, sizeof(err));
	assert_non_null(f->blk);
	assert_int_equal(virtio_dev_init(&f->dev, virtio_blk_ops(f->blk), f->blk, &f->mem, &t), 0);
	assert_int_equal(virtio_blk_attach(f->blk, &f->dev, NULL, err, sizeof(err)), 0);
	driver_init(f, (offered(f) & ~(flush ? 0 : 1ULL << VIRTIO_BLK_F_FLUSH)));
	return f;
}

static struct fx *make(const char *opts, bool flush)
{
	return make_in("/tmp", opts, flush);
}

static int setup_rw(void **state)
{
	*state = make("", true);
	return 0;
}

static int setup_ro(void **state)
{
	*state = make(",ro", true);
	return 0;
}

static int setup_serial(void **state)
{
	*state = make(",serial=popek-disk-0123456", true);
	return 0;
}

static int setup_direct(void **state)
{
	*state = make(",cache=none", true);
	return 0;
}

static int setup_noflush(void **state)
{
	*state = make("", false);
	return 0;
}

/* tmpfs: PUNCH_HOLE but no ZERO_RANGE, the fallback for write zeroes. */
static int setup_tmpfs(void **state)
{
	*state = access("/dev/shm", W_OK) == 0 ? make_in("/dev/shm", "", true) : NULL;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (!f)
		return 0;
	virtio_worker_destroy(f->worker);
	virtio_dev_destroy(&f->dev);
	virtio_blk_destroy(f->blk);
	close(f->file);
	unlink(f->path);
	if (f->path2[0])
		unlink(f->path2);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

/* --- the driver's side --- */

static void *host(struct fx *f, uint64_t gpa, uint64_t len);

static void *host(struct fx *f, uint64_t gpa, uint64_t len)
{
	void *p = guest_memory_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	assert_int_equal(guest_memory_write(&f->mem, table + 16ULL * i, &d, sizeof(d)), 0);
}

static void make_avail(struct fx *f, uint16_t head)
{
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + 4 + 2 * (f->avail_idx % QSIZE), &head, 2), 0);
	f->avail_idx++;
	/* Release, as a driver does (§2.7.13.2): the worker thread of
	 * test_worker may be reading it. */
	__atomic_store_n((uint16_t *)host(f, AVAIL + 2, 2), f->avail_idx, __ATOMIC_RELEASE);
}

/* A direct chain of the buffers given. */
static uint16_t chain(struct fx *f, const struct seg *s, unsigned n)
{
	uint16_t head = (uint16_t)(f->next_desc % QSIZE);

	for (unsigned i = 0; i < n; i++) {
		unsigned idx = (f->next_desc + i) % QSIZE;

		put_desc(f, DESC, idx, s[i].gpa, s[i].len,
			 (s[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
			 (uint16_t)((idx + 1) % QSIZE));
	}
	f->next_desc += n;
	make_avail(f, head);
	return head;
}

/* One descriptor naming an indirect table of the buffers (§2.7.5.3). */
static uint16_t chain_indirect(struct fx *f, unsigned slot, const struct seg *s, unsigned n)
{
	uint16_t head = (uint16_t)(f->next_desc % QSIZE);

	for (unsigned i = 0; i < n; i++)
		put_desc(f, TABLE(slot), i, s[i].gpa, s[i].len,
			 (s[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
			 (uint16_t)(i + 1));
	put_desc(f, DESC, head, TABLE(slot), 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
	f->next_desc++;
	make_avail(f, head);
	return head;
}

static void put_hdr(struct fx *f, unsigned i, uint32_t type, uint64_t sector)
{
	uint8_t hdr[16];
	uint8_t ff = 0xff;

	memcpy(hdr, &type, 4);
	memset(hdr + 4, 0, 4);
	memcpy(hdr + 8, &sector, 8);
	assert_int_equal(guest_memory_write(&f->mem, HDR(i), hdr, 16), 0);
	assert_int_equal(guest_memory_write(&f->mem, STATUS(i), &ff, 1), 0);
}

/* The usual request: header, one data buffer, status. */
static void req(struct fx *f, unsigned i, uint32_t type, uint64_t sector, uint64_t data, uint32_t len)
{
	struct seg s[3] = {
		{ HDR(i), 16, false },
		{ data, len, type != VIRTIO_BLK_T_OUT && type != VIRTIO_BLK_T_DISCARD &&
			     type != VIRTIO_BLK_T_WRITE_ZEROES },
		{ STATUS(i), 1, true },
	};

	put_hdr(f, i, type, sector);
	if (len)
		chain(f, s, 3);
	else
		chain(f, (struct seg[]){ s[0], s[2] }, 2);
}

static uint16_t used_idx(struct fx *f)
{
	uint16_t v;

	assert_int_equal(guest_memory_read(&f->mem, USED + 2, &v, 2), 0);
	return v;
}

static struct virtq_used_elem used(struct fx *f, unsigned i)
{
	struct virtq_used_elem e;

	assert_int_equal(guest_memory_read(&f->mem, USED + 4 + 8 * (i % QSIZE), &e, sizeof(e)), 0);
	return e;
}

static uint8_t status(struct fx *f, unsigned i)
{
	return *(uint8_t *)host(f, STATUS(i), 1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Plays the worker until want requests were used. */
static void run(struct fx *f, uint16_t want)
{
	struct pollfd p[2] = {
		{ .fd = disk_event_fd(f->disk), .events = POLLIN },
		{ .fd = virtio_dev_kick_fd(&f->dev, 0), .events = POLLIN },
	};
	double end = now() + 10;

	virtio_dev_process_queue(&f->dev, 0);
	while ((uint16_t)(used_idx(f) - want) != 0) {
		if (now() > end)
			fail_msg("%u of %u requests done, %u in flight", used_idx(f), want,
				 virtio_blk_inflight(f->blk));
		poll(p, 2, 100);
		if (p[0].revents & POLLIN)
			virtio_blk_complete(f->blk);
		if (p[1].revents & POLLIN)
			virtio_dev_process_queue(&f->dev, 0);
	}
	assert_int_equal(virtio_blk_inflight(f->blk), 0);
}

static void file_read(struct fx *f, uint64_t off, void *buf, size_t len)
{
	assert_int_equal(pread(f->file, buf, len, (off_t)off), (ssize_t)len);
}

static void expect_file_pattern(struct fx *f, uint64_t off, uint64_t len)
{
	uint8_t *b = malloc(len);

	file_read(f, off, b, len);
	for (uint64_t i = 0; i < len; i++)
		if (b[i] != pattern(off + i))
			fail_msg("file byte %llu is %#x, not the original %#x",
				 (unsigned long long)(off + i), b[i], pattern(off + i));
	free(b);
}

static void expect_file_zero(struct fx *f, uint64_t off, uint64_t len)
{
	uint8_t *b = malloc(len);

	file_read(f, off, b, len);
	for (uint64_t i = 0; i < len; i++)
		if (b[i])
			fail_msg("file byte %llu is %#x, not 0", (unsigned long long)(off + i), b[i]);
	free(b);
}

/* --- configuration --- */

static void test_config(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_config c;
	uint64_t feat = offered(f);

	virtio_dev_lock(&f->dev);
	virtio_dev_read_config(&f->dev, 0, &c, sizeof(c));
	virtio_dev_unlock(&f->dev);
	assert_int_equal(c.capacity, SECTORS);
	assert_int_equal(c.blk_size, 512);
	assert_int_equal(c.seg_max, VIRTIO_BLK_SEG_MAX);
	assert_int_equal(c.size_max, VIRTIO_BLK_SIZE_MAX);
	assert_int_equal(c.max_discard_seg, VIRTIO_BLK_DISCARD_SEG_MAX);
	assert_int_equal(c.max_write_zeroes_seg, VIRTIO_BLK_DISCARD_SEG_MAX);
	assert_true(c.max_discard_sectors > 0);
	assert_int_equal(c.discard_sector_alignment, 1);
	assert_int_equal(c.write_zeroes_may_unmap, 1);
	assert_int_equal(c.unused0, 0);   /* §5.2.5 */
	assert_true(feat & (1ULL << VIRTIO_BLK_F_FLUSH));
	assert_true(feat & (1ULL << VIRTIO_BLK_F_BLK_SIZE));
	assert_true(feat & (1ULL << VIRTIO_BLK_F_SEG_MAX));
	assert_true(feat & (1ULL << VIRTIO_BLK_F_SIZE_MAX));
	assert_true(feat & (1ULL << VIRTIO_BLK_F_DISCARD));
	assert_true(feat & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_false(feat & (1ULL << VIRTIO_BLK_F_RO));
	assert_false(feat & (1ULL << VIRTIO_BLK_F_MQ));
	assert_false(feat & (1ULL << VIRTIO_BLK_F_CONFIG_WCE));

	/* A 4-byte read of the middle, as a driver does field by field. */
	{
		uint32_t v;

		virtio_dev_lock(&f->dev);
		virtio_dev_read_config(&f->dev, 12, &v, 4);
		virtio_dev_unlock(&f->dev);
		assert_int_equal(v, VIRTIO_BLK_SEG_MAX);
	}
}

static void test_config_ro(void **state)
{
	struct fx *f = *state;
	uint64_t feat = offered(f);

	assert_true(feat & (1ULL << VIRTIO_BLK_F_RO));
	assert_false(feat & (1ULL << VIRTIO_BLK_F_DISCARD));
	assert_false(feat & (1ULL << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_true(feat & (1ULL << VIRTIO_BLK_F_FLUSH));
}

/* --- reads and writes --- */

static void test_write_read_roundtrip(void **state)
{
	struct fx *f = *state;
	uint8_t *src = host(f, DATA, 8192), *dst = host(f, DATA + 0x10000, 8192);
	uint8_t check[8192];
	uint64_t sector = 24;

	for (int i = 0; i < 8192; i++)
		src[i] = (uint8_t)(i * 13 + 1);
	/* Split at odd places: only the total is a multiple of 512. */
	put_hdr(f, 0, VIRTIO_BLK_T_OUT, sector);
	chain(f, (struct seg[]){ { HDR(0), 16, false }, { DATA, 100, false },
				 { DATA + 100, 5000, false }, { DATA + 5100, 3092, false },
				 { STATUS(0), 1, true } }, 5);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(used(f, 0).len, 1);
	file_read(f, sector * 512, check, sizeof(check));
	assert_memory_equal(check, src, sizeof(check));
	/* Neighbours untouched. */
	expect_file_pattern(f, sector * 512 - 512, 512);
	expect_file_pattern(f, sector * 512 + 8192, 512);

	memset(dst, 0xee, 8192);
	put_hdr(f, 1, VIRTIO_BLK_T_IN, sector);
	chain(f, (struct seg[]){ { HDR(1), 16, false }, { DATA + 0x10000, 3000, true },
				 { DATA + 0x10000 + 3000, 5192, true }, { STATUS(1), 1, true } }, 4);
	run(f, 2);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(used(f, 1).len, 8192 + 1);
	assert_memory_equal(dst, src, 8192);

	/* Reading the original data elsewhere: byte for byte the file. */
	put_hdr(f, 2, VIRTIO_BLK_T_IN, 1000);
	req(f, 2, VIRTIO_BLK_T_IN, 1000, DATA + 0x20000, 4096);
	run(f, 3);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_OK);
	file_read(f, 1000 * 512, check, 4096);
	assert_memory_equal(host(f, DATA + 0x20000, 4096), check, 4096);

	assert_int_equal(virtio_blk_stats(f->blk).reads, 2);
	assert_int_equal(virtio_blk_stats(f->blk).writes, 1);
	assert_int_equal(virtio_blk_stats(f->blk).write_bytes, 8192);
	assert_true(f->queue_irqs >= 1);
}

/* §2.6.4: no assumption about framing. Header and data in one readable
 * buffer; data and status in one writable buffer. */
static void test_any_layout(void **state)
{
	struct fx *f = *state;
	uint8_t *w = host(f, DATA, 16 + 1024);
	uint8_t *r = host(f, DATA + 0x10000, 1024 + 1);
	uint32_t type = VIRTIO_BLK_T_OUT;
	uint64_t sector = 100;

	memcpy(w, &type, 4);
	memset(w + 4, 0, 4);
	memcpy(w + 8, &sector, 8);
	for (int i = 0; i < 1024; i++)
		w[16 + i] = (uint8_t)(0x40 + i);
	chain(f, (struct seg[]){ { DATA, 16 + 1024, false }, { STATUS(0), 1, true } }, 2);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);

	put_hdr(f, 1, VIRTIO_BLK_T_IN, sector);
	r[1024] = 0xff;
	chain(f, (struct seg[]){ { HDR(1), 8, false }, { HDR(1) + 8, 8, false },
				 { DATA + 0x10000, 1024 + 1, true } }, 3);
	run(f, 2);
	assert_int_equal(r[1024], VIRTIO_BLK_S_OK);
	assert_memory_equal(r, w + 16, 1024);
	assert_int_equal(used(f, 1).len, 1025);
}

static void test_flush(void **state)
{
	struct fx *f = *state;

	req(f, 0, VIRTIO_BLK_T_OUT, 0, DATA, 512);
	run(f, 1);
	req(f, 1, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	run(f, 2);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(used(f, 1).len, 1);
	assert_int_equal(virtio_blk_stats(f->blk).flushes, 1);
}

static void test_writethrough(void **state)
{
	struct fx *f = *state;

	/* FLUSH offered, not negotiated: writes are stable when complete
	 * (RWF_DSYNC); nothing to see but that they work. */
	assert_false(virtio_dev_has_feature(&f->dev, VIRTIO_BLK_F_FLUSH));
	memset(host(f, DATA, 1024), 0x11, 1024);
	req(f, 0, VIRTIO_BLK_T_OUT, 8, DATA, 1024);
	req(f, 1, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA + 0x1000, 16);
	{
		uint64_t seg[2] = { 10, 2 };   /* sector 10, 2 sectors, no flags */

		assert_int_equal(guest_memory_write(&f->mem, DATA + 0x1000, seg, 16), 0);
	}
	run(f, 2);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	expect_file_zero(f, 10 * 512, 1024);
}

static void test_get_id(void **state)
{
	struct fx *f = *state;
	uint8_t *id = host(f, DATA, 32);

	memset(id, 0xee, 32);
	req(f, 0, VIRTIO_BLK_T_GET_ID, 0, DATA, VIRTIO_BLK_ID_BYTES);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(used(f, 0).len, VIRTIO_BLK_ID_BYTES + 1);
	/* 20 bytes, not terminated when the serial is 20 long; here 18. */
	assert_memory_equal(id, "popek-disk-0123456\0\0", 20);
	assert_int_equal(id[20], 0xee);

	/* A smaller buffer gets what fits. */
	memset(id, 0xee, 32);
	req(f, 1, VIRTIO_BLK_T_GET_ID, 0, DATA, 5);
	run(f, 2);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	assert_memory_equal(id, "popek", 5);
	assert_int_equal(id[5], 0xee);
}

static void test_get_id_no_serial(void **state)
{
	struct fx *f = *state;
	uint8_t *id = host(f, DATA, 20);

	memset(id, 0xee, 20);
	req(f, 0, VIRTIO_BLK_T_GET_ID, 0, DATA, 20);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 20; i++)
		assert_int_equal(id[i], 0);
}

/* --- discard and write zeroes --- */

static void put_dwz(struct fx *f, uint64_t gpa, unsigned i, uint64_t sector, uint32_t n, uint32_t flags)
{
	uint8_t s[16];

	memcpy(s, &sector, 8);
	memcpy(s + 8, &n, 4);
	memcpy(s + 12, &flags, 4);
	assert_int_equal(guest_memory_write(&f->mem, gpa + 16ULL * i, s, 16), 0);
}

static uint64_t file_blocks(struct fx *f)
{
	struct stat st;

	assert_int_equal(fstat(f->file, &st), 0);
	return (uint64_t)st.st_blocks;
}

static void test_discard(void **state)
{
	struct fx *f = *state;
	uint64_t before = file_blocks(f);

	/* Two 64 KiB ranges, file-system-block aligned so ext4 frees them. */
	put_dwz(f, DATA, 0, 128, 128, 0);
	put_dwz(f, DATA, 1, 512, 128, 0);
	req(f, 0, VIRTIO_BLK_T_DISCARD, 0, DATA, 32);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	/* PUNCH_HOLE: the blocks are gone and read back as zeroes. */
	expect_file_zero(f, 128 * 512, 128 * 512);
	expect_file_zero(f, 512 * 512, 128 * 512);
	expect_file_pattern(f, 127 * 512, 512);
	expect_file_pattern(f, 256 * 512, 512);
	assert_true(file_blocks(f) < before);
	assert_int_equal(virtio_blk_stats(f->blk).discards, 1);

	/* §5.2.6.2: unmap on a discard, and unknown flags, are UNSUPP. */
	put_dwz(f, DATA, 0, 0, 8, VIRTIO_BLK_WZ_UNMAP);
	req(f, 1, VIRTIO_BLK_T_DISCARD, 0, DATA, 16);
	put_dwz(f, DATA + 0x100, 0, 0, 8, 2);
	req(f, 2, VIRTIO_BLK_T_DISCARD, 0, DATA + 0x100, 16);
	run(f, 3);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_UNSUPP);
	expect_file_pattern(f, 0, 4096);
}

static void test_write_zeroes(void **state)
{
	struct fx *f = *state;

	put_dwz(f, DATA, 0, 3, 5, 0);                     /* unaligned, kept allocated */
	put_dwz(f, DATA, 1, 64, 64, VIRTIO_BLK_WZ_UNMAP); /* may deallocate */
	put_dwz(f, DATA, 2, 200, 0, 0);                   /* empty: nothing */
	req(f, 0, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 48);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	expect_file_pattern(f, 0, 3 * 512);
	expect_file_zero(f, 3 * 512, 5 * 512);
	expect_file_pattern(f, 8 * 512, 56 * 512);
	expect_file_zero(f, 64 * 512, 64 * 512);
	expect_file_pattern(f, 128 * 512, 512);
	expect_file_pattern(f, 200 * 512, 512);
	assert_int_equal(virtio_blk_stats(f->blk).write_zeroes, 1);

	/* Unknown flag: UNSUPP. */
	put_dwz(f, DATA + 0x100, 0, 300, 1, 0x80000000u);
	req(f, 1, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA + 0x100, 16);
	run(f, 2);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_UNSUPP);
	expect_file_pattern(f, 300 * 512, 512);
}

static void test_write_zeroes_fallback(void **state)
{
	struct fx *f = *state;

	if (!f)
		skip();
	/* Twice: the second time the device knows ZERO_RANGE is refused. */
	for (unsigned i = 0; i < 2; i++) {
		put_dwz(f, DATA, 0, 16 + 64 * i, 24, 0);
		put_dwz(f, DATA, 1, 48 + 64 * i, 8, VIRTIO_BLK_WZ_UNMAP);
		req(f, i, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 32);
		run(f, (uint16_t)(i + 1));
		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		expect_file_pattern(f, (15 + 64 * i) * 512, 512);
		expect_file_zero(f, (16 + 64 * i) * 512, 24 * 512);
		expect_file_pattern(f, (40 + 64 * i) * 512, 8 * 512);
		expect_file_zero(f, (48 + 64 * i) * 512, 8 * 512);
		expect_file_pattern(f, (56 + 64 * i) * 512, 512);
	}
	/* Discard punches holes there too. */
	put_dwz(f, DATA, 0, 512, 64, 0);
	req(f, 2, VIRTIO_BLK_T_DISCARD, 0, DATA, 16);
	run(f, 3);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_OK);
	expect_file_zero(f, 512 * 512, 64 * 512);
}

static void test_dwz_invalid(void **state)
{
	struct fx *f = *state;
	unsigned n = 0;

	/* A valid segment then one past the end: nothing is done. */
	put_dwz(f, DATA, 0, 10, 4, 0);
	put_dwz(f, DATA, 1, SECTORS - 1, 2, 0);
	req(f, n++, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 32);
	/* Overflowing sector. */
	put_dwz(f, DATA + 0x100, 0, UINT64_MAX - 1, 4, 0);
	req(f, n++, VIRTIO_BLK_T_DISCARD, 0, DATA + 0x100, 16);
	/* Not a multiple of the segment size; empty; too many segments. */
	req(f, n++, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA, 20);
	req(f, n++, VIRTIO_BLK_T_DISCARD, 0, 0, 0);
	for (unsigned i = 0; i <= VIRTIO_BLK_DISCARD_SEG_MAX; i++)
		put_dwz(f, DATA + 0x1000, i, i, 1, 0);
	req(f, n++, VIRTIO_BLK_T_DISCARD, 0, DATA + 0x1000, 16 * (VIRTIO_BLK_DISCARD_SEG_MAX + 1));
	/* More sectors than max_write_zeroes_sectors. */
	put_dwz(f, DATA + 0x200, 0, 0, VIRTIO_BLK_DISCARD_SECTORS_MAX + 1, 0);
	req(f, n++, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA + 0x200, 16);
	run(f, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(status(f, i), VIRTIO_BLK_S_IOERR);
	expect_file_pattern(f, 0, DISK_BYTES);
}

/* --- refusals --- */

static void test_read_only(void **state)
{
	struct fx *f = *state;

	assert_true(virtio_dev_has_feature(&f->dev, VIRTIO_BLK_F_RO));
	memset(host(f, DATA, 4096), 0x99, 4096);
	req(f, 0, VIRTIO_BLK_T_OUT, 0, DATA, 4096);
	put_dwz(f, DATA + 0x2000, 0, 0, 8, 0);
	req(f, 1, VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA + 0x2000, 16);
	req(f, 2, VIRTIO_BLK_T_DISCARD, 0, DATA + 0x2000, 16);
	req(f, 3, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	req(f, 4, VIRTIO_BLK_T_IN, 8, DATA + 0x4000, 4096);
	run(f, 5);
	/* §5.2.6.2: IOERR and nothing written. */
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_IOERR);
	/* Not offered on a read-only disk. */
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(status(f, 3), VIRTIO_BLK_S_OK);
	assert_int_equal(status(f, 4), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)host(f, DATA + 0x4000, 4096))[i], pattern(8 * 512 + i));
	expect_file_pattern(f, 0, DISK_BYTES);
}

static void test_out_of_range(void **state)
{
	struct fx *f = *state;
	unsigned n = 0;

	req(f, n++, VIRTIO_BLK_T_IN, SECTORS, DATA, 512);
	req(f, n++, VIRTIO_BLK_T_IN, SECTORS - 1, DATA, 1024);
	req(f, n++, VIRTIO_BLK_T_OUT, SECTORS - 1, DATA, 1024);
	req(f, n++, VIRTIO_BLK_T_OUT, UINT64_MAX, DATA, 512);
	/* sector * 512 would wrap to a small offset */
	req(f, n++, VIRTIO_BLK_T_OUT, (1ULL << 55) + 1, DATA, 512);
	run(f, (uint16_t)n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(status(f, i), VIRTIO_BLK_S_IOERR);
		assert_int_equal(used(f, i).len, i < 2 ? 0 : 1);
	}
	/* The last sector itself is fine, and so is nothing at the end. */
	req(f, n, VIRTIO_BLK_T_IN, SECTORS - 1, DATA, 512);
	req(f, n + 1, VIRTIO_BLK_T_IN, SECTORS, 0, 0);
	run(f, (uint16_t)(n + 2));
	assert_int_equal(status(f, n), VIRTIO_BLK_S_OK);
	assert_int_equal(status(f, n + 1), VIRTIO_BLK_S_OK);
	expect_file_pattern(f, 0, DISK_BYTES);
}

static void test_bad_requests(void **state)
{
	struct fx *f = *state;
	unsigned n = 0;

	/* Length not a multiple of 512. */
	req(f, n++, VIRTIO_BLK_T_OUT, 0, DATA, 1000);
	req(f, n++, VIRTIO_BLK_T_IN, 0, DATA, 513);
	/* Header shorter than 16 bytes. */
	put_hdr(f, n, VIRTIO_BLK_T_OUT, 0);
	chain(f, (struct seg[]){ { HDR(n), 12, false }, { STATUS(n), 1, true } }, 2);
	n++;
	/* Only a status byte. */
	put_hdr(f, n, VIRTIO_BLK_T_IN, 0);
	chain(f, (struct seg[]){ { STATUS(n), 1, true } }, 1);
	n++;
	run(f, (uint16_t)n);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(status(f, i), VIRTIO_BLK_S_IOERR);
	expect_file_pattern(f, 0, 4096);

	/* Unknown types, and ones not offered. */
	req(f, n++, 99, 0, 0, 0);
	req(f, n++, VIRTIO_BLK_T_GET_LIFETIME, 0, DATA, 8);
	req(f, n++, VIRTIO_BLK_T_SECURE_ERASE, 0, DATA, 16);
	req(f, n++, 0x80000001u, 0, DATA, 512);   /* legacy barrier bit */
	run(f, (uint16_t)n);
	for (unsigned i = n - 4; i < n; i++)
		assert_int_equal(status(f, i), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
	assert_int_equal(virtio_blk_stats(f->blk).unsupp, 4);
	expect_file_pattern(f, 0, DISK_BYTES);
}

static void test_too_many_segments(void **state)
{
	struct fx *f = *state;
	struct seg s[VIRTIO_BLK_SEG_MAX + 3];
	unsigned n = 0;

	s[n++] = (struct seg){ HDR(0), 16, false };
	for (unsigned i = 0; i < VIRTIO_BLK_SEG_MAX + 1; i++)
		s[n++] = (struct seg){ DATA + 512 * i, 512, false };
	s[n++] = (struct seg){ STATUS(0), 1, true };
	put_hdr(f, 0, VIRTIO_BLK_T_OUT, 0);
	chain_indirect(f, 0, s, n);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_IOERR);

	/* seg_max itself is fine. */
	s[VIRTIO_BLK_SEG_MAX + 1] = (struct seg){ STATUS(1), 1, true };
	s[0].gpa = HDR(1);
	put_hdr(f, 1, VIRTIO_BLK_T_OUT, 0);
	memset(host(f, DATA, 512 * VIRTIO_BLK_SEG_MAX), 0x3c, 512 * VIRTIO_BLK_SEG_MAX);
	chain_indirect(f, 1, s, VIRTIO_BLK_SEG_MAX + 2);
	run(f, 2);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	{
		uint8_t b[512];

		file_read(f, (VIRTIO_BLK_SEG_MAX - 1) * 512, b, 512);
		for (int i = 0; i < 512; i++)
			assert_int_equal(b[i], 0x3c);
	}
}

static void test_status_not_writable(void **state)
{
	struct fx *f = *state;

	/* No writable byte at all: the request cannot even fail. */
	put_hdr(f, 0, VIRTIO_BLK_T_IN, 0);
	chain(f, (struct seg[]){ { HDR(0), 16, false }, { DATA, 512, false } }, 2);
	virtio_dev_process_queue(&f->dev, 0);
	assert_true(virtio_dev_status(&f->dev) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(virtio_blk_inflight(f->blk), 0);

	/* After a reset the device works again. */
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);
	memset(host(f, USED, 4 + 8 * QSIZE), 0, 4 + 8 * QSIZE);
	driver_init(f, offered(f));
	req(f, 0, VIRTIO_BLK_T_IN, 0, DATA, 512);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
}

/* --- many in flight, reset, cache=none, the worker --- */

static void test_many_in_flight(void **state)
{
	struct fx *f = *state;
	const unsigned n = 200;   /* more than DISK_QUEUE_DEPTH */

	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = host(f, DATA + 4096ULL * i, 4096);

		memset(p, (int)(i + 1), 4096);
		put_hdr(f, i, VIRTIO_BLK_T_OUT, 8ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 4096ULL * i, 4096, false },
						     { STATUS(i), 1, true } }, 3);
	}
	run(f, (uint16_t)n);
	for (unsigned i = 0; i < n; i++) {
		uint8_t b[4096];

		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		file_read(f, 4096ULL * i, b, sizeof(b));
		for (int j = 0; j < 4096; j++)
			if (b[j] != (uint8_t)(i + 1))
				fail_msg("request %u: byte %d", i, j);
	}
	assert_int_equal(virtio_blk_stats(f->blk).writes, n);

	/* And read them all back at once. */
	for (unsigned i = 0; i < n; i++) {
		memset(host(f, DATA + 4096ULL * i, 4096), 0, 4096);
		put_hdr(f, i, VIRTIO_BLK_T_IN, 8ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 4096ULL * i, 4096, true },
						     { STATUS(i), 1, true } }, 3);
	}
	run(f, (uint16_t)(2 * n));
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = host(f, DATA + 4096ULL * i, 4096);

		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		assert_int_equal(p[0], (uint8_t)(i + 1));
		assert_int_equal(p[4095], (uint8_t)(i + 1));
	}
}

static void test_reset_in_flight(void **state)
{
	struct fx *f = *state;
	const unsigned n = 100;

	for (unsigned i = 0; i < n; i++) {
		put_hdr(f, i, i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 16ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 8192ULL * i, 8192, i % 2 },
						     { STATUS(i), 1, true } }, 3);
	}
	/* Submitted, not reaped: then the driver resets. */
	virtio_dev_process_queue(&f->dev, 0);
	assert_true(virtio_blk_inflight(f->blk) > 0);
	virtio_dev_lock(&f->dev);
	assert_true(virtio_dev_set_status(&f->dev, 0));
	virtio_dev_unlock(&f->dev);
	/* Nothing in flight, nothing pushed after the reset. */
	assert_int_equal(virtio_blk_inflight(f->blk), 0);
	assert_int_equal(f->disk->inflight, 0);
	virtio_blk_complete(f->blk);
	assert_int_equal(used_idx(f), 0);

	/* The device starts over. */
	driver_init(f, offered(f));
	req(f, 0, VIRTIO_BLK_T_IN, 0, DATA, 512);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
}

static void test_direct_bounce(void **state)
{
	struct fx *f = *state;
	uint8_t *src = host(f, DATA + 100, 4096), *dst = host(f, DATA + 0x10000 + 7, 4096);
	uint8_t check[4096];

	/* Aligned guest buffers go straight to the file. */
	memset(host(f, DATA + 0x20000, 4096), 0x42, 4096);
	req(f, 0, VIRTIO_BLK_T_OUT, 64, DATA + 0x20000, 4096);
	run(f, 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(virtio_blk_stats(f->blk).bounced, 0);

	/* Unaligned ones through a bounce buffer. */
	for (int i = 0; i < 4096; i++)
		src[i] = (uint8_t)(i ^ 0x5a);
	put_hdr(f, 1, VIRTIO_BLK_T_OUT, 8);
	chain(f, (struct seg[]){ { HDR(1), 16, false }, { DATA + 100, 1000, false },
				 { DATA + 1100, 3096, false }, { STATUS(1), 1, true } }, 4);
	run(f, 2);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	file_read(f, 8 * 512, check, 4096);
	assert_memory_equal(check, src, 4096);

	req(f, 2, VIRTIO_BLK_T_IN, 8, DATA + 0x10000 + 7, 4096);
	run(f, 3);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_OK);
	assert_memory_equal(dst, src, 4096);
	assert_int_equal(virtio_blk_stats(f->blk).bounced, 2);
	file_read(f, 64 * 512, check, 4096);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(check[i], 0x42);
}

/* The device on a real worker thread, as popek runs it (kicks, completions
 * and the limiter's timer all go through it). */
static void start_worker(struct fx *f)
{
	char err[256];

	f->worker = virtio_worker_create("test-blk", err, sizeof(err));
	assert_non_null(f->worker);
	assert_int_equal(virtio_worker_watch_queues(f->worker, &f->dev), 0);
	assert_int_equal(virtio_blk_attach(f->blk, &f->dev, f->worker, err, sizeof(err)), 0);
	assert_int_equal(virtio_worker_start(f->worker, err, sizeof(err)), 0);
}

static void test_worker(void **state)
{
	struct fx *f = *state;
	double end;

	start_worker(f);

	for (unsigned i = 0; i < 150; i++) {
		memset(host(f, DATA + 4096ULL * i, 4096), (int)i, 4096);
		put_hdr(f, i, VIRTIO_BLK_T_OUT, 8ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 4096ULL * i, 4096, false },
						     { STATUS(i), 1, true } }, 3);
	}
	virtio_dev_kick(&f->dev, 0);
	end = now() + 10;
	while (__atomic_load_n((uint16_t *)host(f, USED + 2, 2), __ATOMIC_ACQUIRE) != 150) {
		if (now() > end)
			fail_msg("worker: %u requests done", used_idx(f));
		usleep(1000);
	}
	for (unsigned i = 0; i < 150; i++)
		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
	assert_true(__atomic_load_n(&f->queue_irqs, __ATOMIC_RELAXED) >= 1);

	/* A reset from "a vCPU" while the worker runs requests. */
	for (unsigned i = 0; i < 100; i++) {
		put_hdr(f, i, VIRTIO_BLK_T_IN, 8ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 4096ULL * i, 4096, true },
						     { STATUS(i), 1, true } }, 3);
	}
	virtio_dev_kick(&f->dev, 0);
	usleep(200);
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	assert_int_equal(virtio_blk_inflight(f->blk), 0);
	virtio_dev_unlock(&f->dev);
}

static void test_file_shrank(void **state)
{
	struct fx *f = *state;

	/* Someone truncated the image under us: reads past the new end
	 * find nothing and fail; nothing crashes. */
	assert_int_equal(truncate(f->path, 4096), 0);
	req(f, 0, VIRTIO_BLK_T_IN, 16, DATA, 4096);
	req(f, 1, VIRTIO_BLK_T_IN, 4, DATA + 0x2000, 4096);   /* half there */
	run(f, 2);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_IOERR);
}

/* --- changing the backing file (virtio_blk_replace_disk) --- */

/* The second image's contents: not the first one's. */
static uint8_t pattern2(uint64_t off)
{
	return pattern(off) ^ 0xa5;
}

/* f->path2: bytes of pattern2. */
static void make_image2(struct fx *f, uint64_t bytes)
{
	uint8_t *buf = malloc(bytes);
	int fd;

	assert_non_null(buf);
	for (uint64_t i = 0; i < bytes; i++)
		buf[i] = pattern2(i);
	snprintf(f->path2, sizeof(f->path2), "/tmp/popek-blk2-XXXXXX");
	fd = mkstemp(f->path2);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, bytes), (ssize_t)bytes);
	close(fd);
	free(buf);
}

static struct virtio_blk_config config(struct fx *f)
{
	struct virtio_blk_config c;

	virtio_dev_lock(&f->dev);
	virtio_dev_read_config(&f->dev, 0, &c, sizeof(c));
	virtio_dev_unlock(&f->dev);
	return c;
}

static void expect_guest(struct fx *f, uint64_t gpa, uint64_t off, uint64_t len, bool second)
{
	const uint8_t *p = host(f, gpa, len);

	for (uint64_t i = 0; i < len; i++)
		if (p[i] != (second ? pattern2(off + i) : pattern(off + i)))
			fail_msg("guest byte %llu (disk offset %llu) is %#x, not the %s image's %#x",
				 (unsigned long long)i, (unsigned long long)(off + i), p[i],
				 second ? "new" : "old", second ? pattern2(off + i) : pattern(off + i));
}

static bool kick_pending(struct fx *f)
{
	struct pollfd p = { .fd = virtio_dev_kick_fd(&f->dev, 0), .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void test_replace_bigger(void **state)
{
	struct fx *f = *state;
	uint8_t gen = virtio_dev_config_generation(&f->dev);
	int irqs = f->config_irqs;
	char err[256];
	struct virtio_blk_stats st;
	uint8_t b[512];
	int fd;

	req(f, 0, VIRTIO_BLK_T_IN, 0, DATA, 512);
	run(f, 1);
	assert_int_equal(config(f).capacity, SECTORS);

	make_image2(f, 2 * DISK_BYTES);
	assert_int_equal(virtio_blk_replace_disk(f->blk, f->path2, err, sizeof(err)), 0);
	/* §5.2.4 capacity, a new config_generation (§4.1.4.3) and the
	 * configuration change interrupt (§4.1.5.3). */
	assert_int_equal(config(f).capacity, 2 * SECTORS);
	assert_int_equal(config(f).blk_size, 512);
	assert_int_not_equal(virtio_dev_config_generation(&f->dev), gen);
	assert_int_equal(f->config_irqs, irqs + 1);
	assert_string_equal(virtio_blk_disk(f->blk)->path, f->path2);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);

	/* Reads come from the new file, also past the old end. */
	req(f, 1, VIRTIO_BLK_T_IN, 0, DATA, 4096);
	req(f, 2, VIRTIO_BLK_T_IN, SECTORS + 8, DATA + 0x10000, 4096);
	run(f, 3);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_OK);
	expect_guest(f, DATA, 0, 4096, true);
	expect_guest(f, DATA + 0x10000, (SECTORS + 8) * 512, 4096, true);
	/* Writes go there too; the old file is left alone. */
	memset(host(f, DATA + 0x20000, 512), 0x77, 512);
	req(f, 3, VIRTIO_BLK_T_OUT, 16, DATA + 0x20000, 512);
	/* Past the new end: IOERR. */
	req(f, 4, VIRTIO_BLK_T_IN, 2 * SECTORS, DATA, 512);
	run(f, 5);
	assert_int_equal(status(f, 3), VIRTIO_BLK_S_OK);
	assert_int_equal(status(f, 4), VIRTIO_BLK_S_IOERR);
	fd = open(f->path2, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, b, 512, 16 * 512), 512);
	close(fd);
	for (int i = 0; i < 512; i++)
		assert_int_equal(b[i], 0x77);
	expect_file_pattern(f, 0, DISK_BYTES);

	/* The statistics carried on across the swap. */
	st = virtio_blk_stats(f->blk);
	assert_int_equal(st.reads, 3);
	assert_int_equal(st.writes, 1);
	assert_int_equal(st.ioerr, 1);
	assert_int_equal(st.read_bytes, 512 + 2 * 4096);
}

static void test_replace_same_resized(void **state)
{
	struct fx *f = *state;
	uint8_t gen = virtio_dev_config_generation(&f->dev);
	int irqs = f->config_irqs;
	char err[256];

	/* The host grew the file: the same path re-reads its size. */
	assert_int_equal(truncate(f->path, 3 * DISK_BYTES), 0);
	assert_int_equal(virtio_blk_replace_disk(f->blk, f->path, err, sizeof(err)), 0);
	assert_int_equal(config(f).capacity, 3 * SECTORS);
	assert_int_not_equal(virtio_dev_config_generation(&f->dev), gen);
	assert_int_equal(f->config_irqs, irqs + 1);
	memset(host(f, DATA, 4096), 0xee, 4096);
	req(f, 0, VIRTIO_BLK_T_IN, 2 * SECTORS, DATA, 4096);
	req(f, 1, VIRTIO_BLK_T_IN, 0, DATA + 0x10000, 4096);
	run(f, 2);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(((uint8_t *)host(f, DATA, 4096))[i], 0);
	expect_guest(f, DATA + 0x10000, 0, 4096, false);

	/* Shrunk: what lies past the new end fails. */
	assert_int_equal(truncate(f->path, DISK_BYTES / 2), 0);
	gen = virtio_dev_config_generation(&f->dev);
	assert_int_equal(virtio_blk_replace_disk(f->blk, f->path, err, sizeof(err)), 0);
	assert_int_equal(config(f).capacity, SECTORS / 2);
	assert_int_not_equal(virtio_dev_config_generation(&f->dev), gen);
	assert_int_equal(f->config_irqs, irqs + 2);
	req(f, 2, VIRTIO_BLK_T_IN, SECTORS / 2, DATA, 512);
	req(f, 3, VIRTIO_BLK_T_OUT, SECTORS - 1, DATA, 512);
	req(f, 4, VIRTIO_BLK_T_IN, SECTORS / 2 - 1, DATA, 512);
	run(f, 5);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status(f, 3), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status(f, 4), VIRTIO_BLK_S_OK);
	assert_int_equal(lseek(f->file, 0, SEEK_END), DISK_BYTES / 2);
}

static void test_replace_errors(void **state)
{
	struct fx *f = *state;
	uint8_t gen = virtio_dev_config_generation(&f->dev);
	int irqs = f->config_irqs, fd;
	struct virtio_blk_config before = config(f), after;
	const char *bad[] = { "/tmp/popek-blk-no-such-file", "/tmp", NULL };
	const char *why[] = { "no such file", "is a directory", "in use by another process (locked)" };
	char err[256];

	make_image2(f, 2 * DISK_BYTES);
	fd = open(f->path2, O_RDONLY);
	assert_true(fd >= 0);
	/* Another popek (another open file description) holds it. */
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	bad[2] = f->path2;
	for (unsigned i = 0; i < 3; i++) {
		char want[128];

		err[0] = '\0';
		assert_true(virtio_blk_replace_disk(f->blk, bad[i], err, sizeof(err)) < 0);
		snprintf(want, sizeof(want), "disk %s: %s", bad[i], why[i]);
		assert_string_equal(err, want);
		/* Nothing changed, nothing was announced. */
		after = config(f);
		assert_memory_equal(&after, &before, sizeof(before));
		assert_int_equal(virtio_dev_config_generation(&f->dev), gen);
		assert_int_equal(f->config_irqs, irqs);
		assert_string_equal(virtio_blk_disk(f->blk)->path, f->path);
		/* The old disk still serves. */
		req(f, i, VIRTIO_BLK_T_IN, 8 * i + 1, DATA, 4096);
		run(f, (uint16_t)(i + 1));
		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		expect_guest(f, DATA, (8 * i + 1) * 512, 4096, false);
	}
	close(fd);
	assert_int_equal(virtio_blk_replace_disk(f->blk, f->path2, err, sizeof(err)), 0);
	assert_int_equal(config(f).capacity, 2 * SECTORS);
}

static void test_replace_ro(void **state)
{
	struct fx *f = *state;
	char err[256];
	uint64_t feat = offered(f);
	int fd;

	make_image2(f, DISK_BYTES);
	assert_int_equal(virtio_blk_replace_disk(f->blk, f->path2, err, sizeof(err)), 0);
	assert_true(virtio_blk_disk(f->blk)->readonly);
	assert_int_equal(offered(f), feat);
	assert_true(virtio_dev_has_feature(&f->dev, VIRTIO_BLK_F_RO));
	/* A shared lock: no writer gets in. */
	fd = open(f->path2, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
	assert_int_equal(flock(fd, LOCK_SH | LOCK_NB), 0);
	close(fd);

	memset(host(f, DATA, 4096), 0x99, 4096);
	req(f, 0, VIRTIO_BLK_T_OUT, 0, DATA, 4096);
	req(f, 1, VIRTIO_BLK_T_IN, 8, DATA + 0x4000, 4096);
	run(f, 2);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	expect_guest(f, DATA + 0x4000, 8 * 512, 4096, true);
	{
		uint8_t b[4096];

		fd = open(f->path2, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, b, sizeof(b), 0), (ssize_t)sizeof(b));
		close(fd);
		for (int i = 0; i < 4096; i++)
			assert_int_equal(b[i], pattern2((uint64_t)i));
	}
}

static void test_replace_in_flight(void **state)
{
	struct fx *f = *state;
	const unsigned n = 100, later = 20;
	char err[256];
	int qirqs;

	make_image2(f, DISK_BYTES);
	for (unsigned i = 0; i < n + later; i++) {
		memset(host(f, DATA + 8192ULL * i, 8192), 0, 8192);
		put_hdr(f, i, VIRTIO_BLK_T_IN, 16ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 8192ULL * i, 8192, true },
						     { STATUS(i), 1, true } }, 3);
		if (i + 1 == n) {
			/* The first n are submitted, not reaped... */
			virtio_dev_process_queue(&f->dev, 0);
			assert_int_equal(virtio_blk_inflight(f->blk), n);
		}
	}
	/* ... the last ones the driver made available meanwhile. */
	assert_int_equal(used_idx(f), 0);
	assert_false(kick_pending(f));
	qirqs = f->queue_irqs;

	assert_int_equal(virtio_blk_replace_disk(f->blk, f->path2, err, sizeof(err)), 0);
	/* Those in flight completed against the old file, and were used. */
	assert_int_equal(virtio_blk_inflight(f->blk), 0);
	assert_int_equal(used_idx(f), n);
	assert_true(f->queue_irqs > qirqs);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		assert_int_equal(used(f, i).len, 8192 + 1);
		expect_guest(f, DATA + 8192ULL * i, 16ULL * i * 512, 8192, false);
	}
	/* The rest is not lost: the queue was kicked, and they read the
	 * new file. */
	assert_true(kick_pending(f));
	run(f, (uint16_t)(n + later));
	for (unsigned i = n; i < n + later; i++) {
		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		expect_guest(f, DATA + 8192ULL * i, 16ULL * i * 512, 8192, true);
	}
	assert_int_equal(virtio_blk_stats(f->blk).reads, n + later);
}

/* The real worker serving requests while another thread swaps the file. */
static void test_replace_worker(void **state)
{
	struct fx *f = *state;
	const unsigned n = 150;
	char err[256];
	double end;
	int fd2;

	make_image2(f, DISK_BYTES);
	start_worker(f);

	for (unsigned i = 0; i < n; i++) {
		memset(host(f, DATA + 4096ULL * i, 4096), (int)(i + 1), 4096);
		put_hdr(f, i, VIRTIO_BLK_T_OUT, 8ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 4096ULL * i, 4096, false },
						     { STATUS(i), 1, true } }, 3);
	}
	virtio_dev_kick(&f->dev, 0);
	/* Back and forth while the worker runs. */
	for (unsigned k = 0; k < 5; k++) {
		usleep(50);
		assert_int_equal(virtio_blk_replace_disk(f->blk, k % 2 ? f->path : f->path2, err,
							 sizeof(err)), 0);
	}
	end = now() + 10;
	while (__atomic_load_n((uint16_t *)host(f, USED + 2, 2), __ATOMIC_ACQUIRE) != n) {
		if (now() > end)
			fail_msg("worker: %u requests done", used_idx(f));
		usleep(1000);
	}
	/* Each write landed whole in one file or the other. */
	fd2 = open(f->path2, O_RDONLY);
	assert_true(fd2 >= 0);
	for (unsigned i = 0; i < n; i++) {
		uint8_t a[4096], b[4096];
		unsigned in_old = 0, in_new = 0;

		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		file_read(f, 4096ULL * i, a, sizeof(a));
		assert_int_equal(pread(fd2, b, sizeof(b), (off_t)(4096ULL * i)), (ssize_t)sizeof(b));
		for (unsigned j = 0; j < 4096; j++) {
			in_old += a[j] == (uint8_t)(i + 1);
			in_new += b[j] == (uint8_t)(i + 1);
		}
		if ((in_old == 4096) == (in_new == 4096))
			fail_msg("write %u: %u bytes in the old file, %u in the new", i, in_old, in_new);
	}
	close(fd2);
	assert_int_equal(virtio_blk_stats(f->blk).writes, n);
}

/* --- rate limits (virtio_blk_set_rate_limit) --- */

/* One pass of the queue, then the disk's completions until nothing is in
 * flight. Kicks are not followed: what the limiter's timer would bring
 * comes through virtio_blk_limiter_ready(). */
static void settle(struct fx *f)
{
	struct pollfd p = { .fd = disk_event_fd(f->disk), .events = POLLIN };
	double end = now() + 10;

	virtio_dev_process_queue(&f->dev, 0);
	while (virtio_blk_inflight(f->blk)) {
		if (now() > end)
			fail_msg("%u requests still in flight", virtio_blk_inflight(f->blk));
		if (poll(&p, 1, 100) == 1)
			virtio_blk_complete(f->blk);
	}
}

/* Chains the device took off the available ring (and did not give back). */
static uint16_t consumed(struct fx *f)
{
	return virtio_dev_queue(&f->dev, 0)->last_avail_idx;
}

static void test_rate_limit_ops(void **state)
{
	struct fx *f = *state;
	const struct rate_limit_params p = { .ops = { .size = 3, .refill_time_ms = 100 } };
	const unsigned n = 8;

	virtio_blk_set_rate_limit(f->blk, &p);
	for (unsigned i = 0; i < n; i++) {
		memset(host(f, DATA + 0x1000ULL * i, 4096), 0, 4096);
		req(f, i, VIRTIO_BLK_T_IN, 8ULL * i + 1, DATA + 0x1000ULL * i, 4096);
	}
	/* A full bucket of 3: those go, the 4th waits, still available. */
	settle(f);
	assert_int_equal(used_idx(f), 3);
	assert_int_equal(consumed(f), 3);
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 1);
	/* Waiting is not failing: no status written, no error counted. */
	for (unsigned i = 3; i < n; i++)
		assert_int_equal(status(f, i), 0xff);
	assert_int_equal(virtio_blk_stats(f->blk).ioerr, 0);
	/* Another pass before the timer changes nothing, and counts no
	 * second wait. */
	settle(f);
	assert_int_equal(used_idx(f), 3);
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 1);

	/* The bucket is full again after refill_time: 3 more. */
	usleep(150 * 1000);
	virtio_blk_limiter_ready(f->blk);
	assert_true(kick_pending(f));
	settle(f);
	assert_int_equal(used_idx(f), 6);
	assert_int_equal(consumed(f), 6);
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 2);
	usleep(150 * 1000);
	virtio_blk_limiter_ready(f->blk);
	run(f, (uint16_t)n);
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 2);

	/* Every one served once, with its data (in the order the disk
	 * completed them). */
	for (unsigned i = 0; i < n; i++) {
		unsigned seen = 0;

		for (unsigned j = 0; j < n; j++)
			seen += used(f, j).id == 3 * i;
		assert_int_equal(seen, 1);
		assert_int_equal(used(f, i).len, 4096 + 1);
		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		expect_guest(f, DATA + 0x1000ULL * i, (8ULL * i + 1) * 512, 4096, false);
	}
	assert_int_equal(virtio_blk_stats(f->blk).reads, n);
}

static void test_rate_limit_bandwidth(void **state)
{
	struct fx *f = *state;
	const struct rate_limit_params p = { .bandwidth = { .size = 8192, .refill_time_ms = 100 } };
	double t0, waited;

	virtio_blk_set_rate_limit(f->blk, &p);
	/* 4096 of the 8192 bytes; 16384, more than the bucket holds, needs
	 * it full: it waits. */
	req(f, 0, VIRTIO_BLK_T_IN, 0, DATA, 4096);
	req(f, 1, VIRTIO_BLK_T_IN, 64, DATA + 0x10000, 16384);
	settle(f);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(consumed(f), 1);
	assert_int_equal(status(f, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(status(f, 1), 0xff);
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 1);
	settle(f);
	assert_int_equal(used_idx(f), 1);

	/* Full again (50 ms): it goes whole, leaving the bucket 8192 in
	 * debt... */
	usleep(150 * 1000);
	virtio_blk_limiter_ready(f->blk);
	t0 = now();
	run(f, 2);
	assert_int_equal(status(f, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(used(f, 1).len, 16384 + 1);
	expect_guest(f, DATA + 0x10000, 64 * 512, 16384, false);

	/* ... so a 4096-byte write waits 150 ms (12288 bytes' worth),
	 * however often the device retries. */
	memset(host(f, DATA + 0x20000, 4096), 0x5c, 4096);
	req(f, 2, VIRTIO_BLK_T_OUT, 200, DATA + 0x20000, 4096);
	settle(f);
	assert_int_equal(used_idx(f), 2);
	assert_int_equal(status(f, 2), 0xff);
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 2);
	while (used_idx(f) != 3) {
		if (now() > t0 + 5)
			fail_msg("the write was not served in 5 s");
		usleep(10 * 1000);
		virtio_blk_limiter_ready(f->blk);
		settle(f);
	}
	waited = now() - t0;
	if (waited < 0.14)
		fail_msg("the write went after %.3f s: the debt was not paid", waited);
	assert_int_equal(status(f, 2), VIRTIO_BLK_S_OK);
	{
		uint8_t b[4096];

		file_read(f, 200 * 512, b, sizeof(b));
		for (int i = 0; i < 4096; i++)
			assert_int_equal(b[i], 0x5c);
	}
	assert_int_equal(virtio_blk_stats(f->blk).read_bytes, 4096 + 16384);
	assert_int_equal(virtio_blk_stats(f->blk).write_bytes, 4096);
	assert_int_equal(virtio_blk_stats(f->blk).ioerr, 0);
}

static void test_rate_limit_removed(void **state)
{
	struct fx *f = *state;
	/* One request a minute: nothing more comes by itself in a test. */
	const struct rate_limit_params p = { .ops = { .size = 1, .refill_time_ms = 60000 } };

	virtio_blk_set_rate_limit(f->blk, &p);
	for (unsigned i = 0; i < 4; i++)
		req(f, i, VIRTIO_BLK_T_IN, 8ULL * i, DATA + 0x1000ULL * i, 4096);
	settle(f);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 1);
	/* The same limits again change nothing, release nothing. */
	virtio_blk_set_rate_limit(f->blk, &p);
	assert_false(kick_pending(f));
	settle(f);
	assert_int_equal(used_idx(f), 1);

	/* No limits: the queue is kicked and the waiting ones go at once. */
	virtio_blk_set_rate_limit(f->blk, NULL);
	assert_true(kick_pending(f));
	run(f, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		expect_guest(f, DATA + 0x1000ULL * i, 8ULL * i * 512, 4096, false);
	}
	assert_int_equal(virtio_blk_stats(f->blk).throttled, 1);
}

/* The worker watches the limiter's timer: throttled requests finish by
 * themselves, no sooner than the rate allows. */
static void test_rate_limit_worker(void **state)
{
	struct fx *f = *state;
	const struct rate_limit_params p = { .ops = { .size = 2, .refill_time_ms = 50 } };
	const unsigned n = 10;
	double t0, took;

	start_worker(f);
	virtio_blk_set_rate_limit(f->blk, &p);

	for (unsigned i = 0; i < n; i++) {
		memset(host(f, DATA + 4096ULL * i, 4096), (int)(i + 1), 4096);
		put_hdr(f, i, VIRTIO_BLK_T_OUT, 8ULL * i);
		chain_indirect(f, i, (struct seg[]){ { HDR(i), 16, false },
						     { DATA + 4096ULL * i, 4096, false },
						     { STATUS(i), 1, true } }, 3);
	}
	t0 = now();
	virtio_dev_kick(&f->dev, 0);
	while (__atomic_load_n((uint16_t *)host(f, USED + 2, 2), __ATOMIC_ACQUIRE) != n) {
		if (now() > t0 + 10)
			fail_msg("worker: %u of %u requests done", used_idx(f), n);
		usleep(1000);
	}
	/* 2 at once, then one per 25 ms: 8 waited for, 200 ms. */
	took = now() - t0;
	if (took < 0.19)
		fail_msg("%u requests in %.3f s: faster than 2 per 50 ms", n, took);
	assert_true(virtio_blk_stats(f->blk).throttled >= 1);
	for (unsigned i = 0; i < n; i++) {
		uint8_t b[4096];

		assert_int_equal(status(f, i), VIRTIO_BLK_S_OK);
		file_read(f, 4096ULL * i, b, sizeof(b));
		assert_int_equal(b[0], (uint8_t)(i + 1));
		assert_int_equal(b[4095], (uint8_t)(i + 1));
	}
	assert_int_equal(virtio_blk_stats(f->blk).writes, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_config_ro, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_write_read_roundtrip, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_any_layout, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_writethrough, setup_noflush, teardown),
		cmocka_unit_test_setup_teardown(test_get_id, setup_serial, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_no_serial, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_discard, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_write_zeroes, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_write_zeroes_fallback, setup_tmpfs, teardown),
		cmocka_unit_test_setup_teardown(test_dwz_invalid, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_range, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_segments, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_status_not_writable, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_reset_in_flight, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_direct_bounce, setup_direct, teardown),
		cmocka_unit_test_setup_teardown(test_worker, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_file_shrank, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_replace_bigger, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_replace_same_resized, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_replace_errors, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_replace_ro, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_replace_in_flight, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_replace_worker, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_ops, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_bandwidth, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_removed, setup_rw, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit_worker, setup_rw, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
