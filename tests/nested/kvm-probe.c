// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvm-probe: tell how faithfully /dev/kvm runs guest ring-0 code.
 *
 * Standalone on purpose (no popek code): the nested test harness runs it
 * on the host and inside the L1 VM to decide whether system tests can
 * boot guest kernels on the host's /dev/kvm directly.
 *
 * Two tests, each in a fresh VM with one vCPU and 64 KiB of memory:
 *
 *   ring0-loop  real-mode ring-0 loop "dec ecx; jnz" of N iterations,
 *               ended by "out 0x10". Time is measured around KVM_RUN,
 *               minus a 1-iteration run (entry/exit overhead). The number
 *               of iterations grows until one run lasts >= ~200 ms,
 *               unless --iterations is given.
 *               Prints: ring0-loop: iterations=N ns-per-iteration=X ...
 *
 *   ring3-int   the vCPU starts in 32-bit protected mode at CPL 3 (set up
 *               through KVM_SET_SREGS, no ring-0 code needed to get
 *               there) and executes "int 0x80" through a DPL-3 interrupt
 *               gate; the ring-0 handler does "out 0x11". That is the
 *               ring 3 -> ring 0 transition every OS kernel relies on.
 *               Prints: ring3-int: ok  |  ring3-int: fail (<why>)
 *
 * Only instructions KVM's instruction emulator handles are used in ring 0
 * (dec, jnz, mov, out, hlt). Every KVM_RUN is bounded by an alarm, so the
 * probe never hangs.
 *
 * Exit status: 0 when the tests ran (whatever ring3-int found), 1 on a
 * setup failure or when the ring-0 loop did not complete, 2 on bad usage.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000UL

#define LOOP_CODE 0x1000UL
#define LOOP_PORT 0x10

#define GDT_ADDR 0x2000UL
#define IDT_ADDR 0x2800UL
#define TSS_ADDR 0x3000UL
#define USER_CODE 0x4000UL
#define HANDLER_CODE 0x5000UL
#define KSTACK_TOP 0x9000UL
#define USTACK_TOP 0xa000UL
#define INT_PORT 0x11
#define INT_VECTOR 0x80

static int kvm_fd = -1;
static unsigned int run_timeout_s = 10;
static volatile sig_atomic_t alarm_fired;

struct vm {
	int fd;
	int vcpu_fd;
	uint8_t *mem;
	struct kvm_run *run;
	size_t run_size;
};

static void die(const char *what)
{
	fprintf(stderr, "kvm-probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

static void vm_create(struct vm *vm)
{
	vm->fd = ioctl(kvm_fd, KVM_CREATE_VM, 0UL);
	if (vm->fd < 0)
		die("KVM_CREATE_VM");

	vm->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED)
		die("mmap guest memory");

	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)vm->mem,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	vm->vcpu_fd = ioctl(vm->fd, KVM_CREATE_VCPU, 0UL);
	if (vm->vcpu_fd < 0)
		die("KVM_CREATE_VCPU");

	int size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0UL);
	if (size < (int)sizeof(struct kvm_run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size = (size_t)size;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run");
}

static void vm_destroy(struct vm *vm)
{
	munmap(vm->run, vm->run_size);
	close(vm->vcpu_fd);
	close(vm->fd);
	munmap(vm->mem, MEM_SIZE);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/*
 * Run the vCPU until it does an I/O exit (returns the port), or until
 * something else ends it: returns -1 and describes why in 'why'.
 * Time spent in KVM_RUN is added to *ns.
 */
static int vm_run_until_io(struct vm *vm, double *ns, char *why, size_t len)
{
	alarm_fired = 0;
	alarm(run_timeout_s);
	for (;;) {
		double t0 = now_ns();
		int r = ioctl(vm->vcpu_fd, KVM_RUN, 0UL);
		double t1 = now_ns();

		if (ns)
			*ns += t1 - t0;
		if (r < 0) {
			if (errno == EINTR && !alarm_fired)
				continue;
			if (errno == EINTR)
				snprintf(why, len, "no exit within %u s",
					 run_timeout_s);
			else
				snprintf(why, len, "KVM_RUN: %s",
					 strerror(errno));
			alarm(0);
			return -1;
		}
		switch (vm->run->exit_reason) {
		case KVM_EXIT_IO:
			alarm(0);
			return vm->run->io.port;
		case KVM_EXIT_INTR:
			if (!alarm_fired)
				continue;
			snprintf(why, len, "no exit within %u s",
				 run_timeout_s);
			alarm(0);
			return -1;
		case KVM_EXIT_HLT:
			snprintf(why, len, "unexpected hlt");
			break;
		case KVM_EXIT_SHUTDOWN:
			snprintf(why, len, "shutdown (triple fault)");
			break;
		case KVM_EXIT_FAIL_ENTRY:
			snprintf(why, len, "entry failed, reason 0x%llx",
				 (unsigned long long)vm->run->fail_entry
					 .hardware_entry_failure_reason);
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			snprintf(why, len, "internal error, suberror %u",
				 vm->run->internal.suberror);
			break;
		default:
			snprintf(why, len, "exit reason %u",
				 vm->run->exit_reason);
			break;
		}
		alarm(0);
		return -1;
	}
}

/* ---- ring0-loop ---------------------------------------------------- */

static const uint8_t loop_code[] = {
	0x66, 0x49,		/* 1: dec ecx            */
	0x75, 0xfc,		/*    jnz 1b             */
	0xe6, LOOP_PORT,	/*    out LOOP_PORT, al  */
	0xf4,			/*    hlt                */
};

/* One run of the loop with 'iterations' iterations; returns ns in KVM_RUN. */
static double loop_once(struct vm *vm, uint32_t iterations)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	char why[128];
	double ns = 0;

	if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = sregs.es.base = sregs.ss.base = 0;
	sregs.ds.selector = sregs.es.selector = sregs.ss.selector = 0;
	if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = LOOP_CODE;
	regs.rflags = 0x2;
	regs.rcx = iterations;
	regs.rsp = 0x8000;
	if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	int port = vm_run_until_io(vm, &ns, why, sizeof(why));
	if (port != LOOP_PORT) {
		if (port >= 0)
			snprintf(why, sizeof(why), "out to port 0x%x", port);
		printf("ring0-loop: fail (%s)\n", why);
		fflush(stdout);
		exit(1);
	}
	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs) < 0)
		die("KVM_GET_REGS");
	if ((uint32_t)regs.rcx != 0) {
		printf("ring0-loop: fail (ecx=%u at exit, expected 0)\n",
		       (unsigned int)regs.rcx);
		exit(1);
	}
	return ns;
}

static void test_ring0_loop(uint64_t fixed_iterations)
{
	struct vm vm;

	vm_create(&vm);
	memcpy(vm.mem + LOOP_CODE, loop_code, sizeof(loop_code));

	/* Warm up, and measure the entry/exit overhead. */
	loop_once(&vm, 1);
	double overhead = loop_once(&vm, 1);
	double o2 = loop_once(&vm, 1);
	if (o2 < overhead)
		overhead = o2;

	uint64_t n = fixed_iterations ? fixed_iterations : 1000;
	double total;
	for (;;) {
		total = loop_once(&vm, (uint32_t)n);
		if (fixed_iterations)
			break;
		/* Aim for ~200 ms per run; never more than 2^31 iterations. */
		double per = (total - overhead) / (double)n;
		if (total >= 2e8 || n >= (1ULL << 31))
			break;
		uint64_t want = per > 0 ? (uint64_t)(2.5e8 / per) : n * 16;
		if (want > n * 16)
			want = n * 16;
		if (want <= n)
			want = n * 2;
		if (want > (1ULL << 31))
			want = 1ULL << 31;
		n = want;
	}

	double per = (total - overhead) / (double)(n > 1 ? n - 1 : 1);
	if (per < 0)
		per = 0;
	printf("ring0-loop: iterations=%llu ns-per-iteration=%.2f "
	       "total-ns=%.0f overhead-ns=%.0f\n",
	       (unsigned long long)n, per, total, overhead);
	fflush(stdout);
	vm_destroy(&vm);
}

/* ---- ring3-int ----------------------------------------------------- */

static void put_desc(uint8_t *p, uint32_t base, uint32_t limit, uint8_t access,
		     uint8_t flags)
{
	p[0] = limit & 0xff;
	p[1] = (limit >> 8) & 0xff;
	p[2] = base & 0xff;
	p[3] = (base >> 8) & 0xff;
	p[4] = (base >> 16) & 0xff;
	p[5] = access;
	p[6] = (uint8_t)((flags << 4) | ((limit >> 16) & 0x0f));
	p[7] = (base >> 24) & 0xff;
}

static struct kvm_segment flat_seg(uint16_t sel, uint8_t type, uint8_t dpl)
{
	struct kvm_segment s = {
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = dpl,
		.db = 1,
		.s = 1,
		.l = 0,
		.g = 1,
	};
	return s;
}

static int cpu_is_intel(void)
{
	unsigned int eax, ebx, ecx, edx;

	if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx))
		return 0;
	/* "GenuineIntel" */
	return ebx == 0x756e6547 && edx == 0x49656e69 && ecx == 0x6c65746e;
}

static void test_ring3_int(void)
{
	static const uint8_t user_code[] = {
		0xcd, INT_VECTOR,	/* int 0x80   */
		0xeb, 0xfe,		/* jmp .      */
	};
	static const uint8_t handler_code[] = {
		0xb0, 0x5a,		/* mov al, 0x5a     */
		0xe6, INT_PORT,		/* out INT_PORT, al */
		0xf4,			/* hlt              */
	};
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct vm vm;
	char why[128];

	vm_create(&vm);

	/* GDT: null, code0 0x08, data0 0x10, code3 0x18, data3 0x20, tss 0x28 */
	uint8_t *gdt = vm.mem + GDT_ADDR;
	put_desc(gdt + 0x08, 0, 0xfffff, 0x9b, 0xc);
	put_desc(gdt + 0x10, 0, 0xfffff, 0x93, 0xc);
	put_desc(gdt + 0x18, 0, 0xfffff, 0xfb, 0xc);
	put_desc(gdt + 0x20, 0, 0xfffff, 0xf3, 0xc);
	put_desc(gdt + 0x28, TSS_ADDR, 0x67, 0x8b, 0x0);	/* busy TSS */

	/* TSS: esp0 at offset 4, ss0 at offset 8; no I/O bitmap. */
	uint8_t *tss = vm.mem + TSS_ADDR;
	uint32_t esp0 = KSTACK_TOP, ss0 = 0x10, iomap = 0x68;
	memcpy(tss + 4, &esp0, 4);
	memcpy(tss + 8, &ss0, 4);
	memcpy(tss + 0x66, &iomap, 2);

	/* IDT entry INT_VECTOR: 32-bit interrupt gate, DPL 3, -> 0x08:handler */
	uint8_t *gate = vm.mem + IDT_ADDR + INT_VECTOR * 8;
	gate[0] = HANDLER_CODE & 0xff;
	gate[1] = (HANDLER_CODE >> 8) & 0xff;
	gate[2] = 0x08;
	gate[3] = 0x00;
	gate[4] = 0;
	gate[5] = 0xee;
	gate[6] = (HANDLER_CODE >> 16) & 0xff;
	gate[7] = (HANDLER_CODE >> 24) & 0xff;

	memcpy(vm.mem + USER_CODE, user_code, sizeof(user_code));
	memcpy(vm.mem + HANDLER_CODE, handler_code, sizeof(handler_code));

	if (ioctl(vm.vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cr0 = 0x11;	/* PE | ET, no paging */
	sregs.cr4 = 0;
	sregs.efer = 0;
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = 0x30 - 1;
	sregs.idt.base = IDT_ADDR;
	sregs.idt.limit = 256 * 8 - 1;
	sregs.cs = flat_seg(0x18 | 3, 0xb, 3);
	sregs.ds = flat_seg(0x20 | 3, 0x3, 3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	/*
	 * TR: the hardware loads it as a busy TSS (type 11) and VMX entry
	 * insists on that. QEMU's TCG (which emulates AMD-V for a nested L1)
	 * keeps the type of the descriptor it loaded, available (9), and
	 * aborts the whole emulator with "invalid tss type" on a privilege
	 * change if it finds 11; SVM hardware does not check the type. So:
	 * 11 on Intel, 9 elsewhere.
	 */
	sregs.tr = (struct kvm_segment){
		.base = TSS_ADDR, .limit = 0x67, .selector = 0x28,
		.type = cpu_is_intel() ? 0xb : 0x9, .present = 1, .dpl = 0,
		.s = 0,
	};
	sregs.ldt = (struct kvm_segment){
		.selector = 0, .type = 0x2, .present = 1, .unusable = 1,
	};
	if (ioctl(vm.vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = USER_CODE;
	regs.rsp = USTACK_TOP;
	regs.rflags = 0x2;
	if (ioctl(vm.vcpu_fd, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	int port = vm_run_until_io(&vm, NULL, why, sizeof(why));
	if (port == INT_PORT) {
		if (ioctl(vm.vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
			die("KVM_GET_SREGS");
		if ((sregs.cs.selector & 3) == 0)
			printf("ring3-int: ok\n");
		else
			printf("ring3-int: fail (handler ran with cs=0x%x)\n",
			       sregs.cs.selector);
	} else {
		if (port >= 0)
			snprintf(why, sizeof(why), "out to port 0x%x", port);
		printf("ring3-int: fail (%s)\n", why);
	}
	fflush(stdout);
	vm_destroy(&vm);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvm-probe [--test ring0-loop|ring3-int|all] "
		"[--iterations N] [--timeout S]\n");
}

int main(int argc, char **argv)
{
	const char *test = "all";
	uint64_t iterations = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		char *end;
		if (!strcmp(a, "--test")) {
			test = argv[++i];
		} else if (!strcmp(a, "--iterations")) {
			iterations = strtoull(argv[++i], &end, 0);
			if (*end || iterations < 2 || iterations > (1ULL << 31)) {
				fprintf(stderr, "kvm-probe: bad --iterations\n");
				return 2;
			}
		} else if (!strcmp(a, "--timeout")) {
			unsigned long t = strtoul(argv[++i], &end, 0);
			if (*end || t == 0 || t > 3600) {
				fprintf(stderr, "kvm-probe: bad --timeout\n");
				return 2;
			}
			run_timeout_s = (unsigned int)t;
		} else {
			usage(stderr);
			return 2;
		}
	}
	int do_loop = !strcmp(test, "all") || !strcmp(test, "ring0-loop");
	int do_int = !strcmp(test, "all") || !strcmp(test, "ring3-int");
	if (!do_loop && !do_int) {
		usage(stderr);
		return 2;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: KVM_RUN gets EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		die("open /dev/kvm");
	int api = ioctl(kvm_fd, KVM_GET_API_VERSION, 0UL);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "kvm-probe: KVM API version %d, expected %d\n",
			api, KVM_API_VERSION);
		return 1;
	}

	if (do_loop)
		test_ring0_loop(iterations);
	if (do_int)
		test_ring3_int();
	return 0;
}
