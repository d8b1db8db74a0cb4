/* Assembles a machine from the run options (KVM, RAM, devices, kernel,
 * tables, vCPUs), runs it until it stops, and tears it down. */
#ifndef POPEK_VMM_BUILDER_H
#define POPEK_VMM_BUILDER_H

#include "vmm/options.h"

/* Returns the process exit status (see enum popek_exit_status). */
int vmm_run(const struct run_options *opts);

struct vm;
struct i8042;
struct virtio_balloon;
struct virtio_blk;
struct virtio_net;
struct virtio_rng;

/* What a controller may act on (and count) while a boot's VM runs. */
struct vmm_handles {
	struct vm *vm;
	struct i8042 *kbc;
	struct virtio_balloon *balloon;   /* NULL without --balloon */
	struct virtio_rng *rng;           /* NULL with --no-rng */
	unsigned nblk;                    /* in --disk (drives) order */
	struct virtio_blk *const *blk;
	unsigned nnet;                    /* in --net (network-interfaces) order */
	struct virtio_net *const *net;
};

/* For a controller (the API): told when each boot's VM runs and stops,
 * and why a boot failed before it ran. Called on the main thread. */
struct vmm_hooks {
	void (*running)(void *opaque, const struct vmm_handles *h);
	/* The vCPUs have stopped; the devices are still there. */
	void (*stopped)(void *opaque);
	void (*failed)(void *opaque, const char *why);
	void *opaque;
};

int vmm_run_hooked(const struct run_options *opts, const struct vmm_hooks *hooks);

/* Prints the CPUID table each of ncpus vCPUs would get, one line per leaf
 * ("cpu I leaf 0xFFFFFFFF.I eax=... ebx=... ecx=... edx=..."): what the
 * guest should see, for comparing with what it does see. */
int vmm_dump_cpuid(unsigned ncpus);

#endif
