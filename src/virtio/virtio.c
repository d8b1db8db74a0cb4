#include "virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

/* Bits a driver may write to device_status (§2.1): NEEDS_RESET is the
 * device's, 0x10 and 0x20 are reserved. */
#define DRIVER_STATUS_BITS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
			    VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FEATURES_OK | \
			    VIRTIO_STATUS_FAILED)

/* Feature bits 24-49 are reserved for the transport and the rings (§6):
 * only the core offers those it implements. */
#define TRANSPORT_FEATURE_BITS (((1ULL << 50) - 1) & ~((1ULL << 24) - 1))

/* A hostile driver can break and reset a device in a loop: warn about
 * the first few, then only at debug level. */
#define MAX_WARNINGS 8

static const char *dev_name(const struct virtio_dev *d)
{
	return d->ops->name ? d->ops->name : "virtio";
}

static void drain(int fd)
{
	uint64_t v;

	if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("virtio: reading a kick eventfd: %s", strerror(errno));
}

int virtio_dev_init(struct virtio_dev *d, const struct virtio_device_ops *ops, void *opaque,
		    const struct guest_memory *mem, const struct virtio_transport *transport)
{
	uint16_t qs = ops->max_queue_size;
	int ret;

	memset(d, 0, sizeof(*d));
	if (ops->nqueues == 0 || ops->nqueues > VIRTIO_MAX_QUEUES ||
	    qs == 0 || (qs & (qs - 1)) || qs > VIRTQ_MAX_SIZE ||
	    (ops->features & TRANSPORT_FEATURE_BITS))
		return -EINVAL;
	d->ops = ops;
	d->opaque = opaque;
	d->mem = mem;
	if (transport)
		d->transport = *transport;
	d->offered = ops->features | VIRTIO_CORE_FEATURES;
	d->nqueues = ops->nqueues;
	d->vqs = calloc(d->nqueues, sizeof(*d->vqs));
	if (!d->vqs)
		return -ENOMEM;
	for (unsigned i = 0; i < d->nqueues; i++)
		d->vqs[i].kick_fd = -1;
	for (unsigned i = 0; i < d->nqueues; i++) {
		struct virtio_vq *vq = &d->vqs[i];

		virtq_reset(&vq->ring, qs);
		vq->dev = d;
		vq->index = i;
		vq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vq->kick_fd < 0) {
			ret = -errno;
			virtio_dev_destroy(d);
			return ret;
		}
	}
	ret = pthread_mutex_init(&d->lock, NULL);
	if (ret) {
		virtio_dev_destroy(d);
		return -ret;
	}
	return 0;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (d->vqs) {
		for (unsigned i = 0; i < d->nqueues; i++)
			if (d->vqs[i].kick_fd >= 0)
				close(d->vqs[i].kick_fd);
		free(d->vqs);
		pthread_mutex_destroy(&d->lock);
	}
	memset(d, 0, sizeof(*d));
}

void virtio_dev_lock(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
}

void virtio_dev_unlock(struct virtio_dev *d)
{
	pthread_mutex_unlock(&d->lock);
}

uint32_t virtio_dev_device_features(struct virtio_dev *d, uint32_t sel)
{
	return sel < 2 ? (uint32_t)(d->offered >> (32 * sel)) : 0;
}

uint32_t virtio_dev_driver_features(struct virtio_dev *d, uint32_t sel)
{
	return sel < 2 ? (uint32_t)(d->driver_features >> (32 * sel)) : 0;
}

void virtio_dev_set_driver_features(struct virtio_dev *d, uint32_t sel, uint32_t value)
{
	uint64_t mask;

	/* §3.1.1: features are written before FEATURES_OK; after it the
	 * negotiated set is fixed until reset. */
	if (sel >= 2 || (virtio_dev_status(d) & VIRTIO_STATUS_FEATURES_OK))
		return;
	mask = 0xffffffffULL << (32 * sel);
	d->driver_features = (d->driver_features & ~mask) | ((uint64_t)value << (32 * sel));
}

uint8_t virtio_dev_status(struct virtio_dev *d)
{
	return __atomic_load_n(&d->status, __ATOMIC_ACQUIRE);
}

static void warn(struct virtio_dev *d, const char *fmt, const char *what)
{
	static unsigned warnings;   /* all devices: a bound on log volume */

	if (__atomic_fetch_add(&warnings, 1, __ATOMIC_RELAXED) < MAX_WARNINGS)
		pr_warn(fmt, dev_name(d), what);
	else
		pr_debug(fmt, dev_name(d), what);
}

static void reset(struct virtio_dev *d)
{
	/* The worker runs queue_ready under the lock we hold, so no queue
	 * is in use; a kick arriving now finds the device inactive. */
	__atomic_store_n(&d->active, false, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < d->nqueues; i++) {
		virtq_reset(&d->vqs[i].ring, d->ops->max_queue_size);
		drain(d->vqs[i].kick_fd);
	}
	if (d->ops->reset)
		d->ops->reset(d);
	d->driver_features = 0;
	d->features = 0;
	__atomic_store_n(&d->status, 0, __ATOMIC_RELEASE);
}

static bool features_acceptable(struct virtio_dev *d)
{
	uint64_t f = d->driver_features;

	/* §2.2.1: the driver MUST NOT accept a feature the device did not
	 * offer; §6.1: a modern device may refuse a driver without
	 * VERSION_1, and popek has no legacy interface. */
	if (f & ~d->offered)
		return false;
	if (!(f & (1ULL << VIRTIO_F_VERSION_1)))
		return false;
	return !d->ops->features_ok || d->ops->features_ok(d, f);
}

bool virtio_dev_set_status(struct virtio_dev *d, uint8_t value)
{
	uint8_t old = virtio_dev_status(d), added;
	int ret;

	if (value == 0) {
		reset(d);
		return true;
	}
	value &= DRIVER_STATUS_BITS;
	/* §2.1.1: the driver MUST NOT clear a status bit. */
	if (old & DRIVER_STATUS_BITS & ~value) {
		warn(d, "%s: %s", "driver cleared a status bit without reset; ignored");
		return false;
	}
	added = value & ~old;
	if (added & VIRTIO_STATUS_FEATURES_OK) {
		/* §3.1.1 step 5-6: a refused set leaves FEATURES_OK clear,
		 * which the driver reads back. */
		if (features_acceptable(d)) {
			d->features = d->driver_features;
		} else {
			added &= ~VIRTIO_STATUS_FEATURES_OK;
			pr_debug("%s: features %#llx refused", dev_name(d),
				 (unsigned long long)d->driver_features);
		}
	}
	if ((added & VIRTIO_STATUS_DRIVER_OK) &&
	    !((old | added) & VIRTIO_STATUS_FEATURES_OK)) {
		/* §3.1.1: DRIVER_OK follows FEATURES_OK. */
		added &= ~VIRTIO_STATUS_DRIVER_OK;
		warn(d, "%s: %s", "DRIVER_OK without FEATURES_OK; ignored");
	}
	/* Only adds bits, so it cannot undo a NEEDS_RESET set meanwhile. */
	old = __atomic_fetch_or(&d->status, added, __ATOMIC_ACQ_REL);

	if (added & VIRTIO_STATUS_FAILED)
		__atomic_store_n(&d->active, false, __ATOMIC_RELEASE);
	if ((added & VIRTIO_STATUS_DRIVER_OK) &&
	    !((old | added) & (VIRTIO_STATUS_FAILED | VIRTIO_STATUS_NEEDS_RESET))) {
		ret = d->ops->activate ? d->ops->activate(d) : 0;
		if (ret) {
			virtio_dev_needs_reset(d, "the device failed to activate");
			return false;
		}
		__atomic_store_n(&d->active, true, __ATOMIC_RELEASE);
		/* Look at every enabled queue once: buffers a driver made
		 * available before DRIVER_OK got no kick we acted on. */
		for (unsigned i = 0; i < d->nqueues; i++)
			if (d->vqs[i].ring.enabled)
				virtio_dev_kick(d, i);
	}
	return false;
}

struct virtq *virtio_dev_queue(struct virtio_dev *d, unsigned q)
{
	return q < d->nqueues ? &d->vqs[q].ring : NULL;
}

bool virtio_dev_queue_writable(struct virtio_dev *d, unsigned q)
{
	return q < d->nqueues && !d->vqs[q].ring.enabled &&
	       !(virtio_dev_status(d) & VIRTIO_STATUS_DRIVER_OK);
}

int virtio_dev_queue_enable(struct virtio_dev *d, unsigned q)
{
	struct virtq *ring;

	if (!virtio_dev_queue_writable(d, q))
		return 0;   /* already enabled, or too late: ignored */
	ring = &d->vqs[q].ring;
	if (!(virtio_dev_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
		/* §3.1.1 step 7 comes after FEATURES_OK: before it, which
		 * ring format (event index or not) would apply is unknown. */
		virtio_dev_needs_reset(d, "queue enabled before FEATURES_OK");
		return -EINVAL;
	}
	if (virtq_enable(ring, d->mem, d->features)) {
		virtio_dev_needs_reset(d, ring->error);
		return -EINVAL;
	}
	return 0;
}

void virtio_dev_read_config(struct virtio_dev *d, uint32_t offset, void *data, uint32_t len)
{
	memset(data, 0, len);
	if (offset > d->ops->config_size || len > d->ops->config_size - offset)
		return;
	if (d->ops->read_config)
		d->ops->read_config(d, offset, data, len);
}

void virtio_dev_write_config(struct virtio_dev *d, uint32_t offset, const void *data, uint32_t len)
{
	if (offset > d->ops->config_size || len > d->ops->config_size - offset)
		return;
	if (d->ops->write_config)
		d->ops->write_config(d, offset, data, len);
}

uint8_t virtio_dev_config_generation(struct virtio_dev *d)
{
	return __atomic_load_n(&d->config_generation, __ATOMIC_ACQUIRE);
}

int virtio_dev_kick_fd(struct virtio_dev *d, unsigned q)
{
	return q < d->nqueues ? d->vqs[q].kick_fd : -1;
}

void virtio_dev_kick(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;

	if (q >= d->nqueues)
		return;
	/* Fails only when the counter would overflow (EAGAIN): a kick is
	 * pending anyway. */
	if (write(d->vqs[q].kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug("%s: kick: %s", dev_name(d), strerror(errno));
}

void virtio_dev_process_queue(struct virtio_dev *d, unsigned q)
{
	struct virtq *ring;

	if (q >= d->nqueues)
		return;
	drain(d->vqs[q].kick_fd);
	ring = &d->vqs[q].ring;
	virtio_dev_lock(d);
	if (__atomic_load_n(&d->active, __ATOMIC_ACQUIRE) && ring->enabled && !ring->broken &&
	    d->ops->queue_ready)
		d->ops->queue_ready(d, q);
	if (ring->broken)
		virtio_dev_needs_reset(d, ring->error ? ring->error : "queue broken");
	virtio_dev_unlock(d);
}

struct virtq *virtio_dev_vq(struct virtio_dev *d, unsigned q)
{
	return q < d->nqueues && d->vqs[q].ring.enabled ? &d->vqs[q].ring : NULL;
}

bool virtio_dev_has_feature(struct virtio_dev *d, unsigned bit)
{
	return bit < 64 && (d->features & (1ULL << bit));
}

void virtio_notify_queue(struct virtio_dev *d, unsigned q)
{
	if (q >= d->nqueues || !virtq_needs_notify(&d->vqs[q].ring))
		return;
	if (d->transport.notify_queue)
		d->transport.notify_queue(d->transport.opaque, q);
}

void virtio_notify_config(struct virtio_dev *d)
{
	if (d->transport.notify_config)
		d->transport.notify_config(d->transport.opaque);
}

void virtio_config_changed(struct virtio_dev *d)
{
	__atomic_fetch_add(&d->config_generation, 1, __ATOMIC_ACQ_REL);
	virtio_notify_config(d);
}

void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	uint8_t old = __atomic_fetch_or(&d->status, VIRTIO_STATUS_NEEDS_RESET, __ATOMIC_ACQ_REL);

	__atomic_store_n(&d->active, false, __ATOMIC_RELEASE);
	if (old & VIRTIO_STATUS_NEEDS_RESET)
		return;
	warn(d, "%s: device needs reset: %s", why ? why : "error");
	/* §2.1.2: with DRIVER_OK set, the device MUST send a configuration
	 * change notification after setting DEVICE_NEEDS_RESET. */
	if (old & VIRTIO_STATUS_DRIVER_OK)
		virtio_notify_config(d);
}
