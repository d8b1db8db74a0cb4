/* The virtio device model (virtio 1.2 §2, §3), independent of the
 * transport: feature negotiation, the device status state machine, reset,
 * DEVICE_NEEDS_RESET, the configuration generation, and the queues.
 *
 * A device type (virtio-rng, later blk, net, balloon) is a struct
 * virtio_device_ops plus its own state (the opaque). A transport
 * (virtio/pci.c) exposes a struct virtio_dev to the guest and delivers its
 * interrupts through struct virtio_transport.
 *
 * Threads and locking. Each virtio_dev has one mutex, the device lock:
 *   - the transport takes it around every guest access to the common and
 *     device configuration (vCPU threads);
 *   - the worker takes it around each queue_ready call (virtio/worker.c),
 *     so a reset (status 0 from a vCPU) waits until the device is out of
 *     its queue handler and then finds the queues idle;
 *   - every virtio_device_ops callback runs with it held; callbacks must
 *     not take it again. Another thread of the device (e.g. a host-side
 *     event for balloon) takes it with virtio_dev_lock().
 * The functions marked "any thread" take no lock: the notifications, the
 * status bit DEVICE_NEEDS_RESET and the kick are atomics and eventfds.
 */
#ifndef POPEK_VIRTIO_VIRTIO_H
#define POPEK_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/queue.h"
#include "vmm/memory.h"

/* Device status (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE   0x01
#define VIRTIO_STATUS_DRIVER        0x02
#define VIRTIO_STATUS_DRIVER_OK     0x04
#define VIRTIO_STATUS_FEATURES_OK   0x08
#define VIRTIO_STATUS_NEEDS_RESET   0x40
#define VIRTIO_STATUS_FAILED        0x80

/* Reserved feature bits (§6). Device types use bits 0-23 (and 50-127). */
#define VIRTIO_F_RING_INDIRECT_DESC 28
#define VIRTIO_F_RING_EVENT_IDX     29
#define VIRTIO_F_VERSION_1          32
#define VIRTIO_F_ACCESS_PLATFORM    33
#define VIRTIO_F_RING_PACKED        34

/* Feature bits the core adds to every device's offer. */
#define VIRTIO_CORE_FEATURES ((1ULL << VIRTIO_F_VERSION_1) | \
			      (1ULL << VIRTIO_F_RING_EVENT_IDX) | \
			      (1ULL << VIRTIO_F_RING_INDIRECT_DESC))

/* Device IDs (§5). */
#define VIRTIO_ID_NET       1
#define VIRTIO_ID_BLOCK     2
#define VIRTIO_ID_CONSOLE   3
#define VIRTIO_ID_RNG       4
#define VIRTIO_ID_BALLOON   5

#define VIRTIO_MAX_QUEUES   64

struct virtio_dev;

/* What a device type provides. All callbacks run with the device lock
 * held; any may be NULL. */
struct virtio_device_ops {
	const char *name;          /* for log lines: "virtio-rng" */
	uint32_t device_id;        /* VIRTIO_ID_* */
	/* Device-type feature bits offered; the core adds
	 * VIRTIO_CORE_FEATURES. Bits the core does not implement (packed
	 * rings, ACCESS_PLATFORM...) must not be set here. */
	uint64_t features;
	unsigned nqueues;          /* 1..VIRTIO_MAX_QUEUES */
	uint16_t max_queue_size;   /* power of two, <= VIRTQ_MAX_SIZE */
	uint32_t config_size;      /* bytes of device configuration (§4.1.4.6) */

	/* Device configuration access: [offset, offset + len) lies inside
	 * config_size (the core checks); len is 1, 2, 4 or 8 (read may
	 * also see other sizes from the PCI cfg window). read fills data. */
	void (*read_config)(struct virtio_dev *d, uint32_t offset, void *data, uint32_t len);
	void (*write_config)(struct virtio_dev *d, uint32_t offset, const void *data, uint32_t len);
	/* The driver set FEATURES_OK with features (a subset of the offer,
	 * with VERSION_1): return false to refuse the combination (§3.1.1
	 * step 5: the device leaves FEATURES_OK clear). */
	bool (*features_ok)(struct virtio_dev *d, uint64_t features);
	/* DRIVER_OK: the device may start. Nonzero: it cannot (then
	 * DEVICE_NEEDS_RESET). */
	int (*activate)(struct virtio_dev *d);
	/* Queue q was kicked (or may have work): pop until virtq_pop()
	 * returns 0 or -EIO, push, then virtio_notify_queue(). To bound the
	 * time spent here, stop early and virtio_dev_kick() the queue to be
	 * called again. Runs on the worker thread, never on a vCPU. Not
	 * called before activate, nor after a reset or NEEDS_RESET. */
	void (*queue_ready)(struct virtio_dev *d, unsigned q);
	/* Device reset (status 0, §2.4): forget everything negotiated; the
	 * queues are already reset and no queue_ready is running. */
	void (*reset)(struct virtio_dev *d);
};

/* How a transport delivers the device's interrupts (any thread). */
struct virtio_transport {
	void (*notify_queue)(void *opaque, unsigned q);
	void (*notify_config)(void *opaque);
	void *opaque;
};

struct virtio_vq {
	struct virtq ring;
	struct virtio_dev *dev;
	unsigned index;
	int kick_fd;               /* eventfd: the driver's notifications */
};

struct virtio_dev {
	const struct virtio_device_ops *ops;
	void *opaque;              /* the device type's state */
	const struct guest_memory *mem;
	struct virtio_transport transport;
	pthread_mutex_t lock;

	/* Under the lock, except as noted. */
	uint8_t status;            /* atomic: NEEDS_RESET is set from any thread */
	uint8_t config_generation; /* atomic */
	bool active;               /* atomic: DRIVER_OK, not failed or needing reset */
	uint64_t offered;          /* ops->features | VIRTIO_CORE_FEATURES */
	uint64_t driver_features;  /* what the driver wrote */
	uint64_t features;         /* negotiated: valid once FEATURES_OK */
	unsigned nqueues;
	struct virtio_vq *vqs;
};

/* --- set-up (the transport) --- */

/* Allocates the queues and their kick eventfds. Returns 0 or -errno
 * (-EINVAL for inconsistent ops). */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_device_ops *ops, void *opaque,
		    const struct guest_memory *mem, const struct virtio_transport *transport);
void virtio_dev_destroy(struct virtio_dev *d);

void virtio_dev_lock(struct virtio_dev *d);
void virtio_dev_unlock(struct virtio_dev *d);

/* --- guest accesses (the transport, device lock held) --- */

/* 32 feature bits from window sel (§4.1.4.3: device_feature_select);
 * windows past the 64 bits read 0. */
uint32_t virtio_dev_device_features(struct virtio_dev *d, uint32_t sel);
uint32_t virtio_dev_driver_features(struct virtio_dev *d, uint32_t sel);
/* Ignored once FEATURES_OK is set and for windows past the 64 bits. */
void virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t sel, uint32_t value);

uint8_t virtio_dev_status(struct virtio_dev *d);
/* The driver writes device_status (§2.1, §3.1.1). 0 resets the device.
 * Otherwise bits may only be added (§2.1.1: the driver MUST NOT clear
 * any; such a write is ignored), NEEDS_RESET is the device's own bit
 * (kept, never taken from the driver), FEATURES_OK stays clear unless
 * the features are acceptable (only offered bits, VERSION_1 included,
 * ops->features_ok agrees), DRIVER_OK stays clear without FEATURES_OK,
 * and DRIVER_OK activates the device. Returns true when the write reset
 * the device (the transport then resets its own state: vectors, ISR). */
bool virtio_dev_set_status(struct virtio_dev *d, uint8_t status);

/* The queue's ring, for its configuration fields; NULL when q is out of
 * range. The transport writes size and addresses only while
 * virtio_dev_queue_writable(). */
struct virtq *virtio_dev_queue(struct virtio_dev *d, unsigned q);
/* Queue fields may be written: the queue is in range, not enabled, and
 * DRIVER_OK is not set (§4.1.4.3.2: the driver configures queues before). */
bool virtio_dev_queue_writable(struct virtio_dev *d, unsigned q);
/* queue_enable = 1: checks and maps the rings (virtq_enable); on failure
 * the device needs a reset. Returns 0 or -EINVAL. */
int virtio_dev_queue_enable(struct virtio_dev *d, unsigned q);

/* Device configuration. Accesses not entirely inside config_size read 0
 * and are dropped. */
void virtio_dev_read_config(struct virtio_dev *d, uint32_t offset, void *data, uint32_t len);
void virtio_dev_write_config(struct virtio_dev *d, uint32_t offset, const void *data, uint32_t len);
uint8_t virtio_dev_config_generation(struct virtio_dev *d);

/* --- the driver's notifications (any thread) --- */

/* The kick eventfd of queue q (-1 when out of range): the transport
 * binds it to the notify address with KVM_IOEVENTFD. */
int virtio_dev_kick_fd(struct virtio_dev *d, unsigned q);
/* A notification that did not go through ioeventfd (MMIO exit): signals
 * the same eventfd, so the work still happens on the worker. */
void virtio_dev_kick(struct virtio_dev *d, unsigned q);
/* The worker's side: drains q's eventfd and, if the device is active and
 * the queue enabled, calls queue_ready under the device lock; a queue the
 * driver broke then sets NEEDS_RESET. */
void virtio_dev_process_queue(struct virtio_dev *d, unsigned q);

/* --- for device types --- */

static inline void *virtio_dev_opaque(struct virtio_dev *d)
{
	return d->opaque;
}

/* The queue's ring (NULL when out of range or not enabled). */
struct virtq *virtio_dev_vq(struct virtio_dev *d, unsigned q);
/* Whether feature bit was negotiated. */
bool virtio_dev_has_feature(struct virtio_dev *d, unsigned bit);

/* Used-buffer notification for queue q if the driver wants one
 * (virtq_needs_notify). Any thread that owns the queue (the worker). */
void virtio_notify_queue(struct virtio_dev *d, unsigned q);
/* Configuration change notification (§2.5.1 / §4.1.5.3). Any thread. */
void virtio_notify_config(struct virtio_dev *d);
/* The device changed its configuration: bumps config_generation (§2.5.1,
 * §4.1.4.3 config_generation) and notifies. Any thread; call it after
 * the new values are in place. */
void virtio_config_changed(struct virtio_dev *d);
/* Something went wrong that only a reset can fix (§2.1.2): set
 * DEVICE_NEEDS_RESET, stop processing, and, if DRIVER_OK was set, send a
 * configuration change notification. Any thread; logs why once. */
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why);

#endif
