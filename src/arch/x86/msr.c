#include "arch/x86/msr.h"

unsigned msr_reset_values(struct kvm_msr_entry *out, unsigned max,
			  bool (*supported)(void *opaque, unsigned index), void *opaque)
{
	/* Values after RESET (SDM vol. 3A table 10-1), except the two that a
	 * PC's firmware would have set before handing over: MTRRs on, and
	 * fast strings on. */
	static const struct kvm_msr_entry reset[] = {
		{ .index = MSR_IA32_SYSENTER_CS, .data = 0 },
		{ .index = MSR_IA32_SYSENTER_ESP, .data = 0 },
		{ .index = MSR_IA32_SYSENTER_EIP, .data = 0 },
		{ .index = MSR_STAR, .data = 0 },
		{ .index = MSR_LSTAR, .data = 0 },
		{ .index = MSR_CSTAR, .data = 0 },
		{ .index = MSR_SYSCALL_MASK, .data = 0 },
		{ .index = MSR_KERNEL_GS_BASE, .data = 0 },
		{ .index = MSR_IA32_TSC, .data = 0 },
		{ .index = MSR_IA32_CR_PAT, .data = MSR_PAT_RESET_VALUE },
		{ .index = MSR_IA32_MISC_ENABLE, .data = MSR_MISC_ENABLE_FAST_STRING },
		{ .index = MSR_MTRR_DEF_TYPE, .data = MSR_MTRR_DEF_TYPE_VALUE },
	};
	unsigned n = 0;

	for (unsigned i = 0; i < sizeof(reset) / sizeof(reset[0]) && n < max; i++)
		if (!supported || supported(opaque, reset[i].index))
			out[n++] = reset[i];
	return n;
}
