/* The CPUID a vCPU sees: what KVM can run (KVM_GET_SUPPORTED_CPUID), with
 * the topology of the machine popek builds and KVM's paravirt leaves.
 *
 * Topology: one package, ncpus cores, one thread per core. APIC ID = vCPU
 * index, so the core field of the x2APIC ID is ceil(log2(ncpus)) bits wide
 * (Intel SDM vol. 3A §9.9 "Identification of processor topology"). */
#ifndef POPEK_ARCH_X86_CPUID_H
#define POPEK_ARCH_X86_CPUID_H

#include <stdbool.h>
#include <linux/kvm.h>

/* Leaves we add or replace whole, so out needs this much room beyond the
 * supported list. */
#define CPUID_EXTRA_ENTRIES 8

#define CPUID_SIGNATURE_KVM "KVMKVMKVM\0\0\0"

/* Fills out (room for max_out entries) for vCPU cpu_index of ncpus.
 * Returns the entry count, or -E2BIG when out is too small. */
int cpuid_build(const struct kvm_cpuid_entry2 *supported, unsigned nsupported,
		unsigned cpu_index, unsigned ncpus,
		struct kvm_cpuid_entry2 *out, unsigned max_out);

/* Bits needed for the core-ID field of an APIC ID: ceil(log2(n)). */
unsigned cpuid_core_id_width(unsigned ncpus);

/* The entry for (function, index), or NULL. */
const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *entries,
					  unsigned n, unsigned function, unsigned index);

bool cpuid_vendor_is_amd(const struct kvm_cpuid_entry2 *entries, unsigned n);

#endif
