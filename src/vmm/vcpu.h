/* A virtual CPU: its KVM fd, the shared kvm_run page, and the thread that
 * runs the exit loop. */
#ifndef POPEK_VMM_VCPU_H
#define POPEK_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct vm;

/* Why KVM_RUN returned, as counted in struct vcpu_stats. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO_IN,
	VCPU_EXIT_IO_OUT,
	VCPU_EXIT_MMIO_READ,
	VCPU_EXIT_MMIO_WRITE,
	VCPU_EXIT_INTR,            /* a signal: a kick, or a stop */
	VCPU_EXIT_SHUTDOWN,        /* triple fault */
	VCPU_EXIT_SYSTEM_EVENT,
	VCPU_EXIT_FAIL_ENTRY,
	VCPU_EXIT_INTERNAL_ERROR,
	VCPU_EXIT_OTHER,
	VCPU_EXIT_KINDS
};

/* Exit counters, written only by the vCPU's own thread and read by
 * others (metrics) with vcpu_stat(): relaxed atomics, plain moves on
 * x86. */
struct vcpu_stats {
	_Atomic uint64_t by_kind[VCPU_EXIT_KINDS];
};

/* The name of an exit kind in metrics and logs ("io_in", ...). */
const char *vcpu_exit_kind_name(enum vcpu_exit_kind k);

static inline uint64_t vcpu_stat(const struct vcpu_stats *st, enum vcpu_exit_kind k)
{
	return atomic_load_explicit(&st->by_kind[k], memory_order_relaxed);
}

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	struct vcpu_stats stats;
};

/* KVM_CREATE_VCPU, the kvm_run mapping, CPUID, reset MSRs and the LAPIC's
 * LINT0/LINT1 wiring. APs wait for INIT/SIPI in KVM's in-kernel LAPIC. */
int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned index, char *err, size_t errlen);
void vcpu_destroy(struct vcpu *vcpu);

/* The signal that interrupts KVM_RUN; installed once per process. */
int vcpu_install_kick_signal(void);
int vcpu_start(struct vcpu *vcpu);
/* Makes KVM_RUN return now or refuse to enter; safe from any thread. */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);

#endif
