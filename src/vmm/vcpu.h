/* A virtual CPU: its KVM fd, the shared kvm_run page, and the thread that
 * runs the exit loop. */
#ifndef POPEK_VMM_VCPU_H
#define POPEK_VMM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct vm;

/* Exit counters, written only by the vCPU's own thread. */
struct vcpu_stats {
	uint64_t exits;
	uint64_t io;
	uint64_t mmio;
	uint64_t intr;
	uint64_t other;
};

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
