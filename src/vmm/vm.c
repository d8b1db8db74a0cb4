#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/log.h"
#include "vmm/vcpu.h"

static void stopper_cb(void *opaque, enum vm_stop_reason reason, int status)
{
	vm_request_stop(opaque, reason, status);
}

static void irq_line_cb(void *opaque, unsigned gsi, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0)
		pr_warn("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

void vm_irq_line(struct vm *vm, unsigned gsi, struct irq_line *line)
{
	*line = (struct irq_line){ .set_level = irq_line_cb, .opaque = vm, .gsi = gsi };
}

static int register_ram(struct vm *vm, char *err, size_t errlen)
{
	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = (uint32_t)i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION (slot %d, %llu bytes): %s",
				 i, (unsigned long long)r->size, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/* The PC's interrupt controllers and timer, in the kernel: the exits they
 * would cost in user space are the most frequent ones of a running OS. */
static int create_irqchip(struct vm *vm, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	/* Both addresses must be set before the first vCPU exists: Intel VMX
	 * needs them for real-mode emulation (KVM API §4.48, §4.57). */
	if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ LAYOUT_KVM_IDENTITY_MAP }) < 0) {
		snprintf(err, errlen, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0) {
		snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		snprintf(err, errlen, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0) {
		snprintf(err, errlen, "KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int vm_create(struct vm *vm, const struct kvm *kvm, uint64_t ram_size, unsigned ncpus,
	      char *err, size_t errlen)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm = kvm;
	vm->fd = -1;
	vm->stop_eventfd = -1;
	vm->ncpus = ncpus;
	atomic_init(&vm->stop_reason, VM_STOP_NONE);
	atomic_init(&vm->stop_status, 0);
	vm->stopper = (struct vm_stopper){ .stop = stopper_cb, .opaque = vm };
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");

	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_eventfd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		ret = -errno;
		goto fail;
	}
	ret = guest_memory_init(&vm->mem, ram_size);
	if (ret) {
		snprintf(err, errlen, "cannot reserve %llu MiB of address space for guest RAM: %s",
			 (unsigned long long)(ram_size >> 20), strerror(-ret));
		goto fail;
	}
	vm->fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	ret = create_irqchip(vm, err, errlen);
	if (ret)
		goto fail;
	ret = register_ram(vm, err, errlen);
	if (ret)
		goto fail;

	vm->vcpus = calloc(ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < ncpus; i++) {
		vm->vcpus[i].fd = -1;
		ret = vcpu_init(&vm->vcpus[i], vm, i, err, errlen);
		if (ret)
			goto fail;
	}
	return 0;
fail:
	vm_destroy(vm);
	return ret ? ret : -EINVAL;
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	guest_memory_destroy(&vm->mem);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	if (vm->stop_eventfd >= 0)
		close(vm->stop_eventfd);
	vm->stop_eventfd = -1;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status)
{
	int expected = VM_STOP_NONE;

	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason))
		return;   /* the first reason stands */
	atomic_store(&vm->stop_status, status);
	/* Kick everyone, the requesting vCPU included (harmless): no vCPU may
	 * run guest code once a stop is decided. */
	for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	if (write(vm->stop_eventfd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
		pr_warn("stop eventfd: %s", strerror(errno));
}

enum vm_stop_reason vm_stop_reason(struct vm *vm)
{
	return (enum vm_stop_reason)atomic_load(&vm->stop_reason);
}

const char *vm_stop_reason_name(enum vm_stop_reason reason)
{
	switch (reason) {
	case VM_STOP_NONE: return "running";
	case VM_STOP_POWEROFF: return "guest power-off";
	case VM_STOP_RESET: return "guest reset";
	case VM_STOP_DEBUG_EXIT: return "guest debug-exit";
	case VM_STOP_USER: return "stopped from the host";
	case VM_STOP_SHUTDOWN: return "guest triple fault";
	case VM_STOP_PANIC: return "guest kernel panic";
	case VM_STOP_ERROR: return "VMM or KVM error";
	}
	return "unknown";
}

int vm_start(struct vm *vm, char *err, size_t errlen)
{
	int ret = vcpu_install_kick_signal();

	if (ret) {
		snprintf(err, errlen, "sigaction: %s", strerror(-ret));
		return ret;
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret) {
			snprintf(err, errlen, "cannot start vCPU %u thread: %s", i, strerror(-ret));
			vm_request_stop(vm, VM_STOP_ERROR, POPEK_EXIT_VMM_ERROR);
			return ret;
		}
	}
	return 0;
}

void vm_join(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
}
