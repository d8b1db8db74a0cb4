#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Capabilities the machine model cannot do without (KVM API document, §4). */
static const struct {
	long cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQ_INJECT_STATUS, "KVM_CAP_IRQ_INJECT_STATUS" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE" },
};

int kvm_check_cap(const struct kvm *kvm, long cap)
{
	return ioctl(kvm->fd, KVM_CHECK_EXTENSION, cap);
}

static struct kvm_cpuid2 *get_supported_cpuid(int fd)
{
	/* KVM says E2BIG while the buffer is too small: grow until it fits.
	 * Start at 256, KVM's own cap (KVM_MAX_CPUID_ENTRIES) since Linux 5.x,
	 * so that one call does: each call executes every CPUID leaf on the
	 * host, ~0.3 ms where CPUID traps to an outer hypervisor, and hosts
	 * already report more than 64 entries (75 with AVX-512). */
	for (unsigned n = 256; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

static struct kvm_msr_list *get_msr_list(int fd)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;

	if (ioctl(fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return NULL;
	list->nmsrs = probe.nmsrs;
	if (ioctl(fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		free(list);
		return NULL;
	}
	return list;
}

int kvm_open(struct kvm *kvm, const char *path, char *err, size_t errlen)
{
	int version, n;
	size_t i;

	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		int e = errno;

		if (e == ENOENT)
			snprintf(err, errlen, "%s: no such device: is KVM enabled (kvm_intel or kvm_amd loaded)?", path);
		else if (e == EACCES || e == EPERM)
			snprintf(err, errlen, "%s: permission denied: run as root or join the kvm group", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "%s: KVM API version %d, popek needs %d", path, version,
			 KVM_API_VERSION);
		goto fail;
	}
	for (i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (kvm_check_cap(kvm, required_caps[i].cap) <= 0) {
			snprintf(err, errlen, "%s: KVM lacks %s", path, required_caps[i].name);
			goto fail;
		}
	}
	kvm->vcpu_mmap_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "%s: KVM_GET_VCPU_MMAP_SIZE failed", path);
		goto fail;
	}
	/* KVM_CAP_MAX_VCPUS is the hard limit; older kernels only have NR_VCPUS. */
	n = kvm_check_cap(kvm, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = kvm_check_cap(kvm, KVM_CAP_NR_VCPUS);
	kvm->max_vcpus = n > 0 ? (unsigned)n : 1;
	kvm->supported_cpuid = get_supported_cpuid(kvm->fd);
	if (!kvm->supported_cpuid) {
		snprintf(err, errlen, "%s: KVM_GET_SUPPORTED_CPUID failed: %s", path, strerror(errno));
		goto fail;
	}
	kvm->msr_list = get_msr_list(kvm->fd);
	if (!kvm->msr_list) {
		snprintf(err, errlen, "%s: KVM_GET_MSR_INDEX_LIST failed: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	kvm_close(kvm);
	return -ENODEV;
}

void kvm_close(struct kvm *kvm)
{
	if (kvm->fd > 0)
		close(kvm->fd);
	free(kvm->supported_cpuid);
	free(kvm->msr_list);
	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = -1;
}

int kvm_msr_supported(const struct kvm *kvm, unsigned index)
{
	for (unsigned i = 0; kvm->msr_list && i < kvm->msr_list->nmsrs; i++)
		if (kvm->msr_list->indices[i] == index)
			return 1;
	return 0;
}
