/* virtio-rng (src/virtio/rng.c) on the device model with a fake
 * transport: buffers filled and lengths pushed, the per-request cap,
 * requests without a writable buffer, short and failing getrandom(), the
 * real getrandom(), and a malformed ring. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <cmocka.h>

#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "vmm/memory.h"

#define RAM     (16ULL << 20)
#define QSIZE   16
#define DESC    0x10000ULL
#define AVAIL   0x20000ULL
#define USED    0x30000ULL
#define BUF     0x100000ULL

struct fx {
	struct guest_memory mem;
	struct virtio_rng *rng;
	struct virtio_dev dev;
	int queue_irqs, config_irqs;
	uint16_t avail_idx;
};

/* The fake entropy source: a counter pattern, in chunks of at most
 * max_chunk bytes, failing with fail_errno after fail_after calls. */
static unsigned max_chunk = 1u << 30;
static int fail_after = -1, eintr_once;
static uint8_t next_byte;
static unsigned calls;
/* A guest that adds a buffer each time the device fills one. */
static struct fx *refill;
static void avail(struct fx *f, uint16_t head);

static ssize_t fake_fill(void *buf, size_t len)
{
	uint8_t *p = buf;

	calls++;
	if (eintr_once) {
		eintr_once = 0;
		errno = EINTR;
		return -1;
	}
	if (fail_after >= 0 && (int)calls > fail_after) {
		errno = EIO;
		return -1;
	}
	if (refill)
		avail(refill, 0);
	if (len > max_chunk)
		len = max_chunk;
	for (size_t i = 0; i < len; i++)
		p[i] = next_byte++;
	return (ssize_t)len;
}

static void notify_queue(void *opaque, unsigned q)
{
	struct fx *f = opaque;

	assert_int_equal(q, 0);
	f->queue_irqs++;
}

static void notify_config(void *opaque)
{
	struct fx *f = opaque;

	f->config_irqs++;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct virtio_transport t = { notify_queue, notify_config, f };
	struct virtq *q;

	assert_non_null(f);
	assert_int_equal(guest_memory_init(&f->mem, RAM), 0);
	f->rng = virtio_rng_create();
	assert_non_null(f->rng);
	f->rng->fill = fake_fill;
	max_chunk = 1u << 30;
	fail_after = -1;
	eintr_once = 0;
	next_byte = 0;
	calls = 0;
	refill = NULL;
	assert_int_equal(virtio_dev_init(&f->dev, &virtio_rng_ops, f->rng, &f->mem, &t), 0);

	/* The driver's side of §3.1.1, straight on the device model. */
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	assert_int_equal(virtio_dev_device_features(&f->dev, 1), 1);     /* VERSION_1 only */
	assert_int_equal(virtio_dev_device_features(&f->dev, 0),
			 (1u << VIRTIO_F_RING_EVENT_IDX) | (1u << VIRTIO_F_RING_INDIRECT_DESC));
	virtio_dev_set_driver_features(&f->dev, 1, 1);
	virtio_dev_set_status(&f->dev, 0x0b);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0b);
	q = virtio_dev_queue(&f->dev, 0);
	assert_int_equal(q->max_size, VIRTIO_RNG_QUEUE_SIZE);
	assert_null(virtio_dev_queue(&f->dev, 1));
	q->size = QSIZE;
	q->desc_addr = DESC;
	q->driver_addr = AVAIL;
	q->device_addr = USED;
	assert_int_equal(virtio_dev_queue_enable(&f->dev, 0), 0);
	virtio_dev_set_status(&f->dev, 0x0f);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
	virtio_dev_unlock(&f->dev);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_dev_destroy(&f->dev);
	virtio_rng_destroy(f->rng);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

static void desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	assert_int_equal(guest_memory_write(&f->mem, DESC + 16 * i, &d, sizeof(d)), 0);
}

static void avail(struct fx *f, uint16_t head)
{
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + 4 + 2 * (f->avail_idx % QSIZE), &head, 2), 0);
	f->avail_idx++;
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + 2, &f->avail_idx, 2), 0);
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

static uint8_t *host(struct fx *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_memory_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static void test_fills_buffers(void **state)
{
	struct fx *f = *state;
	uint8_t *a = host(f, BUF, 100), *b = host(f, BUF + 0x1000, 50);

	desc(f, 0, BUF, 100, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, BUF + 0x1000, 50, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 0);
	desc(f, 2, BUF + 0x2000, 7, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 2);
	virtio_dev_process_queue(&f->dev, 0);

	assert_int_equal(used_idx(f), 2);
	assert_int_equal(used(f, 0).id, 0);
	assert_int_equal(used(f, 0).len, 150);
	assert_int_equal(used(f, 1).id, 2);
	assert_int_equal(used(f, 1).len, 7);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(a[i], i);
	for (unsigned i = 0; i < 50; i++)
		assert_int_equal(b[i], 100 + i);
	assert_int_equal(host(f, BUF + 0x2000, 7)[0], 150);
	assert_int_equal(f->queue_irqs, 1);
	assert_int_equal(f->rng->requests, 2);
	assert_int_equal(f->rng->bytes, 157);
}

static void test_request_capped(void **state)
{
	struct fx *f = *state;
	uint32_t big = 2 * VIRTIO_RNG_MAX_REQUEST;
	uint8_t *p = host(f, BUF, big);

	memset(p, 0xee, big);
	desc(f, 0, BUF, 1000, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	desc(f, 1, BUF + 1000, big - 1000, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 0);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used(f, 0).len, VIRTIO_RNG_MAX_REQUEST);
	/* §5.4.6.1: the device may use less than the whole buffer; the
	 * rest is left alone. */
	assert_int_equal(p[VIRTIO_RNG_MAX_REQUEST - 1], (uint8_t)(VIRTIO_RNG_MAX_REQUEST - 1));
	assert_int_equal(p[VIRTIO_RNG_MAX_REQUEST], 0xee);
	assert_int_equal(p[big - 1], 0xee);
}

static void test_no_writable_buffer(void **state)
{
	struct fx *f = *state;

	/* A readable-only request (§5.4.6: drivers must not) is returned
	 * with length 0 and the device keeps working. */
	desc(f, 0, BUF, 16, 0, 0);
	avail(f, 0);
	desc(f, 1, BUF + 0x100, 0, VIRTQ_DESC_F_WRITE, 0);   /* empty writable */
	avail(f, 1);
	desc(f, 2, BUF + 0x200, 4, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 2);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used_idx(f), 3);
	assert_int_equal(used(f, 0).len, 0);
	assert_int_equal(used(f, 1).len, 0);
	assert_int_equal(used(f, 2).len, 4);
	assert_int_equal(calls, 1);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
}

static void test_short_reads_and_eintr(void **state)
{
	struct fx *f = *state;
	uint8_t *p = host(f, BUF, 100);

	max_chunk = 7;
	eintr_once = 1;
	desc(f, 0, BUF, 100, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 0);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used(f, 0).len, 100);
	for (unsigned i = 0; i < 100; i++)
		assert_int_equal(p[i], i);
}

static void test_source_failure(void **state)
{
	struct fx *f = *state;

	max_chunk = 10;
	fail_after = 3;
	desc(f, 0, BUF, 100, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 0);
	virtio_dev_process_queue(&f->dev, 0);
	/* What arrived before the failure is what the driver gets. */
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used(f, 0).len, 30);
}

static void test_real_getrandom(void **state)
{
	struct fx *f = *state;
	struct virtio_rng *real = virtio_rng_create();
	uint8_t *p = host(f, BUF, 4096);
	unsigned nonzero = 0;

	f->rng->fill = real->fill;
	virtio_rng_destroy(real);
	memset(p, 0, 4096);
	desc(f, 0, BUF, 4096, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 0);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used(f, 0).len, 4096);
	for (unsigned i = 0; i < 4096; i++)
		nonzero += p[i] != 0;
	assert_true(nonzero > 3500);   /* ~4080 expected */
}

static void test_bad_ring_needs_reset(void **state)
{
	struct fx *f = *state;

	desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);   /* loops */
	avail(f, 0);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(calls, 0);
	/* Reset: the device works again once the driver sets it up. */
	virtio_dev_lock(&f->dev);
	assert_true(virtio_dev_set_status(&f->dev, 0));
	virtio_dev_unlock(&f->dev);
	assert_int_equal(virtio_dev_status(&f->dev), 0);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(calls, 0);
}

static void test_bounded_pass(void **state)
{
	struct fx *f = *state;
	struct pollfd pfd = { .fd = virtio_dev_kick_fd(&f->dev, 0), .events = POLLIN };

	/* The guest keeps the ring full: one pass serves a ring's worth,
	 * then kicks itself to come back later. */
	desc(f, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 0);
	refill = f;
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used_idx(f), QSIZE);
	assert_int_equal(f->queue_irqs, 1);
	assert_int_equal(poll(&pfd, 1, 0), 1);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used_idx(f), 2 * QSIZE);
	refill = NULL;
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used_idx(f), 2 * QSIZE + 1);
	assert_int_equal(poll(&pfd, 1, 0), 0);
}

/* --- rate limit (the limiter member, Firecracker's entropy limiter) --- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits (2 s at most) for the limiter's timer, then does what the worker
 * does when it fires. */
static void limiter_timer(struct fx *f)
{
	struct pollfd p = { .fd = rate_limiter_fd(&f->rng->limiter), .events = POLLIN };

	assert_int_equal(poll(&p, 1, 2000), 1);
	virtio_rng_limiter_ready(f->rng);
}

static void test_rate_limit_bandwidth(void **state)
{
	struct fx *f = *state;
	const struct rate_limit_params p = { .bandwidth = { .size = 1024, .refill_time_ms = 100 } };
	struct pollfd kick = { .fd = virtio_dev_kick_fd(&f->dev, 0), .events = POLLIN };
	uint8_t *a = host(f, BUF, 4096), *b = host(f, BUF + 0x2000, 512);
	char err[256];
	double t0, took;

	assert_int_equal(virtio_rng_attach(f->rng, &f->dev, NULL, err, sizeof(err)), 0);
	assert_true(rate_limiter_update(&f->rng->limiter, &p));
	memset(a, 0xee, 4096);
	memset(b, 0xee, 512);
	desc(f, 0, BUF, 4096, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 0);
	desc(f, 1, BUF + 0x2000, 512, VIRTQ_DESC_F_WRITE, 0);
	avail(f, 1);
	t0 = now();
	virtio_dev_process_queue(&f->dev, 0);
	/* 4096 bytes, more than the bucket: served whole from a full one,
	 * leaving it 3072 in debt. The next waits: not used, not answered
	 * with 0 bytes, no entropy spent on it. */
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(used(f, 0).len, 4096);
	assert_int_equal(a[4095], (uint8_t)4095);
	assert_int_equal(f->rng->requests, 1);
	assert_int_equal(f->rng->bytes, 4096);
	assert_int_equal(rate_limiter_throttled(&f->rng->limiter), 1);
	assert_int_equal(virtio_dev_queue(&f->dev, 0)->last_avail_idx, 1);
	assert_int_equal(b[0], 0xee);
	assert_int_equal(f->queue_irqs, 1);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used_idx(f), 1);
	assert_int_equal(rate_limiter_throttled(&f->rng->limiter), 1);

	/* 3584 bytes' worth later (350 ms) the timer fires: the queue is
	 * kicked and the request served. */
	limiter_timer(f);
	took = now() - t0;
	if (took < 0.34)
		fail_msg("the timer fired after %.3f s: the debt was not counted", took);
	assert_int_equal(poll(&kick, 1, 0), 1);
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used_idx(f), 2);
	assert_int_equal(used(f, 1).id, 1);
	assert_int_equal(used(f, 1).len, 512);
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(b[i], (uint8_t)(4096 + i));
	assert_int_equal(f->rng->requests, 2);
	assert_int_equal(rate_limiter_throttled(&f->rng->limiter), 1);
}

static void test_rate_limit_ops(void **state)
{
	struct fx *f = *state;
	const struct rate_limit_params p = { .ops = { .size = 2, .refill_time_ms = 100 } };
	char err[256];

	assert_int_equal(virtio_rng_attach(f->rng, &f->dev, NULL, err, sizeof(err)), 0);
	assert_true(rate_limiter_update(&f->rng->limiter, &p));
	for (unsigned i = 0; i < 5; i++) {
		desc(f, i, BUF + 0x100 * i, 16, VIRTQ_DESC_F_WRITE, 0);
		avail(f, (uint16_t)i);
	}
	/* Requests count whatever their size: 2 of 5. */
	virtio_dev_process_queue(&f->dev, 0);
	assert_int_equal(used_idx(f), 2);
	assert_int_equal(calls, 2);
	/* One op back per 50 ms: each time the timer fires, one more at
	 * least. */
	while (used_idx(f) < 5) {
		uint16_t before = used_idx(f);

		limiter_timer(f);
		virtio_dev_process_queue(&f->dev, 0);
		assert_true(used_idx(f) > before);
	}
	assert_int_equal(used_idx(f), 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(used(f, i).id, i);
		assert_int_equal(used(f, i).len, 16);
	}
	assert_int_equal(f->rng->bytes, 5 * 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_fills_buffers),
		T(test_request_capped),
		T(test_no_writable_buffer),
		T(test_short_reads_and_eintr),
		T(test_source_failure),
		T(test_real_getrandom),
		T(test_bad_ring_needs_reset),
		T(test_bounded_pass),
		T(test_rate_limit_bandwidth),
		T(test_rate_limit_ops),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
