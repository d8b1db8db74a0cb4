/* The KVM system: /dev/kvm, its API version and the capabilities popek uses. */
#ifndef POPEK_VMM_KVM_H
#define POPEK_VMM_KVM_H

#include <stddef.h>
#include <linux/kvm.h>

struct kvm {
	int fd;
	int vcpu_mmap_size;
	unsigned max_vcpus;
	struct kvm_cpuid2 *supported_cpuid;   /* KVM_GET_SUPPORTED_CPUID */
	struct kvm_msr_list *msr_list;        /* KVM_GET_MSR_INDEX_LIST */
};

/* Opens path (normally /dev/kvm), checks the API version and every
 * capability popek relies on. On failure err holds one line. */
int kvm_open(struct kvm *kvm, const char *path, char *err, size_t errlen);
void kvm_close(struct kvm *kvm);

/* KVM_CHECK_EXTENSION on the system fd; <= 0 means absent. */
int kvm_check_cap(const struct kvm *kvm, long cap);
int kvm_msr_supported(const struct kvm *kvm, unsigned index);

#endif
