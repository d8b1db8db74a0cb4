/* What a device may ask of the machine it sits in. Devices get these as
 * small callback objects instead of the whole VM, so each device can be
 * unit-tested with a fake machine. */
#ifndef POPEK_VMM_DEVICE_H
#define POPEK_VMM_DEVICE_H

#include <stdbool.h>

/* One interrupt input of the in-kernel IOAPIC/PIC (a GSI). */
struct irq_line {
	void (*set_level)(void *opaque, unsigned gsi, bool level);
	void *opaque;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *irq, bool level)
{
	if (irq && irq->set_level)
		irq->set_level(irq->opaque, irq->gsi, level);
}

/* Why the machine stops: the process exit status follows from it. */
enum vm_stop_reason {
	VM_STOP_NONE = 0,
	VM_STOP_POWEROFF,     /* guest powered off: status 0 */
	VM_STOP_RESET,        /* guest reset (i8042 0xFE, triple-fault excluded): status 0 */
	VM_STOP_DEBUG_EXIT,   /* isa-debug-exit write: status (v << 1) | 1 */
	VM_STOP_USER,         /* Ctrl-A x or a signal on the host */
	VM_STOP_SHUTDOWN,     /* triple fault (KVM_EXIT_SHUTDOWN) */
	VM_STOP_PANIC,        /* the guest kernel panicked (pvpanic, console) */
	VM_STOP_ERROR,        /* KVM internal/entry failure, or a VMM error */
};

/* Asks the machine to stop; every vCPU thread leaves KVM_RUN promptly.
 * The first request wins; later ones are ignored. Safe from any thread. */
struct vm_stopper {
	void (*stop)(void *opaque, enum vm_stop_reason reason, int status);
	void *opaque;
};

static inline void vm_stopper_request(const struct vm_stopper *s,
				      enum vm_stop_reason reason, int status)
{
	if (s && s->stop)
		s->stop(s->opaque, reason, status);
}

#endif
