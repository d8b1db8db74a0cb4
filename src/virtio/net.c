#include "virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/rate_limiter.h"
#include "virtio/worker.h"

#define F(bit) (1ULL << (bit))

/* Frames taken from the tap per event: then the worker serves its other
 * descriptors (the transmit kick) and comes back, the tap being watched
 * level-triggered. */
#define RX_BUDGET 256

/* One more byte than the largest frame: a stand-in for the tap that
 * truncates silently (a datagram socket) still shows an oversized frame. */
#define RX_BUF_LEN (VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME + 1)

/* At most one warning per this many seconds: a guest (or the network)
 * must not be able to flood the host's log. */
#define WARN_INTERVAL 5

#define STAT_ADD(net, field, v) __atomic_fetch_add(&(net)->stats.field, (v), __ATOMIC_RELAXED)

enum rx_result {
	RX_DONE,        /* the frame went to the guest or was dropped */
	RX_WAIT,        /* not enough receive buffers: wait for the guest */
	RX_BROKEN,      /* the queue or the device needs a reset */
};

struct rx_used {
	uint16_t head;
	uint32_t len;
};

struct virtio_net {
	struct virtio_device_ops ops;
	struct virtio_net_config config;   /* little-endian, read-only */
	struct tap tap;
	struct virtio_dev *dev;

	/* An epoll set holding only the tap: the worker watches it, and
	 * taking the tap out of it (events 0) stops the wake-ups while the
	 * guest has no receive buffers, without touching the worker. */
	int poll_fd;
	bool listening;            /* the tap is in poll_fd with EPOLLIN */
	bool tap_dead;             /* read failed for good: out of poll_fd */

	/* Below: under the device lock (the worker, or a vCPU in
	 * activate/reset). */
	uint64_t features;         /* negotiated; 0 while not active */
	uint8_t *rx_buf;           /* the frame read from the tap */
	size_t rx_len;             /* its length, vnet header included */
	bool rx_pending;           /* rx_buf holds a frame not yet delivered */
	bool rx_unpaid;            /* ... that the receive limiter made wait */
	struct rx_used rx_used[VIRTQ_MAX_SIZE];
	struct virtq_req *req, *req_first;
	uint8_t *tx_buf;           /* to linearise chains of more than IOV_MAX */
	struct iovec tx_iov[VIRTQ_MAX_CHAIN + 1];
	struct log_ratelimit warn;

	struct virtio_net_stats stats;     /* atomics */
	/* Consumed under the device lock; timerfds watched by the worker. */
	struct rate_limiter rx_limiter, tx_limiter;
};

/* --- --net parsing --- */

static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = s[3 * i + j];

			if (c >= '0' && c <= '9')
				v = v * 16 + (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v * 16 + (unsigned)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				v = v * 16 + (unsigned)(c - 'A' + 10);
			else
				return -EINVAL;
		}
		if (s[3 * i + 2] != (i == 5 ? '\0' : ':'))
			return -EINVAL;
		mac[i] = (uint8_t)v;
	}
	return 0;
}

void net_default_mac(const char *tap, uint8_t mac[6])
{
	/* FNV-1a (64 bits) of a fixed prefix and the tap name: the same
	 * name gives the same address on every run, so the guest's view of
	 * its NIC (DHCP leases, udev names) survives restarts. */
	static const char prefix[] = "popek-net/";
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *p = prefix; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	for (const char *p = tap; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	/* IEEE 802 first octet: bit 0 clear (unicast), bit 1 set (locally
	 * administered, §5.1.4's driver requirement for made-up addresses). */
	mac[0] = 0x02;
	for (int i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * (i - 1)));
}

int net_spec_parse(const char *arg, struct net_spec *spec, char *err, size_t errlen)
{
	char buf[256];
	char *item, *next;
	bool have_tap = false;

	memset(spec, 0, sizeof(*spec));
	if (!*arg) {
		snprintf(err, errlen, "--net: empty (expected tap=NAME[,mac=xx:xx:xx:xx:xx:xx])");
		return -EINVAL;
	}
	if (strlen(arg) >= sizeof(buf)) {
		snprintf(err, errlen, "--net: argument too long");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	for (item = buf; item; item = next) {
		char *val;

		next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		val = strchr(item, '=');
		if (!val) {
			snprintf(err, errlen, "--net %s: '%s' is not key=value (expected tap=NAME[,mac=xx:xx:xx:xx:xx:xx])",
				 arg, item);
			return -EINVAL;
		}
		*val++ = '\0';
		if (!strcmp(item, "tap")) {
			if (have_tap) {
				snprintf(err, errlen, "--net %s: tap given twice", arg);
				return -EINVAL;
			}
			if (!*val) {
				snprintf(err, errlen, "--net %s: empty tap name", arg);
				return -EINVAL;
			}
			if (strlen(val) >= IFNAMSIZ) {
				snprintf(err, errlen, "--net %s: tap name '%s' is longer than %d characters",
					 arg, val, IFNAMSIZ - 1);
				return -EINVAL;
			}
			if (!tap_name_valid(val)) {
				snprintf(err, errlen, "--net %s: tap name '%s' is not a valid interface name (no '/', ':' or spaces)",
					 arg, val);
				return -EINVAL;
			}
			snprintf(spec->tap, sizeof(spec->tap), "%s", val);
			have_tap = true;
		} else if (!strcmp(item, "mac")) {
			if (spec->mac_given) {
				snprintf(err, errlen, "--net %s: mac given twice", arg);
				return -EINVAL;
			}
			if (parse_mac(val, spec->mac)) {
				snprintf(err, errlen, "--net %s: mac '%s' is not six hex pairs (xx:xx:xx:xx:xx:xx)",
					 arg, val);
				return -EINVAL;
			}
			if (spec->mac[0] & 1) {
				snprintf(err, errlen, "--net %s: mac %s is a multicast address (lowest bit of the first byte set)",
					 arg, val);
				return -EINVAL;
			}
			if (!(spec->mac[0] | spec->mac[1] | spec->mac[2] | spec->mac[3] |
			      spec->mac[4] | spec->mac[5])) {
				snprintf(err, errlen, "--net %s: mac %s is the zero address", arg, val);
				return -EINVAL;
			}
			spec->mac_given = true;
		} else {
			snprintf(err, errlen, "--net %s: unknown key '%s' (known: tap, mac)", arg, item);
			return -EINVAL;
		}
	}
	if (!have_tap) {
		snprintf(err, errlen, "--net %s: tap=NAME is required", arg);
		return -EINVAL;
	}
	if (!spec->mac_given)
		net_default_mac(spec->tap, spec->mac);
	return 0;
}

/* --- helpers --- */

#define warn_limited(dev, ...) log_warn_ratelimited(&(dev)->warn, __VA_ARGS__)

static void tap_listen(struct virtio_net *net, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0 };

	if (net->listening == on || net->tap_dead)
		return;
	if (epoll_ctl(net->poll_fd, EPOLL_CTL_MOD, net->tap.fd, &ev) < 0) {
		pr_err("virtio-net: tap %s: epoll_ctl: %s", net->tap.name, strerror(errno));
		return;
	}
	net->listening = on;
}

/* The tap failed for good (its interface was deleted, or the stand-in's
 * peer went away): stop watching it, or its error state would wake the
 * worker forever. Transmit keeps failing and counting. */
static void tap_gone(struct virtio_net *net, const char *why)
{
	if (net->tap_dead)
		return;
	pr_err("virtio-net: tap %s: %s; receiving stopped", net->tap.name, why);
	epoll_ctl(net->poll_fd, EPOLL_CTL_DEL, net->tap.fd, NULL);
	net->tap_dead = true;
	net->listening = false;
}

/* --- receive --- */

/* Adds n used elements and publishes them with one used->idx store
 * (§2.7.8, the layout and ordering virtq_push uses): the driver must see
 * every buffer of a merged packet once it sees the first (§5.1.6.4.1:
 * "at least num_buffers are observed by driver as used"); Linux drops the
 * packet when one is missing. */
static void rx_used_flush(struct virtq *vq, const struct rx_used *u, unsigned n)
{
	struct virtq_used_elem *ring = (struct virtq_used_elem *)(vq->used + 2);

	for (unsigned i = 0; i < n; i++) {
		struct virtq_used_elem *e = &ring[(uint16_t)(vq->used_idx + i) & (vq->size - 1)];

		__atomic_store_n(&e->id, htole32(u[i].head), __ATOMIC_RELAXED);
		__atomic_store_n(&e->len, htole32(u[i].len), __ATOMIC_RELAXED);
	}
	vq->used_idx += (uint16_t)n;
	__atomic_store_n(&vq->used[1], htole16(vq->used_idx), __ATOMIC_RELEASE);
}

/* Makes the tap's header what the driver accepted (§5.1.6.4.1), or
 * returns false when the frame cannot be given to it. The tap follows
 * TUNSETOFFLOAD, but frames queued before it changed may not. */
static bool rx_header_ok(struct virtio_net *net, struct virtio_net_hdr *h)
{
	uint64_t f = net->features;
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (!(f & F(VIRTIO_NET_F_GUEST_CSUM))) {
		/* "flags to zero and SHOULD supply a fully checksummed
		 * packet": a partial checksum cannot be completed here. */
		if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
			return false;
		h->flags = 0;
	} else {
		/* RSC_INFO only with RSC_EXT, never offered. */
		h->flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
	}
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(f & F(VIRTIO_NET_F_GUEST_TSO4)))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(f & F(VIRTIO_NET_F_GUEST_TSO6)))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!(f & F(VIRTIO_NET_F_GUEST_UFO)))
			return false;
		break;
	default:
		return false;
	}
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(f & F(VIRTIO_NET_F_GUEST_ECN)))
		return false;
	return true;
}

enum { READ_EMPTY, READ_FRAME, READ_DROPPED };

/* Reads the next frame into rx_buf: READ_FRAME (rx_pending set),
 * READ_DROPPED (one frame consumed and dropped), READ_EMPTY (nothing to
 * read, or the tap is gone). */
static int rx_read(struct virtio_net *net)
{
	ssize_t n;

	do
		n = read(net->tap.fd, net->rx_buf, RX_BUF_LEN);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN)
			return READ_EMPTY;
		STAT_ADD(net, rx_errors, 1);
		/* The tap frees a frame it could not copy out (EFAULT,
		 * EINVAL): go on with the next. Anything else (EBADFD: the
		 * interface is gone) would repeat. */
		if (errno == EFAULT || errno == EINVAL || errno == EMSGSIZE) {
			warn_limited(net, "tap %s: read: %s", net->tap.name, strerror(errno));
			return READ_DROPPED;
		}
		tap_gone(net, strerror(errno));
		return READ_EMPTY;
	}
	if (n == 0) {
		tap_gone(net, "end of file");
		return READ_EMPTY;
	}
	if ((size_t)n < VIRTIO_NET_HDR_LEN || (size_t)n > VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME) {
		STAT_ADD(net, rx_dropped, 1);
		warn_limited(net, "tap %s: dropped a %zd-byte frame (header included)", net->tap.name, n);
		return READ_DROPPED;
	}
	if (!rx_header_ok(net, (struct virtio_net_hdr *)net->rx_buf)) {
		STAT_ADD(net, rx_dropped, 1);
		warn_limited(net, "tap %s: dropped a frame with offloads the driver did not accept",
			     net->tap.name);
		return READ_DROPPED;
	}
	net->rx_len = (size_t)n;
	net->rx_pending = true;
	return READ_FRAME;
}

static void rx_drop_pending(struct virtio_net *net, const char *why, uint64_t room)
{
	STAT_ADD(net, rx_dropped, 1);
	warn_limited(net, "dropped a %zu-byte received frame: %s (%llu bytes of buffers)",
		     net->rx_len - VIRTIO_NET_HDR_LEN, why, (unsigned long long)room);
	net->rx_pending = false;
}

/* Puts the pending frame into the receive queue: one chain, or with
 * MRG_RXBUF as many as it takes, every one but the last filled up
 * (§5.1.6.4.1), num_buffers in the first header (§5.1.6.3.2). */
static enum rx_result rx_deliver(struct virtio_net *net, struct virtio_dev *d, struct virtq *vq)
{
	bool mrg = net->features & F(VIRTIO_NET_F_MRG_RXBUF);
	size_t len = net->rx_len, off = 0;
	uint64_t room_total = 0;
	unsigned n = 0;
	uint16_t nbuf;

	/* §5.1.6.4.1: 1 without MRG_RXBUF; with it, rewritten below. */
	((struct virtio_net_hdr *)net->rx_buf)->num_buffers = htole16(1);
	while (off < len) {
		struct virtq_req *req = n ? net->req : net->req_first;
		int r = virtq_pop(vq, req);
		size_t chunk;

		if (r < 0)
			return RX_BROKEN;
		if (r == 0) {
			virtq_unpop(vq, n);
			/* The whole ring cannot hold it: waiting would
			 * wait forever. */
			if (n == vq->size) {
				rx_drop_pending(net, "larger than the whole receive queue", room_total);
				return RX_DONE;
			}
			/* virtq_pop() returning 0 published avail_event
			 * (EVENT_IDX): the driver's next buffer kicks us. */
			return RX_WAIT;
		}
		if (!mrg && req->write_len < len) {
			/* Without MRG_RXBUF a packet takes one buffer
			 * (§5.1.6.3.2); the buffer stays for a smaller
			 * frame, as in QEMU. */
			virtq_unpop(vq, 1);
			rx_drop_pending(net, "receive buffer too small and no VIRTIO_NET_F_MRG_RXBUF",
					req->write_len);
			return RX_DONE;
		}
		if (req->write_len < VIRTIO_NET_HDR_LEN) {
			/* §5.1.6.3.1: with MRG_RXBUF each buffer MUST hold
			 * at least the header. */
			virtio_dev_needs_reset(d, "receive buffer smaller than the 12-byte header");
			return RX_BROKEN;
		}
		chunk = len - off;
		if (chunk > req->write_len)
			chunk = (size_t)req->write_len;
		virtq_req_write(req, 0, net->rx_buf + off, chunk);
		net->rx_used[n].head = req->head;
		net->rx_used[n].len = (uint32_t)chunk;
		room_total += req->write_len;
		off += chunk;
		n++;
	}
	if (n > 1) {
		nbuf = htole16((uint16_t)n);
		virtq_req_write(net->req_first, offsetof(struct virtio_net_hdr, num_buffers),
				&nbuf, sizeof(nbuf));
	}
	rx_used_flush(vq, net->rx_used, n);
	STAT_ADD(net, rx_packets, 1);
	STAT_ADD(net, rx_bytes, len - VIRTIO_NET_HDR_LEN);
	net->rx_pending = false;
	return RX_DONE;
}

/* Moves frames from the tap to the guest until the tap is empty, the
 * guest has no buffers (then the tap is not watched until its kick), or
 * the budget is spent (then the level-triggered tap brings us back). */
static void net_rx(struct virtio_net *net, struct virtio_dev *d)
{
	struct virtq *vq = virtio_dev_vq(d, VIRTIO_NET_RXQ);
	unsigned budget = RX_BUDGET;
	bool used = false;

	if (!vq || net->tap_dead)
		return;
	for (;;) {
		enum rx_result res;

		if (!net->rx_pending) {
			int r;

			if (budget == 0)
				break;
			r = rx_read(net);
			if (r == READ_EMPTY)
				break;
			budget--;
			if (r == READ_DROPPED)
				continue;
			net->rx_unpaid = true;
		}
		/* Charged once the frame's size is known (Firecracker's
		 * order); a frame that must wait stays in rx_buf and the tap
		 * unwatched until the limiter's timer. */
		if (net->rx_unpaid) {
			if (!rate_limiter_consume(&net->rx_limiter, net->rx_len - VIRTIO_NET_HDR_LEN)) {
				tap_listen(net, false);
				goto out;
			}
			net->rx_unpaid = false;
		}
		res = rx_deliver(net, d, vq);
		if (res == RX_WAIT) {
			tap_listen(net, false);
			goto out;
		}
		if (res == RX_BROKEN)
			return;
		used = true;
		/* Per frame, as QEMU's receive path and net_tx: the guest's
		 * NAPI starts on the first frame while the tap is drained;
		 * the event index drops the interrupts it did not ask for. */
		virtio_notify_queue(d, VIRTIO_NET_RXQ);
	}
	tap_listen(net, true);
out:
	if (used)
		virtio_notify_queue(d, VIRTIO_NET_RXQ);
}

void virtio_net_tap_event(void *opaque)
{
	struct virtio_net *net = opaque;
	struct virtio_dev *d = net->dev;
	struct virtq *vq;

	if (!d)
		return;
	virtio_dev_lock(d);
	STAT_ADD(net, rx_wakeups, 1);
	if (!net->listening && !net->tap_dead) {
		/* Not watching for input, yet woken: epoll always reports
		 * errors and hang-ups. */
		struct pollfd p = { .fd = net->tap.fd, .events = POLLIN };

		if (poll(&p, 1, 0) == 1 &&
		    ((p.revents & (POLLERR | POLLNVAL)) ||
		     ((p.revents & POLLHUP) && !(p.revents & POLLIN))))
			tap_gone(net, "error or hang-up on the tap");
	}
	vq = virtio_dev_vq(d, VIRTIO_NET_RXQ);
	if (!__atomic_load_n(&d->active, __ATOMIC_ACQUIRE) || !vq || vq->broken) {
		tap_listen(net, false);
	} else {
		net_rx(net, d);
		if (vq->broken)
			virtio_dev_needs_reset(d, vq->error ? vq->error : "receive queue broken");
	}
	virtio_dev_unlock(d);
}

/* --- transmit --- */

/* §5.1.6.2.1: what the driver may put in a transmit header given the
 * negotiated features; anything else is dropped rather than handed to the
 * host's stack. */
static bool tx_header_ok(struct virtio_net *net, const struct virtio_net_hdr *h)
{
	uint64_t f = net->features;
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(f & F(VIRTIO_NET_F_CSUM)))
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
			return false;
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(f & F(VIRTIO_NET_F_HOST_TSO4)))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(f & F(VIRTIO_NET_F_HOST_TSO6)))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!(f & F(VIRTIO_NET_F_HOST_UFO)))
			return false;
		break;
	default:
		return false;
	}
	/* A segmentation request comes with a partial checksum. */
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return false;
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(f & F(VIRTIO_NET_F_HOST_ECN)))
		return false;
	return true;
}

static void tx_drop(struct virtio_net *net, const char *why)
{
	STAT_ADD(net, tx_dropped, 1);
	warn_limited(net, "dropped a transmitted frame: %s", why);
}

static void tx_one(struct virtio_net *net, const struct virtq_req *req)
{
	struct virtio_net_hdr hdr;
	uint64_t frame_len, skip = VIRTIO_NET_HDR_LEN;
	unsigned cnt = 0;
	ssize_t n;

	/* Device-writable buffers in a transmit chain are ignored. */
	if (req->read_len < VIRTIO_NET_HDR_LEN) {
		tx_drop(net, "chain shorter than the 12-byte header");
		return;
	}
	frame_len = req->read_len - VIRTIO_NET_HDR_LEN;
	if (frame_len > VIRTIO_NET_MAX_FRAME) {
		tx_drop(net, "frame too long");
		return;
	}
	/* The header is copied once, checked, and the copy goes to the
	 * tap: the guest can rewrite its buffer meanwhile. */
	virtq_req_read(req, 0, &hdr, sizeof(hdr));
	if (!tx_header_ok(net, &hdr)) {
		tx_drop(net, "header asks for an offload the driver did not negotiate");
		return;
	}
	/* §5.1.6.2.2: unknown flags are ignored; DATA_VALID and RSC_INFO
	 * (the driver MUST NOT set them) must not reach the host's stack,
	 * where DATA_VALID would skip checksum verification. */
	hdr.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	hdr.num_buffers = 0;
	net->tx_iov[cnt++] = (struct iovec){ .iov_base = &hdr, .iov_len = sizeof(hdr) };
	for (unsigned i = 0; i < req->nread; i++) {
		const struct iovec *v = &req->iov[i];

		if (skip >= v->iov_len) {
			skip -= v->iov_len;
			continue;
		}
		net->tx_iov[cnt++] = (struct iovec){
			.iov_base = (uint8_t *)v->iov_base + skip,
			.iov_len = v->iov_len - skip,
		};
		skip = 0;
	}
	if (cnt > IOV_MAX) {
		memcpy(net->tx_buf, &hdr, sizeof(hdr));
		virtq_req_read(req, VIRTIO_NET_HDR_LEN, net->tx_buf + sizeof(hdr), frame_len);
		net->tx_iov[0] = (struct iovec){
			.iov_base = net->tx_buf,
			.iov_len = sizeof(hdr) + frame_len,
		};
		cnt = 1;
	}
	do
		n = writev(net->tap.fd, net->tx_iov, (int)cnt);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		STAT_ADD(net, tx_errors, 1);
		warn_limited(net, "tap %s: write: %s", net->tap.name, strerror(errno));
		return;
	}
	STAT_ADD(net, tx_packets, 1);
	STAT_ADD(net, tx_bytes, frame_len);
}

static void net_tx(struct virtio_net *net, struct virtio_dev *d)
{
	struct virtq *vq = virtio_dev_vq(d, VIRTIO_NET_TXQ);
	unsigned budget;

	if (!vq)
		return;
	/* A ring's worth per call, then back through the kick eventfd, so
	 * the receive side gets the worker too. */
	budget = vq->size;
	while (virtq_pop(vq, net->req) > 0) {
		uint64_t frame = net->req->read_len > VIRTIO_NET_HDR_LEN ?
				 net->req->read_len - VIRTIO_NET_HDR_LEN : 0;

		if (!rate_limiter_consume(&net->tx_limiter, frame)) {
			/* Back in the ring until the limiter's timer. */
			virtq_unpop(vq, 1);
			break;
		}
		tx_one(net, net->req);
		/* Nothing is written to a transmit buffer: used len 0. */
		virtq_push(vq, net->req, 0);
		/* Per frame, not per batch: Linux frees sent skbs, and returns
		 * TCP's small-queue budget, on this interrupt, so holding it
		 * for a whole batch stalls the sender (measured: 0.92x QEMU
		 * guest->host). used_event (§2.7.10) lets the driver say how
		 * many it wants; virtq_needs_notify honours it. */
		virtio_notify_queue(d, VIRTIO_NET_TXQ);
		if (--budget == 0) {
			virtio_dev_kick(d, VIRTIO_NET_TXQ);
			break;
		}
	}
}

/* --- device type --- */

static uint64_t offered_features(unsigned tun)
{
	/* The tap takes partially checksummed and TSO frames on write
	 * whatever TUNSETOFFLOAD says (it governs reads only). */
	uint64_t f = F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_MRG_RXBUF) |
		     F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |
		     F(VIRTIO_NET_F_HOST_ECN);

	/* UFO frames on write only where the kernel takes TUN_F_UFO (as
	 * QEMU decides). */
	if (tun & TUN_F_UFO)
		f |= F(VIRTIO_NET_F_HOST_UFO);
	if (tun & TUN_F_CSUM) {
		f |= F(VIRTIO_NET_F_GUEST_CSUM);
		if (tun & TUN_F_TSO4)
			f |= F(VIRTIO_NET_F_GUEST_TSO4);
		if (tun & TUN_F_TSO6)
			f |= F(VIRTIO_NET_F_GUEST_TSO6);
		if ((tun & TUN_F_TSO_ECN) && (tun & (TUN_F_TSO4 | TUN_F_TSO6)))
			f |= F(VIRTIO_NET_F_GUEST_ECN);
		if (tun & TUN_F_UFO)
			f |= F(VIRTIO_NET_F_GUEST_UFO);
	}
	return f;
}

/* The TUN_F_* offloads matching the driver's GUEST_* features. */
static unsigned tun_offloads(uint64_t f)
{
	unsigned t = 0;

	if (!(f & F(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	t |= TUN_F_CSUM;
	if (f & F(VIRTIO_NET_F_GUEST_TSO4))
		t |= TUN_F_TSO4;
	if (f & F(VIRTIO_NET_F_GUEST_TSO6))
		t |= TUN_F_TSO6;
	if (f & F(VIRTIO_NET_F_GUEST_ECN))
		t |= TUN_F_TSO_ECN;
	if (f & F(VIRTIO_NET_F_GUEST_UFO))
		t |= TUN_F_UFO;
	return t;
}

static bool needs(uint64_t f, unsigned bit, uint64_t any_of)
{
	return !(f & F(bit)) || (f & any_of);
}

static bool net_features_ok(struct virtio_dev *d, uint64_t f)
{
	uint64_t gtso = F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6);
	uint64_t htso = F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6);

	(void)d;
	/* §5.1.3.1: the dependencies a driver MUST respect (§2.2.1). */
	return needs(f, VIRTIO_NET_F_GUEST_TSO4, F(VIRTIO_NET_F_GUEST_CSUM)) &&
	       needs(f, VIRTIO_NET_F_GUEST_TSO6, F(VIRTIO_NET_F_GUEST_CSUM)) &&
	       needs(f, VIRTIO_NET_F_GUEST_UFO, F(VIRTIO_NET_F_GUEST_CSUM)) &&
	       needs(f, VIRTIO_NET_F_GUEST_ECN, gtso) &&
	       needs(f, VIRTIO_NET_F_HOST_TSO4, F(VIRTIO_NET_F_CSUM)) &&
	       needs(f, VIRTIO_NET_F_HOST_TSO6, F(VIRTIO_NET_F_CSUM)) &&
	       needs(f, VIRTIO_NET_F_HOST_UFO, F(VIRTIO_NET_F_CSUM)) &&
	       needs(f, VIRTIO_NET_F_HOST_ECN, htso);
}

static int net_activate(struct virtio_dev *d)
{
	struct virtio_net *net = virtio_dev_opaque(d);
	unsigned tun = tun_offloads(d->features);
	int ret;

	ret = tap_set_offload(&net->tap, tun);
	if (ret) {
		pr_err("virtio-net: tap %s: TUNSETOFFLOAD %#x: %s", net->tap.name, tun, strerror(-ret));
		return ret;
	}
	net->features = d->features;
	net->rx_pending = false;
	net->rx_unpaid = false;
	pr_debug("virtio-net: features %#llx, tap offloads %#x",
		 (unsigned long long)d->features, tun);
	tap_listen(net, true);
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct virtio_net *net = virtio_dev_opaque(d);
	int ret;

	tap_listen(net, false);
	/* A frame read under the old features may not suit the next
	 * driver. */
	net->rx_pending = false;
	net->rx_unpaid = false;
	net->features = 0;
	ret = tap_set_offload(&net->tap, 0);
	if (ret)
		pr_warn("virtio-net: tap %s: TUNSETOFFLOAD 0: %s", net->tap.name, strerror(-ret));
}

static void net_queue_ready(struct virtio_dev *d, unsigned q)
{
	struct virtio_net *net = virtio_dev_opaque(d);

	if (q == VIRTIO_NET_RXQ)
		net_rx(net, d);   /* new buffers: a waiting frame, then the tap */
	else if (q == VIRTIO_NET_TXQ)
		net_tx(net, d);
}

static void net_read_config(struct virtio_dev *d, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_net *net = virtio_dev_opaque(d);

	/* The core checked [offset, offset + len) against config_size. */
	memcpy(data, (const uint8_t *)&net->config + offset, len);
}

static const struct virtio_device_ops net_ops_template = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.nqueues = 2,
	.max_queue_size = VIRTIO_NET_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_net_config),
	.read_config = net_read_config,
	/* §5.1.4: the driver MUST NOT write the configuration: no
	 * write_config, writes are dropped. */
	.features_ok = net_features_ok,
	.activate = net_activate,
	.queue_ready = net_queue_ready,
	.reset = net_reset,
};

struct virtio_net *virtio_net_create_tap(const struct net_spec *spec, const struct tap *tap,
					 char *err, size_t errlen)
{
	struct virtio_net *net = calloc(1, sizeof(*net));
	struct epoll_event ev = { .events = 0 };
	int ret;

	if (!net) {
		snprintf(err, errlen, "virtio-net: out of memory");
		close(tap->fd);
		return NULL;
	}
	net->warn = (struct log_ratelimit){ .prefix = "virtio-net", .interval_s = WARN_INTERVAL };
	net->tap = *tap;
	net->poll_fd = -1;
	/* First: destroy closes what timer_fd names (-1: nothing). */
	net->rx_limiter.timer_fd = net->tx_limiter.timer_fd = -1;
	ret = rate_limiter_init(&net->rx_limiter);
	if (!ret)
		ret = rate_limiter_init(&net->tx_limiter);
	if (ret) {
		snprintf(err, errlen, "virtio-net: rate limiter timer: %s", strerror(-ret));
		goto fail;
	}
	net->ops = net_ops_template;
	net->ops.features = offered_features(tap->offloads);
	memcpy(net->config.mac, spec->mac, sizeof(net->config.mac));
	net->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	net->config.max_virtqueue_pairs = htole16(1);
	net->rx_buf = malloc(RX_BUF_LEN);
	net->tx_buf = malloc(VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME);
	net->req = malloc(sizeof(*net->req));
	net->req_first = malloc(sizeof(*net->req_first));
	if (!net->rx_buf || !net->tx_buf || !net->req || !net->req_first) {
		snprintf(err, errlen, "virtio-net: out of memory");
		goto fail;
	}
	net->poll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (net->poll_fd < 0) {
		snprintf(err, errlen, "virtio-net: epoll_create1: %s", strerror(errno));
		goto fail;
	}
	/* In the set from the start, without events until DRIVER_OK. */
	if (epoll_ctl(net->poll_fd, EPOLL_CTL_ADD, net->tap.fd, &ev) < 0) {
		snprintf(err, errlen, "virtio-net: tap %s: epoll_ctl: %s", net->tap.name, strerror(errno));
		goto fail;
	}
	return net;
fail:
	virtio_net_destroy(net);
	return NULL;
}

struct virtio_net *virtio_net_create(const struct net_spec *spec, char *err, size_t errlen)
{
	struct virtio_net *net;
	struct tap tap;

	if (tap_open(spec->tap, &tap, err, errlen))
		return NULL;
	net = virtio_net_create_tap(spec, &tap, err, errlen);
	if (net)
		pr_info("virtio-net: tap %s, mac %02x:%02x:%02x:%02x:%02x:%02x, tap offloads %#x",
			tap.name, spec->mac[0], spec->mac[1], spec->mac[2], spec->mac[3],
			spec->mac[4], spec->mac[5], tap.offloads);
	return net;
}

void virtio_net_destroy(struct virtio_net *net)
{
	if (!net)
		return;
	if (net->poll_fd >= 0)
		close(net->poll_fd);
	tap_close(&net->tap);
	rate_limiter_destroy(&net->rx_limiter);
	rate_limiter_destroy(&net->tx_limiter);
	free(net->rx_buf);
	free(net->tx_buf);
	free(net->req);
	free(net->req_first);
	free(net);
}

/* The limiters' timers (worker handlers; the API thread after an
 * update). Receive: the tap's handler, which delivers the waiting frame
 * and watches the tap again. Transmit: the queue, through its kick. */
static void rx_limiter_ready(void *opaque)
{
	struct virtio_net *net = opaque;

	rate_limiter_timer_fired(&net->rx_limiter);
	virtio_net_tap_event(net);
}

static void tx_limiter_ready(void *opaque)
{
	struct virtio_net *net = opaque;

	rate_limiter_timer_fired(&net->tx_limiter);
	if (net->dev)
		virtio_dev_kick(net->dev, VIRTIO_NET_TXQ);
}

const struct virtio_device_ops *virtio_net_ops(struct virtio_net *net)
{
	return &net->ops;
}

int virtio_net_attach(struct virtio_net *net, struct virtio_dev *d, struct virtio_worker *w,
		      char *err, size_t errlen)
{
	int ret;

	net->dev = d;
	if (!w)
		return 0;
	ret = virtio_worker_watch(w, net->poll_fd, virtio_net_tap_event, net);
	if (!ret)
		ret = virtio_worker_watch(w, rate_limiter_fd(&net->rx_limiter), rx_limiter_ready, net);
	if (!ret)
		ret = virtio_worker_watch(w, rate_limiter_fd(&net->tx_limiter), tx_limiter_ready, net);
	if (ret)
		snprintf(err, errlen, "virtio-net: watching tap %s: %s", net->tap.name, strerror(-ret));
	return ret;
}

void virtio_net_set_rate_limits(struct virtio_net *net, const struct rate_limit_params *rx,
				const struct rate_limit_params *tx)
{
	bool rx_changed = rate_limiter_update(&net->rx_limiter, rx);
	bool tx_changed = rate_limiter_update(&net->tx_limiter, tx);

	/* A frame or queue waiting for the old limits goes now. */
	if (rx_changed)
		rx_limiter_ready(net);
	if (tx_changed)
		tx_limiter_ready(net);
}

int virtio_net_poll_fd(struct virtio_net *net)
{
	return net->poll_fd;
}

void virtio_net_get_stats(struct virtio_net *net, struct virtio_net_stats *out)
{
	const uint64_t *src = (const uint64_t *)&net->stats;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	out->rx_throttled = rate_limiter_throttled(&net->rx_limiter);
	out->tx_throttled = rate_limiter_throttled(&net->tx_limiter);
}

const uint8_t *virtio_net_mac(struct virtio_net *net)
{
	return net->config.mac;
}

const char *virtio_net_tap_name(struct virtio_net *net)
{
	return net->tap.name;
}
