#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/msr.h"
#include "arch/x86/regs.h"
#include "util/log.h"
#include "vmm/vm.h"

/* Interrupts KVM_RUN; the handler does nothing, the EINTR is the point. */
#define VCPU_KICK_SIGNAL (SIGRTMIN + 1)

/* Local APIC register offsets and LVT delivery modes (SDM vol. 3A §11.5.1). */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI    (4u << 8)
#define APIC_MODE_EXTINT (7u << 8)

static int set_cpuid(struct vcpu *vcpu, char *err, size_t errlen)
{
	const struct kvm_cpuid2 *sup = vcpu->vm->kvm->supported_cpuid;
	unsigned max = sup->nent + CPUID_EXTRA_ENTRIES;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	int n, ret = 0;

	if (!c)
		return -ENOMEM;
	n = cpuid_build(sup->entries, sup->nent, vcpu->index, vcpu->vm->ncpus, c->entries, max);
	if (n < 0) {
		ret = n;
		snprintf(err, errlen, "vCPU %u: cannot build CPUID", vcpu->index);
	} else {
		c->nent = (unsigned)n;
		if (ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0) {
			ret = -errno;
			snprintf(err, errlen, "vCPU %u: KVM_SET_CPUID2: %s", vcpu->index, strerror(errno));
		}
	}
	free(c);
	return ret;
}

static int set_reset_msrs(struct vcpu *vcpu)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[MSR_RESET_MAX];
	} m = { 0 };
	unsigned n = msr_reset_values(m.entries, MSR_RESET_MAX, NULL, NULL);
	unsigned done = 0;

	/* KVM_SET_MSRS stops at the first MSR it refuses and returns how many
	 * it set: skip that one (an MSR this host's KVM lacks) and go on. */
	while (done < n) {
		int ret;

		memmove(m.entries, m.entries + done, (n - done) * sizeof(m.entries[0]));
		n -= done;
		m.hdr.nmsrs = n;
		ret = ioctl(vcpu->fd, KVM_SET_MSRS, &m);
		if (ret < 0)
			return -errno;
		if ((unsigned)ret < n) {
			pr_debug("vCPU %u: KVM refused MSR 0x%x", vcpu->index,
				 m.entries[ret].index);
			done = (unsigned)ret + 1;
		} else {
			done = n;
		}
	}
	return 0;
}

/* What a PC BIOS leaves behind: LINT0 takes the 8259's ExtINT, LINT1 NMI
 * (MP spec 1.4 §3.6.2.2, virtual wire mode). */
static int set_lapic_lints(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;
	uint32_t v;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	memcpy(&v, &lapic.regs[APIC_LVT0], 4);
	v = (v & ~0x700u) | APIC_MODE_EXTINT;
	memcpy(&lapic.regs[APIC_LVT0], &v, 4);
	memcpy(&v, &lapic.regs[APIC_LVT1], 4);
	v = (v & ~0x700u) | APIC_MODE_NMI;
	memcpy(&lapic.regs[APIC_LVT1], &v, 4);
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

int vcpu_init(struct vcpu *vcpu, struct vm *vm, unsigned index, char *err, size_t errlen)
{
	void *run;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VCPU %u: %s", index, strerror(errno));
		return -errno;
	}
	run = mmap(NULL, (size_t)vm->kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu->fd, 0);
	if (run == MAP_FAILED) {
		snprintf(err, errlen, "vCPU %u: mmap of kvm_run: %s", index, strerror(errno));
		return -errno;
	}
	vcpu->run = run;
	ret = set_cpuid(vcpu, err, errlen);
	if (ret)
		return ret;
	ret = set_reset_msrs(vcpu);
	if (!ret)
		ret = set_lapic_lints(vcpu);
	if (ret) {
		snprintf(err, errlen, "vCPU %u: MSR/LAPIC set-up: %s", index, strerror(-ret));
		return ret;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, (size_t)vcpu->vm->kvm->vcpu_mmap_size);
	vcpu->run = NULL;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}

static void kick_handler(int sig)
{
	(void)sig;
}

int vcpu_install_kick_signal(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must come back with EINTR. */
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->run)
		return;
	/* immediate_exit covers the window before the thread enters KVM_RUN;
	 * the signal gets it out if it is inside (KVM API §5 "immediate_exit"). */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

/*
 * Undoes a kick, on the vCPU's own thread, once it is out of KVM_RUN and
 * about to look again at why it was kicked: otherwise every later KVM_RUN
 * would return at once. The fence pairs with vm_park_request()'s (and
 * vm_request_stop()'s sequentially consistent store): a request made
 * before a kick that this store could overwrite is seen by the loop's next
 * check.
 */
static void vcpu_clear_kick(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_RELAXED);
	atomic_thread_fence(memory_order_seq_cst);
}

static void report_fatal(struct vcpu *vcpu, const char *what)
{
	/* One log line, then the registers for a post-mortem. */
	pr_err("vCPU %u: %s", vcpu->index, what);
	regs_dump(vcpu->fd, stderr);
}

static void handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	struct bus *pio = &vcpu->vm->pio;

	/* count > 1 for string I/O (REP INS/OUTS): KVM hands us the whole
	 * buffer, one element after another. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT)
			bus_write(pio, run->io.port, data, run->io.size);
		else
			bus_read(pio, run->io.port, data, run->io.size);
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len <= 8 ? run->mmio.len : 8;

	if (run->mmio.is_write)
		bus_write(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
	else
		bus_read(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, len);
}

static void handle_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vcpu->vm, VM_STOP_POWEROFF, POPEK_EXIT_OK);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(vcpu->vm, VM_STOP_RESET, POPEK_EXIT_OK);
		break;
	default:
		report_fatal(vcpu, "guest crash reported by KVM (KVM_EXIT_SYSTEM_EVENT)");
		vm_request_stop(vcpu->vm, VM_STOP_ERROR, POPEK_EXIT_VMM_ERROR);
		break;
	}
}

static const char *const exit_kind_names[VCPU_EXIT_KINDS] = {
	[VCPU_EXIT_IO_IN] = "io_in",
	[VCPU_EXIT_IO_OUT] = "io_out",
	[VCPU_EXIT_MMIO_READ] = "mmio_read",
	[VCPU_EXIT_MMIO_WRITE] = "mmio_write",
	[VCPU_EXIT_INTR] = "intr",
	[VCPU_EXIT_SHUTDOWN] = "shutdown",
	[VCPU_EXIT_SYSTEM_EVENT] = "system_event",
	[VCPU_EXIT_FAIL_ENTRY] = "fail_entry",
	[VCPU_EXIT_INTERNAL_ERROR] = "internal_error",
	[VCPU_EXIT_OTHER] = "other",
};

const char *vcpu_exit_kind_name(enum vcpu_exit_kind k)
{
	return (unsigned)k < VCPU_EXIT_KINDS ? exit_kind_names[k] : "other";
}

static enum vcpu_exit_kind exit_kind(const struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return run->io.direction == KVM_EXIT_IO_OUT ? VCPU_EXIT_IO_OUT : VCPU_EXIT_IO_IN;
	case KVM_EXIT_MMIO:
		return run->mmio.is_write ? VCPU_EXIT_MMIO_WRITE : VCPU_EXIT_MMIO_READ;
	case KVM_EXIT_INTR:
		return VCPU_EXIT_INTR;
	case KVM_EXIT_SHUTDOWN:
		return VCPU_EXIT_SHUTDOWN;
	case KVM_EXIT_SYSTEM_EVENT:
		return VCPU_EXIT_SYSTEM_EVENT;
	case KVM_EXIT_FAIL_ENTRY:
		return VCPU_EXIT_FAIL_ENTRY;
	case KVM_EXIT_INTERNAL_ERROR:
		return VCPU_EXIT_INTERNAL_ERROR;
	default:
		return VCPU_EXIT_OTHER;
	}
}

/* Only this thread writes: a load and a store, no locked instruction. */
static inline void stat_inc(_Atomic uint64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static inline void count_exit(struct vcpu *vcpu, enum vcpu_exit_kind k)
{
	stat_inc(&vcpu->stats.by_kind[k]);
}

/* One exit: devices on the buses, or the end of the run. Nothing here
 * allocates or takes a lock another vCPU might hold. */
static void handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char what[128];

	count_exit(vcpu, exit_kind(run));
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(vcpu);
		break;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		break;
	case KVM_EXIT_INTR:
		break;
	case KVM_EXIT_SHUTDOWN:
		report_fatal(vcpu, "guest triple fault (KVM_EXIT_SHUTDOWN)");
		vm_request_stop(vcpu->vm, VM_STOP_SHUTDOWN, POPEK_EXIT_TRIPLE_FAULT);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(vcpu);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "KVM entry failure, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		report_fatal(vcpu, what);
		vm_request_stop(vcpu->vm, VM_STOP_ERROR, POPEK_EXIT_VMM_ERROR);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u%s",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			 " (instruction emulation failed)" : "");
		report_fatal(vcpu, what);
		vm_request_stop(vcpu->vm, VM_STOP_ERROR, POPEK_EXIT_VMM_ERROR);
		break;
	default:
		snprintf(what, sizeof(what), "unexpected exit reason %u", run->exit_reason);
		report_fatal(vcpu, what);
		vm_request_stop(vcpu->vm, VM_STOP_ERROR, POPEK_EXIT_VMM_ERROR);
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (vm_stop_reason(vm) == VM_STOP_NONE) {
		/* A relaxed load: the exit path takes no lock unless pausing. */
		if (vm_park_requested(&vm->park)) {
			vm_park_self(&vm->park);
			vcpu_clear_kick(vcpu);
			continue;
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			/* Kicked (immediate_exit or the signal): the loop's
			 * checks say why; a kick whose pause was withdrawn
			 * before we parked just runs on. */
			if (errno == EINTR) {
				vcpu_clear_kick(vcpu);
				continue;
			}
			if (errno == EAGAIN)
				continue;
			pr_err("vCPU %u: KVM_RUN: %s", vcpu->index, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, POPEK_EXIT_VMM_ERROR);
			break;
		}
		handle_exit(vcpu);
	}
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	int ret = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (ret)
		return -ret;
	vcpu->thread_started = true;
	return 0;
}

void vcpu_join(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}
