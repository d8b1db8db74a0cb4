#include "virtio/rate_limiter.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define NS_PER_MS 1000000ULL

static bool bucket_limits(const struct token_bucket *b)
{
	return b->p.size && b->p.refill_time_ms;
}

static void bucket_reset(struct token_bucket *b, const struct token_bucket_params *p)
{
	b->p = *p;
	/* A bucket larger than INT64_MAX tokens limits nothing real, and a
	 * refill time past UINT64_MAX ns (584 years; the API takes up to
	 * 2^63 ms) must not wrap refill_ns() to 0, a division by zero. */
	if (b->p.size > INT64_MAX)
		b->p.size = INT64_MAX;
	if (b->p.refill_time_ms > UINT64_MAX / NS_PER_MS)
		b->p.refill_time_ms = UINT64_MAX / NS_PER_MS;
	b->budget = (int64_t)b->p.size;
	b->burst = p->one_time_burst;
	b->last_ns = 0;
}

static uint64_t refill_ns(const struct token_bucket *b)
{
	return b->p.refill_time_ms * NS_PER_MS;
}

/* Adds the tokens earned since last_ns: size per refill_time. The time
 * that earned the tokens added is what last_ns moves by, so fractions of
 * a token are not lost between calls. */
static void bucket_refill(struct token_bucket *b, uint64_t now)
{
	unsigned __int128 earned;
	uint64_t elapsed;

	if (b->last_ns == 0 || now < b->last_ns) {
		b->last_ns = now;
		return;
	}
	elapsed = now - b->last_ns;
	earned = (unsigned __int128)elapsed * b->p.size / refill_ns(b);
	if (earned >= (unsigned __int128)((__int128)b->p.size - b->budget)) {
		b->budget = (int64_t)b->p.size;
		b->last_ns = now;
		return;
	}
	b->budget += (int64_t)earned;
	b->last_ns += (uint64_t)(earned * refill_ns(b) / b->p.size);
}

/* The refillable tokens a request of t needs: all of them, or, for one
 * larger than the bucket, a full bucket. */
static int64_t bucket_needs(const struct token_bucket *b, uint64_t t)
{
	uint64_t from_burst = t < b->burst ? t : b->burst;

	t -= from_burst;
	return (int64_t)(t < b->p.size ? t : b->p.size);
}

static bool bucket_fits(const struct token_bucket *b, uint64_t t)
{
	return !bucket_limits(b) || t == 0 || b->budget >= bucket_needs(b, t);
}

static uint64_t bucket_wait(const struct token_bucket *b, uint64_t t)
{
	unsigned __int128 missing = (unsigned __int128)((__int128)bucket_needs(b, t) - b->budget);
	unsigned __int128 ns = (missing * refill_ns(b) + b->p.size - 1) / b->p.size;

	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

static void bucket_take(struct token_bucket *b, uint64_t t)
{
	uint64_t from_burst;

	if (!bucket_limits(b))
		return;
	from_burst = t < b->burst ? t : b->burst;
	b->burst -= from_burst;
	t -= from_burst;
	/* Past the bucket's size only when it was full: the debt is at most
	 * t - size, which fits (size, t < 2^63 in practice; clamp anyway). */
	if (t > (uint64_t)INT64_MAX)
		t = INT64_MAX;
	if (b->budget < INT64_MIN + (int64_t)t)
		b->budget = INT64_MIN;
	else
		b->budget -= (int64_t)t;
}

static bool consume_locked(struct rate_limiter *rl, uint64_t bytes, uint64_t now, uint64_t *wait)
{
	struct { struct token_bucket *b; uint64_t t; } need[2] = {
		{ &rl->bandwidth, bytes }, { &rl->ops, 1 },
	};
	bool ok = true;

	*wait = 0;
	for (unsigned i = 0; i < 2; i++) {
		if (!bucket_limits(need[i].b))
			continue;
		bucket_refill(need[i].b, now);
		if (!bucket_fits(need[i].b, need[i].t)) {
			uint64_t w = bucket_wait(need[i].b, need[i].t);

			ok = false;
			if (w > *wait)
				*wait = w;
		}
	}
	if (!ok)
		return false;
	/* Both or neither: a request refused for want of ops keeps its
	 * bytes. */
	for (unsigned i = 0; i < 2; i++)
		bucket_take(need[i].b, need[i].t);
	return true;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int rate_limiter_init(struct rate_limiter *rl)
{
	static const struct token_bucket_params none;

	memset(rl, 0, sizeof(*rl));
	rl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (rl->timer_fd < 0)
		return -errno;
	pthread_mutex_init(&rl->lock, NULL);
	bucket_reset(&rl->bandwidth, &none);
	bucket_reset(&rl->ops, &none);
	return 0;
}

void rate_limiter_destroy(struct rate_limiter *rl)
{
	if (rl->timer_fd < 0)
		return;
	close(rl->timer_fd);
	rl->timer_fd = -1;
	pthread_mutex_destroy(&rl->lock);
}

static void disarm(struct rate_limiter *rl)
{
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };
	uint64_t n;

	timerfd_settime(rl->timer_fd, 0, &off, NULL);
	/* An expiry already counted would wake the worker once more: harmless,
	 * but drain it so the fd's state matches blocked. */
	if (read(rl->timer_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pr_debug("rate limiter: reading the timerfd: %s", strerror(errno));
	rl->blocked = false;
}

bool rate_limiter_update(struct rate_limiter *rl, const struct rate_limit_params *p)
{
	static const struct rate_limit_params none;

	if (!p)
		p = &none;
	pthread_mutex_lock(&rl->lock);
	if (!memcmp(&rl->bandwidth.p, &p->bandwidth, sizeof(p->bandwidth)) &&
	    !memcmp(&rl->ops.p, &p->ops, sizeof(p->ops))) {
		pthread_mutex_unlock(&rl->lock);
		return false;
	}
	bucket_reset(&rl->bandwidth, &p->bandwidth);
	bucket_reset(&rl->ops, &p->ops);
	__atomic_store_n(&rl->limited, bucket_limits(&rl->bandwidth) || bucket_limits(&rl->ops),
			 __ATOMIC_RELAXED);
	disarm(rl);
	pthread_mutex_unlock(&rl->lock);
	return true;
}

bool rate_limiter_consume_at(struct rate_limiter *rl, uint64_t bytes, uint64_t now,
			     uint64_t *wait_ns)
{
	bool ok;

	pthread_mutex_lock(&rl->lock);
	ok = consume_locked(rl, bytes, now, wait_ns);
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

bool rate_limiter_consume(struct rate_limiter *rl, uint64_t bytes)
{
	struct itimerspec when = { { 0, 0 }, { 0, 0 } };
	uint64_t wait;
	bool ok;

	/* The common case, no limits, takes no lock: a stale read costs
	 * one request served under the old limits. */
	if (!__atomic_load_n(&rl->limited, __ATOMIC_RELAXED))
		return true;
	pthread_mutex_lock(&rl->lock);
	if (rl->blocked) {
		pthread_mutex_unlock(&rl->lock);
		return false;
	}
	ok = consume_locked(rl, bytes, now_ns(), &wait);
	if (!ok) {
		/* timerfd: a zero it_value would disarm it. */
		if (wait == 0)
			wait = 1;
		when.it_value.tv_sec = (time_t)(wait / 1000000000ULL);
		when.it_value.tv_nsec = (long)(wait % 1000000000ULL);
		if (timerfd_settime(rl->timer_fd, 0, &when, NULL)) {
			/* Cannot happen with a valid fd and value; rather than
			 * stall the queue for good, let the request through. */
			pr_warn("rate limiter: timerfd_settime: %s", strerror(errno));
			pthread_mutex_unlock(&rl->lock);
			return true;
		}
		rl->blocked = true;
		__atomic_fetch_add(&rl->throttled, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

void rate_limiter_timer_fired(struct rate_limiter *rl)
{
	uint64_t n;

	pthread_mutex_lock(&rl->lock);
	if (read(rl->timer_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pr_debug("rate limiter: reading the timerfd: %s", strerror(errno));
	rl->blocked = false;
	pthread_mutex_unlock(&rl->lock);
}
