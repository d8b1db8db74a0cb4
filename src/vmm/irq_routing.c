/* The VM's GSI routing table. See irq_routing.h. */
#include "vmm/irq_routing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

void irq_routing_default_entries(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	/* KVM's default_routing[] (virt/kvm/irqchip.c, later
	 * arch/x86/kvm/irq.c), entry for entry: ROUTING_ENTRY2(gsi) for
	 * 0-15 is the IOAPIC pin then the PIC pin (master for 0-7, slave
	 * for 8-15, pin gsi % 8); ROUTING_ENTRY1(gsi) for 16-23 the IOAPIC
	 * pin alone. Anything else changes what KVM_IRQ_LINE on those GSIs
	 * does once we replace the table. */
	for (unsigned gsi = 0; gsi < IRQ_ROUTING_IRQCHIP_GSIS; gsi++) {
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi < 16)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = {
					.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
							   : KVM_IRQCHIP_PIC_SLAVE,
					.pin = gsi % 8,
				},
			};
	}
}

int irq_routing_init(struct irq_routing *r, int vm_fd, unsigned max_gsi)
{
	memset(r, 0, sizeof(*r));
	if (max_gsi == 0)
		max_gsi = IRQ_ROUTING_MAX_GSI;
	if (max_gsi <= IRQ_ROUTING_MSI_GSI_BASE || max_gsi > IRQ_ROUTING_MAX_GSI)
		return -EINVAL;
	r->msi = calloc(max_gsi - IRQ_ROUTING_MSI_GSI_BASE, sizeof(*r->msi));
	if (!r->msi)
		return -ENOMEM;
	if (pthread_mutex_init(&r->lock, NULL)) {
		free(r->msi);
		r->msi = NULL;
		return -ENOMEM;
	}
	r->vm_fd = vm_fd;
	r->max_gsi = max_gsi;
	return 0;
}

void irq_routing_destroy(struct irq_routing *r)
{
	if (!r->msi)   /* never initialised, or destroyed already */
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->msi);
	r->msi = NULL;
	r->nmsi = 0;
}

static struct kvm_irq_routing *build_locked(struct irq_routing *r)
{
	unsigned n = IRQ_ROUTING_DEFAULT_ENTRIES + r->nmsi;
	struct kvm_irq_routing *t;

	t = calloc(1, sizeof(*t) + n * sizeof(t->entries[0]));
	if (!t)
		return NULL;
	irq_routing_default_entries(t->entries);
	n = IRQ_ROUTING_DEFAULT_ENTRIES;
	for (unsigned gsi = IRQ_ROUTING_MSI_GSI_BASE; gsi < r->max_gsi; gsi++) {
		const struct irq_route_msi *m = &r->msi[gsi - IRQ_ROUTING_MSI_GSI_BASE];

		if (!m->used)
			continue;
		t->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = m->addr_lo, .address_hi = m->addr_hi,
				   .data = m->data },
		};
	}
	t->nr = n;
	return t;
}

struct kvm_irq_routing *irq_routing_build(struct irq_routing *r)
{
	struct kvm_irq_routing *t;

	pthread_mutex_lock(&r->lock);
	t = build_locked(r);
	pthread_mutex_unlock(&r->lock);
	return t;
}

/* KVM_SET_GSI_ROUTING replaces the whole table, so every change sends it
 * all. The ioctl waits for an SRCU grace period: slow-ish, but routes
 * change only when the guest programs or unmasks a vector. */
static int commit_locked(struct irq_routing *r)
{
	struct kvm_irq_routing *t;
	int ret = 0;

	if (r->vm_fd >= 0) {
		t = build_locked(r);
		if (!t)
			return -ENOMEM;
		if (ioctl(r->vm_fd, KVM_SET_GSI_ROUTING, t) < 0)
			ret = -errno;
		free(t);
	}
	if (!ret)
		r->commits++;
	return ret;
}

static struct irq_route_msi *msi_route(struct irq_routing *r, unsigned gsi)
{
	if (gsi < IRQ_ROUTING_MSI_GSI_BASE || gsi >= r->max_gsi)
		return NULL;
	return &r->msi[gsi - IRQ_ROUTING_MSI_GSI_BASE];
}

int irq_routing_add_msi(struct irq_routing *r, uint64_t addr, uint32_t data, unsigned *gsi)
{
	struct irq_route_msi *m = NULL;
	unsigned g;
	int ret;

	pthread_mutex_lock(&r->lock);
	for (g = IRQ_ROUTING_MSI_GSI_BASE; g < r->max_gsi; g++) {
		m = msi_route(r, g);
		if (!m->used)
			break;
	}
	if (g >= r->max_gsi) {
		pthread_mutex_unlock(&r->lock);
		return -ENOSPC;
	}
	*m = (struct irq_route_msi){
		.used = true, .addr_lo = (uint32_t)addr, .addr_hi = addr >> 32, .data = data,
	};
	r->nmsi++;
	ret = commit_locked(r);
	if (ret) {
		m->used = false;
		r->nmsi--;
	} else {
		*gsi = g;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_routing_update_msi(struct irq_routing *r, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct irq_route_msi *m, old;
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	m = msi_route(r, gsi);
	if (!m || !m->used) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	old = *m;
	m->addr_lo = (uint32_t)addr;
	m->addr_hi = addr >> 32;
	m->data = data;
	if (memcmp(&old, m, sizeof(old))) {
		ret = commit_locked(r);
		if (ret)
			*m = old;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int irq_routing_remove(struct irq_routing *r, unsigned gsi)
{
	struct irq_route_msi *m;
	int ret;

	pthread_mutex_lock(&r->lock);
	m = msi_route(r, gsi);
	if (!m || !m->used) {
		pthread_mutex_unlock(&r->lock);
		return -ENOENT;
	}
	m->used = false;
	r->nmsi--;
	ret = commit_locked(r);
	if (ret) {
		m->used = true;
		r->nmsi++;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

static int irqfd(int vm_fd, int eventfd, unsigned gsi, uint32_t flags)
{
	struct kvm_irqfd req = { .fd = (uint32_t)eventfd, .gsi = gsi, .flags = flags };

	if (vm_fd < 0 || eventfd < 0)
		return -EBADF;
	return ioctl(vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

int irqfd_assign(int vm_fd, int eventfd, unsigned gsi)
{
	return irqfd(vm_fd, eventfd, gsi, 0);
}

int irqfd_deassign(int vm_fd, int eventfd, unsigned gsi)
{
	return irqfd(vm_fd, eventfd, gsi, KVM_IRQFD_FLAG_DEASSIGN);
}
