/* The VM's GSI routing table (KVM API, KVM_SET_GSI_ROUTING).
 *
 * KVM_CREATE_IRQCHIP installs a default table: GSIs 0-15 each routed to
 * the IOAPIC pin of that number and to pin gsi % 8 of the master (0-7) or
 * slave (8-15) PIC, GSIs 16-23 to IOAPIC pins 16-23. KVM_SET_GSI_ROUTING
 * replaces the whole table, so every commit here sends those 40 entries
 * again, exactly as KVM built them, followed by the MSI routes allocated
 * from GSI 24 up (one per MSI-X vector in use).
 *
 * Building the table (irq_routing_build) is separate from handing it to
 * KVM (the commit inside add/update/remove, skipped when vm_fd < 0), so
 * the logic is testable without /dev/kvm.
 */
#ifndef POPEK_VMM_IRQ_ROUTING_H
#define POPEK_VMM_IRQ_ROUTING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#define IRQ_ROUTING_IRQCHIP_GSIS   24     /* GSIs 0-23: the IOAPIC's pins */
#define IRQ_ROUTING_DEFAULT_ENTRIES 40    /* 16 x (IOAPIC + PIC) + 8 x IOAPIC */
#define IRQ_ROUTING_MSI_GSI_BASE   24
/* KVM accepts GSIs below KVM_MAX_IRQ_ROUTES (4096 on x86); 1024 MSI routes
 * are more than popek's devices can use (a few vectors each). */
#define IRQ_ROUTING_MAX_GSI        1024

struct irq_route_msi {
	bool used;
	uint32_t addr_lo, addr_hi, data;
};

struct irq_routing {
	int vm_fd;                  /* -1: build only, no ioctls (tests) */
	pthread_mutex_t lock;       /* everything below */
	unsigned max_gsi;           /* MSI GSIs are [24, max_gsi) */
	struct irq_route_msi *msi;  /* indexed by gsi - IRQ_ROUTING_MSI_GSI_BASE */
	unsigned nmsi;              /* routes in use */
	uint64_t commits;           /* tables built and committed */
};

/* max_gsi: 0 for IRQ_ROUTING_MAX_GSI; otherwise in (24, IRQ_ROUTING_MAX_GSI].
 * Returns 0 or -EINVAL/-ENOMEM. Commits nothing: until the first MSI route
 * the table KVM_CREATE_IRQCHIP installed is what runs. */
int irq_routing_init(struct irq_routing *r, int vm_fd, unsigned max_gsi);
void irq_routing_destroy(struct irq_routing *r);

/* Allocates the lowest free GSI >= 24 for an MSI route (addr, data) and
 * commits. Returns 0, -ENOSPC (no GSI left) or the ioctl's -errno (then
 * nothing changed). */
int irq_routing_add_msi(struct irq_routing *r, uint64_t addr, uint32_t data, unsigned *gsi);
/* Changes the message of an MSI route and commits (nothing when the route
 * already carries it). -ENOENT when gsi is not an allocated MSI route. */
int irq_routing_update_msi(struct irq_routing *r, unsigned gsi, uint64_t addr, uint32_t data);
/* Frees an MSI route and commits. -ENOENT when gsi is not one (GSIs 0-23
 * cannot be removed). */
int irq_routing_remove(struct irq_routing *r, unsigned gsi);

/* The default entries KVM_CREATE_IRQCHIP installs (KVM's default_routing[]
 * in arch/x86/kvm), in its order. Fills IRQ_ROUTING_DEFAULT_ENTRIES. */
void irq_routing_default_entries(struct kvm_irq_routing_entry *e);

/* Builds the full table (defaults, then MSI routes by GSI) for
 * KVM_SET_GSI_ROUTING; the caller frees it. Takes the lock. NULL on ENOMEM. */
struct kvm_irq_routing *irq_routing_build(struct irq_routing *r);

/* KVM_IRQFD: signalling eventfd injects gsi. Return 0 or -errno. */
int irqfd_assign(int vm_fd, int eventfd, unsigned gsi);
int irqfd_deassign(int vm_fd, int eventfd, unsigned gsi);

#endif
