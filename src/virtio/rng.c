#include "virtio/rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/log.h"
#include "virtio/worker.h"

static ssize_t fill_getrandom(void *buf, size_t len)
{
	/* Flags 0: the urandom pool, which blocks only until the host's
	 * pool is initialised, on the worker, never on a vCPU. */
	return getrandom(buf, len, 0);
}

struct virtio_rng *virtio_rng_create(void)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));

	if (!rng)
		return NULL;
	if (rate_limiter_init(&rng->limiter)) {
		free(rng);
		return NULL;
	}
	rng->fill = fill_getrandom;
	return rng;
}

void virtio_rng_destroy(struct virtio_rng *rng)
{
	if (!rng)
		return;
	rate_limiter_destroy(&rng->limiter);
	free(rng);
}

void virtio_rng_limiter_ready(struct virtio_rng *rng)
{
	rate_limiter_timer_fired(&rng->limiter);
	if (rng->dev)
		virtio_dev_kick(rng->dev, 0);
}

static void limiter_ready(void *opaque)
{
	virtio_rng_limiter_ready(opaque);
}

int virtio_rng_attach(struct virtio_rng *rng, struct virtio_dev *dev, struct virtio_worker *worker,
		      char *err, size_t errlen)
{
	int ret;

	rng->dev = dev;
	if (!worker)
		return 0;
	ret = virtio_worker_watch(worker, rate_limiter_fd(&rng->limiter), limiter_ready, rng);
	if (ret)
		snprintf(err, errlen, "virtio-rng: worker: %s", strerror(-ret));
	return ret;
}

/* Fills up to VIRTIO_RNG_MAX_REQUEST bytes of the writable buffers; returns
 * the bytes written. getrandom() may return fewer bytes than asked (a
 * signal, more than 256 bytes): what it gave is used. */
static uint32_t fill_request(struct virtio_rng *rng, struct virtq_req *req)
{
	struct iovec *iov = virtq_req_write_iov(req);
	uint32_t done = 0;

	for (unsigned i = 0; i < req->nwrite && done < VIRTIO_RNG_MAX_REQUEST; i++) {
		size_t want = iov[i].iov_len, got = 0;

		if (want > VIRTIO_RNG_MAX_REQUEST - done)
			want = VIRTIO_RNG_MAX_REQUEST - done;
		while (got < want) {
			ssize_t n = rng->fill((uint8_t *)iov[i].iov_base + got, want - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				atomic_fetch_add_explicit(&rng->fails, 1, memory_order_relaxed);
				pr_warn("virtio-rng: getrandom: %s", n < 0 ? strerror(errno) : "no bytes");
				return done + (uint32_t)got;
			}
			got += (size_t)n;
		}
		done += (uint32_t)got;
	}
	return done;
}

static void rng_queue_ready(struct virtio_dev *d, unsigned q)
{
	struct virtio_rng *rng = virtio_dev_opaque(d);
	struct virtq *vq = virtio_dev_vq(d, q);
	struct virtq_req *req;
	bool pushed = false;
	unsigned budget;

	if (!vq)
		return;
	/* A guest adding buffers as fast as we fill them would keep the
	 * worker (and the device lock) here for good: after a ring's worth,
	 * come back through the kick eventfd instead. */
	budget = vq->size;
	/* About 16 KiB: on the heap, not the worker's stack. */
	req = malloc(sizeof(*req));
	if (!req) {
		virtio_dev_needs_reset(d, "out of memory");
		return;
	}
	while (virtq_pop(vq, req) > 0) {
		uint64_t want = req->write_len < VIRTIO_RNG_MAX_REQUEST ? req->write_len :
					VIRTIO_RNG_MAX_REQUEST;

		if (!rate_limiter_consume(&rng->limiter, want)) {
			/* Back in the ring until the limiter's timer. */
			virtq_unpop(vq, 1);
			break;
		}
		/* §5.4.6: the driver MUST NOT place device-readable buffers;
		 * readable parts are ignored, and a request with no writable
		 * buffer is returned with length 0 rather than failing the
		 * device. */
		uint32_t n = req->nwrite ? fill_request(rng, req) : 0;

		virtq_push(vq, req, n);
		pushed = true;
		atomic_fetch_add_explicit(&rng->requests, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&rng->bytes, n, memory_order_relaxed);
		if (--budget == 0) {
			virtio_dev_kick(d, q);
			break;
		}
	}
	free(req);
	if (pushed)
		virtio_notify_queue(d, q);
}

const struct virtio_device_ops virtio_rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.features = 0,
	.nqueues = 1,
	.max_queue_size = VIRTIO_RNG_QUEUE_SIZE,
	.config_size = 0,
	.queue_ready = rng_queue_ready,
};
