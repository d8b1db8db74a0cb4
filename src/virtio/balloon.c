#include "virtio/balloon.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/worker.h"

#define F(bit) (1ULL << (bit))

/* PFNs copied out of guest memory at a time. */
#define PFN_CHUNK 256
/* PFNs one request may carry (a 4 MiB array; Linux sends at most 256,
 * VIRTIO_BALLOON_ARRAY_PFNS_MAX): bounds the work, and the time the
 * device lock is held, per request. The rest is ignored. */
#define MAX_PFNS_PER_REQUEST (1u << 20)
/* Statistics entries parsed per buffer (Linux sends 16 at most). */
#define MAX_STATS 64
/* At most one warning per this many seconds. */
#define WARN_INTERVAL 5

#define COUNT(b, field, v) __atomic_fetch_add(&(b)->counters.field, (v), __ATOMIC_RELAXED)

struct virtio_balloon {
	struct virtio_device_ops ops;
	const struct guest_memory *mem;
	struct virtio_dev *dev;
	int timer_fd;

	/* Shared with any thread; inside the device lock when both are
	 * taken (read_config and write_config run under it). */
	pthread_mutex_t lock;
	uint32_t num_pages, actual;
	unsigned stats_interval;
	bool have_stats;
	struct balloon_stats stats;

	/* The worker, under the device lock. */
	int advice;                /* MADV_DONTNEED or MADV_REMOVE */
	bool can_discard;          /* host pages are 4 KiB */
	struct virtq_req *req;
	struct virtq_req *stats_req;   /* the driver's stats buffer, when held */
	bool stats_held;
	struct log_ratelimit warn;

	struct balloon_counters counters;   /* atomics */
};

#define warn_limited(dev, ...) log_warn_ratelimited(&(dev)->warn, __VA_ARGS__)

/* --- inflate and deflate --- */

static bool pfn_is_ram(struct virtio_balloon *b, uint32_t pfn)
{
	/* 32-bit PFNs: the address fits in 44 bits, no overflow. */
	return guest_memory_ptr(b->mem, (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT,
				VIRTIO_BALLOON_PAGE_SIZE) != NULL;
}

/* Hands npages guest pages from pfn on back to the host. Each page was
 * checked to be RAM; adjacent pages are in one region (regions are
 * separated by the MMIO hole), so the host range is contiguous. */
static void discard(struct virtio_balloon *b, uint32_t pfn, uint64_t npages)
{
	uint64_t len = npages << VIRTIO_BALLOON_PFN_SHIFT;
	void *p;

	if (!npages || !b->can_discard)
		return;
	p = guest_memory_ptr(b->mem, (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT, len);
	if (!p)
		return;
	COUNT(b, discard_calls, 1);
	/* Private anonymous memory: MADV_DONTNEED frees the pages now and
	 * later accesses fault in zeroes (KVM's MMU notifier drops the
	 * guest's mappings first). On a shared mapping it would only unmap
	 * them: MADV_REMOVE frees the backing store. */
	if (madvise(p, len, b->advice) == 0) {
		COUNT(b, discarded_pages, npages);
		return;
	}
	if (b->advice == MADV_REMOVE && (errno == EINVAL || errno == EOPNOTSUPP)) {
		pr_warn("virtio-balloon: MADV_REMOVE: %s; using MADV_DONTNEED", strerror(errno));
		b->advice = MADV_DONTNEED;
		if (madvise(p, len, b->advice) == 0) {
			COUNT(b, discarded_pages, npages);
			return;
		}
	}
	warn_limited(b, "madvise of %llu pages at PFN %#x: %s", (unsigned long long)npages, pfn,
		     strerror(errno));
}

/* One inflate or deflate request: an array of le32 PFNs (§5.5.6). */
static void pages_request(struct virtio_balloon *b, const struct virtq_req *req, bool inflate)
{
	uint32_t pfns[PFN_CHUNK];
	uint64_t total = req->read_len / sizeof(uint32_t), done = 0, run_len = 0;
	uint32_t run_start = 0;

	if (req->read_len % sizeof(uint32_t))
		warn_limited(b, "%s request of %llu bytes, not a multiple of 4: the tail is ignored",
			     inflate ? "inflate" : "deflate", (unsigned long long)req->read_len);
	if (total > MAX_PFNS_PER_REQUEST) {
		warn_limited(b, "%s request of %llu pages: only the first %u are used",
			     inflate ? "inflate" : "deflate", (unsigned long long)total,
			     MAX_PFNS_PER_REQUEST);
		total = MAX_PFNS_PER_REQUEST;
	}
	while (done < total) {
		size_t n = total - done < PFN_CHUNK ? (size_t)(total - done) : PFN_CHUNK;

		/* Copied first: the guest may rewrite the array, or the
		 * array may sit in a page being discarded. */
		virtq_req_read(req, done * sizeof(uint32_t), pfns, n * sizeof(uint32_t));
		for (size_t i = 0; i < n; i++) {
			uint32_t pfn = le32toh(pfns[i]);

			if (!pfn_is_ram(b, pfn)) {
				COUNT(b, bad_pfns, 1);
				warn_limited(b, "%s: PFN %#x is not guest RAM; skipped",
					     inflate ? "inflate" : "deflate", pfn);
				continue;
			}
			if (!inflate)
				continue;
			/* Batch runs of adjacent pages into one madvise,
			 * ascending or descending (Linux's balloon takes
			 * pages one by one from the page allocator, which
			 * hands out a split block from its top down). */
			if (run_len && (uint64_t)pfn == run_start + run_len) {
				run_len++;
				continue;
			}
			if (run_len && pfn + 1ULL == run_start) {
				run_start = pfn;
				run_len++;
				continue;
			}
			discard(b, run_start, run_len);
			run_start = pfn;
			run_len = 1;
		}
		done += n;
	}
	discard(b, run_start, run_len);
	if (inflate)
		COUNT(b, inflated_pages, total);
	else
		COUNT(b, deflated_pages, total);
}

static void pages_queue(struct virtio_balloon *b, struct virtio_dev *d, unsigned q)
{
	struct virtq *vq = virtio_dev_vq(d, q);
	unsigned budget;
	bool pushed = false;

	if (!vq)
		return;
	budget = vq->size;
	while (virtq_pop(vq, b->req) > 0) {
		/* Deflate needs nothing from the host: the pages refault
		 * (zeroed) when the guest touches them (MUST_TELL_HOST is
		 * not offered, §5.5.6). */
		pages_request(b, b->req, q == VIRTIO_BALLOON_INFLATEQ);
		/* §5.5.6: the device acknowledges by using the buffer;
		 * nothing is written. */
		virtq_push(vq, b->req, 0);
		pushed = true;
		if (--budget == 0) {
			virtio_dev_kick(d, q);
			break;
		}
	}
	if (pushed)
		virtio_notify_queue(d, q);
}

/* --- statistics --- */

static void stat_set(struct balloon_stats *s, unsigned tag, uint64_t v)
{
	static const size_t offsets[VIRTIO_BALLOON_S_NR] = {
		[VIRTIO_BALLOON_S_SWAP_IN] = offsetof(struct balloon_stats, swap_in),
		[VIRTIO_BALLOON_S_SWAP_OUT] = offsetof(struct balloon_stats, swap_out),
		[VIRTIO_BALLOON_S_MAJFLT] = offsetof(struct balloon_stats, major_faults),
		[VIRTIO_BALLOON_S_MINFLT] = offsetof(struct balloon_stats, minor_faults),
		[VIRTIO_BALLOON_S_MEMFREE] = offsetof(struct balloon_stats, free_memory),
		[VIRTIO_BALLOON_S_MEMTOT] = offsetof(struct balloon_stats, total_memory),
		[VIRTIO_BALLOON_S_AVAIL] = offsetof(struct balloon_stats, available_memory),
		[VIRTIO_BALLOON_S_CACHES] = offsetof(struct balloon_stats, disk_caches),
		[VIRTIO_BALLOON_S_HTLB_PGALLOC] = offsetof(struct balloon_stats, hugetlb_allocations),
		[VIRTIO_BALLOON_S_HTLB_PGFAIL] = offsetof(struct balloon_stats, hugetlb_failures),
		[VIRTIO_BALLOON_S_OOM_KILL] = offsetof(struct balloon_stats, oom_kills),
		[VIRTIO_BALLOON_S_ALLOC_STALL] = offsetof(struct balloon_stats, alloc_stalls),
		[VIRTIO_BALLOON_S_ASYNC_SCAN] = offsetof(struct balloon_stats, async_scans),
		[VIRTIO_BALLOON_S_DIRECT_SCAN] = offsetof(struct balloon_stats, direct_scans),
		[VIRTIO_BALLOON_S_ASYNC_RECLAIM] = offsetof(struct balloon_stats, async_reclaims),
		[VIRTIO_BALLOON_S_DIRECT_RECLAIM] = offsetof(struct balloon_stats, direct_reclaims),
	};

	/* §5.5.6.3.2: the device MUST ignore tags it does not recognise. */
	if (tag >= VIRTIO_BALLOON_S_NR)
		return;
	memcpy((uint8_t *)s + offsets[tag], &v, sizeof(v));
	s->present |= 1u << tag;
}

static void stats_parse(struct virtio_balloon *b, const struct virtq_req *req)
{
	struct balloon_stats s = { 0 };
	uint64_t n = req->read_len / VIRTIO_BALLOON_STAT_SIZE;
	struct timespec now;

	/* An array of 10-byte entries in any order (§5.5.6.3.2); a tail
	 * shorter than an entry is ignored. */
	if (n > MAX_STATS)
		n = MAX_STATS;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t raw[VIRTIO_BALLOON_STAT_SIZE];
		uint16_t tag;
		uint64_t val;

		virtq_req_read(req, i * VIRTIO_BALLOON_STAT_SIZE, raw, sizeof(raw));
		memcpy(&tag, raw, sizeof(tag));
		memcpy(&val, raw + 2, sizeof(val));
		stat_set(&s, le16toh(tag), le64toh(val));
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	s.updated_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	pthread_mutex_lock(&b->lock);
	s.updates = b->stats.updates + 1;
	b->stats = s;
	b->have_stats = true;
	pthread_mutex_unlock(&b->lock);
}

static void stats_queue(struct virtio_balloon *b, struct virtio_dev *d)
{
	struct virtq *vq = virtio_dev_vq(d, VIRTIO_BALLOON_STATSQ);
	bool pushed = false;

	if (!vq)
		return;
	while (virtq_pop(vq, b->req) > 0) {
		struct virtq_req *t;

		stats_parse(b, b->req);
		if (b->stats_held) {
			/* §5.5.6.3.1: at most one buffer at a time. Give
			 * the older one back rather than keep it forever. */
			warn_limited(b, "driver made a second statistics buffer available");
			virtq_push(vq, b->stats_req, 0);
			pushed = true;
		}
		/* §5.5.6.3: the device keeps the buffer to make the next
		 * request with. */
		t = b->stats_req;
		b->stats_req = b->req;
		b->req = t;
		b->stats_held = true;
	}
	if (pushed)
		virtio_notify_queue(d, VIRTIO_BALLOON_STATSQ);
}

/* A statistics request (§5.5.6.3 step 1): use the held buffer. */
static void stats_request(struct virtio_balloon *b, struct virtio_dev *d)
{
	struct virtq *vq = virtio_dev_vq(d, VIRTIO_BALLOON_STATSQ);

	if (!__atomic_load_n(&d->active, __ATOMIC_ACQUIRE) || !vq || vq->broken || !b->stats_held)
		return;
	virtq_push(vq, b->stats_req, 0);
	b->stats_held = false;
	virtio_notify_queue(d, VIRTIO_BALLOON_STATSQ);
}

void virtio_balloon_timer_event(void *opaque)
{
	struct virtio_balloon *b = opaque;
	uint64_t ticks;

	/* Level-triggered: consume the expiration count. */
	if (read(b->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		pr_debug("virtio-balloon: timerfd: %s", strerror(errno));
	if (!b->dev)
		return;
	virtio_dev_lock(b->dev);
	stats_request(b, b->dev);
	virtio_dev_unlock(b->dev);
}

/* --- device type --- */

static void balloon_queue_ready(struct virtio_dev *d, unsigned q)
{
	struct virtio_balloon *b = virtio_dev_opaque(d);

	if (q == VIRTIO_BALLOON_STATSQ)
		stats_queue(b, d);
	else
		pages_queue(b, d, q);
}

static void balloon_read_config(struct virtio_dev *d, uint32_t offset, void *data, uint32_t len)
{
	struct virtio_balloon *b = virtio_dev_opaque(d);
	struct virtio_balloon_config c;

	pthread_mutex_lock(&b->lock);
	c.num_pages = htole32(b->num_pages);
	c.actual = htole32(b->actual);
	pthread_mutex_unlock(&b->lock);
	memcpy(data, (const uint8_t *)&c + offset, len);
}

static void balloon_write_config(struct virtio_dev *d, uint32_t offset, const void *data, uint32_t len)
{
	struct virtio_balloon *b = virtio_dev_opaque(d);
	struct virtio_balloon_config c;
	uint32_t old;

	/* Only actual is the driver's (§5.5.6: it updates it after
	 * inflating or deflating); bytes written over num_pages are
	 * dropped. Byte writes land in place, so a driver updating actual
	 * a byte at a time ends with the right value. */
	pthread_mutex_lock(&b->lock);
	c.num_pages = htole32(b->num_pages);
	c.actual = htole32(b->actual);
	memcpy((uint8_t *)&c + offset, data, len);
	old = b->actual;
	b->actual = le32toh(c.actual);
	pthread_mutex_unlock(&b->lock);
	if (old != le32toh(c.actual))
		pr_debug("virtio-balloon: actual %u pages", le32toh(c.actual));
}

static void balloon_reset(struct virtio_dev *d)
{
	struct virtio_balloon *b = virtio_dev_opaque(d);

	/* The queues are gone, and with them the stats buffer. The next
	 * driver starts with an empty balloon; the target stays. */
	b->stats_held = false;
	pthread_mutex_lock(&b->lock);
	b->actual = 0;
	pthread_mutex_unlock(&b->lock);
}

static const struct virtio_device_ops balloon_ops_template = {
	.name = "virtio-balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.nqueues = 3,
	.max_queue_size = VIRTIO_BALLOON_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_balloon_config),
	.read_config = balloon_read_config,
	.write_config = balloon_write_config,
	.queue_ready = balloon_queue_ready,
	.reset = balloon_reset,
};

struct virtio_balloon *virtio_balloon_create(const struct guest_memory *mem,
					     const struct balloon_params *cfg,
					     char *err, size_t errlen)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));

	if (!b) {
		snprintf(err, errlen, "virtio-balloon: out of memory");
		return NULL;
	}
	b->warn = (struct log_ratelimit){ .prefix = "virtio-balloon", .interval_s = WARN_INTERVAL };
	b->mem = mem;
	b->timer_fd = -1;
	pthread_mutex_init(&b->lock, NULL);
	b->ops = balloon_ops_template;
	b->ops.features = F(VIRTIO_BALLOON_F_STATS_VQ);
	if (cfg->deflate_on_oom)
		b->ops.features |= F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	b->advice = cfg->shared_memory ? MADV_REMOVE : MADV_DONTNEED;
	/* A PFN names a 4 KiB page (§5.5.6); on a host with larger pages
	 * one could not be discarded alone. x86 hosts have 4 KiB. */
	b->can_discard = sysconf(_SC_PAGESIZE) == VIRTIO_BALLOON_PAGE_SIZE;
	if (!b->can_discard)
		pr_warn("virtio-balloon: host pages are not 4 KiB: inflated pages are not freed");
	b->req = malloc(sizeof(*b->req));
	b->stats_req = malloc(sizeof(*b->stats_req));
	if (!b->req || !b->stats_req) {
		snprintf(err, errlen, "virtio-balloon: out of memory");
		goto fail;
	}
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->timer_fd < 0) {
		snprintf(err, errlen, "virtio-balloon: timerfd_create: %s", strerror(errno));
		goto fail;
	}
	if (virtio_balloon_set_target(b, cfg->target)) {
		snprintf(err, errlen, "--balloon: target %llu bytes exceeds guest RAM (%llu bytes)",
			 (unsigned long long)cfg->target, (unsigned long long)mem->ram_size);
		goto fail;
	}
	if (virtio_balloon_set_stats_interval(b, cfg->stats_interval)) {
		snprintf(err, errlen, "virtio-balloon: timerfd_settime: %s", strerror(errno));
		goto fail;
	}
	return b;
fail:
	virtio_balloon_destroy(b);
	return NULL;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b->req);
	free(b->stats_req);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

const struct virtio_device_ops *virtio_balloon_ops(struct virtio_balloon *b)
{
	return &b->ops;
}

int virtio_balloon_attach(struct virtio_balloon *b, struct virtio_dev *d,
			  struct virtio_worker *w, char *err, size_t errlen)
{
	int ret;

	b->dev = d;
	if (!w)
		return 0;
	ret = virtio_worker_watch(w, b->timer_fd, virtio_balloon_timer_event, b);
	if (ret)
		snprintf(err, errlen, "virtio-balloon: watching the stats timer: %s", strerror(-ret));
	return ret;
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes)
{
	uint64_t pages = bytes >> VIRTIO_BALLOON_PFN_SHIFT;
	bool changed;

	/* num_pages is a le32 (§5.5.4); guest RAM bounds it well below. */
	if (bytes > b->mem->ram_size || pages > UINT32_MAX)
		return -ERANGE;
	pthread_mutex_lock(&b->lock);
	changed = b->num_pages != pages;
	b->num_pages = (uint32_t)pages;
	pthread_mutex_unlock(&b->lock);
	/* §5.5.6: the driver looks at num_pages on a configuration change
	 * notification. The new value is in place before the interrupt. */
	if (changed && b->dev)
		virtio_config_changed(b->dev);
	return 0;
}

uint64_t virtio_balloon_target(struct virtio_balloon *b)
{
	uint64_t v;

	pthread_mutex_lock(&b->lock);
	v = (uint64_t)b->num_pages << VIRTIO_BALLOON_PFN_SHIFT;
	pthread_mutex_unlock(&b->lock);
	return v;
}

uint64_t virtio_balloon_actual(struct virtio_balloon *b)
{
	uint64_t v;

	pthread_mutex_lock(&b->lock);
	v = (uint64_t)b->actual << VIRTIO_BALLOON_PFN_SHIFT;
	pthread_mutex_unlock(&b->lock);
	return v;
}

int virtio_balloon_stats(struct virtio_balloon *b, struct balloon_stats *out)
{
	int ret = 0;

	pthread_mutex_lock(&b->lock);
	if (b->have_stats)
		*out = b->stats;
	else
		ret = -ENODATA;
	pthread_mutex_unlock(&b->lock);
	return ret;
}

void virtio_balloon_counters(struct virtio_balloon *b, struct balloon_counters *out)
{
	const uint64_t *src = (const uint64_t *)&b->counters;
	uint64_t *dst = (uint64_t *)out;

	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

int virtio_balloon_set_stats_interval(struct virtio_balloon *b, unsigned seconds)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = seconds },
		.it_value = { .tv_sec = seconds },   /* 0 disarms */
	};

	if (timerfd_settime(b->timer_fd, 0, &its, NULL) < 0)
		return -errno;
	pthread_mutex_lock(&b->lock);
	b->stats_interval = seconds;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

int virtio_balloon_timer_fd(struct virtio_balloon *b)
{
	return b->timer_fd;
}
