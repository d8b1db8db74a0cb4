/* virtio-rng, the entropy device (virtio 1.2 §5.4): one queue of
 * device-writable buffers the device fills with random bytes from the
 * host's getrandom(). No feature bits, no configuration space.
 *
 * Wiring: virtio_pci_create(vm, bus, routing, &virtio_rng_ops, rng, ...)
 * with rng from virtio_rng_create().
 */
#ifndef POPEK_VIRTIO_RNG_H
#define POPEK_VIRTIO_RNG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "virtio/rate_limiter.h"
#include "virtio/virtio.h"

/* Bytes one request gets at most: a guest asking for more is served this
 * much (§5.4.6.1 lets the device use less than the whole buffer), so one
 * request costs the worker a bounded amount of host entropy and time. */
#define VIRTIO_RNG_MAX_REQUEST  (64 * 1024)
#define VIRTIO_RNG_QUEUE_SIZE   256

struct virtio_rng {
	/* Where the bytes come from: getrandom() by default; tests swap it.
	 * Returns bytes written or -1 with errno, like getrandom(). */
	ssize_t (*fill)(void *buf, size_t len);
	/* Statistics: the worker adds, anyone reads (relaxed atomics). */
	_Atomic uint64_t requests, bytes, fails;   /* fails: getrandom() errors */
	/* Firecracker's entropy rate_limiter: bytes are what a request
	 * asks for (up to VIRTIO_RNG_MAX_REQUEST). */
	struct rate_limiter limiter;
	struct virtio_dev *dev;
};

struct virtio_worker;

extern const struct virtio_device_ops virtio_rng_ops;

struct virtio_rng *virtio_rng_create(void);
/* Ties the device to its virtio_dev and has worker watch the limiter's
 * timer (worker NULL: tests call virtio_rng_limiter_ready). 0 or -errno
 * with err set. */
int virtio_rng_attach(struct virtio_rng *rng, struct virtio_dev *dev, struct virtio_worker *worker,
		      char *err, size_t errlen);
void virtio_rng_limiter_ready(struct virtio_rng *rng);
void virtio_rng_destroy(struct virtio_rng *rng);

#endif
