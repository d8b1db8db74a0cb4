/* Token-bucket rate limiting for the virtio devices' queues, with
 * Firecracker's RateLimiter semantics (its API sets them): a bandwidth
 * bucket counts bytes, an ops bucket counts requests. A bucket holds at
 * most `size` tokens and refills from empty to full in refill_time_ms;
 * one_time_burst extra tokens are spent first and never come back. A
 * request larger than the bucket passes once the bucket is full and leaves
 * it in debt, so the long-run rate still holds.
 *
 * A device asks before it serves a request. When a bucket is short, the
 * request waits: the limiter arms a timerfd for the moment enough tokens
 * will be there, the device puts the request back (virtq_unpop) and stops,
 * and when the worker sees the timerfd readable it calls
 * rate_limiter_timer_fired() and the device tries again.
 *
 * Consumed on the device's worker, updated from the control thread (PATCH
 * /drives, /network-interfaces): a mutex keeps the two apart.
 */
#ifndef POPEK_VIRTIO_RATE_LIMITER_H
#define POPEK_VIRTIO_RATE_LIMITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* size 0 or refill_time_ms 0: this bucket does not limit. */
struct token_bucket_params {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

struct rate_limit_params {
	struct token_bucket_params bandwidth;   /* bytes */
	struct token_bucket_params ops;         /* requests */
};

struct token_bucket {
	struct token_bucket_params p;
	int64_t budget;             /* refillable tokens now; < 0: in debt */
	uint64_t burst;             /* one-time burst left */
	uint64_t last_ns;           /* when budget was last brought up to date; 0: not yet */
};

struct rate_limiter {
	pthread_mutex_t lock;
	struct token_bucket bandwidth, ops;
	int timer_fd;               /* readable when a blocked limiter may go on */
	bool limited;               /* a bucket limits (atomic: read unlocked) */
	bool blocked;
	uint64_t throttled;         /* waits: refusals that armed the timer (relaxed atomic) */
};

/* Unlimited until rate_limiter_update(). 0 or -errno (the timerfd). */
int rate_limiter_init(struct rate_limiter *rl);
void rate_limiter_destroy(struct rate_limiter *rl);

/* New limits (NULL: none). The buckets start full, as new ones, unless
 * the limits are the ones in force: then nothing changes. A limiter
 * waiting for its timer is released (the caller retries its queue).
 * Returns true if the limits changed. */
bool rate_limiter_update(struct rate_limiter *rl, const struct rate_limit_params *p);

/* May a request of `bytes` bytes go now? true: its tokens are taken.
 * false: nothing is taken, the timer is armed (or already was); retry
 * after rate_limiter_timer_fired(). */
bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes);

/* The same decision at time now_ns, without the timer: false sets
 * *wait_ns to how long until the request would fit. For tests, and
 * rate_limiter_consume's core. */
bool rate_limiter_consume_at(struct rate_limiter *rl, uint64_t bytes, uint64_t now_ns,
			     uint64_t *wait_ns);

/* The worker saw the timerfd readable: consumes it, unblocks. */
void rate_limiter_timer_fired(struct rate_limiter *rl);

static inline int rate_limiter_fd(const struct rate_limiter *rl)
{
	return rl->timer_fd;
}

static inline uint64_t rate_limiter_throttled(struct rate_limiter *rl)
{
	return __atomic_load_n(&rl->throttled, __ATOMIC_RELAXED);
}

#endif
