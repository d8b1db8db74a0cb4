/* Split virtqueue (src/virtio/queue.c): rings crafted in a real guest
 * memory, valid chains, every malformed case a hostile driver can build,
 * index wrap-around, event-index notification decisions, used ring. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "virtio/queue.h"
#include "virtio/virtio.h"
#include "vmm/memory.h"

#define RAM        (16ULL << 20)
#define QSIZE      16
#define DESC       0x10000ULL
#define AVAIL      0x20000ULL
#define USED       0x30000ULL
#define BUF        0x100000ULL
#define TABLE      0x200000ULL   /* indirect tables */

#define F_ALL ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_EVENT_IDX) | \
	       (1ULL << VIRTIO_F_RING_INDIRECT_DESC))

struct fx {
	struct guest_memory mem;
	struct virtq q;
	struct virtq_req *req;
	uint16_t avail_idx;
};

static void w16(struct fx *f, uint64_t gpa, uint16_t v)
{
	assert_int_equal(guest_memory_write(&f->mem, gpa, &v, 2), 0);
}

static uint16_t r16(struct fx *f, uint64_t gpa)
{
	uint16_t v;

	assert_int_equal(guest_memory_read(&f->mem, gpa, &v, 2), 0);
	return v;
}

static uint32_t r32(struct fx *f, uint64_t gpa)
{
	uint32_t v;

	assert_int_equal(guest_memory_read(&f->mem, gpa, &v, 4), 0);
	return v;
}

static void put_desc_at(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	assert_int_equal(guest_memory_write(&f->mem, table + 16ULL * i, &d, sizeof(d)), 0);
}

static void put_desc(struct fx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	put_desc_at(f, DESC, i, addr, len, flags, next);
}

static void make_avail(struct fx *f, uint16_t head)
{
	w16(f, AVAIL + 4 + 2 * (f->avail_idx % f->q.size), head);
	f->avail_idx++;
	w16(f, AVAIL + 2, f->avail_idx);
}

static int enable(struct fx *f, uint16_t size, uint64_t features)
{
	virtq_reset(&f->q, 256);
	f->q.size = size;
	f->q.desc_addr = DESC;
	f->q.driver_addr = AVAIL;
	f->q.device_addr = USED;
	f->avail_idx = 0;
	return virtq_enable(&f->q, &f->mem, features);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(guest_memory_init(&f->mem, RAM), 0);
	f->req = calloc(1, sizeof(*f->req));
	assert_non_null(f->req);
	assert_int_equal(enable(f, QSIZE, F_ALL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	guest_memory_destroy(&f->mem);
	free(f->req);
	free(f);
	return 0;
}

static void *host(struct fx *f, uint64_t gpa)
{
	return guest_memory_ptr(&f->mem, gpa, 1);
}

static void expect_broken(struct fx *f, const char *why_part)
{
	assert_int_equal(virtq_pop(&f->q, f->req), -EIO);
	assert_true(f->q.broken);
	assert_non_null(f->q.error);
	if (why_part && !strstr(f->q.error, why_part))
		fail_msg("error \"%s\" lacks \"%s\"", f->q.error, why_part);
	/* Broken stays broken, nothing consumed, nothing pushed. */
	assert_int_equal(virtq_pop(&f->q, f->req), -EIO);
	assert_int_equal(f->q.last_avail_idx, 0);
	assert_int_equal(r16(f, USED + 2), 0);
	assert_false(virtq_needs_notify(&f->q));
}

/* --- enabling --- */

static void test_enable_checks(void **state)
{
	struct fx *f = *state;

	/* §2.7: a power of two, within the maximum. */
	assert_int_equal(enable(f, 0, F_ALL), -EINVAL);
	assert_int_equal(enable(f, 3, F_ALL), -EINVAL);
	assert_int_equal(enable(f, 24, F_ALL), -EINVAL);
	assert_int_equal(enable(f, 512, F_ALL), -EINVAL);
	assert_false(f->q.enabled);
	assert_int_equal(enable(f, 256, F_ALL), 0);
	assert_int_equal(enable(f, 1, F_ALL), 0);
	assert_true(f->q.enabled);

	/* Alignment (§2.7 table). */
	virtq_reset(&f->q, 256);
	f->q.size = 16;
	f->q.desc_addr = DESC + 8;
	f->q.driver_addr = AVAIL;
	f->q.device_addr = USED;
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), -EINVAL);
	f->q.desc_addr = DESC;
	f->q.driver_addr = AVAIL + 1;
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), -EINVAL);
	f->q.driver_addr = AVAIL;
	f->q.device_addr = USED + 2;
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), -EINVAL);

	/* Whole ring inside RAM: the used ring of 16 entries is 134 bytes. */
	f->q.device_addr = RAM - 128;
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), -EINVAL);
	f->q.device_addr = RAM - 136;
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), 0);
	f->q.desc_addr = RAM;
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), -EINVAL);
	f->q.desc_addr = 0xfffffffffffffff0ULL;
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), -EINVAL);
	f->q.desc_addr = DESC;
	f->q.driver_addr = 0xc0000000ULL;   /* the MMIO hole */
	assert_int_equal(virtq_enable(&f->q, &f->mem, F_ALL), -EINVAL);
	assert_false(f->q.enabled);
}

/* --- valid chains --- */

static void test_direct_chain(void **state)
{
	struct fx *f = *state;
	struct virtq_req *r = f->req;

	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(f, 5, BUF + 0x1000, 32, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 2, BUF + 0x2000, 100, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 0);
	assert_true(virtq_has_avail(&f->q));
	assert_int_equal(virtq_pop(&f->q, r), 1);
	assert_int_equal(r->head, 0);
	assert_int_equal(r->nread, 2);
	assert_int_equal(r->nwrite, 1);
	assert_int_equal(r->read_len, 48);
	assert_int_equal(r->write_len, 100);
	assert_ptr_equal(r->iov[0].iov_base, host(f, BUF));
	assert_int_equal(r->iov[0].iov_len, 16);
	assert_ptr_equal(r->iov[1].iov_base, host(f, BUF + 0x1000));
	assert_ptr_equal(virtq_req_write_iov(r)[0].iov_base, host(f, BUF + 0x2000));
	assert_int_equal(virtq_pop(&f->q, r), 0);
	assert_false(virtq_has_avail(&f->q));

	virtq_push(&f->q, r, 60);
	assert_int_equal(r16(f, USED + 2), 1);
	assert_int_equal(r32(f, USED + 4), 0);      /* id */
	assert_int_equal(r32(f, USED + 8), 60);     /* len */
}

static void test_indirect_chain(void **state)
{
	struct fx *f = *state;
	struct virtq_req *r = f->req;

	put_desc_at(f, TABLE, 0, BUF, 8, VIRTQ_DESC_F_NEXT, 2);
	put_desc_at(f, TABLE, 2, BUF + 0x100, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(f, TABLE, 1, BUF + 0x400, 4, VIRTQ_DESC_F_WRITE, 0);
	/* §2.7.5.3.2: the WRITE flag of the descriptor naming the table is
	 * ignored. */
	put_desc(f, 3, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 3);
	assert_int_equal(virtq_pop(&f->q, r), 1);
	assert_int_equal(r->head, 3);
	assert_int_equal(r->nread, 1);
	assert_int_equal(r->nwrite, 2);
	assert_int_equal(r->read_len, 8);
	assert_int_equal(r->write_len, 516);
	assert_ptr_equal(r->iov[2].iov_base, host(f, BUF + 0x400));
	virtq_push(&f->q, r, 1000);   /* clamped to what is writable */
	assert_int_equal(r32(f, USED + 4), 3);
	assert_int_equal(r32(f, USED + 8), 516);
}

static void test_direct_then_indirect(void **state)
{
	struct fx *f = *state;
	struct virtq_req *r = f->req;

	/* §2.7.5.3.2: zero or more direct descriptors, then one indirect. */
	put_desc_at(f, TABLE, 0, BUF + 0x1000, 64, VIRTQ_DESC_F_WRITE, 0);
	put_desc(f, 7, BUF, 16, VIRTQ_DESC_F_NEXT, 8);
	put_desc(f, 8, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 7);
	assert_int_equal(virtq_pop(&f->q, r), 1);
	assert_int_equal(r->nread, 1);
	assert_int_equal(r->nwrite, 1);
	assert_int_equal(r->write_len, 64);
}

static void test_zero_length_and_full_chain(void **state)
{
	struct fx *f = *state;
	struct virtq_req *r = f->req;

	/* A chain through every descriptor of the table is as long as it
	 * may be; zero-length buffers are skipped, wherever they point. */
	for (unsigned i = 0; i < QSIZE; i++)
		put_desc(f, i, i == 4 ? 0xffffffff00000000ULL : BUF + 16 * i, i == 4 ? 0 : 16,
			 (i == QSIZE - 1 ? 0 : VIRTQ_DESC_F_NEXT) | (i >= 8 ? VIRTQ_DESC_F_WRITE : 0),
			 i + 1);
	make_avail(f, 0);
	assert_int_equal(virtq_pop(&f->q, r), 1);
	assert_int_equal(r->nread, 7);
	assert_int_equal(r->nwrite, 8);
	assert_int_equal(r->read_len, 7 * 16);
}

static void test_req_copy_helpers(void **state)
{
	struct fx *f = *state;
	struct virtq_req *r = f->req;
	uint8_t in[40], out[40];

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = i;
	assert_int_equal(guest_memory_write(&f->mem, BUF, in, 10), 0);
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x100, in + 10, 30), 0);
	put_desc(f, 0, BUF, 10, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF + 0x100, 30, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 2, BUF + 0x200, 5, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	put_desc(f, 3, BUF + 0x300, 5, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop(&f->q, r), 1);
	memset(out, 0, sizeof(out));
	assert_int_equal(virtq_req_read(r, 5, out, 40), 35);
	assert_memory_equal(out, in + 5, 35);
	assert_int_equal(virtq_req_read(r, 40, out, 4), 0);
	assert_int_equal(virtq_req_write(r, 3, in, 10), 7);
	assert_memory_equal(host(f, BUF + 0x203), in, 2);
	assert_memory_equal(host(f, BUF + 0x300), in + 2, 5);
}

/* --- malformed chains --- */

static void test_loop(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
	make_avail(f, 0);
	expect_broken(f, "loop");
}

static void test_self_loop(void **state)
{
	struct fx *f = *state;

	put_desc(f, 3, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 3);
	make_avail(f, 3);
	expect_broken(f, "loop");
}

static void test_loop_in_indirect(void **state)
{
	struct fx *f = *state;

	put_desc_at(f, TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(f, TABLE, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc_at(f, TABLE, 2, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
	put_desc(f, 0, TABLE, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_broken(f, "loop");
}

static void test_too_long(void **state)
{
	struct fx *f = *state;

	/* One direct descriptor plus a full indirect table is more than a
	 * request may hold. */
	for (unsigned i = 0; i < VIRTQ_MAX_INDIRECT; i++)
		put_desc_at(f, TABLE, i, BUF, 1, VIRTQ_DESC_F_NEXT, i + 1);
	put_desc_at(f, TABLE, VIRTQ_MAX_INDIRECT - 1, BUF, 1, 0, 0);
	put_desc(f, 0, BUF, 1, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, TABLE, VIRTQ_MAX_INDIRECT * 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_broken(f, "longer");
}

static void test_full_indirect_table_ok(void **state)
{
	struct fx *f = *state;

	for (unsigned i = 0; i < VIRTQ_MAX_INDIRECT; i++)
		put_desc_at(f, TABLE, i, BUF + i, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, i + 1);
	put_desc_at(f, TABLE, VIRTQ_MAX_INDIRECT - 1, BUF, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(f, 0, TABLE, VIRTQ_MAX_INDIRECT * 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop(&f->q, f->req), 1);
	assert_int_equal(f->req->nwrite, VIRTQ_MAX_INDIRECT);
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, QSIZE);
	make_avail(f, 0);
	expect_broken(f, "next");
}

static void test_next_out_of_range_in_indirect(void **state)
{
	struct fx *f = *state;

	/* The table has 2 entries; the last one says NEXT. */
	put_desc_at(f, TABLE, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(f, TABLE, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 0, TABLE, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_broken(f, "next");
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;

	make_avail(f, QSIZE);
	expect_broken(f, "available ring entry");
}

static void test_buffer_outside_ram(void **state)
{
	struct fx *f = *state;
	static const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ RAM, 1 },                          /* just past the end */
		{ RAM - 4, 8 },                      /* straddles the end */
		{ 0xfffffffffffffff0ULL, 0x20 },     /* addr + len overflows */
		{ 0xffffffffffffffffULL, 1 },
		{ 0xfee00000ULL, 4 },                /* the LAPIC, not RAM */
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(enable(f, QSIZE, F_ALL), 0);
		put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
		put_desc(f, 1, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
		make_avail(f, 0);
		expect_broken(f, "RAM");
	}
}

static void test_indirect_table_bad_lengths(void **state)
{
	struct fx *f = *state;
	static const uint32_t lens[] = { 0, 8, 17, 24, (VIRTQ_MAX_INDIRECT + 1) * 16, 0xfffffff0u };

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(enable(f, QSIZE, F_ALL), 0);
		put_desc(f, 0, TABLE, lens[i], VIRTQ_DESC_F_INDIRECT, 0);
		make_avail(f, 0);
		expect_broken(f, "indirect table length");
	}
}

static void test_indirect_table_outside_ram(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_broken(f, "indirect table not in RAM");
}

static void test_nested_indirect(void **state)
{
	struct fx *f = *state;

	put_desc_at(f, TABLE + 0x1000, 0, BUF, 16, 0, 0);
	put_desc_at(f, TABLE, 0, TABLE + 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(f, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_broken(f, "inside an indirect");
}

static void test_indirect_with_next(void **state)
{
	struct fx *f = *state;

	put_desc_at(f, TABLE, 0, BUF, 16, 0, 0);
	put_desc(f, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 16, 0, 0);
	make_avail(f, 0);
	expect_broken(f, "NEXT");
}

static void test_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;

	assert_int_equal(enable(f, QSIZE, 1ULL << VIRTIO_F_VERSION_1), 0);
	put_desc_at(f, TABLE, 0, BUF, 16, 0, 0);
	put_desc(f, 0, TABLE, 16, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_broken(f, "VIRTIO_F_INDIRECT_DESC");
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 16, 0, 0);
	make_avail(f, 0);
	expect_broken(f, "readable descriptor after");
}

static void test_readable_after_empty_writable(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, BUF, 16, 0, 0);
	make_avail(f, 0);
	expect_broken(f, "readable descriptor after");
}

static void test_readable_after_writable_in_indirect(void **state)
{
	struct fx *f = *state;

	put_desc_at(f, TABLE, 0, BUF, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	put_desc_at(f, TABLE, 1, BUF, 16, 0, 0);
	put_desc(f, 0, TABLE, 32, VIRTQ_DESC_F_INDIRECT, 0);
	make_avail(f, 0);
	expect_broken(f, "readable descriptor after");
}

static void test_avail_idx_jump(void **state)
{
	struct fx *f = *state;

	put_desc(f, 0, BUF, 16, 0, 0);
	/* A full ring is fine... */
	w16(f, AVAIL + 2, QSIZE);
	for (unsigned i = 0; i < QSIZE; i++)
		assert_int_equal(virtq_pop(&f->q, f->req), 1);
	assert_int_equal(virtq_pop(&f->q, f->req), 0);
	/* ...one more than a ring ahead is not (§2.7.13.3). */
	w16(f, AVAIL + 2, 2 * QSIZE + 1);
	assert_int_equal(virtq_pop(&f->q, f->req), -EIO);
	assert_true(f->q.broken);
	assert_non_null(strstr(f->q.error, "available index"));
}

static void test_avail_idx_backwards(void **state)
{
	struct fx *f = *state;

	/* Going back by one is 65535 entries ahead. */
	w16(f, AVAIL + 2, 0xffff);
	expect_broken(f, "available index");
}

static void test_chain_over_4g_total(void **state)
{
	struct fx *f = *state;

	/* Needs buffers of GiBs; RAM is reserved lazily, so 3 GiB costs
	 * only the pages touched. */
	guest_memory_destroy(&f->mem);
	assert_int_equal(guest_memory_init(&f->mem, 3ULL << 30), 0);
	assert_int_equal(enable(f, QSIZE, F_ALL), 0);
	put_desc(f, 0, 0, 0x80000000u, VIRTQ_DESC_F_NEXT, 1);
	put_desc(f, 1, 0, 0x80000000u, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	put_desc(f, 2, 0, 1, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 0);
	expect_broken(f, "2^32");

	/* Exactly 2^32 is allowed. */
	assert_int_equal(enable(f, QSIZE, F_ALL), 0);
	put_desc(f, 2, 0, 0, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop(&f->q, f->req), 1);
	assert_int_equal(f->req->read_len + f->req->write_len, 1ULL << 32);
}

static void test_guest_rewrites_do_not_matter_after_pop(void **state)
{
	struct fx *f = *state;
	struct virtq_req *r = f->req;

	put_desc(f, 0, BUF, 16, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop(&f->q, r), 1);
	/* The guest now points the descriptor elsewhere: the request keeps
	 * what was checked. */
	put_desc(f, 0, 0xffffffff00000000ULL, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	assert_ptr_equal(r->iov[0].iov_base, host(f, BUF));
	assert_int_equal(r->iov[0].iov_len, 16);
	virtq_push(&f->q, r, 16);
	assert_int_equal(r32(f, USED + 8), 16);
}

/* --- indices and notifications --- */

static void test_wraparound(void **state)
{
	struct fx *f = *state;
	struct virtq_req *r = f->req;

	/* Start both indices just below 65535, as after a long run. */
	f->q.last_avail_idx = 65534;
	f->q.used_idx = 65534;
	f->avail_idx = 65534;
	for (unsigned i = 0; i < 4; i++) {
		put_desc(f, i, BUF + 0x100 * i, 8, VIRTQ_DESC_F_WRITE, 0);
		make_avail(f, i);
	}
	assert_int_equal(r16(f, AVAIL + 2), 2);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(virtq_pop(&f->q, r), 1);
		assert_int_equal(r->head, i);
		virtq_push(&f->q, r, i + 1);
	}
	assert_int_equal(virtq_pop(&f->q, r), 0);
	assert_int_equal(f->q.last_avail_idx, 2);
	assert_int_equal(r16(f, USED + 2), 2);
	/* Entries at 65534 % 16 = 14, 15, then 0, 1. */
	assert_int_equal(r32(f, USED + 4 + 8 * 14), 0);
	assert_int_equal(r32(f, USED + 4 + 8 * 15), 1);
	assert_int_equal(r32(f, USED + 4 + 8 * 0), 2);
	assert_int_equal(r32(f, USED + 4 + 8 * 1), 3);
	assert_int_equal(r32(f, USED + 8 + 8 * 1), 4);
	/* With EVENT_IDX, emptiness published avail_event = last_avail. */
	assert_int_equal(r16(f, USED + 4 + 8 * QSIZE), 2);
}

static void test_vring_need_event_table(void **state)
{
	static const struct { uint16_t ev, new, old; bool want; } t[] = {
		{ 0, 1, 0, true },         /* the first entry, as the spec's note */
		{ 0, 2, 1, false },        /* event already passed */
		{ 5, 6, 5, true },
		{ 5, 6, 0, true },         /* batch crossing the event */
		{ 5, 5, 0, false },        /* not yet reached */
		{ 7, 6, 0, false },
		{ 65535, 0, 65534, true }, /* wrap */
		{ 65535, 1, 65534, true },
		{ 65534, 1, 65535, false },
		{ 3, 3, 3, false },        /* nothing new */
		{ 10, 20, 11, false },
		{ 10, 20, 10, true },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (vring_need_event(t[i].ev, t[i].new, t[i].old) != t[i].want)
			fail_msg("case %u: need_event(%u, %u, %u) != %d", i, t[i].ev, t[i].new,
				 t[i].old, t[i].want);
	}
}

static void push_one(struct fx *f)
{
	put_desc(f, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
	make_avail(f, 0);
	assert_int_equal(virtq_pop(&f->q, f->req), 1);
	virtq_push(&f->q, f->req, 8);
}

static void test_notify_event_idx(void **state)
{
	struct fx *f = *state;
	uint64_t used_event = AVAIL + 4 + 2 * QSIZE;

	w16(f, used_event, 0);
	assert_false(virtq_needs_notify(&f->q));   /* nothing pushed */
	push_one(f);                                /* used idx 1 */
	assert_true(virtq_needs_notify(&f->q));
	assert_false(virtq_needs_notify(&f->q));   /* nothing new */
	w16(f, used_event, 4);                      /* "after entry 4" */
	push_one(f);                                /* 2 */
	assert_false(virtq_needs_notify(&f->q));
	push_one(f);                                /* 3 */
	push_one(f);                                /* 4 */
	assert_false(virtq_needs_notify(&f->q));
	push_one(f);                                /* 5: entry 4 written */
	assert_true(virtq_needs_notify(&f->q));
	/* The flag is ignored with EVENT_IDX (§2.7.7.2). */
	w16(f, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	w16(f, used_event, 5);
	push_one(f);
	assert_true(virtq_needs_notify(&f->q));
}

static void test_notify_flags(void **state)
{
	struct fx *f = *state;

	assert_int_equal(enable(f, QSIZE, 1ULL << VIRTIO_F_VERSION_1), 0);
	w16(f, AVAIL, 0);
	push_one(f);
	assert_true(virtq_needs_notify(&f->q));
	w16(f, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	push_one(f);
	assert_false(virtq_needs_notify(&f->q));
	w16(f, AVAIL, 0);
	push_one(f);
	assert_true(virtq_needs_notify(&f->q));
}

static void test_avail_event_published(void **state)
{
	struct fx *f = *state;
	uint64_t avail_event = USED + 4 + 8 * QSIZE;

	w16(f, avail_event, 0x1234);
	/* enable() cleared it... */
	assert_int_equal(enable(f, QSIZE, F_ALL), 0);
	assert_int_equal(r16(f, avail_event), 0);
	push_one(f);
	push_one(f);
	/* ...and a pop that finds the ring empty asks for the next one. */
	assert_int_equal(virtq_pop(&f->q, f->req), 0);
	assert_int_equal(r16(f, avail_event), 2);
}

static void test_used_flags_cleared(void **state)
{
	struct fx *f = *state;

	w16(f, USED, 0xffff);
	assert_int_equal(enable(f, QSIZE, F_ALL), 0);
	assert_int_equal(r16(f, USED), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_enable_checks),
		T(test_direct_chain),
		T(test_indirect_chain),
		T(test_direct_then_indirect),
		T(test_zero_length_and_full_chain),
		T(test_req_copy_helpers),
		T(test_loop),
		T(test_self_loop),
		T(test_loop_in_indirect),
		T(test_too_long),
		T(test_full_indirect_table_ok),
		T(test_next_out_of_range),
		T(test_next_out_of_range_in_indirect),
		T(test_head_out_of_range),
		T(test_buffer_outside_ram),
		T(test_indirect_table_bad_lengths),
		T(test_indirect_table_outside_ram),
		T(test_nested_indirect),
		T(test_indirect_with_next),
		T(test_indirect_not_negotiated),
		T(test_readable_after_writable),
		T(test_readable_after_empty_writable),
		T(test_readable_after_writable_in_indirect),
		T(test_avail_idx_jump),
		T(test_avail_idx_backwards),
		T(test_chain_over_4g_total),
		T(test_guest_rewrites_do_not_matter_after_pop),
		T(test_wraparound),
		T(test_vring_need_event_table),
		T(test_notify_event_idx),
		T(test_notify_flags),
		T(test_avail_event_published),
		T(test_used_flags_cleared),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
