/* One virtual machine: the KVM VM object, its RAM, its buses and vCPUs,
 * and how it stops. Devices are attached by the builder (vmm/builder.c). */
#ifndef POPEK_VMM_VM_H
#define POPEK_VMM_VM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/kvm.h"
#include "vmm/memory.h"

struct vcpu;

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

#endif
