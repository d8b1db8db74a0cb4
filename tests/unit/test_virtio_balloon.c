/* virtio-balloon (src/virtio/balloon.c) on the device model with a fake
 * transport and a real guest memory of 3 GiB + 64 MiB (reserved lazily:
 * RAM on both sides of the MMIO hole): inflated pages leave the process
 * (mincore and guest_memory_resident), adjacent pages are batched, PFNs
 * outside RAM are skipped, deflate only counts, the target reaches the
 * configuration with an interrupt, actual comes back, and the statistics
 * queue (tags, unknown tags, short buffers, the held buffer, the timer). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "vmm/memory.h"

#define RAM      ((3ULL << 30) + (64ULL << 20))
#define QSIZE    16
#define DESC(q)  (0x10000ULL + 0x8000ULL * (q))
#define AVAIL(q) (DESC(q) + 0x1000)
#define USED(q)  (DESC(q) + 0x2000)
#define BUF      0x100000ULL          /* PFN arrays, stats buffers */
#define TOUCHED  (16ULL << 20)         /* pages the tests fault in */
#define HIGH     (4ULL << 30)          /* the region above the hole */
#define PAGE     4096ULL

#define F(b) (1ULL << (b))
#define INFLATEQ VIRTIO_BALLOON_INFLATEQ
#define DEFLATEQ VIRTIO_BALLOON_DEFLATEQ
#define STATSQ   VIRTIO_BALLOON_STATSQ

struct fx {
	struct guest_memory mem;
	struct virtio_balloon *b;
	struct virtio_dev dev;
	int queue_irqs[3], config_irqs;
	uint16_t avail_idx[3];
	unsigned next_desc[3];
};

static void notify_queue(void *opaque, unsigned q)
{
	struct fx *f = opaque;

	assert_true(q < 3);
	f->queue_irqs[q]++;
}

static void notify_config(void *opaque)
{
	struct fx *f = opaque;

	f->config_irqs++;
}

static struct fx *make(const struct balloon_params *cfg)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct virtio_transport t = { notify_queue, notify_config, f };
	char err[256];

	assert_non_null(f);
	assert_int_equal(guest_memory_init(&f->mem, RAM), 0);
	f->b = virtio_balloon_create(&f->mem, cfg, err, sizeof(err));
	assert_non_null(f->b);
	assert_int_equal(virtio_dev_init(&f->dev, virtio_balloon_ops(f->b), f->b, &f->mem, &t), 0);
	assert_int_equal(virtio_balloon_attach(f->b, &f->dev, NULL, err, sizeof(err)), 0);
	return f;
}

static int setup(void **state)
{
	struct balloon_params cfg = BALLOON_PARAMS_DEFAULT;

	*state = make(&cfg);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_dev_destroy(&f->dev);
	virtio_balloon_destroy(f->b);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

static void start(struct fx *f, uint64_t features)
{
	uint64_t all = features | F(VIRTIO_F_VERSION_1);

	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_driver_features(&f->dev, 0, (uint32_t)all);
	virtio_dev_set_driver_features(&f->dev, 1, (uint32_t)(all >> 32));
	virtio_dev_set_status(&f->dev, 0x0b);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0b);
	for (unsigned i = 0; i < 3; i++) {
		struct virtq *q = virtio_dev_queue(&f->dev, i);

		if (i == STATSQ && !(features & F(VIRTIO_BALLOON_F_STATS_VQ)))
			break;
		q->size = QSIZE;
		q->desc_addr = DESC(i);
		q->driver_addr = AVAIL(i);
		q->device_addr = USED(i);
		assert_int_equal(virtio_dev_queue_enable(&f->dev, i), 0);
	}
	virtio_dev_set_status(&f->dev, 0x0f);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
	virtio_dev_unlock(&f->dev);
}

/* Makes [gpa, gpa + len) available on queue q as one readable buffer. */
static void add_buf(struct fx *f, unsigned q, uint64_t gpa, uint32_t len, uint16_t flags)
{
	struct virtq_desc d = { .addr = gpa, .len = len, .flags = flags };
	uint16_t head = (uint16_t)(f->next_desc[q]++ % QSIZE), idx;

	assert_int_equal(guest_memory_write(&f->mem, DESC(q) + 16ULL * head, &d, sizeof(d)), 0);
	assert_int_equal(guest_memory_write(&f->mem, AVAIL(q) + 4 + 2 * (f->avail_idx[q] % QSIZE),
					    &head, 2), 0);
	idx = ++f->avail_idx[q];
	assert_int_equal(guest_memory_write(&f->mem, AVAIL(q) + 2, &idx, 2), 0);
}

/* A request of n PFNs at BUF + slot * 0x10000. */
static void pfn_request(struct fx *f, unsigned q, unsigned slot, const uint32_t *pfns, unsigned n)
{
	uint64_t gpa = BUF + 0x10000ULL * slot;

	assert_int_equal(guest_memory_write(&f->mem, gpa, pfns, 4ULL * n), 0);
	add_buf(f, q, gpa, 4 * n, 0);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	uint16_t v;

	assert_int_equal(guest_memory_read(&f->mem, USED(q) + 2, &v, 2), 0);
	return v;
}

static struct virtq_used_elem used(struct fx *f, unsigned q, unsigned i)
{
	struct virtq_used_elem e;

	assert_int_equal(guest_memory_read(&f->mem, USED(q) + 4 + 8 * (i % QSIZE), &e, sizeof(e)), 0);
	return e;
}

static uint8_t *host(struct fx *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_memory_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* Pages of [gpa, gpa + len) resident in host memory. */
static unsigned resident_pages(struct fx *f, uint64_t gpa, uint64_t len)
{
	unsigned char vec[4096];
	unsigned n = 0;

	assert_true(len / PAGE <= sizeof(vec));
	assert_int_equal(mincore(host(f, gpa, len), len, vec), 0);
	for (uint64_t i = 0; i < len / PAGE; i++)
		n += vec[i] & 1;
	return n;
}

static struct balloon_counters counters(struct fx *f)
{
	struct balloon_counters c;

	virtio_balloon_counters(f->b, &c);
	return c;
}

/* --- inflate and deflate --- */

static void test_inflate_frees_host_pages(void **state)
{
	struct fx *f = *state;
	const uint64_t len = 8ULL << 20;            /* 2048 pages, 4 THPs */
	uint32_t pfns[256];
	uint64_t before, touched, after;

	start(f, F(VIRTIO_BALLOON_F_STATS_VQ));
	/* Rings and request buffers are touched before measuring. */
	memset(host(f, BUF, 0x100000), 0, 0x100000);
	before = guest_memory_resident(&f->mem);
	memset(host(f, TOUCHED, len), 0x5a, len);
	touched = guest_memory_resident(&f->mem);
	assert_true(touched >= before + len);
	assert_int_equal(resident_pages(f, TOUCHED, len), len / PAGE);

	/* 8 requests of 256 ascending PFNs, as Linux sends them. */
	for (unsigned r = 0; r < 8; r++) {
		for (unsigned i = 0; i < 256; i++)
			pfns[i] = (uint32_t)((TOUCHED >> 12) + 256 * r + i);
		pfn_request(f, INFLATEQ, r, pfns, 256);
	}
	virtio_dev_process_queue(&f->dev, INFLATEQ);

	assert_int_equal(used_idx(f, INFLATEQ), 8);
	for (unsigned r = 0; r < 8; r++)
		assert_int_equal(used(f, INFLATEQ, r).len, 0);
	assert_int_equal(f->queue_irqs[INFLATEQ], 1);
	assert_int_equal(resident_pages(f, TOUCHED, len), 0);
	after = guest_memory_resident(&f->mem);
	assert_true(after + len <= touched);
	assert_int_equal(counters(f).inflated_pages, 2048);
	assert_int_equal(counters(f).discarded_pages, 2048);
	assert_int_equal(counters(f).discard_calls, 8);        /* one per run */
	/* The guest finds zeroes when it uses the pages again. */
	for (uint64_t off = 0; off < len; off += PAGE)
		assert_int_equal(host(f, TOUCHED + off, 1)[0], 0);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
}

static void test_inflate_single_pages_and_runs(void **state)
{
	struct fx *f = *state;
	uint64_t base = TOUCHED + (32ULL << 20);
	uint32_t p0 = (uint32_t)(base >> 12);
	/* Runs [0-2], [8-9] (descending), [3]; then every other page of
	 * 32..63. */
	uint32_t pfns[3 + 2 + 1 + 16] = { p0, p0 + 1, p0 + 2, p0 + 9, p0 + 8, p0 + 3 };

	start(f, 0);
	for (unsigned i = 0; i < 16; i++)
		pfns[6 + i] = p0 + 32 + 2 * i;
	memset(host(f, base, 64 * PAGE), 1, 64 * PAGE);
	assert_int_equal(resident_pages(f, base, 64 * PAGE), 64);
	pfn_request(f, INFLATEQ, 0, pfns, 22);
	virtio_dev_process_queue(&f->dev, INFLATEQ);
	assert_int_equal(used_idx(f, INFLATEQ), 1);
	/* 3 runs, then 16 single pages. */
	assert_int_equal(counters(f).discard_calls, 3 + 16);
	assert_int_equal(counters(f).discarded_pages, 22);
	assert_int_equal(resident_pages(f, base, 64 * PAGE), 64 - 22);
	assert_int_equal(resident_pages(f, base, 4 * PAGE), 0);
	assert_int_equal(resident_pages(f, base + 4 * PAGE, 4 * PAGE), 4);
	assert_int_equal(resident_pages(f, base + 8 * PAGE, 2 * PAGE), 0);
	assert_int_equal(resident_pages(f, base + 32 * PAGE, 32 * PAGE), 16);
	assert_int_equal(host(f, base + 4 * PAGE, 1)[0], 1);   /* untouched neighbours */
}

static void test_bad_pfns_skipped(void **state)
{
	struct fx *f = *state;
	uint32_t high = (uint32_t)(HIGH >> 12);
	uint32_t pfns[] = {
		0xc0000,                               /* 3 GiB: the MMIO hole */
		0xfffff,                               /* the last page below 4 GiB */
		high,                                  /* RAM above the hole */
		high + (uint32_t)((64ULL << 20) >> 12),   /* just past the end of RAM */
		0xffffffff,
		(uint32_t)(TOUCHED >> 12),
	};

	start(f, 0);
	memset(host(f, HIGH, PAGE), 7, PAGE);
	memset(host(f, TOUCHED, PAGE), 7, PAGE);
	pfn_request(f, INFLATEQ, 0, pfns, 6);
	/* The array's tail: 2 bytes, ignored. */
	add_buf(f, INFLATEQ, BUF + 0x20000, 6, 0);
	*(uint32_t *)host(f, BUF + 0x20000, 4) = (uint32_t)(TOUCHED >> 12) + 1;
	/* Writable-only: no PFNs. */
	add_buf(f, INFLATEQ, BUF + 0x30000, 64, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(&f->dev, INFLATEQ);

	assert_int_equal(used_idx(f, INFLATEQ), 3);
	assert_int_equal(counters(f).bad_pfns, 4);
	assert_int_equal(counters(f).inflated_pages, 7);
	assert_int_equal(counters(f).discarded_pages, 3);
	assert_int_equal(resident_pages(f, HIGH, PAGE), 0);
	assert_int_equal(resident_pages(f, TOUCHED, PAGE), 0);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
}

static void test_inflate_own_request_page(void **state)
{
	struct fx *f = *state;
	uint32_t pfns[512];
	uint64_t gpa = BUF + 0x40000;

	/* A request whose PFN list names the page holding the list. The
	 * list is copied a chunk at a time, so the second half reads the
	 * zeroes of the discarded page (PFN 0): the guest loses what it
	 * asked to lose, the host nothing. */
	start(f, 0);
	for (unsigned i = 0; i < 512; i++)
		pfns[i] = (uint32_t)(gpa >> 12) + (i == 0 ? 0 : 1);
	assert_int_equal(guest_memory_write(&f->mem, gpa, pfns, sizeof(pfns)), 0);
	add_buf(f, INFLATEQ, gpa, sizeof(pfns), 0);
	virtio_dev_process_queue(&f->dev, INFLATEQ);
	assert_int_equal(used_idx(f, INFLATEQ), 1);
	assert_int_equal(counters(f).inflated_pages, 512);
	assert_int_equal(counters(f).bad_pfns, 0);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
}

static void test_deflate_only_counts(void **state)
{
	struct fx *f = *state;
	uint32_t pfns[] = { (uint32_t)(TOUCHED >> 12), 0xc0001 };

	start(f, 0);
	memset(host(f, TOUCHED, PAGE), 3, PAGE);
	pfn_request(f, DEFLATEQ, 0, pfns, 2);
	virtio_dev_process_queue(&f->dev, DEFLATEQ);
	assert_int_equal(used_idx(f, DEFLATEQ), 1);
	assert_int_equal(f->queue_irqs[DEFLATEQ], 1);
	assert_int_equal(counters(f).deflated_pages, 2);
	assert_int_equal(counters(f).bad_pfns, 1);
	assert_int_equal(counters(f).discard_calls, 0);
	assert_int_equal(resident_pages(f, TOUCHED, PAGE), 1);
	assert_int_equal(host(f, TOUCHED, 1)[0], 3);
}

/* --- configuration --- */

static uint32_t config32(struct fx *f, uint32_t off)
{
	uint32_t v;

	virtio_dev_lock(&f->dev);
	virtio_dev_read_config(&f->dev, off, &v, 4);
	virtio_dev_unlock(&f->dev);
	return v;
}

static void test_target_and_actual(void **state)
{
	struct fx *f = *state;
	uint8_t gen = virtio_dev_config_generation(&f->dev);
	uint32_t v;
	uint8_t byte;

	/* The offer. */
	assert_int_equal(virtio_dev_device_features(&f->dev, 0),
			 F(VIRTIO_BALLOON_F_STATS_VQ) | F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
			 (uint32_t)VIRTIO_CORE_FEATURES);
	start(f, F(VIRTIO_BALLOON_F_STATS_VQ) | F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
	assert_int_equal(config32(f, 0), 0);

	assert_int_equal(virtio_balloon_set_target(f->b, 64ULL << 20), 0);
	assert_int_equal(config32(f, 0), 16384);
	assert_int_equal(f->config_irqs, 1);
	assert_int_equal(virtio_dev_config_generation(&f->dev), (uint8_t)(gen + 1));
	assert_int_equal(virtio_balloon_target(f->b), 64ULL << 20);
	/* Unchanged: no interrupt. */
	assert_int_equal(virtio_balloon_set_target(f->b, (64ULL << 20) + 100), 0);
	assert_int_equal(f->config_irqs, 1);
	/* More than the guest has. */
	assert_int_equal(virtio_balloon_set_target(f->b, RAM + PAGE), -ERANGE);
	assert_int_equal(config32(f, 0), 16384);
	assert_int_equal(virtio_balloon_set_target(f->b, RAM), 0);
	assert_int_equal(config32(f, 0), RAM >> 12);
	assert_int_equal(f->config_irqs, 2);

	/* The driver reports actual; num_pages is not its to write. */
	v = 1000;
	virtio_dev_lock(&f->dev);
	virtio_dev_write_config(&f->dev, 4, &v, 4);
	virtio_dev_write_config(&f->dev, 0, &v, 4);
	virtio_dev_unlock(&f->dev);
	assert_int_equal(virtio_balloon_actual(f->b), 1000 * PAGE);
	assert_int_equal(config32(f, 4), 1000);
	assert_int_equal(config32(f, 0), RAM >> 12);
	/* Byte by byte (a legacy-style driver) ends with the right value. */
	v = 0x12345;
	virtio_dev_lock(&f->dev);
	for (unsigned i = 0; i < 4; i++) {
		byte = (uint8_t)(v >> (8 * i));
		virtio_dev_write_config(&f->dev, 4 + i, &byte, 1);
	}
	virtio_dev_unlock(&f->dev);
	assert_int_equal(virtio_balloon_actual(f->b), 0x12345ULL * PAGE);
	/* Out of range: dropped. */
	virtio_dev_lock(&f->dev);
	virtio_dev_write_config(&f->dev, 6, &v, 4);
	virtio_dev_unlock(&f->dev);
	assert_int_equal(virtio_balloon_actual(f->b), 0x12345ULL * PAGE);

	/* Reset: a new driver starts with an empty balloon, the target
	 * stays. */
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);
	assert_int_equal(virtio_balloon_actual(f->b), 0);
	assert_int_equal(config32(f, 0), RAM >> 12);
}

static void test_config_options(void **state)
{
	struct balloon_params cfg = { .target = 8ULL << 20, .deflate_on_oom = false };
	struct fx *f;
	char err[256];

	(void)state;
	f = make(&cfg);
	assert_int_equal(virtio_dev_device_features(&f->dev, 0),
			 F(VIRTIO_BALLOON_F_STATS_VQ) | (uint32_t)VIRTIO_CORE_FEATURES);
	assert_int_equal(config32(f, 0), 2048);
	assert_int_equal(f->config_irqs, 0);       /* set before the driver */
	teardown((void **)&f);

	cfg.target = RAM + 1;
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(guest_memory_init(&f->mem, RAM), 0);
	assert_null(virtio_balloon_create(&f->mem, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "exceeds guest RAM"));
	guest_memory_destroy(&f->mem);
	free(f);
}

/* --- statistics --- */

static uint64_t put_stats(struct fx *f, uint64_t gpa, const uint16_t *tags, const uint64_t *vals,
			  unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t e[10];

		memcpy(e, &tags[i], 2);
		memcpy(e + 2, &vals[i], 8);
		assert_int_equal(guest_memory_write(&f->mem, gpa + 10ULL * i, e, 10), 0);
	}
	return 10ULL * n;
}

static void test_stats(void **state)
{
	struct fx *f = *state;
	uint16_t tags[] = { 5, 4, 0x99, 0, 1, 2, 3, 6, 7, 8, 9, 15, 16 };
	uint64_t vals[] = { 1ULL << 30, 500ULL << 20, 123, 10, 11, 12, 13, 600ULL << 20, 14, 15, 16, 17, 18 };
	struct balloon_stats s;
	uint64_t len;

	assert_int_equal(virtio_balloon_stats(f->b, &s), -ENODATA);
	start(f, F(VIRTIO_BALLOON_F_STATS_VQ));
	/* No buffer held yet: the timer does nothing. */
	virtio_balloon_timer_event(f->b);
	assert_int_equal(used_idx(f, STATSQ), 0);

	/* The driver's first buffer, with an unknown tag (0x99 and 16) and
	 * a 5-byte tail. */
	len = put_stats(f, BUF, tags, vals, 13);
	add_buf(f, STATSQ, BUF, (uint32_t)len + 5, 0);
	virtio_dev_process_queue(&f->dev, STATSQ);
	/* Held for the next request, not used. */
	assert_int_equal(used_idx(f, STATSQ), 0);
	assert_int_equal(virtio_balloon_stats(f->b, &s), 0);
	assert_int_equal(s.present, 0x83ff);
	assert_int_equal(s.total_memory, 1ULL << 30);
	assert_int_equal(s.free_memory, 500ULL << 20);
	assert_int_equal(s.available_memory, 600ULL << 20);
	assert_int_equal(s.swap_in, 10);
	assert_int_equal(s.swap_out, 11);
	assert_int_equal(s.major_faults, 12);
	assert_int_equal(s.minor_faults, 13);
	assert_int_equal(s.disk_caches, 14);
	assert_int_equal(s.hugetlb_allocations, 15);
	assert_int_equal(s.hugetlb_failures, 16);
	assert_int_equal(s.direct_reclaims, 17);
	assert_int_equal(s.updates, 1);
	assert_true(s.updated_ns > 0);

	/* The request: the held buffer is used (§5.5.6.3 step 1). */
	virtio_balloon_timer_event(f->b);
	assert_int_equal(used_idx(f, STATSQ), 1);
	assert_int_equal(used(f, STATSQ, 0).id, 0);
	assert_int_equal(used(f, STATSQ, 0).len, 0);
	assert_int_equal(f->queue_irqs[STATSQ], 1);
	/* Nothing held: a second tick asks nothing. */
	virtio_balloon_timer_event(f->b);
	assert_int_equal(used_idx(f, STATSQ), 1);

	/* The driver answers with a short buffer: one entry and 3 bytes. */
	tags[0] = 4;
	vals[0] = 42;
	len = put_stats(f, BUF + 0x1000, tags, vals, 1);
	add_buf(f, STATSQ, BUF + 0x1000, (uint32_t)len + 3, 0);
	virtio_dev_process_queue(&f->dev, STATSQ);
	assert_int_equal(virtio_balloon_stats(f->b, &s), 0);
	assert_int_equal(s.present, 1u << 4);
	assert_int_equal(s.free_memory, 42);
	assert_int_equal(s.total_memory, 0);
	assert_int_equal(s.updates, 2);
	/* A buffer shorter than an entry: an empty report. */
	virtio_balloon_timer_event(f->b);
	assert_int_equal(used_idx(f, STATSQ), 2);
	add_buf(f, STATSQ, BUF + 0x2000, 7, 0);
	virtio_dev_process_queue(&f->dev, STATSQ);
	assert_int_equal(virtio_balloon_stats(f->b, &s), 0);
	assert_int_equal(s.present, 0);
	assert_int_equal(s.updates, 3);

	/* A second buffer while one is held (§5.5.6.3.1 forbids it): the
	 * older one is given back. */
	add_buf(f, STATSQ, BUF + 0x3000, 10, 0);
	virtio_dev_process_queue(&f->dev, STATSQ);
	assert_int_equal(used_idx(f, STATSQ), 3);
	assert_int_equal(used(f, STATSQ, 2).id, 2);
	virtio_balloon_timer_event(f->b);
	assert_int_equal(used_idx(f, STATSQ), 4);
	assert_int_equal(used(f, STATSQ, 3).id, 3);

	/* After a reset nothing is held. */
	add_buf(f, STATSQ, BUF + 0x3000, 10, 0);
	virtio_dev_process_queue(&f->dev, STATSQ);
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);
	virtio_balloon_timer_event(f->b);
	/* Stats survive the reset (the last report). */
	assert_int_equal(virtio_balloon_stats(f->b, &s), 0);
}

static void test_stats_timer(void **state)
{
	struct fx *f = *state;
	struct pollfd p = { .fd = virtio_balloon_timer_fd(f->b), .events = POLLIN };

	/* Disarmed by default. */
	assert_int_equal(poll(&p, 1, 50), 0);
	assert_int_equal(virtio_balloon_set_stats_interval(f->b, 1), 0);
	assert_int_equal(poll(&p, 1, 2000), 1);
	virtio_balloon_timer_event(f->b);          /* consumes the tick */
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(virtio_balloon_set_stats_interval(f->b, 0), 0);
	assert_int_equal(poll(&p, 1, 1200), 0);
}

static void test_broken_ring_needs_reset(void **state)
{
	struct fx *f = *state;
	struct virtq_desc d = { .addr = BUF, .len = 4, .flags = VIRTQ_DESC_F_NEXT, .next = 0 };
	uint16_t head = 0, idx = 1;

	start(f, 0);
	assert_int_equal(guest_memory_write(&f->mem, DESC(INFLATEQ), &d, sizeof(d)), 0);
	assert_int_equal(guest_memory_write(&f->mem, AVAIL(INFLATEQ) + 4, &head, 2), 0);
	assert_int_equal(guest_memory_write(&f->mem, AVAIL(INFLATEQ) + 2, &idx, 2), 0);
	virtio_dev_process_queue(&f->dev, INFLATEQ);
	assert_true(virtio_dev_status(&f->dev) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(counters(f).inflated_pages, 0);
	/* set_target still works (the config interrupt goes out). */
	assert_int_equal(virtio_balloon_set_target(f->b, 1ULL << 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_inflate_frees_host_pages),
		T(test_inflate_single_pages_and_runs),
		T(test_bad_pfns_skipped),
		T(test_inflate_own_request_page),
		T(test_deflate_only_counts),
		T(test_target_and_actual),
		cmocka_unit_test(test_config_options),
		T(test_stats),
		T(test_stats_timer),
		T(test_broken_ring_needs_reset),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
