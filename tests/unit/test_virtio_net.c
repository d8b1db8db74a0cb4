/* virtio-net (src/virtio/net.c, tap.c) on the device model with a fake
 * transport. A SOCK_SEQPACKET socket pair stands in for the tap (one
 * message per frame, like a tap's reads and writes) and a fake
 * TUNSETOFFLOAD records what the device asks for: --net parsing, the
 * offer and negotiation, transmit byte for byte, receive into one buffer
 * and into merged buffers, waiting for buffers without polling the tap,
 * hostile chains and headers, the real worker, and a real tap when the
 * host allows. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/net.h"
#include "virtio/tap.h"
#include "virtio/virtio.h"
#include "virtio/worker.h"
#include "vmm/memory.h"

#define RAM     (16ULL << 20)
#define QSIZE   16
#define DESC(q)  (0x10000ULL + 0x8000ULL * (q))
#define AVAIL(q) (DESC(q) + 0x1000)
#define USED(q)  (DESC(q) + 0x2000)
#define BUF     0x100000ULL
#define TABLE   0x200000ULL
#define DATA    0x300000ULL

#define F(b) (1ULL << (b))
#define RXQ VIRTIO_NET_RXQ
#define TXQ VIRTIO_NET_TXQ
#define ALL_TUN (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO)

struct fx {
	struct guest_memory mem;
	struct virtio_net *net;
	struct virtio_dev dev;
	int peer;                  /* the network's end of the fake tap */
	struct virtio_worker *worker;  /* NULL, or started by the test */
	int queue_irqs[2], config_irqs;
	uint16_t avail_idx[2];
};

/* The fake TUNSETOFFLOAD. */
static unsigned offload_calls, offload_last;
static int offload_fail;

static int fake_set_offload(struct tap *tap, unsigned flags)
{
	(void)tap;
	offload_calls++;
	offload_last = flags;
	return offload_fail;
}

static void notify_queue(void *opaque, unsigned q)
{
	struct fx *f = opaque;

	assert_true(q < 2);
	f->queue_irqs[q]++;
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
	struct net_spec spec;
	struct tap tap = { .set_offload = fake_set_offload, .offloads = ALL_TUN };
	char err[256];
	int sv[2];

	assert_non_null(f);
	assert_int_equal(guest_memory_init(&f->mem, RAM), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	/* The device reads until EAGAIN, as on a tap opened O_NONBLOCK. */
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	tap.fd = sv[0];
	snprintf(tap.name, sizeof(tap.name), "test0");
	f->peer = sv[1];
	assert_int_equal(net_spec_parse("tap=test0,mac=52:54:00:12:34:56", &spec, err, sizeof(err)), 0);
	offload_calls = 0;
	offload_last = 0xdead;
	offload_fail = 0;
	f->net = virtio_net_create_tap(&spec, &tap, err, sizeof(err));
	assert_non_null(f->net);
	assert_int_equal(virtio_dev_init(&f->dev, virtio_net_ops(f->net), f->net, &f->mem, &t), 0);
	assert_int_equal(virtio_net_attach(f->net, &f->dev, NULL, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_worker_destroy(f->worker);
	virtio_dev_destroy(&f->dev);
	virtio_net_destroy(f->net);
	close(f->peer);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

/* The driver's side of §3.1.1. Returns whether FEATURES_OK stuck. */
static bool start(struct fx *f, uint64_t features)
{
	uint64_t all = features | F(VIRTIO_F_VERSION_1);

	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	virtio_dev_set_driver_features(&f->dev, 0, (uint32_t)all);
	virtio_dev_set_driver_features(&f->dev, 1, (uint32_t)(all >> 32));
	virtio_dev_set_status(&f->dev, 0x0b);
	if (!(virtio_dev_status(&f->dev) & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_dev_unlock(&f->dev);
		return false;
	}
	for (unsigned i = 0; i < 2; i++) {
		struct virtq *q = virtio_dev_queue(&f->dev, i);

		assert_int_equal(q->max_size, VIRTIO_NET_QUEUE_SIZE);
		q->size = QSIZE;
		q->desc_addr = DESC(i);
		q->driver_addr = AVAIL(i);
		q->device_addr = USED(i);
		assert_int_equal(virtio_dev_queue_enable(&f->dev, i), 0);
	}
	virtio_dev_set_status(&f->dev, 0x0f);
	virtio_dev_unlock(&f->dev);
	return true;
}

static void desc_at(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	assert_int_equal(guest_memory_write(&f->mem, table + 16ULL * i, &d, sizeof(d)), 0);
}

static void desc(struct fx *f, unsigned q, unsigned i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	desc_at(f, DESC(q), i, addr, len, flags, next);
}

/* The ring indexes are published and read as a driver does (release,
 * acquire): the worker thread reads them concurrently in test_worker. */
static void avail(struct fx *f, unsigned q, uint16_t head)
{
	uint16_t *idx = guest_memory_ptr(&f->mem, AVAIL(q) + 2, 2);

	assert_int_equal(guest_memory_write(&f->mem, AVAIL(q) + 4 + 2 * (f->avail_idx[q] % QSIZE),
					    &head, 2), 0);
	__atomic_store_n(idx, ++f->avail_idx[q], __ATOMIC_RELEASE);
}

static uint16_t used_idx(struct fx *f, unsigned q)
{
	uint16_t *idx = guest_memory_ptr(&f->mem, USED(q) + 2, 2);

	return __atomic_load_n(idx, __ATOMIC_ACQUIRE);
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

static void pattern(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* A frame from the network: header then len bytes of pattern. */
static void send_frame(struct fx *f, const struct virtio_net_hdr *h, size_t len, uint8_t seed)
{
	uint8_t *buf = malloc(VIRTIO_NET_HDR_LEN + len);

	assert_non_null(buf);
	memcpy(buf, h, VIRTIO_NET_HDR_LEN);
	pattern(buf + VIRTIO_NET_HDR_LEN, len, seed);
	assert_int_equal(send(f->peer, buf, VIRTIO_NET_HDR_LEN + len, 0),
			 (ssize_t)(VIRTIO_NET_HDR_LEN + len));
	free(buf);
}

static ssize_t recv_frame(struct fx *f, void *buf, size_t len)
{
	return recv(f->peer, buf, len, MSG_DONTWAIT);
}

static int poll_fd(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0);
}

static struct virtio_net_stats stats(struct fx *f)
{
	struct virtio_net_stats s;

	virtio_net_get_stats(f->net, &s);
	return s;
}

/* --- --net --- */

static void test_spec_parse(void **state)
{
	struct net_spec s;
	char err[256];
	uint8_t m[6];

	(void)state;
	assert_int_equal(net_spec_parse("tap=tap0", &s, err, sizeof(err)), 0);
	assert_string_equal(s.tap, "tap0");
	assert_false(s.mac_given);
	assert_int_equal(s.mac[0], 0x02);   /* locally administered, unicast */
	net_default_mac("tap0", m);
	assert_memory_equal(s.mac, m, 6);

	assert_int_equal(net_spec_parse("mac=52:54:00:AB:cd:ef,tap=vm-1.net", &s, err, sizeof(err)), 0);
	assert_string_equal(s.tap, "vm-1.net");
	assert_true(s.mac_given);
	assert_memory_equal(s.mac, ((uint8_t[]){ 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef }), 6);

	assert_int_equal(net_spec_parse("tap=123456789012345", &s, err, sizeof(err)), 0);

#define BAD(arg, msg) do { \
		err[0] = '\0'; \
		assert_int_equal(net_spec_parse(arg, &s, err, sizeof(err)), -EINVAL); \
		if (!strstr(err, msg)) \
			fail_msg("%s: got '%s', want '%s'", arg, err, msg); \
	} while (0)
	BAD("tap=1234567890123456", "--net tap=1234567890123456: tap name '1234567890123456' is longer than 15 characters");
	BAD("", "--net: empty (expected tap=NAME");
	BAD("mac=52:54:00:12:34:56", "tap=NAME is required");
	BAD("tap=", "empty tap name");
	BAD("tap=a/b", "not a valid interface name");
	BAD("tap=a b", "not a valid interface name");
	BAD("tap=..", "not a valid interface name");
	BAD("tap=x,queues=2", "unknown key 'queues' (known: tap, mac)");
	BAD("tap=x,mac", "'mac' is not key=value");
	BAD("tap=x,,mac=02:00:00:00:00:01", "'' is not key=value");
	BAD("tap=x,tap=y", "tap given twice");
	BAD("tap=x,mac=02:00:00:00:00:01,mac=02:00:00:00:00:02", "mac given twice");
	BAD("tap=x,mac=01:00:5e:00:00:01", "mac 01:00:5e:00:00:01 is a multicast address");
	BAD("tap=x,mac=ff:ff:ff:ff:ff:ff", "multicast");
	BAD("tap=x,mac=00:00:00:00:00:00", "zero address");
	BAD("tap=x,mac=52:54:00:12:34", "not six hex pairs");
	BAD("tap=x,mac=52:54:00:12:34:567", "not six hex pairs");
	BAD("tap=x,mac=52-54-00-12-34-56", "not six hex pairs");
	BAD("tap=x,mac=52:54:00:12:34:5g", "not six hex pairs");
	BAD("tap=x,mac=5:54:00:12:34:56:", "not six hex pairs");
#undef BAD
}

static void test_default_mac(void **state)
{
	uint8_t a[6], b[6], c[6];

	(void)state;
	net_default_mac("tap0", a);
	net_default_mac("tap0", b);
	net_default_mac("tap1", c);
	assert_memory_equal(a, b, 6);          /* stable */
	assert_memory_not_equal(a, c, 6);      /* per tap */
	assert_int_equal(a[0] & 3, 2);         /* unicast, locally administered */
	assert_int_equal(c[0] & 3, 2);
}

/* --- offer, configuration, negotiation --- */

static void test_offer_and_config(void **state)
{
	struct fx *f = *state;
	uint64_t offer = virtio_dev_device_features(&f->dev, 0) |
			 ((uint64_t)virtio_dev_device_features(&f->dev, 1) << 32);
	uint64_t want = F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_MAC) |
			F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |
			F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_GUEST_UFO) |
			F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |
			F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_HOST_UFO) |
			F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_STATUS) | VIRTIO_CORE_FEATURES;
	uint8_t cfg[12], mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	uint16_t v;

	assert_int_equal(offer, want);
	virtio_dev_lock(&f->dev);
	virtio_dev_read_config(&f->dev, 0, cfg, 4);
	virtio_dev_read_config(&f->dev, 4, cfg + 4, 4);
	virtio_dev_read_config(&f->dev, 8, cfg + 8, 4);
	assert_memory_equal(cfg, mac, 6);
	memcpy(&v, cfg + 6, 2);
	assert_int_equal(v, VIRTIO_NET_S_LINK_UP);
	memcpy(&v, cfg + 8, 2);
	assert_int_equal(v, 1);                /* max_virtqueue_pairs */
	/* §5.1.4: read-only; the write is dropped. */
	virtio_dev_write_config(&f->dev, 0, "\xff\xff\xff\xff", 4);
	virtio_dev_read_config(&f->dev, 0, cfg, 4);
	assert_memory_equal(cfg, mac, 4);
	/* Past the end: 0. */
	v = 0xffff;
	virtio_dev_read_config(&f->dev, 12, &v, 2);
	assert_int_equal(v, 0);
	virtio_dev_unlock(&f->dev);
}

static void test_offer_follows_tap(void **state)
{
	struct net_spec spec;
	struct tap tap = { .set_offload = fake_set_offload, .offloads = TUN_F_CSUM };
	struct virtio_net *net;
	const struct virtio_device_ops *ops;
	char err[256];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	tap.fd = sv[0];
	assert_int_equal(net_spec_parse("tap=t", &spec, err, sizeof(err)), 0);
	net = virtio_net_create_tap(&spec, &tap, err, sizeof(err));
	assert_non_null(net);
	ops = virtio_net_ops(net);
	/* Checksums only: no GUEST_TSO*, no UFO either way. */
	assert_true(ops->features & F(VIRTIO_NET_F_GUEST_CSUM));
	assert_false(ops->features & (F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |
				      F(VIRTIO_NET_F_GUEST_ECN) | F(VIRTIO_NET_F_GUEST_UFO) |
				      F(VIRTIO_NET_F_HOST_UFO)));
	assert_true(ops->features & F(VIRTIO_NET_F_HOST_TSO4));
	assert_int_equal(ops->device_id, VIRTIO_ID_NET);
	assert_int_equal(ops->nqueues, 2);
	virtio_net_destroy(net);
	close(sv[1]);
}

static void test_offload_negotiation(void **state)
{
	struct fx *f = *state;

	assert_true(start(f, F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4) |
			  F(VIRTIO_NET_F_GUEST_TSO6) | F(VIRTIO_NET_F_GUEST_ECN) |
			  F(VIRTIO_NET_F_MRG_RXBUF)));
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
	assert_int_equal(offload_calls, 1);
	assert_int_equal(offload_last, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	/* Reset: the tap must not hand offloaded frames to the next driver. */
	virtio_dev_lock(&f->dev);
	assert_true(virtio_dev_set_status(&f->dev, 0));
	virtio_dev_unlock(&f->dev);
	assert_int_equal(offload_last, 0);

	/* A driver without GUEST_CSUM gets no offloads. */
	assert_true(start(f, F(VIRTIO_NET_F_MAC)));
	assert_int_equal(offload_last, 0);
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);

	/* §5.1.3.1 dependencies: refused at FEATURES_OK. */
	assert_false(start(f, F(VIRTIO_NET_F_GUEST_TSO4)));
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);
	assert_false(start(f, F(VIRTIO_NET_F_HOST_TSO6)));
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);
	assert_false(start(f, F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_ECN)));
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);
	assert_false(start(f, F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_ECN)));
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);

	/* TUNSETOFFLOAD failing: the device cannot start. */
	offload_fail = -EINVAL;
	assert_true(start(f, F(VIRTIO_NET_F_GUEST_CSUM)));
	assert_true(virtio_dev_status(&f->dev) & VIRTIO_STATUS_NEEDS_RESET);
	offload_fail = 0;
}

/* --- transmit --- */

static void test_tx_exact(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .hdr_len = 54,
		.csum_start = 34, .csum_offset = 16,
	}, got_h;
	uint8_t got[4096];
	uint8_t *a = host(f, BUF + 0x1000, 700), *b = host(f, BUF + 0x2000, 300);

	assert_true(start(f, F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4)));
	assert_int_equal(guest_memory_write(&f->mem, BUF, &h, sizeof(h)), 0);
	pattern(a, 700, 1);
	pattern(b, 300, 99);
	desc(f, TXQ, 0, BUF, 12, VIRTQ_DESC_F_NEXT, 1);
	desc(f, TXQ, 1, BUF + 0x1000, 700, VIRTQ_DESC_F_NEXT, 2);
	desc(f, TXQ, 2, BUF + 0x2000, 300, 0, 0);
	avail(f, TXQ, 0);
	virtio_dev_process_queue(&f->dev, TXQ);

	assert_int_equal(used_idx(f, TXQ), 1);
	assert_int_equal(used(f, TXQ, 0).id, 0);
	assert_int_equal(used(f, TXQ, 0).len, 0);
	assert_int_equal(f->queue_irqs[TXQ], 1);
	assert_int_equal(recv_frame(f, got, sizeof(got)), 12 + 1000);
	memcpy(&got_h, got, sizeof(got_h));
	assert_memory_equal(&got_h, &h, sizeof(h));
	assert_memory_equal(got + 12, a, 700);
	assert_memory_equal(got + 712, b, 300);
	assert_int_equal(recv_frame(f, got, sizeof(got)), -1);   /* one frame only */
	assert_int_equal(stats(f).tx_packets, 1);
	assert_int_equal(stats(f).tx_bytes, 1000);

	/* Header and data in one buffer, and a header split across two. */
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x3000, &h, sizeof(h)), 0);
	pattern(host(f, BUF + 0x3000 + 12, 60), 60, 5);
	desc(f, TXQ, 3, BUF + 0x3000, 72, 0, 0);
	avail(f, TXQ, 3);
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x4000, &h, 5), 0);
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x5000, (uint8_t *)&h + 5, 7), 0);
	pattern(host(f, BUF + 0x5000 + 7, 33), 33, 9);
	desc(f, TXQ, 4, BUF + 0x4000, 5, VIRTQ_DESC_F_NEXT, 5);
	desc(f, TXQ, 5, BUF + 0x5000, 40, 0, 0);
	avail(f, TXQ, 4);
	virtio_dev_process_queue(&f->dev, TXQ);
	assert_int_equal(used_idx(f, TXQ), 3);
	assert_int_equal(recv_frame(f, got, sizeof(got)), 72);
	assert_memory_equal(got, &h, 12);
	assert_memory_equal(got + 12, host(f, BUF + 0x3000 + 12, 60), 60);
	assert_int_equal(recv_frame(f, got, sizeof(got)), 45);
	assert_memory_equal(got, &h, 12);
	assert_memory_equal(got + 12, host(f, BUF + 0x5000 + 7, 33), 33);
}

static void test_tx_bad_chains_and_headers(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr ok = { 0 }, tso = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.gso_size = 1448,
	}, dv = { .flags = VIRTIO_NET_HDR_F_DATA_VALID | 0x40, .num_buffers = 7 };
	uint8_t got[128];
	uint64_t big = VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1;

	/* CSUM only: no segmentation offload for the guest. */
	assert_true(start(f, F(VIRTIO_NET_F_CSUM)));
	/* Shorter than the header. */
	desc(f, TXQ, 0, BUF, 8, 0, 0);
	avail(f, TXQ, 0);
	/* A TSO frame without HOST_TSO4 (§5.1.6.2.1). */
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x1000, &tso, 12), 0);
	desc(f, TXQ, 1, BUF + 0x1000, 12 + 100, 0, 0);
	avail(f, TXQ, 1);
	/* Longer than any frame. */
	assert_int_equal(guest_memory_write(&f->mem, DATA, &ok, 12), 0);
	desc(f, TXQ, 2, DATA, (uint32_t)big, 0, 0);
	avail(f, TXQ, 2);
	/* DATA_VALID and unknown flags are not the driver's to set: cleared,
	 * num_buffers zeroed, the frame goes out. */
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x2000, &dv, 12), 0);
	desc(f, TXQ, 3, BUF + 0x2000, 12 + 20, 0, 0);
	avail(f, TXQ, 3);
	/* A writable-only chain (no readable header). */
	desc(f, TXQ, 4, BUF + 0x3000, 64, VIRTQ_DESC_F_WRITE, 0);
	avail(f, TXQ, 4);
	virtio_dev_process_queue(&f->dev, TXQ);

	assert_int_equal(used_idx(f, TXQ), 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(used(f, TXQ, i).len, 0);
	assert_int_equal(recv_frame(f, got, sizeof(got)), 32);
	assert_int_equal(got[0], 0);                          /* flags */
	assert_int_equal(got[10] | got[11], 0);               /* num_buffers */
	assert_int_equal(recv_frame(f, got, sizeof(got)), -1);
	assert_int_equal(stats(f).tx_dropped, 4);
	assert_int_equal(stats(f).tx_packets, 1);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
}

static void test_tx_more_iovecs_than_iov_max(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 };
	uint8_t *got = malloc(4096), *data = host(f, DATA, 4096);

	/* 1024 descriptors in an indirect table, the first holding the
	 * header and one byte: 1025 iovecs for writev, one too many. */
	assert_non_null(got);
	assert_true(start(f, F(VIRTIO_F_RING_INDIRECT_DESC)));
	pattern(data, 4096, 3);
	memcpy(data, &h, 12);
	desc_at(f, TABLE, 0, DATA, 13, VIRTQ_DESC_F_NEXT, 1);
	for (unsigned i = 1; i < 1024; i++)
		desc_at(f, TABLE, i, DATA + 12 + i, 1, i < 1023 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(f, TXQ, 0, TABLE, 1024 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail(f, TXQ, 0);
	virtio_dev_process_queue(&f->dev, TXQ);
	assert_int_equal(used_idx(f, TXQ), 1);
	assert_int_equal(recv_frame(f, got, 4096), 12 + 1024);
	assert_memory_equal(got, data, 12 + 1024);
	free(got);
}

/* --- receive --- */

static void test_rx_single_buffer(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { .flags = VIRTIO_NET_HDR_F_DATA_VALID }, got;
	uint8_t want[100];

	assert_true(start(f, F(VIRTIO_NET_F_GUEST_CSUM)));
	memset(host(f, BUF, 2000), 0xee, 2000);
	desc(f, RXQ, 0, BUF, 2000, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 0);
	send_frame(f, &h, 100, 42);
	virtio_net_tap_event(f->net);

	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(used(f, RXQ, 0).id, 0);
	assert_int_equal(used(f, RXQ, 0).len, 112);
	memcpy(&got, host(f, BUF, 12), 12);
	assert_int_equal(got.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(got.num_buffers, 1);                /* §5.1.6.4.1 */
	pattern(want, 100, 42);
	assert_memory_equal(host(f, BUF + 12, 100), want, 100);
	assert_int_equal(host(f, BUF, 2000)[112], 0xee);     /* nothing beyond */
	assert_int_equal(f->queue_irqs[RXQ], 1);
	assert_int_equal(stats(f).rx_packets, 1);
	assert_int_equal(stats(f).rx_bytes, 100);
	/* The tap is empty and still watched. */
	assert_int_equal(poll_fd(virtio_net_poll_fd(f->net)), 0);
	send_frame(f, &h, 10, 0);
	assert_int_equal(poll_fd(virtio_net_poll_fd(f->net)), 1);
}

static void test_rx_mergeable(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 }, got;
	uint8_t *want = malloc(2500), *all = malloc(3000);

	assert_non_null(want);
	assert_non_null(all);
	assert_true(start(f, F(VIRTIO_NET_F_MRG_RXBUF)));
	/* Each buffer a two-descriptor chain, to gather across. */
	for (unsigned i = 0; i < 3; i++) {
		desc(f, RXQ, 2 * i, BUF + 0x1000 * i, 400, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(2 * i + 1));
		desc(f, RXQ, 2 * i + 1, BUF + 0x1000 * i + 0x800, 600, VIRTQ_DESC_F_WRITE, 0);
		avail(f, RXQ, (uint16_t)(2 * i));
	}
	send_frame(f, &h, 2500, 7);
	virtio_net_tap_event(f->net);

	/* 12 + 2500 = 2512: 1000 + 1000 + 512, all published together. */
	assert_int_equal(used_idx(f, RXQ), 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(used(f, RXQ, i).id, 2 * i);
	assert_int_equal(used(f, RXQ, 0).len, 1000);
	assert_int_equal(used(f, RXQ, 1).len, 1000);
	assert_int_equal(used(f, RXQ, 2).len, 512);
	memcpy(&got, host(f, BUF, 12), 12);
	assert_int_equal(got.num_buffers, 3);                /* §5.1.6.3.2 */
	assert_int_equal(got.flags, 0);
	for (unsigned i = 0; i < 3; i++) {
		memcpy(all + 1000 * i, host(f, BUF + 0x1000 * i, 400), 400);
		memcpy(all + 1000 * i + 400, host(f, BUF + 0x1000 * i + 0x800, 600), 600);
	}
	pattern(want, 2500, 7);
	assert_memory_equal(all + 12, want, 2500);
	assert_int_equal(f->queue_irqs[RXQ], 1);
	free(want);
	free(all);
}

static void test_rx_waits_for_buffers(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 };
	int pfd = virtio_net_poll_fd(f->net);

	assert_true(start(f, F(VIRTIO_NET_F_MRG_RXBUF)));
	/* Not watched before the tap has anything... */
	assert_int_equal(poll_fd(pfd), 0);
	send_frame(f, &h, 60, 1);
	send_frame(f, &h, 70, 2);
	assert_int_equal(poll_fd(pfd), 1);
	/* ...and no buffers: nothing used, and the tap is out of the set,
	 * so the worker is not woken again although frames wait. */
	virtio_net_tap_event(f->net);
	assert_int_equal(used_idx(f, RXQ), 0);
	assert_int_equal(poll_fd(pfd), 0);
	assert_int_equal(stats(f).rx_dropped, 0);

	/* The driver adds one buffer and kicks: the waiting frame goes in,
	 * the second waits again. */
	desc(f, RXQ, 0, BUF, 1500, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 0);
	virtio_dev_process_queue(&f->dev, RXQ);
	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(used(f, RXQ, 0).len, 72);
	assert_int_equal(poll_fd(pfd), 0);
	desc(f, RXQ, 1, BUF + 0x1000, 1500, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 1);
	virtio_dev_process_queue(&f->dev, RXQ);
	assert_int_equal(used_idx(f, RXQ), 2);
	assert_int_equal(used(f, RXQ, 1).len, 82);
	/* Both delivered, the tap empty and watched again. */
	assert_int_equal(poll_fd(pfd), 0);
	send_frame(f, &h, 10, 0);
	assert_int_equal(poll_fd(pfd), 1);
	assert_int_equal(stats(f).rx_packets, 2);
}

static void test_rx_merge_needs_more_buffers(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 }, got;

	assert_true(start(f, F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_F_RING_EVENT_IDX)));
	desc(f, RXQ, 0, BUF, 1000, VIRTQ_DESC_F_WRITE, 0);
	desc(f, RXQ, 1, BUF + 0x1000, 1000, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 0);
	avail(f, RXQ, 1);
	send_frame(f, &h, 2500, 3);
	virtio_net_tap_event(f->net);
	/* Two buffers are not enough: none is used, both stay available. */
	assert_int_equal(used_idx(f, RXQ), 0);
	assert_int_equal(f->queue_irqs[RXQ], 0);
	desc(f, RXQ, 2, BUF + 0x2000, 1000, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 2);
	virtio_dev_process_queue(&f->dev, RXQ);
	assert_int_equal(used_idx(f, RXQ), 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(used(f, RXQ, i).id, i);
	assert_int_equal(used(f, RXQ, 2).len, 512);
	memcpy(&got, host(f, BUF, 12), 12);
	assert_int_equal(got.num_buffers, 3);

	/* A frame larger than every buffer the whole ring can hold is
	 * dropped rather than waited for forever. */
	for (unsigned i = 0; i < QSIZE; i++) {
		desc(f, RXQ, i, BUF + 0x1000 * i, 100, VIRTQ_DESC_F_WRITE, 0);
		avail(f, RXQ, (uint16_t)i);
	}
	send_frame(f, &h, 3000, 0);
	send_frame(f, &h, 50, 0);
	virtio_net_tap_event(f->net);
	assert_int_equal(stats(f).rx_dropped, 1);
	assert_int_equal(used_idx(f, RXQ), 4);               /* the 62-byte frame */
	assert_int_equal(used(f, RXQ, 3).id, 0);
	assert_int_equal(used(f, RXQ, 3).len, 62);
}

static void test_rx_small_buffer_without_merge(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 };

	assert_true(start(f, 0));
	desc(f, RXQ, 0, BUF, 100, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 0);
	/* Does not fit one buffer, no MRG_RXBUF: dropped, the buffer kept. */
	send_frame(f, &h, 500, 0);
	send_frame(f, &h, 50, 0);
	virtio_net_tap_event(f->net);
	assert_int_equal(stats(f).rx_dropped, 1);
	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(used(f, RXQ, 0).id, 0);
	assert_int_equal(used(f, RXQ, 0).len, 62);
	assert_int_equal(((struct virtio_net_hdr *)host(f, BUF, 12))->num_buffers, 1);
}

static void test_rx_tiny_merge_buffer_needs_reset(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 };

	assert_true(start(f, F(VIRTIO_NET_F_MRG_RXBUF)));
	desc(f, RXQ, 0, BUF, 8, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 0);
	send_frame(f, &h, 50, 0);
	virtio_net_tap_event(f->net);
	/* §5.1.6.3.1: each merge buffer MUST hold the header. */
	assert_true(virtio_dev_status(&f->dev) & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(f->config_irqs, 1);
	assert_int_equal(used_idx(f, RXQ), 0);
	/* Not watched any more. */
	virtio_net_tap_event(f->net);
	assert_int_equal(poll_fd(virtio_net_poll_fd(f->net)), 0);
}

static void test_rx_headers_follow_features(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr dv = { .flags = VIRTIO_NET_HDR_F_DATA_VALID },
		partial = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 },
		tso = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 },
		got;
	uint8_t junk[5] = { 0 };
	uint8_t *big = calloc(1, VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1);

	/* No GUEST_CSUM: flags must be 0 (§5.1.6.4.1), partial checksums
	 * and GSO frames cannot be handed over. */
	assert_non_null(big);
	assert_true(start(f, 0));
	for (unsigned i = 0; i < 4; i++) {
		desc(f, RXQ, i, BUF + 0x1000 * i, 1500, VIRTQ_DESC_F_WRITE, 0);
		avail(f, RXQ, (uint16_t)i);
	}
	send_frame(f, &partial, 60, 0);
	send_frame(f, &tso, 60, 0);
	assert_int_equal(send(f->peer, junk, sizeof(junk), 0), 5);          /* shorter than a header */
	assert_int_equal(send(f->peer, big, VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1, 0),
			 VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1);      /* too long */
	send_frame(f, &dv, 60, 0);
	virtio_net_tap_event(f->net);
	assert_int_equal(stats(f).rx_dropped, 4);
	assert_int_equal(used_idx(f, RXQ), 1);
	memcpy(&got, host(f, BUF, 12), 12);
	assert_int_equal(got.flags, 0);
	assert_int_equal(got.num_buffers, 1);

	/* The largest frame does fit, in a buffer big enough. */
	desc(f, RXQ, 5, DATA, VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME, VIRTQ_DESC_F_WRITE, 0);
	virtio_dev_lock(&f->dev);
	virtio_dev_set_status(&f->dev, 0);
	virtio_dev_unlock(&f->dev);
	memset(&f->avail_idx, 0, sizeof(f->avail_idx));
	memset(host(f, USED(RXQ), 4), 0, 4);
	assert_true(start(f, 0));
	avail(f, RXQ, 5);
	assert_int_equal(send(f->peer, big, VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME, 0),
			 VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME);
	virtio_net_tap_event(f->net);
	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(used(f, RXQ, 0).len, VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME);
	free(big);
}

static void test_inactive_and_gone(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 };
	int pfd = virtio_net_poll_fd(f->net);

	/* Before DRIVER_OK the tap is not watched, frames wait. */
	send_frame(f, &h, 60, 0);
	assert_int_equal(poll_fd(pfd), 0);
	virtio_net_tap_event(f->net);
	assert_int_equal(stats(f).rx_dropped + stats(f).rx_packets, 0);

	assert_true(start(f, 0));
	desc(f, RXQ, 0, BUF, 1500, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 0);
	virtio_dev_process_queue(&f->dev, RXQ);
	assert_int_equal(used_idx(f, RXQ), 1);

	/* The network end goes away: hang-up, then end of file. The tap
	 * leaves the set for good instead of waking the worker forever. */
	close(f->peer);
	f->peer = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(poll_fd(pfd), 1);
	virtio_net_tap_event(f->net);
	assert_int_equal(poll_fd(pfd), 0);
	assert_int_equal(virtio_dev_status(&f->dev), 0x0f);
	/* Transmit fails and counts. */
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x1000, &h, 12), 0);
	desc(f, TXQ, 0, BUF + 0x1000, 60, 0, 0);
	avail(f, TXQ, 0);
	virtio_dev_process_queue(&f->dev, TXQ);
	assert_int_equal(used_idx(f, TXQ), 1);
	assert_int_equal(stats(f).tx_errors, 1);
}

/* --- on the real worker --- */

static void wait_used(struct fx *f, unsigned q, uint16_t want)
{
	for (int i = 0; i < 2000 && used_idx(f, q) != want; i++)
		usleep(1000);
	assert_int_equal(used_idx(f, q), want);
}

static void test_worker(void **state)
{
	struct fx *f = *state;
	struct virtio_net_hdr h = { 0 };
	struct virtio_worker *w;
	char err[256];
	uint8_t got[256];
	uint64_t wakeups;

	w = virtio_worker_create("net-test", err, sizeof(err));
	assert_non_null(w);
	assert_int_equal(virtio_worker_watch_queues(w, &f->dev), 0);
	assert_int_equal(virtio_net_attach(f->net, &f->dev, w, err, sizeof(err)), 0);
	assert_int_equal(virtio_worker_start(w, err, sizeof(err)), 0);
	assert_true(start(f, F(VIRTIO_NET_F_MRG_RXBUF)));

	/* Frames and no buffers: a wake-up or two, then quiet. */
	send_frame(f, &h, 100, 1);
	send_frame(f, &h, 100, 2);
	usleep(100 * 1000);
	wakeups = stats(f).rx_wakeups;
	assert_true(wakeups <= 3);
	usleep(50 * 1000);
	assert_int_equal(stats(f).rx_wakeups, wakeups);

	/* Buffers and a kick: both frames arrive. */
	desc(f, RXQ, 0, BUF, 1500, VIRTQ_DESC_F_WRITE, 0);
	desc(f, RXQ, 1, BUF + 0x1000, 1500, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 0);
	avail(f, RXQ, 1);
	virtio_dev_kick(&f->dev, RXQ);
	wait_used(f, RXQ, 2);

	/* A frame arriving while buffers are there comes in on its own. */
	desc(f, RXQ, 2, BUF + 0x2000, 1500, VIRTQ_DESC_F_WRITE, 0);
	avail(f, RXQ, 2);
	send_frame(f, &h, 30, 3);
	wait_used(f, RXQ, 3);
	assert_int_equal(used(f, RXQ, 2).len, 42);

	/* Transmit through the kick. */
	assert_int_equal(guest_memory_write(&f->mem, BUF + 0x3000, &h, 12), 0);
	desc(f, TXQ, 0, BUF + 0x3000, 80, 0, 0);
	avail(f, TXQ, 0);
	virtio_dev_kick(&f->dev, TXQ);
	wait_used(f, TXQ, 1);
	assert_int_equal(recv_frame(f, got, sizeof(got)), 80);

	virtio_worker_destroy(w);
}

/* --- rate limits (virtio_net_set_rate_limits) --- */

/* The worker from now on: it watches the limiters' timers (nothing else
 * releases a waiting limiter; virtio_net has no hook for tests), the tap
 * and the queues' kicks. */
static void start_worker(struct fx *f)
{
	char err[256];

	f->worker = virtio_worker_create("net-test", err, sizeof(err));
	assert_non_null(f->worker);
	assert_int_equal(virtio_worker_watch_queues(f->worker, &f->dev), 0);
	assert_int_equal(virtio_net_attach(f->net, &f->dev, f->worker, err, sizeof(err)), 0);
	assert_int_equal(virtio_worker_start(f->worker, err, sizeof(err)), 0);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Transmit frame i: a header, then 100 + i bytes of pattern i. */
static void tx_frame(struct fx *f, unsigned i)
{
	struct virtio_net_hdr h = { 0 };
	uint64_t gpa = BUF + 0x1000ULL * i;

	assert_int_equal(guest_memory_write(&f->mem, gpa, &h, sizeof(h)), 0);
	pattern(host(f, gpa + 12, 100 + i), 100 + i, (uint8_t)(16 * i));
	desc(f, TXQ, i, gpa, 12 + 100 + i, 0, 0);
	avail(f, TXQ, (uint16_t)i);
}

static void expect_tx_frame(struct fx *f, unsigned i)
{
	uint8_t got[256], want[256];

	assert_int_equal(recv_frame(f, got, sizeof(got)), 12 + 100 + i);
	pattern(want, 100 + i, (uint8_t)(16 * i));
	assert_memory_equal(got + 12, want, 100 + i);
}

static void test_tx_rate_limit(void **state)
{
	struct fx *f = *state;
	const struct rate_limit_params tx = { .ops = { .size = 2, .refill_time_ms = 100 } };
	uint8_t got[256];
	double t0, took;

	assert_true(start(f, 0));
	virtio_net_set_rate_limits(f->net, NULL, &tx);
	for (unsigned i = 0; i < 5; i++)
		tx_frame(f, i);
	t0 = now();
	virtio_dev_process_queue(&f->dev, TXQ);
	/* A full bucket of 2: two frames on the tap, the rest wait in the
	 * ring, not used, not dropped. */
	assert_int_equal(used_idx(f, TXQ), 2);
	assert_int_equal(virtio_dev_queue(&f->dev, TXQ)->last_avail_idx, 2);
	expect_tx_frame(f, 0);
	expect_tx_frame(f, 1);
	assert_int_equal(recv_frame(f, got, sizeof(got)), -1);
	assert_int_equal(stats(f).tx_packets, 2);
	assert_int_equal(stats(f).tx_throttled, 1);
	assert_int_equal(stats(f).tx_dropped, 0);
	/* Another pass before the timer: nothing, and no second wait. */
	virtio_dev_process_queue(&f->dev, TXQ);
	assert_int_equal(used_idx(f, TXQ), 2);
	assert_int_equal(recv_frame(f, got, sizeof(got)), -1);
	assert_int_equal(stats(f).tx_throttled, 1);

	/* The timer brings the rest, one per 50 ms, in order and whole. */
	start_worker(f);
	wait_used(f, TXQ, 5);
	took = now() - t0;
	if (took < 0.14)
		fail_msg("5 frames in %.3f s: faster than 2 per 100 ms", took);
	for (unsigned i = 2; i < 5; i++)
		expect_tx_frame(f, i);
	assert_int_equal(recv_frame(f, got, sizeof(got)), -1);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(used(f, TXQ, i).id, i);
		assert_int_equal(used(f, TXQ, i).len, 0);
	}
	assert_int_equal(stats(f).tx_packets, 5);
	assert_true(stats(f).tx_throttled >= 2);
}

static void test_rx_rate_limit(void **state)
{
	struct fx *f = *state;
	const struct rate_limit_params rx = { .ops = { .size = 1, .refill_time_ms = 100 } };
	struct virtio_net_hdr h = { 0 };
	int pfd = virtio_net_poll_fd(f->net);
	double t0, took;

	assert_true(start(f, 0));
	virtio_net_set_rate_limits(f->net, &rx, NULL);
	for (unsigned i = 0; i < 4; i++) {
		memset(host(f, BUF + 0x1000 * i, 1500), 0xee, 1500);
		desc(f, RXQ, i, BUF + 0x1000 * i, 1500, VIRTQ_DESC_F_WRITE, 0);
		avail(f, RXQ, (uint16_t)i);
	}
	for (unsigned i = 0; i < 3; i++)
		send_frame(f, &h, 60 + 10 * i, (uint8_t)(3 * i));
	t0 = now();
	virtio_net_tap_event(f->net);
	/* One frame per refill: the second waits in the device, the tap is
	 * not watched meanwhile (buffers or not), nothing is dropped. */
	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(stats(f).rx_throttled, 1);
	assert_int_equal(poll_fd(pfd), 0);
	/* Woken again (a stray event, new buffers): still waits. */
	virtio_net_tap_event(f->net);
	virtio_dev_process_queue(&f->dev, RXQ);
	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(stats(f).rx_throttled, 1);
	assert_int_equal(host(f, BUF + 0x1000, 1500)[0], 0xee);

	/* The timer delivers the others, 100 ms apart. */
	start_worker(f);
	wait_used(f, RXQ, 3);
	took = now() - t0;
	if (took < 0.19)
		fail_msg("3 frames in %.3f s: faster than 1 per 100 ms", took);
	for (unsigned i = 0; i < 3; i++) {
		uint8_t want[100];

		assert_int_equal(used(f, RXQ, i).id, i);
		assert_int_equal(used(f, RXQ, i).len, 12 + 60 + 10 * i);
		pattern(want, 60 + 10 * i, (uint8_t)(3 * i));
		assert_memory_equal(host(f, BUF + 0x1000 * i + 12, 60 + 10 * i), want, 60 + 10 * i);
	}
	assert_int_equal(stats(f).rx_packets, 3);
	assert_int_equal(stats(f).rx_dropped, 0);
	assert_true(stats(f).rx_throttled >= 2);
	assert_int_equal(used_idx(f, RXQ), 3);
}

static void test_rate_limits_removed(void **state)
{
	struct fx *f = *state;
	/* One frame a minute each way: nothing more comes by itself. */
	const struct rate_limit_params p = { .ops = { .size = 1, .refill_time_ms = 60000 } };
	struct virtio_net_hdr h = { 0 };
	int pfd = virtio_net_poll_fd(f->net);
	uint8_t got[256];

	assert_true(start(f, 0));
	virtio_net_set_rate_limits(f->net, &p, &p);
	for (unsigned i = 0; i < 3; i++) {
		tx_frame(f, i);
		desc(f, RXQ, i, BUF + 0x10000 + 0x1000 * i, 1500, VIRTQ_DESC_F_WRITE, 0);
		avail(f, RXQ, (uint16_t)i);
		send_frame(f, &h, 40 + i, (uint8_t)i);
	}
	virtio_dev_process_queue(&f->dev, TXQ);
	virtio_net_tap_event(f->net);
	assert_int_equal(used_idx(f, TXQ), 1);
	assert_int_equal(used_idx(f, RXQ), 1);
	assert_int_equal(stats(f).tx_throttled, 1);
	assert_int_equal(stats(f).rx_throttled, 1);
	/* The same limits again release nothing. */
	virtio_net_set_rate_limits(f->net, &p, &p);
	virtio_dev_process_queue(&f->dev, TXQ);
	assert_int_equal(used_idx(f, TXQ), 1);
	assert_int_equal(used_idx(f, RXQ), 1);

	/* None: what waited goes at once. Receive runs right there, the
	 * transmit queue is kicked. */
	virtio_net_set_rate_limits(f->net, NULL, NULL);
	assert_int_equal(used_idx(f, RXQ), 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(used(f, RXQ, i).len, 12 + 40 + i);
	assert_int_equal(poll_fd(virtio_dev_kick_fd(&f->dev, TXQ)), 1);
	virtio_dev_process_queue(&f->dev, TXQ);
	assert_int_equal(used_idx(f, TXQ), 3);
	for (unsigned i = 0; i < 3; i++)
		expect_tx_frame(f, i);
	assert_int_equal(recv_frame(f, got, sizeof(got)), -1);
	/* The tap is empty and watched again. */
	assert_int_equal(poll_fd(pfd), 0);
	send_frame(f, &h, 10, 0);
	assert_int_equal(poll_fd(pfd), 1);
	assert_int_equal(stats(f).rx_dropped + stats(f).tx_dropped, 0);
}

/* --- a real tap --- */

static bool can_create_taps(void)
{
	struct tap t;
	char err[256];

	if (tap_open("popekut0", &t, err, sizeof(err)))
		return false;
	tap_close(&t);
	return true;
}

static void test_tap_errors(void **state)
{
	struct tap t;
	char err[256];

	(void)state;
	assert_int_equal(tap_open_path("/nonexistent/tun", "x0", &t, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "--net tap=x0: cannot open /nonexistent/tun: No such file or directory");
	assert_int_equal(t.fd, -1);
	assert_int_equal(tap_open("a/b", &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--net tap=a/b: not a valid interface name"));
	/* Not a clone device: TUNSETIFF fails. */
	assert_true(tap_open_path("/dev/null", "x0", &t, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "--net tap=x0: cannot create tap x0: "));
}

static void test_real_tap(void **state)
{
	struct virtio_net *net;
	struct net_spec spec;
	struct tap t;
	char err[256];

	(void)state;
	if (!can_create_taps())
		skip();
	assert_int_equal(tap_open("popekut1", &t, err, sizeof(err)), 0);
	assert_string_equal(t.name, "popekut1");
	/* Every Linux tap takes checksum and TSO offloads. */
	assert_int_equal(t.offloads & (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	assert_int_equal(tap_set_offload(&t, TUN_F_CSUM | TUN_F_TSO4), 0);
	assert_int_equal(tap_set_offload(&t, 0), 0);
	/* Busy: attached already (no IFF_MULTI_QUEUE). */
	{
		struct tap t2;

		assert_true(tap_open("popekut1", &t2, err, sizeof(err)) < 0);
		assert_non_null(strstr(err, "--net tap=popekut1: cannot attach to tap popekut1: "));
	}
	tap_close(&t);

	assert_int_equal(net_spec_parse("tap=popekut2", &spec, err, sizeof(err)), 0);
	net = virtio_net_create(&spec, err, sizeof(err));
	assert_non_null(net);
	assert_string_equal(virtio_net_tap_name(net), "popekut2");
	assert_memory_equal(virtio_net_mac(net), spec.mac, 6);
	virtio_net_destroy(net);
}

/* Creating a tap needs CAP_NET_ADMIN: without it, the message says so. */
static void test_tap_without_cap_net_admin(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	if (!can_create_taps())
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct data[2];
		struct tap t;
		char err[256];

		if (syscall(SYS_capget, &hdr, data))
			_exit(2);
		data[0].effective &= ~(1u << CAP_NET_ADMIN);
		if (syscall(SYS_capset, &hdr, data))
			_exit(3);
		if (tap_open("popekut3", &t, err, sizeof(err)) != -EPERM)
			_exit(4);
		if (!strstr(err, "--net tap=popekut3: cannot create tap popekut3: Operation not permitted"))
			_exit(5);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		cmocka_unit_test(test_spec_parse),
		cmocka_unit_test(test_default_mac),
		T(test_offer_and_config),
		cmocka_unit_test(test_offer_follows_tap),
		T(test_offload_negotiation),
		T(test_tx_exact),
		T(test_tx_bad_chains_and_headers),
		T(test_tx_more_iovecs_than_iov_max),
		T(test_rx_single_buffer),
		T(test_rx_mergeable),
		T(test_rx_waits_for_buffers),
		T(test_rx_merge_needs_more_buffers),
		T(test_rx_small_buffer_without_merge),
		T(test_rx_tiny_merge_buffer_needs_reset),
		T(test_rx_headers_follow_features),
		T(test_inactive_and_gone),
		T(test_worker),
		T(test_tx_rate_limit),
		T(test_rx_rate_limit),
		T(test_rate_limits_removed),
		cmocka_unit_test(test_tap_errors),
		cmocka_unit_test(test_real_tap),
		cmocka_unit_test(test_tap_without_cap_net_admin),
#undef T
	};

	/* Writing to the stand-in whose peer is gone raises SIGPIPE (a tap
	 * does not). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
