#include "arch/x86/cpuid.h"

#include <errno.h>
#include <string.h>

/* CPUID bits popek sets itself (Intel SDM vol. 2A, CPUID). */
#define CPUID_1_EDX_HTT         (1u << 28)
#define CPUID_1_ECX_HYPERVISOR  (1u << 31)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)

/* Leaf 0xB/0x1F level types. */
#define TOPO_LEVEL_SMT  1
#define TOPO_LEVEL_CORE 2

unsigned cpuid_core_id_width(unsigned ncpus)
{
	unsigned w = 0;

	while ((1u << w) < ncpus)
		w++;
	return w;
}

const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *entries,
					  unsigned n, unsigned function, unsigned index)
{
	for (unsigned i = 0; i < n; i++) {
		const struct kvm_cpuid_entry2 *e = &entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}

bool cpuid_vendor_is_amd(const struct kvm_cpuid_entry2 *entries, unsigned n)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(entries, n, 0, 0);

	/* "AuthenticAMD" and Hygon's "HygonGenuine" share AMD's topology leaves. */
	return e && ((e->ebx == 0x68747541 && e->edx == 0x69746e65 && e->ecx == 0x444d4163) ||
		     (e->ebx == 0x6f677948 && e->edx == 0x6e65476e && e->ecx == 0x656e6975));
}

/* Leaf 0xB (and 0x1F): x2APIC topology, one sub-leaf per level and a
 * terminating invalid level (SDM vol. 2A, CPUID leaf 0BH). */
static void topology_leaf(struct kvm_cpuid_entry2 *out, unsigned *n, unsigned function,
			  unsigned apic_id, unsigned ncpus)
{
	unsigned width = cpuid_core_id_width(ncpus);
	const struct { unsigned eax, ebx, ecx; } levels[3] = {
		{ 0, 1, 0 | (TOPO_LEVEL_SMT << 8) },
		{ width, ncpus, 1 | (TOPO_LEVEL_CORE << 8) },
		{ 0, 0, 2 },
	};

	for (unsigned i = 0; i < 3; i++) {
		out[*n] = (struct kvm_cpuid_entry2){
			.function = function,
			.index = i,
			.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
			.eax = levels[i].eax,
			.ebx = levels[i].ebx,
			.ecx = levels[i].ecx,
			.edx = apic_id,
		};
		(*n)++;
	}
}

/* EAX[25:14] of the cache leaves: logical processors sharing this cache,
 * minus one. L1 and L2 are per core, the L3 is shared by the package. */
static unsigned cache_sharing(unsigned eax, unsigned ncpus)
{
	unsigned level = (eax >> 5) & 7;
	unsigned sharing = level >= 3 ? (1u << cpuid_core_id_width(ncpus)) - 1 : 0;

	return (eax & ~(0xfffu << 14)) | (sharing << 14);
}

static void set_signature(struct kvm_cpuid_entry2 *e, const char sig[12])
{
	memcpy(&e->ebx, sig, 4);
	memcpy(&e->ecx, sig + 4, 4);
	memcpy(&e->edx, sig + 8, 4);
}

int cpuid_build(const struct kvm_cpuid_entry2 *supported, unsigned nsupported,
		unsigned cpu_index, unsigned ncpus,
		struct kvm_cpuid_entry2 *out, unsigned max_out)
{
	const unsigned apic_id = cpu_index;
	const unsigned width = cpuid_core_id_width(ncpus);
	const bool amd = cpuid_vendor_is_amd(supported, nsupported);
	bool have_0b = false, have_1f = false;
	unsigned n = 0;

	if (max_out < nsupported + CPUID_EXTRA_ENTRIES)
		return -E2BIG;

	for (unsigned i = 0; i < nsupported; i++) {
		struct kvm_cpuid_entry2 e = supported[i];

		switch (e.function) {
		case 0x1:
			e.ebx = (e.ebx & 0xffff) | (apic_id << 24) |
				((ncpus > 1 ? 1u << width : 1u) << 16);
			if (ncpus > 1)
				e.edx |= CPUID_1_EDX_HTT;
			else
				e.edx &= ~CPUID_1_EDX_HTT;
			e.ecx |= CPUID_1_ECX_HYPERVISOR;
			break;
		case 0x4:
			if ((e.eax & 0x1f) == 0)  /* no more caches */
				break;
			e.eax = cache_sharing(e.eax, ncpus);
			e.eax = (e.eax & 0x03ffffff) | (((1u << width) - 1) << 26);
			break;
		case 0xb:
			have_0b = true;
			continue;          /* replaced below */
		case 0x1f:
			have_1f = true;
			continue;
		case 0x40000000:
			/* KVM's paravirt interface (Documentation/virt/kvm/x86/cpuid.rst). */
			set_signature(&e, CPUID_SIGNATURE_KVM);
			if (e.eax < 0x40000001)
				e.eax = 0x40000001;
			break;
		case 0x80000001:
			if (amd && ncpus > 1)
				e.ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			if (amd)  /* NC and ApicIdCoreIdSize (AMD APM vol. 3, E.4.7) */
				e.ecx = (e.ecx & ~0xf0ffu) | (width << 12) | (ncpus - 1);
			break;
		case 0x8000001d:
			if (e.eax & 0x1f)
				e.eax = cache_sharing(e.eax, ncpus);
			break;
		case 0x8000001e:
			/* Extended APIC ID, core (compute unit) ID, one thread per
			 * core, one node. */
			e.eax = apic_id;
			e.ebx = cpu_index & 0xff;
			e.ecx = 0;
			break;
		default:
			break;
		}
		out[n++] = e;
	}

	/* The x2APIC topology leaf is how Linux and our guest learn the
	 * topology: always offer it when the basic range reaches it. */
	const struct kvm_cpuid_entry2 *leaf0 = cpuid_find(supported, nsupported, 0, 0);

	if (have_0b || (leaf0 && leaf0->eax >= 0xb))
		topology_leaf(out, &n, 0xb, apic_id, ncpus);
	if (have_1f)
		topology_leaf(out, &n, 0x1f, apic_id, ncpus);
	return (int)n;
}
