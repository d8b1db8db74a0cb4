/* The VMM's counters in Firecracker's metrics lines (docs/api.md
 * "Metrics"): VM exits by reason, in total ("vcpu") and per vCPU
 * ("vcpu0", ...), and per-device counters, in total ("block", "net",
 * "entropy", "balloon") and per device ("block_<drive_id>",
 * "net_<iface_id>").
 *
 * The vCPUs and devices keep their own statistics (struct vcpu_stats,
 * virtio_blk_stats, ...), which start from 0 at every boot; this module
 * reads them when a metrics line is due and adds what changed to the
 * registry's counters, so those count over the whole life of the
 * process, across reboots (--on-reboot restart) and InstanceStart retries. */
#ifndef POPEK_VMM_VM_METRICS_H
#define POPEK_VMM_VM_METRICS_H

#include "vmm/builder.h"
#include "vmm/options.h"

struct metrics;
struct vm_metrics;

/* What the devices of a boot are called in group names: the API's
 * drive_id and iface_id, in --disk/--net order; NULL or "" names a
 * device by its index ("block_0"). */
struct vm_device_names {
	const char *drive[OPTIONS_MAX_DISKS];
	const char *iface[OPTIONS_MAX_NETS];
};

/* Counts into registry, which must outlive it. NULL when out of memory. */
struct vm_metrics *vm_metrics_create(struct metrics *registry);
void vm_metrics_destroy(struct vm_metrics *vmm);

/* Brings the registry up to date with the running boot's statistics.
 * Calls must not overlap (the API controller holds its lock). */
void vm_metrics_update(struct vm_metrics *vmm, const struct vmm_handles *h,
		       const struct vm_device_names *names);

/* The boot's last update, before its VM and devices go: the next boot's
 * statistics start from 0 again. */
void vm_metrics_boot_ended(struct vm_metrics *vmm, const struct vmm_handles *h,
			   const struct vm_device_names *names);

#endif
