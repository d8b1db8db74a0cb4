/* One virtual machine: the KVM VM object, its RAM, its buses and vCPUs,
 * and how it stops. Devices are attached by the builder (vmm/builder.c). */
#ifndef POPEK_VMM_VM_H
#define POPEK_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/kvm.h"
#include "vmm/memory.h"

struct vcpu;

/*
 * The park/unpark state machine behind vm_pause(), with no KVM in it (so
 * tests/unit/test_pause.c drives it with plain threads). Threads that take
 * part (the vCPUs) test vm_park_requested() once per loop iteration, a
 * relaxed load, and call vm_park_self() when it is true; the lock and the
 * condition variables are only taken to park and unpark.
 */
struct vm_park {
	atomic_bool requested;
	pthread_mutex_t lock;
	pthread_cond_t wake;       /* parked threads: released, or stopping */
	pthread_cond_t parked;     /* the pauser: one more thread parked */
	unsigned nthreads;         /* threads taking part */
	unsigned nparked;          /* of those, parked now */
	bool stopping;             /* final: nobody parks any more */
};

int vm_park_init(struct vm_park *p);
void vm_park_destroy(struct vm_park *p);
/* One more thread takes part (call before it starts), or one less (it
 * could not be started). */
void vm_park_add_thread(struct vm_park *p);
void vm_park_remove_thread(struct vm_park *p);
unsigned vm_park_threads(struct vm_park *p);

static inline bool vm_park_requested(struct vm_park *p)
{
	return atomic_load_explicit(&p->requested, memory_order_relaxed);
}

/* The pauser: asks every thread to park, then waits until all of them
 * are: 0, -ESHUTDOWN once stopping, -ETIMEDOUT after timeout_ms (the
 * request stands either way: vm_park_release() withdraws it). */
void vm_park_request(struct vm_park *p);
int vm_park_wait(struct vm_park *p, unsigned timeout_ms);
/* Withdraws the request and wakes every parked thread. */
void vm_park_release(struct vm_park *p);
/* A taking-part thread: waits while parking is requested and the machine
 * is not stopping; returns at once otherwise. */
void vm_park_self(struct vm_park *p);
/* For good: wakes every parked thread and every waiting pauser. */
void vm_park_stop(struct vm_park *p);

/* Process exit statuses besides the guest's own (debug-exit statuses are
 * odd, so these even ones never collide with them). */
enum popek_exit_status {
	POPEK_EXIT_OK = 0,           /* guest power-off or reset, Ctrl-A x */
	POPEK_EXIT_USAGE = 2,        /* bad options or input files: no VM started */
	POPEK_EXIT_VMM_ERROR = 4,    /* KVM internal or entry failure, VMM failure */
	POPEK_EXIT_TRIPLE_FAULT = 6, /* KVM_EXIT_SHUTDOWN */
	POPEK_EXIT_SIGNAL = 8,       /* SIGINT, SIGTERM or SIGHUP on the host */
	POPEK_EXIT_GUEST_PANIC = 10, /* the guest kernel panicked */
};

struct vm {
	const struct kvm *kvm;
	int fd;
	struct guest_memory mem;
	struct bus pio;
	struct bus mmio;
	unsigned ncpus;
	struct vcpu *vcpus;

	/* Stopping: the first request wins (VM_STOP_NONE while running). */
	atomic_int stop_reason;
	atomic_int stop_status;
	int stop_eventfd;          /* readable once a stop was requested */
	struct vm_stopper stopper; /* hands vm_request_stop to devices */

	/* Pausing: vm_pause and vm_resume are serialised by ctl_lock. */
	struct vm_park park;
	pthread_mutex_t ctl_lock;
	atomic_bool paused;        /* every vCPU parked, until vm_resume */
	bool sync_ready;           /* park and ctl_lock are initialised */
};

/* Creates the KVM VM: TSS and identity-map addresses, in-kernel irqchip
 * and PIT, RAM registered as memory slots, empty buses, ncpus vCPUs
 * (created, not yet running). On failure err holds one line. */
int vm_create(struct vm *vm, const struct kvm *kvm, uint64_t ram_size, unsigned ncpus,
	      char *err, size_t errlen);
void vm_destroy(struct vm *vm);

/* Any thread: records the reason and exit status, then gets every vCPU out
 * of KVM_RUN (immediate_exit plus a signal). */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status);
enum vm_stop_reason vm_stop_reason(struct vm *vm);
const char *vm_stop_reason_name(enum vm_stop_reason reason);

/* An irq_line that drives gsi through KVM_IRQ_LINE. */
void vm_irq_line(struct vm *vm, unsigned gsi, struct irq_line *line);

/* Starts every vCPU thread; returns once they run. */
int vm_start(struct vm *vm, char *err, size_t errlen);
/* Kicks all vCPUs out and joins their threads (after a stop request). */
void vm_join(struct vm *vm);

/*
 * Pause and resume, any thread but a vCPU's (the control plane's).
 *
 * vm_pause() returns once every vCPU thread is out of KVM_RUN and parked,
 * then tells each vCPU's kvmclock that the guest was stopped
 * (KVM_KVMCLOCK_CTRL: Linux's soft-lockup watchdog then does not report
 * the pause as a lockup; vCPUs whose guest has not enabled kvmclock are
 * skipped). A paused VM can still be stopped: vm_request_stop() wakes the
 * parked threads and they exit. Device worker threads (virtio) are not
 * paused, as in Firecracker: a paused guest just runs no instructions.
 *
 * The guest's clocks keep following the host's across a pause, as with
 * Firecracker (which also only calls KVM_KVMCLOCK_CTRL): after resuming,
 * CLOCK_MONOTONIC and CLOCK_REALTIME have advanced by the pause, and timers
 * that expired meanwhile fire at once. QEMU's stop/cont instead saves
 * kvmclock with KVM_GET_CLOCK and restores it with KVM_SET_CLOCK, which it
 * needs for migration; we do not: KVM_SET_CLOCK moves kvmclock only, not
 * the guest TSC, which keeps counting on the host (with an invariant TSC
 * Linux guests prefer the TSC clocksource), so the guest's clocks would
 * disagree with each other, and its wall clock would lag the host's by
 * every pause until NTP steps it (token lifetimes, certificates, leases).
 *
 * Both return 0, or a negative errno with one line in err:
 *   -EALREADY  pausing a paused VM, resuming a running one;
 *   -EINVAL    no vCPU thread runs yet (before vm_start);
 *   -ESHUTDOWN the VM is stopping (a stop request won);
 *   -ETIMEDOUT a vCPU did not leave KVM_RUN in time (the VM runs on).
 */
int vm_pause(struct vm *vm, char *err, size_t errlen);
int vm_resume(struct vm *vm, char *err, size_t errlen);
bool vm_paused(struct vm *vm);

#endif
