#include "vmm/vm_metrics.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/metrics.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* One statistic of the running boot and the registry counter it feeds. */
struct source {
	char group[METRICS_NAME_MAX + 1];
	char name[METRICS_NAME_MAX + 1];
	struct metrics_counter *counter;   /* NULL when the registry is full */
	uint64_t last;                     /* the statistic at the last update */
};

struct vm_metrics {
	struct metrics *registry;
	struct source *src;
	size_t n, cap;
	/* Updates visit the statistics in the same order every time: the
	 * source after the previous one is almost always the one wanted. */
	size_t cursor;
};

struct vm_metrics *vm_metrics_create(struct metrics *registry)
{
	struct vm_metrics *vmm = calloc(1, sizeof(*vmm));

	if (vmm)
		vmm->registry = registry;
	return vmm;
}

void vm_metrics_destroy(struct vm_metrics *vmm)
{
	if (!vmm)
		return;
	free(vmm->src);
	free(vmm);
}

static struct source *find(struct vm_metrics *vmm, const char *group, const char *name)
{
	struct source *s;

	for (size_t k = 0; k < vmm->n; k++) {
		size_t i = (vmm->cursor + k) % vmm->n;

		s = &vmm->src[i];
		if (!strcmp(s->name, name) && !strcmp(s->group, group)) {
			vmm->cursor = i + 1;
			return s;
		}
	}
	if (strlen(group) > METRICS_NAME_MAX || strlen(name) > METRICS_NAME_MAX)
		return NULL;
	if (vmm->n == vmm->cap) {
		size_t cap = vmm->cap ? vmm->cap * 2 : 64;
		struct source *p = realloc(vmm->src, cap * sizeof(*p));

		if (!p)
			return NULL;
		vmm->src = p;
		vmm->cap = cap;
	}
	s = &vmm->src[vmm->n++];
	memset(s, 0, sizeof(*s));
	strcpy(s->group, group);
	strcpy(s->name, name);
	s->counter = metrics_counter(vmm->registry, group, name);
	vmm->cursor = vmm->n;
	return s;
}

/* The statistic group.name of this boot is now value. */
static void count(struct vm_metrics *vmm, const char *group, const char *name, uint64_t value)
{
	struct source *s = find(vmm, group, name);

	if (!s)
		return;
	/* Statistics only grow within a boot; a smaller value is a fresh
	 * source (a device created again) and counts whole. */
	metrics_add(s->counter, value >= s->last ? value - s->last : value);
	s->last = value;
}

static void gauge(struct vm_metrics *vmm, const char *group, const char *name, uint64_t value)
{
	metrics_set(metrics_gauge(vmm->registry, group, name), value);
}

static void own_group(char *buf, size_t len, const char *prefix, const char *id, unsigned index)
{
	if (id && *id)
		snprintf(buf, len, "%s_%s", prefix, id);
	else
		snprintf(buf, len, "%s_%u", prefix, index);
}

static void update_vcpus(struct vm_metrics *vmm, const struct vm *vm)
{
	uint64_t total[VCPU_EXIT_KINDS] = { 0 }, exits = 0;
	char group[METRICS_NAME_MAX + 1], name[METRICS_NAME_MAX + 1];

	for (unsigned i = 0; i < vm->ncpus; i++) {
		const struct vcpu_stats *st = &vm->vcpus[i].stats;
		uint64_t n, sum = 0;

		snprintf(group, sizeof(group), "vcpu%u", i);
		for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
			n = vcpu_stat(st, k);
			total[k] += n;
			sum += n;
			/* Per vCPU, only the reasons that happened: 254 vCPUs
			 * times every reason would crowd the line. */
			if (n) {
				snprintf(name, sizeof(name), "exit_%s", vcpu_exit_kind_name(k));
				count(vmm, group, name, n);
			}
		}
		/* The sum of the reasons read, so the line adds up. */
		count(vmm, group, "exits", sum);
		exits += sum;
	}
	count(vmm, "vcpu", "exits", exits);
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++) {
		snprintf(name, sizeof(name), "exit_%s", vcpu_exit_kind_name(k));
		count(vmm, "vcpu", name, total[k]);
	}
}

/* A device statistic: its name in the metrics and where it is. */
struct field {
	const char *name;
	size_t offset;
};

/* Names after Firecracker's BlockDeviceMetrics where it has one. */
#define BLK(n, f) { n, offsetof(struct virtio_blk_stats, f) }
static const struct field blk_fields[] = {
	BLK("read_count", reads),          BLK("write_count", writes),
	BLK("flush_count", flushes),       BLK("discard_count", discards),
	BLK("write_zeroes_count", write_zeroes), BLK("get_id_count", get_ids),
	BLK("read_bytes", read_bytes),     BLK("write_bytes", write_bytes),
	BLK("io_errors", ioerr),           BLK("unsupported_count", unsupp),
	BLK("bounced_count", bounced),     BLK("rate_limiter_throttled_events", throttled),
};
_Static_assert(sizeof(((struct virtio_blk_stats *)0)->reads) == sizeof(uint64_t),
	       "blk statistics are read as 64-bit");

/* Firecracker's NetDeviceMetrics names. */
#define NET(n, f) { n, offsetof(struct virtio_net_stats, f) }
static const struct field net_fields[] = {
	NET("tx_packets_count", tx_packets), NET("tx_bytes_count", tx_bytes),
	NET("tx_malformed_frames", tx_dropped), NET("tap_write_fails", tx_errors),
	NET("rx_packets_count", rx_packets), NET("rx_bytes_count", rx_bytes),
	NET("rx_dropped", rx_dropped),       NET("tap_read_fails", rx_errors),
	NET("rx_tap_event_count", rx_wakeups),
	NET("rx_rate_limiter_throttled", rx_throttled), NET("tx_rate_limiter_throttled", tx_throttled),
};

#define BALLOON(n, f) { n, offsetof(struct balloon_counters, f) }
static const struct field balloon_fields[] = {
	BALLOON("inflated_pages", inflated_pages), BALLOON("deflated_pages", deflated_pages),
	BALLOON("discarded_pages", discarded_pages), BALLOON("discard_calls", discard_calls),
	BALLOON("bad_pfns", bad_pfns),
};

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

static uint64_t field_of(const void *stats, const struct field *f)
{
	uint64_t v;

	memcpy(&v, (const char *)stats + f->offset, sizeof(v));
	return v;
}

/* Each device's statistics in its own group, and their sums in the
 * total group. stats: n structures of size bytes. */
static void update_devices(struct vm_metrics *vmm, const char *total, const char *const *ids,
			   const void *stats, size_t size, unsigned n, const struct field *fields,
			   size_t nfields)
{
	char group[METRICS_NAME_MAX + 1];

	for (size_t f = 0; f < nfields; f++) {
		uint64_t sum = 0;

		for (unsigned i = 0; i < n; i++) {
			const void *st = (const char *)stats + i * size;
			uint64_t v = field_of(st, &fields[f]);

			own_group(group, sizeof(group), total, ids ? ids[i] : NULL, i);
			count(vmm, group, fields[f].name, v);
			sum += v;
		}
		if (n)
			count(vmm, total, fields[f].name, sum);
	}
}

void vm_metrics_update(struct vm_metrics *vmm, const struct vmm_handles *h,
		       const struct vm_device_names *names)
{
	struct virtio_blk_stats blk[OPTIONS_MAX_DISKS];
	struct virtio_net_stats net[OPTIONS_MAX_NETS];
	unsigned nblk = h->nblk < OPTIONS_MAX_DISKS ? h->nblk : OPTIONS_MAX_DISKS;
	unsigned nnet = h->nnet < OPTIONS_MAX_NETS ? h->nnet : OPTIONS_MAX_NETS;

	if (!vmm || !h->vm)
		return;
	update_vcpus(vmm, h->vm);
	for (unsigned i = 0; i < nblk; i++)
		blk[i] = virtio_blk_stats(h->blk[i]);
	update_devices(vmm, "block", names ? names->drive : NULL, blk, sizeof(blk[0]), nblk,
		       blk_fields, NFIELDS(blk_fields));
	for (unsigned i = 0; i < nnet; i++)
		virtio_net_get_stats(h->net[i], &net[i]);
	update_devices(vmm, "net", names ? names->iface : NULL, net, sizeof(net[0]), nnet,
		       net_fields, NFIELDS(net_fields));
	if (h->rng) {
		/* Firecracker's EntropyDeviceMetrics names. */
		count(vmm, "entropy", "entropy_event_count",
		      atomic_load_explicit(&h->rng->requests, memory_order_relaxed));
		count(vmm, "entropy", "entropy_bytes",
		      atomic_load_explicit(&h->rng->bytes, memory_order_relaxed));
		count(vmm, "entropy", "host_rng_fails",
		      atomic_load_explicit(&h->rng->fails, memory_order_relaxed));
		count(vmm, "entropy", "entropy_rate_limiter_throttled",
		      rate_limiter_throttled(&h->rng->limiter));
	}
	if (h->balloon) {
		struct balloon_counters bc;
		struct balloon_stats bs;

		virtio_balloon_counters(h->balloon, &bc);
		for (size_t f = 0; f < NFIELDS(balloon_fields); f++)
			count(vmm, "balloon", balloon_fields[f].name, field_of(&bc, &balloon_fields[f]));
		count(vmm, "balloon", "stats_updates_count",
		      virtio_balloon_stats(h->balloon, &bs) ? 0 : bs.updates);
		gauge(vmm, "balloon", "target_mib", virtio_balloon_target(h->balloon) >> 20);
		gauge(vmm, "balloon", "actual_mib", virtio_balloon_actual(h->balloon) >> 20);
	}
}

void vm_metrics_boot_ended(struct vm_metrics *vmm, const struct vmm_handles *h,
			   const struct vm_device_names *names)
{
	if (!vmm)
		return;
	vm_metrics_update(vmm, h, names);
	for (size_t i = 0; i < vmm->n; i++)
		vmm->src[i].last = 0;
}
