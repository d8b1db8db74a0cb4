#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/log.h"
#include "vmm/vcpu.h"

/* How long vm_pause() waits for the vCPUs to leave KVM_RUN: a kicked vCPU
 * takes microseconds, unless a device handler it runs is stuck. */
#define VM_PAUSE_TIMEOUT_MS 5000

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
	atomic_init(&vm->paused, false);
	ret = vm_park_init(&vm->park);
	if (!ret) {
		ret = -pthread_mutex_init(&vm->ctl_lock, NULL);
		if (ret)
			vm_park_destroy(&vm->park);
	}
	if (ret) {
		snprintf(err, errlen, "cannot set up pausing: %s", strerror(-ret));
		goto fail;
	}
	vm->sync_ready = true;

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
	if (vm->sync_ready) {
		vm_park_destroy(&vm->park);
		pthread_mutex_destroy(&vm->ctl_lock);
		vm->sync_ready = false;
	}
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
	/* Parked vCPUs are out of KVM_RUN already: wake them to exit. */
	if (vm->sync_ready)
		vm_park_stop(&vm->park);
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
		/* Counted before it runs, so a pause never misses it. */
		vm_park_add_thread(&vm->park);
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret) {
			vm_park_remove_thread(&vm->park);
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
	if (vm->sync_ready)
		vm_park_stop(&vm->park);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
}

/* --- Parking --- */

int vm_park_init(struct vm_park *p)
{
	pthread_condattr_t attr;
	int ret;

	memset(p, 0, sizeof(*p));
	atomic_init(&p->requested, false);
	ret = pthread_condattr_init(&attr);
	if (ret)
		return -ret;
	/* vm_park_wait's deadline must not move with the wall clock. */
	ret = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (ret)
		goto out_attr;
	ret = pthread_mutex_init(&p->lock, NULL);
	if (ret)
		goto out_attr;
	ret = pthread_cond_init(&p->wake, &attr);
	if (ret)
		goto out_lock;
	ret = pthread_cond_init(&p->parked, &attr);
	if (ret)
		goto out_wake;
	pthread_condattr_destroy(&attr);
	return 0;
out_wake:
	pthread_cond_destroy(&p->wake);
out_lock:
	pthread_mutex_destroy(&p->lock);
out_attr:
	pthread_condattr_destroy(&attr);
	return -ret;
}

void vm_park_destroy(struct vm_park *p)
{
	pthread_cond_destroy(&p->parked);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
}

void vm_park_add_thread(struct vm_park *p)
{
	pthread_mutex_lock(&p->lock);
	p->nthreads++;
	pthread_mutex_unlock(&p->lock);
}

void vm_park_remove_thread(struct vm_park *p)
{
	pthread_mutex_lock(&p->lock);
	p->nthreads--;
	/* The waiting pauser may now have all it waits for. */
	pthread_cond_broadcast(&p->parked);
	pthread_mutex_unlock(&p->lock);
}

unsigned vm_park_threads(struct vm_park *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->nthreads;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void vm_park_request(struct vm_park *p)
{
	atomic_store(&p->requested, true);
	/*
	 * Pairs with the fence in vcpu_clear_kick(): either the vCPU's next
	 * check sees the request, or its clearing of immediate_exit comes
	 * before the kick that follows this in immediate_exit's modification
	 * order (C11 §7.17.3: seq_cst fences order modifications), so KVM_RUN
	 * returns at once. A vCPU never runs on with the request missed.
	 */
	atomic_thread_fence(memory_order_seq_cst);
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int vm_park_wait(struct vm_park *p, unsigned timeout_ms)
{
	struct timespec deadline;
	int ret = 0;

	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&p->lock);
	while (!p->stopping && p->nparked < p->nthreads) {
		ret = pthread_cond_timedwait(&p->parked, &p->lock, &deadline);
		if (ret == ETIMEDOUT && !p->stopping && p->nparked < p->nthreads)
			break;
		ret = 0;
	}
	if (p->stopping)
		ret = -ESHUTDOWN;
	else if (ret)
		ret = -ETIMEDOUT;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void vm_park_release(struct vm_park *p)
{
	pthread_mutex_lock(&p->lock);
	atomic_store(&p->requested, false);
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

void vm_park_self(struct vm_park *p)
{
	pthread_mutex_lock(&p->lock);
	if (atomic_load(&p->requested) && !p->stopping) {
		p->nparked++;
		pthread_cond_broadcast(&p->parked);
		while (atomic_load(&p->requested) && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		p->nparked--;
	}
	pthread_mutex_unlock(&p->lock);
}

void vm_park_stop(struct vm_park *p)
{
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_cond_broadcast(&p->parked);
	pthread_mutex_unlock(&p->lock);
}

/* --- Pause and resume --- */

/* KVM API, "KVM_KVMCLOCK_CTRL": sets PVCLOCK_GUEST_STOPPED in the
 * vCPU's pvclock page, which Linux's watchdog checks before reporting a
 * soft lockup (kvm_check_and_clear_guest_paused()). EINVAL: the guest has
 * not enabled kvmclock on this vCPU (not a Linux guest, or not yet). */
static void tell_kvmclock_paused(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];

		if (vcpu->fd < 0 || ioctl(vcpu->fd, KVM_KVMCLOCK_CTRL, 0) == 0)
			continue;
		if (errno == EINVAL || errno == ENOTTY)
			pr_debug("vCPU %u: KVM_KVMCLOCK_CTRL: %s (kvmclock not in use)", i,
				 strerror(errno));
		else
			pr_warn("vCPU %u: KVM_KVMCLOCK_CTRL: %s", i, strerror(errno));
	}
}

int vm_pause(struct vm *vm, char *err, size_t errlen)
{
	enum vm_stop_reason stop;
	int ret = 0;

	pthread_mutex_lock(&vm->ctl_lock);
	stop = vm_stop_reason(vm);
	if (atomic_load(&vm->paused)) {
		snprintf(err, errlen, "the VM is already paused");
		ret = -EALREADY;
	} else if (stop != VM_STOP_NONE) {
		snprintf(err, errlen, "the VM is stopping (%s)", vm_stop_reason_name(stop));
		ret = -ESHUTDOWN;
	} else if (!vm_park_threads(&vm->park)) {
		snprintf(err, errlen, "the VM has not started");
		ret = -EINVAL;
	}
	if (ret)
		goto out;

	vm_park_request(&vm->park);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	ret = vm_park_wait(&vm->park, VM_PAUSE_TIMEOUT_MS);
	if (ret) {
		vm_park_release(&vm->park);
		if (ret == -ESHUTDOWN) {
			stop = vm_stop_reason(vm);
			snprintf(err, errlen, "the VM stopped while pausing (%s)",
				 vm_stop_reason_name(stop));
		} else {
			snprintf(err, errlen, "cannot pause: a vCPU did not leave KVM_RUN "
				 "within %u ms", VM_PAUSE_TIMEOUT_MS);
		}
		goto out;
	}
	tell_kvmclock_paused(vm);
	atomic_store(&vm->paused, true);
	pr_info("VM paused");
out:
	pthread_mutex_unlock(&vm->ctl_lock);
	return ret;
}

int vm_resume(struct vm *vm, char *err, size_t errlen)
{
	enum vm_stop_reason stop;
	int ret = 0;

	pthread_mutex_lock(&vm->ctl_lock);
	stop = vm_stop_reason(vm);
	if (!atomic_load(&vm->paused)) {
		if (stop != VM_STOP_NONE) {
			snprintf(err, errlen, "the VM is stopping (%s)", vm_stop_reason_name(stop));
			ret = -ESHUTDOWN;
		} else {
			snprintf(err, errlen, "the VM is not paused");
			ret = -EALREADY;
		}
		goto out;
	}
	atomic_store(&vm->paused, false);
	vm_park_release(&vm->park);
	pr_info("VM resumed");
out:
	pthread_mutex_unlock(&vm->ctl_lock);
	return ret;
}

bool vm_paused(struct vm *vm)
{
	return atomic_load(&vm->paused);
}
