/* MSI-X (PCI Local Bus 3.0 §6.8.2). See msix.h. */
#include "pci/msix.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pci/pci.h"
#include "util/log.h"
#include "vmm/irq_routing.h"

static bool vector_masked_locked(const struct msix *m, unsigned v)
{
	return m->function_masked || (m->vectors[v].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static bool pending_locked(const struct msix *m, unsigned v)
{
	return m->pba[v / 64] & (1ULL << (v % 64));
}

static void set_pending_locked(struct msix *m, unsigned v, bool on)
{
	if (on)
		m->pba[v / 64] |= 1ULL << (v % 64);
	else
		m->pba[v / 64] &= ~(1ULL << (v % 64));
}

static void signal_eventfd(int fd)
{
	uint64_t one = 1;

	/* Non-blocking: only a counter at 2^64 - 2 fails, and then the
	 * interrupt is pending in the eventfd anyway. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("msix: eventfd write: %s", strerror(errno));
}

/* Points the vector's KVM route at its current message; msix lock held. */
static void route_vector_locked(struct msix *m, unsigned v)
{
	struct msix_vector *vec = &m->vectors[v];
	uint64_t addr = (uint64_t)vec->addr_hi << 32 | vec->addr_lo;
	struct irq_routing *r = m->routing;
	unsigned gsi;
	int ret;

	if (vec->gsi >= 0 && vec->routed_addr_lo == vec->addr_lo &&
	    vec->routed_addr_hi == vec->addr_hi && vec->routed_data == vec->data)
		return;
	if (!r) {
		/* No routing (unit tests): remember what would be routed. */
		goto done;
	}
	if (vec->gsi < 0) {
		ret = irq_routing_add_msi(r, addr, vec->data, &gsi);
		if (ret) {
			pr_warn("%s: MSI-X vector %u: no route: %s", m->dev->name, v, strerror(-ret));
			return;
		}
		if (r->vm_fd >= 0) {
			ret = irqfd_assign(r->vm_fd, vec->eventfd, gsi);
			if (ret) {
				pr_warn("%s: MSI-X vector %u: KVM_IRQFD: %s", m->dev->name, v,
					strerror(-ret));
				irq_routing_remove(r, gsi);
				return;
			}
		}
		vec->gsi = gsi;
	} else {
		ret = irq_routing_update_msi(r, vec->gsi, addr, vec->data);
		if (ret) {
			pr_warn("%s: MSI-X vector %u: route update: %s", m->dev->name, v,
				strerror(-ret));
			return;
		}
	}
done:
	vec->routed_addr_lo = vec->addr_lo;
	vec->routed_addr_hi = vec->addr_hi;
	vec->routed_data = vec->data;
}

/* After anything that may have unmasked vector v or changed its message:
 * §6.8.2.9, while a vector is masked the function may not send its
 * message and sets the pending bit instead; once unmasked, a pending
 * message is sent. The route follows the entry only while the vector is
 * deliverable, so a message the guest is halfway through rewriting under
 * the mask never reaches KVM. */
static void vector_update_locked(struct msix *m, unsigned v)
{
	if (!m->enabled || vector_masked_locked(m, v))
		return;
	route_vector_locked(m, v);
	if (pending_locked(m, v)) {
		set_pending_locked(m, v, false);
		signal_eventfd(m->vectors[v].eventfd);
	}
}

int msix_init(struct msix *m, struct pci_device *dev, unsigned nvectors, unsigned bar,
	      uint64_t table_offset, uint64_t pba_offset, struct irq_routing *routing)
{
	uint64_t tsize = MSIX_TABLE_SIZE(nvectors), psize = MSIX_PBA_SIZE(nvectors);
	uint8_t body[PCI_MSIX_CAP_SIZE - 2] = { 0 };
	uint8_t wmask[PCI_MSIX_CAP_SIZE - 2] = { 0 };
	uint16_t ctrl;
	uint32_t table, pba;
	int cap, ret;

	/* §6.8.2.3-5: at most 2048 entries; the offsets share a dword with
	 * the BIR, so they are 8-byte aligned and below 4 GiB. */
	if (nvectors == 0 || nvectors > MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS)
		return -EINVAL;
	if ((table_offset | pba_offset) & 7 || table_offset + tsize > (1ULL << 32) ||
	    pba_offset + psize > (1ULL << 32))
		return -EINVAL;
	if (table_offset < pba_offset + psize && pba_offset < table_offset + tsize)
		return -EINVAL;
	if (bar > 0 && dev->bars[bar - 1].size && (dev->bars[bar - 1].flags & PCI_BAR_MEM64))
		return -EINVAL;   /* the upper half of a 64-bit BAR */
	if (dev->bars[bar].size &&
	    (table_offset + tsize > dev->bars[bar].size || pba_offset + psize > dev->bars[bar].size))
		return -EINVAL;
	if (dev->msix)
		return -EEXIST;

	memset(m, 0, sizeof(*m));
	m->vectors = calloc(nvectors, sizeof(*m->vectors));
	m->pba = calloc(psize / 8, sizeof(uint64_t));
	if (!m->vectors || !m->pba) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned v = 0; v < nvectors; v++) {
		m->vectors[v].eventfd = -1;
		m->vectors[v].gsi = -1;
		/* §6.8.2.9: the mask bit is set after reset. */
		m->vectors[v].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
	}
	for (unsigned v = 0; v < nvectors; v++) {
		m->vectors[v].eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->vectors[v].eventfd < 0) {
			ret = -errno;
			goto fail;
		}
	}

	ctrl = nvectors - 1;
	table = (uint32_t)table_offset | bar;
	pba = (uint32_t)pba_offset | bar;
	memcpy(&body[PCI_MSIX_FLAGS - 2], &ctrl, 2);
	memcpy(&body[PCI_MSIX_TABLE - 2], &table, 4);
	memcpy(&body[PCI_MSIX_PBA - 2], &pba, 4);
	/* Only MSI-X Enable and Function Mask are writable (§6.8.2.3). */
	wmask[PCI_MSIX_FLAGS - 2 + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	cap = pci_device_add_capability(dev, PCI_CAP_ID_MSIX, body, sizeof(body), wmask);
	if (cap < 0) {
		ret = cap;
		goto fail;
	}
	if (pthread_mutex_init(&m->lock, NULL)) {
		ret = -ENOMEM;
		goto fail;
	}
	m->dev = dev;
	m->routing = routing;
	m->nvectors = nvectors;
	m->bar = bar;
	m->table_offset = table_offset;
	m->pba_offset = pba_offset;
	m->cap = cap;
	dev->msix = m;
	return 0;

fail:
	if (m->vectors) {
		for (unsigned v = 0; v < nvectors; v++)
			if (m->vectors[v].eventfd >= 0)
				close(m->vectors[v].eventfd);
	}
	free(m->vectors);
	free(m->pba);
	memset(m, 0, sizeof(*m));
	m->cap = -1;
	return ret;
}

void msix_destroy(struct msix *m)
{
	if (!m->vectors)
		return;
	for (unsigned v = 0; v < m->nvectors; v++) {
		struct msix_vector *vec = &m->vectors[v];

		if (m->routing && vec->gsi >= 0) {
			if (m->routing->vm_fd >= 0)
				irqfd_deassign(m->routing->vm_fd, vec->eventfd, vec->gsi);
			irq_routing_remove(m->routing, vec->gsi);
		}
		close(vec->eventfd);
	}
	pthread_mutex_destroy(&m->lock);
	if (m->dev && m->dev->msix == m)
		m->dev->msix = NULL;
	free(m->vectors);
	free(m->pba);
	m->vectors = NULL;
	m->pba = NULL;
}

void msix_config_written(struct msix *m, uint32_t offset, uint32_t len)
{
	uint32_t reg = m->cap + PCI_MSIX_FLAGS;
	uint16_t ctrl;
	bool was_enabled, was_masked;

	if (m->cap < 0 || offset >= reg + 2 || offset + len <= reg)
		return;
	ctrl = pci_config_get(m->dev, reg, 2);
	pthread_mutex_lock(&m->lock);
	was_enabled = m->enabled;
	was_masked = m->function_masked;
	m->enabled = ctrl & PCI_MSIX_FLAGS_ENABLE;
	m->function_masked = ctrl & PCI_MSIX_FLAGS_MASKALL;
	/* Enabling or clearing the function mask can make vectors
	 * deliverable: route them, send what is pending. */
	if ((m->enabled && !was_enabled) || (was_masked && !m->function_masked)) {
		for (unsigned v = 0; v < m->nvectors; v++)
			vector_update_locked(m, v);
	}
	pthread_mutex_unlock(&m->lock);
}

enum region { REGION_NONE, REGION_TABLE, REGION_PBA, REGION_BAD };

/* Classifies an access: inside the table, inside the PBA, touching one of
 * them badly (straddling, misaligned, neither 4 nor 8 bytes: §6.8.2 asks
 * software for aligned dword or qword accesses), or neither. */
static enum region classify(const struct msix *m, uint64_t offset, uint32_t len, uint64_t *rel)
{
	uint64_t tsize = MSIX_TABLE_SIZE(m->nvectors), psize = MSIX_PBA_SIZE(m->nvectors);
	uint64_t last = offset + len - 1;
	bool in_t, in_p;

	if (len == 0 || last < offset)
		return REGION_NONE;
	in_t = offset < m->table_offset + tsize && m->table_offset <= last;
	in_p = offset < m->pba_offset + psize && m->pba_offset <= last;
	if (!in_t && !in_p)
		return REGION_NONE;
	if ((len != 4 && len != 8) || (offset & (len - 1)))
		return REGION_BAD;
	if (in_t && offset >= m->table_offset && last < m->table_offset + tsize) {
		*rel = offset - m->table_offset;
		return REGION_TABLE;
	}
	if (in_p && offset >= m->pba_offset && last < m->pba_offset + psize) {
		*rel = offset - m->pba_offset;
		return REGION_PBA;
	}
	return REGION_BAD;
}

static uint32_t table_dword_locked(const struct msix *m, uint64_t rel)
{
	const struct msix_vector *vec = &m->vectors[rel / PCI_MSIX_ENTRY_SIZE];

	switch (rel % PCI_MSIX_ENTRY_SIZE) {
	case PCI_MSIX_ENTRY_ADDR_LO:
		return vec->addr_lo;
	case PCI_MSIX_ENTRY_ADDR_HI:
		return vec->addr_hi;
	case PCI_MSIX_ENTRY_DATA:
		return vec->data;
	default:
		return vec->ctrl;
	}
}

static uint32_t pba_dword_locked(const struct msix *m, uint64_t rel)
{
	return m->pba[rel / 8] >> (32 * ((rel / 4) % 2));
}

bool msix_table_read(struct msix *m, uint64_t offset, uint8_t *data, uint32_t len)
{
	enum region region;
	uint64_t rel = 0;

	region = classify(m, offset, len, &rel);
	if (region == REGION_NONE)
		return false;
	memset(data, 0xff, len);
	if (region == REGION_BAD)
		return true;
	pthread_mutex_lock(&m->lock);
	for (uint32_t i = 0; i < len; i += 4) {
		uint32_t v = region == REGION_TABLE ? table_dword_locked(m, rel + i)
						    : pba_dword_locked(m, rel + i);

		memcpy(data + i, &v, 4);
	}
	pthread_mutex_unlock(&m->lock);
	return true;
}

bool msix_table_write(struct msix *m, uint64_t offset, const uint8_t *data, uint32_t len)
{
	enum region region;
	uint64_t rel = 0;
	unsigned v;

	region = classify(m, offset, len, &rel);
	if (region == REGION_NONE)
		return false;
	/* The PBA is read-only (§6.8.2.10); bad accesses are dropped. */
	if (region != REGION_TABLE)
		return true;
	v = rel / PCI_MSIX_ENTRY_SIZE;
	pthread_mutex_lock(&m->lock);
	for (uint32_t i = 0; i < len; i += 4) {
		struct msix_vector *vec = &m->vectors[v];
		uint32_t val;

		memcpy(&val, data + i, 4);
		switch ((rel + i) % PCI_MSIX_ENTRY_SIZE) {
		case PCI_MSIX_ENTRY_ADDR_LO:
			/* §6.8.2.6: bits 1:0 are zero (dword-aligned). */
			vec->addr_lo = val & ~3u;
			break;
		case PCI_MSIX_ENTRY_ADDR_HI:
			vec->addr_hi = val;
			break;
		case PCI_MSIX_ENTRY_DATA:
			vec->data = val;
			break;
		default:
			/* §6.8.2.9: only the mask bit is defined; the rest
			 * is reserved and reads 0. */
			vec->ctrl = val & PCI_MSIX_ENTRY_CTRL_MASKBIT;
			break;
		}
	}
	/* The guest may rewrite an unmasked entry (undefined by §6.8.2.9,
	 * but Linux before 5.14 did so when moving an interrupt): the
	 * route follows. */
	vector_update_locked(m, v);
	pthread_mutex_unlock(&m->lock);
	return true;
}

static void bar_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	if (!msix_table_read(opaque, offset, data, len))
		memset(data, 0xff, len);
}

static void bar_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	msix_table_write(opaque, offset, data, len);
}

const struct bus_ops msix_bar_ops = { .read = bar_read, .write = bar_write };

enum msix_notify_result msix_notify(struct msix *m, unsigned vector)
{
	enum msix_notify_result ret;

	if (vector >= m->nvectors)
		return MSIX_BAD_VECTOR;
	pthread_mutex_lock(&m->lock);
	if (!m->enabled) {
		ret = MSIX_DISABLED;
	} else if (vector_masked_locked(m, vector)) {
		set_pending_locked(m, vector, true);
		ret = MSIX_PENDING;
	} else {
		/* Under the lock, so a concurrent mask cannot slip between the
		 * check and the send. */
		signal_eventfd(m->vectors[vector].eventfd);
		ret = MSIX_DELIVERED;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int msix_vector_eventfd(struct msix *m, unsigned vector)
{
	if (vector >= m->nvectors)
		return -1;
	return m->vectors[vector].eventfd;
}

bool msix_enabled(struct msix *m)
{
	bool on;

	pthread_mutex_lock(&m->lock);
	on = m->enabled;
	pthread_mutex_unlock(&m->lock);
	return on;
}

bool msix_vector_masked(struct msix *m, unsigned vector)
{
	bool masked;

	if (vector >= m->nvectors)
		return true;
	pthread_mutex_lock(&m->lock);
	masked = vector_masked_locked(m, vector);
	pthread_mutex_unlock(&m->lock);
	return masked;
}

bool msix_vector_pending(struct msix *m, unsigned vector)
{
	bool p;

	if (vector >= m->nvectors)
		return false;
	pthread_mutex_lock(&m->lock);
	p = pending_locked(m, vector);
	pthread_mutex_unlock(&m->lock);
	return p;
}
