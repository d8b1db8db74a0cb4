/* Named counters grouped like Firecracker's metrics, written as one JSON
 * object per line (Firecracker: docs/metrics.md): {"utc_timestamp_ms": T,
 * "group": {"name": value, ...}, ...}.
 *
 * Counters report what happened since the previous line, as Firecracker's
 * SharedIncMetric does; gauges report their current value (its
 * SharedStoreMetric). Incrementing takes no lock and allocates nothing, so
 * vCPU exit paths may count. Lookups (metrics_counter) take a lock: do them
 * once, at set-up, and keep the pointer. */
#ifndef POPEK_API_METRICS_H
#define POPEK_API_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define METRICS_MAX_COUNTERS 512
#define METRICS_NAME_MAX     47
/* Firecracker flushes every 60 s on its own (METRICS_WRITE_INTERVAL). */
#define METRICS_FLUSH_INTERVAL_S 60

struct metrics;

struct metrics_counter {
	_Atomic uint64_t value;
	uint64_t reported;          /* value at the previous flush (under the flush lock) */
	bool gauge;
	char group[METRICS_NAME_MAX + 1];
	char name[METRICS_NAME_MAX + 1];
};

struct metrics *metrics_create(void);
/* Stops the periodic flush (writing one last line) and frees everything;
 * counter pointers die with it. */
void metrics_destroy(struct metrics *m);

/* The counter group.name, created at its first lookup (0 until counted).
 * NULL when the registry is full or a name is empty or too long: callers
 * may pass NULL to metrics_add/metrics_set, which then do nothing. */
struct metrics_counter *metrics_counter(struct metrics *m, const char *group, const char *name);
struct metrics_counter *metrics_gauge(struct metrics *m, const char *group, const char *name);

static inline void metrics_add(struct metrics_counter *c, uint64_t n)
{
	if (c)
		atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline void metrics_inc(struct metrics_counter *c)
{
	metrics_add(c, 1);
}

static inline void metrics_set(struct metrics_counter *c, uint64_t v)
{
	if (c)
		atomic_store_explicit(&c->value, v, memory_order_relaxed);
}

static inline uint64_t metrics_read(const struct metrics_counter *c)
{
	return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

/* Writes one line to fd (one write(2) when it fits) and starts the next
 * counting period. 0 or -errno. */
int metrics_flush(struct metrics *m, int fd);

/* The line metrics_flush would write, without starting a new period
 * (malloc'ed, with its '\n'). */
char *metrics_snapshot(struct metrics *m);

/* fn(opaque) is called before each line is made (periodic, flushes, the
 * last one), without the registry's lock: it may look up and count, to
 * bring counters kept elsewhere up to date. NULL: none. */
void metrics_set_refresh(struct metrics *m, void (*fn)(void *opaque), void *opaque);

/* Opens path (a file, appended to, or a named pipe) and flushes to it every
 * interval_s seconds from a thread of its own, and on metrics_flush_now.
 * Firecracker refuses a second initialisation; so does this (-EEXIST).
 * 0 or -errno. */
int metrics_start(struct metrics *m, const char *path, unsigned interval_s);
/* Flushes to the configured path now (FlushMetrics); 0 when none is
 * configured (Firecracker does nothing then either). */
int metrics_flush_now(struct metrics *m);

#endif
