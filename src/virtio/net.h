/* virtio-net (virtio 1.2 §5.1) on a Linux tap device (virtio/tap.h).
 *
 * One receive queue (0) and one transmit queue (1), no control queue.
 * Offered: MAC, STATUS (link always up), MRG_RXBUF, CSUM and HOST_TSO4/6
 * and HOST_ECN (the tap takes partially checksummed and GSO frames), and
 * GUEST_CSUM/GUEST_TSO4/GUEST_TSO6/GUEST_ECN/GUEST_UFO and HOST_UFO as far
 * as the tap accepted the matching TUN_F_* offloads when probed. After
 * DRIVER_OK the tap is told (TUNSETOFFLOAD) which offloads the driver
 * accepted, so it only hands us frames the guest can take.
 *
 * Frames carry the 12-byte struct virtio_net_hdr both in the rings and on
 * the tap (IFF_VNET_HDR, TUNSETVNETHDRSZ 12), so transmit is a gather
 * write of the chain behind a checked copy of its header, and receive a
 * read into one host buffer, then a copy into one receive buffer, or
 * several with VIRTIO_NET_F_MRG_RXBUF (num_buffers set in the first).
 *
 * Threads: everything runs on the device's worker under the device lock:
 * queue kicks (virtio_dev_process_queue) and the tap's readability (an
 * epoll set of our own holding the tap, watched by the worker). When the
 * guest has no receive buffers, the tap is taken out of that set until
 * the guest adds some (its kick), so a full tap costs no CPU; the kernel
 * queues frames meanwhile and drops them only when its queue is full.
 *
 * Wiring (src/vmm/builder.c), after pci_attach():
 *
 *	struct virtio_net *net = virtio_net_create(&spec, err, errlen);
 *	struct virtio_pci *vp = net ? virtio_pci_create(vm, &bus, &routing,
 *			virtio_net_ops(net), net, err, errlen) : NULL;
 *	if (!vp || virtio_net_attach(net, virtio_pci_dev(vp), vp->worker, err, errlen))
 *		... error ...
 *
 * Teardown: virtio_pci_destroy(vp) (stops the worker), then
 * virtio_net_destroy(net).
 */
#ifndef POPEK_VIRTIO_NET_H
#define POPEK_VIRTIO_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/rate_limiter.h"
#include "virtio/tap.h"
#include "virtio/virtio.h"

struct virtio_worker;

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM           0
#define VIRTIO_NET_F_GUEST_CSUM     1
#define VIRTIO_NET_F_MTU            3
#define VIRTIO_NET_F_MAC            5
#define VIRTIO_NET_F_GUEST_TSO4     7
#define VIRTIO_NET_F_GUEST_TSO6     8
#define VIRTIO_NET_F_GUEST_ECN      9
#define VIRTIO_NET_F_GUEST_UFO      10
#define VIRTIO_NET_F_HOST_TSO4      11
#define VIRTIO_NET_F_HOST_TSO6      12
#define VIRTIO_NET_F_HOST_ECN       13
#define VIRTIO_NET_F_HOST_UFO       14
#define VIRTIO_NET_F_MRG_RXBUF      15
#define VIRTIO_NET_F_STATUS         16

/* status (§5.1.4). */
#define VIRTIO_NET_S_LINK_UP        1

/* struct virtio_net_hdr (§5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_F_RSC_INFO   4
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_UDP_L4   5
#define VIRTIO_NET_HDR_GSO_ECN      0x80

/* Little-endian, 12 bytes: num_buffers is always there with VERSION_1
 * (§5.1.6), which the core requires. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

#define VIRTIO_NET_HDR_LEN          12

/* The device configuration (§5.1.4) up to mtu (only valid with
 * VIRTIO_NET_F_MTU, which is not offered: reads 0). */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

#define VIRTIO_NET_RXQ              0
#define VIRTIO_NET_TXQ              1
#define VIRTIO_NET_QUEUE_SIZE       256

/* The largest frame (without the vnet header) either way: §5.1.6.3 puts
 * the largest incoming packet at 65589 bytes (Ethernet header, IPv6
 * header, 65535 bytes of IPv6 payload); 4 more for a VLAN tag. Longer
 * transmit chains are dropped, longer tap frames too. */
#define VIRTIO_NET_MAX_FRAME        (65589 + 4)

/* --net tap=NAME[,mac=xx:xx:xx:xx:xx:xx] */
struct net_spec {
	char tap[IFNAMSIZ];
	uint8_t mac[6];
	bool mac_given;            /* false: mac is the generated default */
	struct rate_limit_params rx_limit, tx_limit;  /* the API's; zero: none */
};

/* Parses the --net argument. Without mac=, mac is a locally administered
 * unicast address derived from the tap name (the same on every run).
 * Returns 0, or -EINVAL with err holding one line. */
int net_spec_parse(const char *arg, struct net_spec *spec, char *err, size_t errlen);

/* The default MAC for a tap name: 02:xx:xx:xx:xx:xx, a hash of the name. */
void net_default_mac(const char *tap, uint8_t mac[6]);

/* Counters (approximate when read while the device runs). */
struct virtio_net_stats {
	uint64_t tx_packets, tx_bytes;   /* frames written to the tap */
	uint64_t tx_dropped;             /* bad chains and headers */
	uint64_t tx_errors;              /* tap writes that failed */
	uint64_t rx_packets, rx_bytes;   /* frames given to the guest */
	uint64_t rx_dropped;             /* frames the guest could not take */
	uint64_t rx_errors;              /* tap reads that failed */
	uint64_t rx_wakeups;             /* tap readiness events handled */
	uint64_t rx_throttled, tx_throttled;  /* times a rate limiter made the queue wait */
};

struct virtio_net;

/* Opens the tap and builds the device. NULL with err set on failure. */
struct virtio_net *virtio_net_create(const struct net_spec *spec, char *err, size_t errlen);
/* The same on a tap already open (tests hand in a socket pair end with
 * a fake set_offload); takes ownership of tap->fd, also on failure. */
struct virtio_net *virtio_net_create_tap(const struct net_spec *spec, const struct tap *tap,
					 char *err, size_t errlen);
void virtio_net_destroy(struct virtio_net *net);

/* The device type for virtio_pci_create / virtio_dev_init: per device,
 * since the features offered depend on the tap. */
const struct virtio_device_ops *virtio_net_ops(struct virtio_net *net);

/* Ties the device to its virtio_dev and watches the tap on the worker
 * (w NULL: nobody watches; tests call virtio_net_tap_event). Returns 0 or
 * -errno with err set. */
int virtio_net_attach(struct virtio_net *net, struct virtio_dev *d, struct virtio_worker *w,
		      char *err, size_t errlen);

/* The worker's handler for the tap (opaque: the virtio_net), and the fd
 * it watches (readable while the tap has frames and the device wants
 * them). */
void virtio_net_tap_event(void *opaque);
int virtio_net_poll_fd(struct virtio_net *net);

/* Rate limits (NULL: none) for received and transmitted frames
 * (rate_limiter.h), at creation or at run time (PATCH
 * /network-interfaces); new limits start with full buckets, the same ones
 * again change nothing. Not from a device callback (takes the lock). */
void virtio_net_set_rate_limits(struct virtio_net *net, const struct rate_limit_params *rx,
				const struct rate_limit_params *tx);

void virtio_net_get_stats(struct virtio_net *net, struct virtio_net_stats *out);
const uint8_t *virtio_net_mac(struct virtio_net *net);
const char *virtio_net_tap_name(struct virtio_net *net);

#endif
