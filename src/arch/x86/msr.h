/* Model-specific registers at vCPU reset. */
#ifndef POPEK_ARCH_X86_MSR_H
#define POPEK_ARCH_X86_MSR_H

#include <stdbool.h>
#include <linux/kvm.h>

#define MSR_IA32_TSC            0x00000010
#define MSR_IA32_SYSENTER_CS    0x00000174
#define MSR_IA32_SYSENTER_ESP   0x00000175
#define MSR_IA32_SYSENTER_EIP   0x00000176
#define MSR_IA32_MISC_ENABLE    0x000001a0
#define MSR_MTRR_DEF_TYPE       0x000002ff
#define MSR_IA32_CR_PAT         0x00000277
#define MSR_EFER                0xc0000080
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102

#define MSR_MISC_ENABLE_FAST_STRING (1ULL << 0)
/* MTRRs enabled, default memory type write-back (SDM vol. 3A §12.11.2.1):
 * there is no firmware to program them, and uncached RAM would crawl. */
#define MSR_MTRR_DEF_TYPE_VALUE ((1ULL << 11) | 6)
#define MSR_PAT_RESET_VALUE     0x0007040600070406ULL

#define MSR_RESET_MAX 16

/* Fills out with the MSR values of a vCPU after a real reset, skipping those
 * supported() says KVM does not save (KVM_GET_MSR_INDEX_LIST). Returns the
 * count. */
unsigned msr_reset_values(struct kvm_msr_entry *out, unsigned max,
			  bool (*supported)(void *opaque, unsigned index), void *opaque);

#endif
