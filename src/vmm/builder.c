#include "vmm/builder.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/cpuid.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "arch/x86/mptable.h"
#include "arch/x86/regs.h"
#include "devices/acpi_pm.h"
#include "devices/console.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/post.h"
#include "devices/pvpanic.h"
#include "devices/serial.h"
#include "pci/pci.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/disk.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "vmm/irq_routing.h"
#include "util/log.h"
#include "util/parse.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* The built-in guest, linked in by scripts/embed-blob.sh. */
extern const uint8_t builtin_guest_start[];
extern const uint8_t builtin_guest_end[];

/* A kernel or initrd image in host memory. */
struct file_image {
	const char *name;     /* for messages */
	uint8_t *data;        /* heap copy of a --kernel or --initrd file, or NULL */
	const uint8_t *bytes;
	size_t size;
};

struct machine {
	struct kvm kvm;
	struct vm vm;
	bool vm_created;
	struct serial *uart;
	struct console *console;
	struct i8042 *kbc;
	struct debug_exit *debug_exit;
	struct acpi_pm *acpi_pm;
	struct pvpanic *pvpanic;
	struct post_port post;
	/* PCI and the virtio devices on it. */
	struct pci_bus pci;
	struct irq_routing routing;
	bool pci_attached;
	struct virtio_rng *rng;
	struct virtio_pci *rng_pci;
	unsigned ndisks;
	struct disk *disks[OPTIONS_MAX_DISKS];   /* opened, not yet given to a device */
	struct virtio_blk *blk[OPTIONS_MAX_DISKS];
	struct virtio_pci *blk_pci[OPTIONS_MAX_DISKS];
	unsigned nnets;
	struct virtio_net *nets_opened[OPTIONS_MAX_NETS];  /* taps opened before the VM */
	struct virtio_net *net[OPTIONS_MAX_NETS];
	struct virtio_pci *net_pci[OPTIONS_MAX_NETS];
	struct virtio_balloon *balloon;
	struct virtio_pci *balloon_pci;
	/* SIGINT/SIGTERM/SIGHUP, blocked in every thread for the whole run
	 * and read here, so they stop the VM cleanly whenever they come. */
	int sigfd;
	bool host_signal;
};

/* Reads a whole --kernel or --initrd file (opt names the option in
 * messages): the loaders parse it from memory, and a private copy cannot
 * change under them. A file larger than the guest's RAM cannot be loaded,
 * so it is refused before anything is read. */
static int read_file(const char *opt, const char *path, uint64_t ram_size,
		     struct file_image *f, char *err, size_t errlen)
{
	struct stat st;
	size_t done = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s %s: %s", opt, path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", opt, path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > ram_size) {
		snprintf(err, errlen, "%s %s: %lld bytes do not fit in %llu MiB of guest memory",
			 opt, path, (long long)st.st_size, (unsigned long long)(ram_size >> 20));
		close(fd);
		return -E2BIG;
	}
	f->data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!f->data) {
		snprintf(err, errlen, "%s %s: out of memory", opt, path);
		close(fd);
		return -ENOMEM;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, f->data + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s %s: read failed: %s", opt, path,
				 n < 0 ? strerror(errno) : "file shrank while read");
			close(fd);
			free(f->data);
			f->data = NULL;
			return -EIO;
		}
		done += (size_t)n;
	}
	close(fd);
	f->name = path;
	f->bytes = f->data;
	f->size = done;
	return 0;
}

static void free_file(struct file_image *f)
{
	free(f->data);
	f->data = NULL;
	f->bytes = NULL;
}

/* Guest-physical addresses the host CPU can map (CPUID 0x80000008 EAX[7:0]). */
static unsigned guest_phys_bits(const struct kvm *kvm)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(kvm->supported_cpuid->entries,
						       kvm->supported_cpuid->nent, 0x80000008, 0);

	return e && (e->eax & 0xff) >= 32 ? e->eax & 0xff : 36;
}

static int check_config(const struct run_options *o, const struct kvm *kvm,
			char *err, size_t errlen)
{
	struct guest_memory layout;
	unsigned bits = guest_phys_bits(kvm);
	unsigned max = kvm->max_vcpus < OPTIONS_MAX_CPUS ? kvm->max_vcpus : OPTIONS_MAX_CPUS;
	struct sysinfo si;

	if (o->cpus > max) {
		snprintf(err, errlen, "--cpus %u: this host's KVM allows at most %u", o->cpus, max);
		return -EINVAL;
	}
	/* guest_memory_layout() caps RAM at 64 TiB; the CPU may allow less. */
	if (guest_memory_layout(&layout, o->memory) ||
	    guest_memory_end(&layout) > (1ULL << bits)) {
		snprintf(err, errlen, "--memory %llu GiB: does not fit in this host's "
			 "guest-physical address space (%u bits, at most 64 TiB)",
			 (unsigned long long)(o->memory >> 30), bits);
		return -E2BIG;
	}
	/* More than the host has is allowed (RAM is reserved lazily and the
	 * balloon can take it back), but worth saying. */
	if (sysinfo(&si) == 0 &&
	    o->memory > ((uint64_t)si.totalram + si.totalswap) * si.mem_unit)
		pr_warn("--memory %llu MiB is more than this host's RAM and swap: "
			"the guest relies on overcommit", (unsigned long long)(o->memory >> 20));
	return 0;
}

static int attach_devices(struct machine *m, char *err, size_t errlen)
{
	struct vm *vm = &m->vm;
	struct irq_line com1_irq;
	struct serial_output out;
	int ret;

	m->console = console_create(STDIN_FILENO, STDOUT_FILENO, NULL, &vm->stopper);
	if (!m->console)
		goto nomem;
	out = console_serial_output(m->console);
	vm_irq_line(vm, SERIAL_COM1_IRQ, &com1_irq);
	m->uart = serial_create(&com1_irq, &out);
	m->kbc = i8042_create(&vm->stopper);
	if (m->kbc) {
		struct irq_line kbd_irq;

		vm_irq_line(vm, I8042_KBD_IRQ, &kbd_irq);
		i8042_set_kbd_irq(m->kbc, &kbd_irq);
	}
	m->debug_exit = debug_exit_create(&vm->stopper);
	m->acpi_pm = acpi_pm_create(&vm->stopper);
	m->pvpanic = pvpanic_create(&vm->stopper);
	if (!m->uart || !m->kbc || !m->debug_exit || !m->acpi_pm || !m->pvpanic)
		goto nomem;
	console_attach_serial(m->console, m->uart);
	post_port_init(&m->post);

	ret = bus_register(&vm->pio, SERIAL_COM1_BASE, SERIAL_NR_PORTS, &serial_bus_ops, m->uart, "com1");
	if (!ret)
		ret = bus_register(&vm->pio, I8042_DATA_PORT, 1, &i8042_data_ops, m->kbc, "i8042");
	if (!ret)
		ret = bus_register(&vm->pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, m->kbc, "i8042");
	if (!ret)
		ret = bus_register(&vm->pio, DEBUG_EXIT_BASE, DEBUG_EXIT_NR_PORTS,
				   &debug_exit_bus_ops, m->debug_exit, "debug-exit");
	if (!ret)
		ret = bus_register(&vm->pio, POST_PORT, POST_NR_PORTS, &post_bus_ops, &m->post, "post");
	if (!ret)
		ret = bus_register(&vm->pio, ACPI_PM_BASE, ACPI_PM_NR_PORTS, &acpi_pm_bus_ops,
				   m->acpi_pm, "acpi-pm");
	if (!ret)
		ret = bus_register(&vm->pio, PVPANIC_PORT, PVPANIC_NR_PORTS, &pvpanic_bus_ops,
				   m->pvpanic, "pvpanic");
	if (ret) {
		snprintf(err, errlen, "device registration: %s", strerror(-ret));
		return ret;
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory creating devices");
	return -ENOMEM;
}

/* The PCI bus and the virtio devices the options ask for. */
static int attach_pci(struct machine *m, const struct run_options *o, char *err, size_t errlen)
{
	int ret = pci_attach(&m->vm, &m->pci, &m->routing, err, errlen);

	if (ret)
		return ret;
	m->pci_attached = true;
	/* Linux on hardware-reduced ACPI reboots through port 0xCF9. */
	pci_bus_set_stopper(&m->pci, &m->vm.stopper);
	if (o->rng) {
		m->rng = virtio_rng_create();
		if (!m->rng) {
			snprintf(err, errlen, "virtio-rng: out of memory");
			return -ENOMEM;
		}
		m->rng_pci = virtio_pci_create(&m->vm, &m->pci, &m->routing, &virtio_rng_ops,
					       m->rng, err, errlen);
		if (!m->rng_pci ||
		    virtio_rng_attach(m->rng, virtio_pci_dev(m->rng_pci), m->rng_pci->worker, err,
				      errlen))
			return -EINVAL;
		rate_limiter_update(&m->rng->limiter, &o->rng_limit);
	}
	for (unsigned i = 0; i < o->ndisks; i++) {
		struct disk *disk = m->disks[i];

		/* The device owns the disk from here, also on failure. */
		m->disks[i] = NULL;
		m->blk[i] = virtio_blk_create(disk, err, errlen);
		if (!m->blk[i])
			return -EINVAL;
		virtio_blk_set_rate_limit(m->blk[i], &o->disks[i].limit);
		m->ndisks = i + 1;
		m->blk_pci[i] = virtio_pci_create(&m->vm, &m->pci, &m->routing,
						  virtio_blk_ops(m->blk[i]), m->blk[i], err, errlen);
		if (!m->blk_pci[i] ||
		    virtio_blk_attach(m->blk[i], virtio_pci_dev(m->blk_pci[i]),
				      m->blk_pci[i]->worker, err, errlen))
			return -EINVAL;
	}
	for (unsigned i = 0; i < o->nnets; i++) {
		m->net[i] = m->nets_opened[i];
		m->nets_opened[i] = NULL;
		virtio_net_set_rate_limits(m->net[i], &o->nets[i].rx_limit, &o->nets[i].tx_limit);
		m->nnets = i + 1;
		m->net_pci[i] = virtio_pci_create(&m->vm, &m->pci, &m->routing,
						  virtio_net_ops(m->net[i]), m->net[i], err, errlen);
		if (!m->net_pci[i] ||
		    virtio_net_attach(m->net[i], virtio_pci_dev(m->net_pci[i]),
				      m->net_pci[i]->worker, err, errlen))
			return -EINVAL;
	}
	if (o->balloon) {
		struct balloon_params bp = BALLOON_PARAMS_DEFAULT;

		bp.target = o->balloon_target;
		bp.stats_interval = o->balloon_stats_interval;
		m->balloon = virtio_balloon_create(&m->vm.mem, &bp, err, errlen);
		if (!m->balloon)
			return -EINVAL;
		m->balloon_pci = virtio_pci_create(&m->vm, &m->pci, &m->routing,
						   virtio_balloon_ops(m->balloon), m->balloon,
						   err, errlen);
		if (!m->balloon_pci ||
		    virtio_balloon_attach(m->balloon, virtio_pci_dev(m->balloon_pci),
					  m->balloon_pci->worker, err, errlen))
			return -EINVAL;
	}
	return 0;
}

static void detach_devices(struct machine *m)
{
	/* The vCPUs are joined: nothing dispatches to PCI any more. The
	 * virtio functions go first (they unbind ioeventfds on the VM fd),
	 * then their backends, the bus and the routes. */
	for (unsigned i = 0; i < m->ndisks; i++) {
		/* virtio_blk_destroy waits for I/O in flight: guest RAM is
		 * still mapped until vm_destroy. */
		virtio_pci_destroy(m->blk_pci[i]);
		virtio_blk_destroy(m->blk[i]);
		m->blk_pci[i] = NULL;
		m->blk[i] = NULL;
	}
	m->ndisks = 0;
	for (unsigned i = 0; i < m->nnets; i++) {
		virtio_pci_destroy(m->net_pci[i]);
		if (m->net[i])
			virtio_net_destroy(m->net[i]);
		m->net_pci[i] = NULL;
		m->net[i] = NULL;
	}
	m->nnets = 0;
	for (unsigned i = 0; i < OPTIONS_MAX_NETS; i++) {
		if (m->nets_opened[i])
			virtio_net_destroy(m->nets_opened[i]);
		m->nets_opened[i] = NULL;
	}
	virtio_pci_destroy(m->balloon_pci);
	m->balloon_pci = NULL;
	if (m->balloon)
		virtio_balloon_destroy(m->balloon);
	m->balloon = NULL;
	for (unsigned i = 0; i < OPTIONS_MAX_DISKS; i++) {
		if (m->disks[i])
			disk_close(m->disks[i]);
		m->disks[i] = NULL;
	}
	virtio_pci_destroy(m->rng_pci);
	m->rng_pci = NULL;
	if (m->rng)
		virtio_rng_destroy(m->rng);
	m->rng = NULL;
	if (m->pci_attached) {
		pci_bus_destroy(&m->pci);
		irq_routing_destroy(&m->routing);
		m->pci_attached = false;
	}

	if (m->console)
		console_stop(m->console);
	if (m->uart)
		serial_destroy(m->uart);
	if (m->console)
		console_destroy(m->console);
	if (m->kbc)
		i8042_destroy(m->kbc);
	if (m->debug_exit)
		debug_exit_destroy(m->debug_exit);
	if (m->acpi_pm)
		acpi_pm_destroy(m->acpi_pm);
	if (m->pvpanic)
		pvpanic_destroy(m->pvpanic);
	m->console = NULL;
	m->uart = NULL;
	m->kbc = NULL;
	m->debug_exit = NULL;
	m->acpi_pm = NULL;
	m->pvpanic = NULL;
}

static int load_guest(struct machine *m, const struct file_image *k,
		      const struct file_image *initrd, const char *cmdline,
		      char *err, size_t errlen)
{
	struct boot_module mod = { .data = initrd->bytes, .size = initrd->size };
	struct acpi_config acpi = { .ncpus = m->vm.ncpus };
	struct boot_args args = {
		.cmdline = cmdline,
		.initrd = initrd->bytes ? &mod : NULL,
	};
	struct boot_entry entry;
	char why[256];
	int ret;

	if (m->pci_attached) {
		struct pci_windows w;

		pci_bus_windows(&m->pci, &w);
		acpi.pci = true;
		acpi.pci_windows = (struct acpi_pci_windows){
			.ecam_base = w.ecam_base, .ecam_size = w.ecam_size,
			.mmio32_base = w.mmio32_base, .mmio32_size = w.mmio32_size,
			.mmio64_base = w.mmio64_base, .mmio64_size = w.mmio64_size,
			.intx_gsi_base = w.intx_gsi_base,
		};
	}
	/* ACPI for OSes that look for it (SMP, interrupts, PCI, power-off);
	 * the MP table below for those that do not. */
	ret = acpi_write_tables(&m->vm.mem, &acpi, &args.rsdp_paddr, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "ACPI tables: %s", why);
		return ret;
	}
	ret = kernel_load_args(&m->vm.mem, k->bytes, k->size, &args, &entry, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "%s: %s", k->name, why);
		return ret;
	}
	ret = mptable_write(&m->vm.mem, m->vm.ncpus);
	if (ret) {
		snprintf(err, errlen, "MP table for %u CPUs: %s", m->vm.ncpus, strerror(-ret));
		return ret;
	}
	ret = regs_write_reset_vector(&m->vm.mem);
	if (!ret)
		ret = regs_write_boot_gdt(&m->vm.mem, entry.mode);
	if (!ret)
		ret = regs_set_boot_entry(m->vm.vcpus[0].fd, &entry);
	if (ret) {
		snprintf(err, errlen, "boot CPU state: %s", strerror(-ret));
		return ret;
	}
	if (entry.mode == BOOT_MODE_LONG64)
		pr_info("%s: %s 64-bit entry at 0x%llx, boot_params at 0x%llx", k->name,
			boot_protocol_name(entry.protocol), (unsigned long long)entry.rip,
			(unsigned long long)entry.rsi);
	else
		pr_info("%s: %s entry at 0x%x", k->name, boot_protocol_name(entry.protocol),
			entry.eip);
	if (initrd->bytes)
		pr_info("%s: %zu bytes of initrd", initrd->name, initrd->size);
	return 0;
}

/* Reads a pending SIGINT/SIGTERM/SIGHUP from the run's signalfd, if any,
 * and remembers it: a signal that races with a guest reset must still end
 * the run rather than be lost to a restart. */
static bool take_host_signal(struct machine *m)
{
	struct signalfd_siginfo si;

	if (m->sigfd >= 0 && read(m->sigfd, &si, sizeof(si)) == sizeof(si)) {
		pr_warn("stopping the VM on signal %u", si.ssi_signo);
		m->host_signal = true;
	}
	return m->host_signal;
}

/* Waits for the machine to stop, or for a host signal to stop it. */
static void wait_for_stop(struct machine *m)
{
	struct vm *vm = &m->vm;
	struct pollfd fds[2] = {
		{ .fd = vm->stop_eventfd, .events = POLLIN },
		{ .fd = m->sigfd, .events = POLLIN },
	};

	while (vm_stop_reason(vm) == VM_STOP_NONE) {
		if (poll(fds, m->sigfd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
			break;
		if ((fds[1].revents & POLLIN) && take_host_signal(m))
			vm_request_stop(vm, VM_STOP_USER, POPEK_EXIT_SIGNAL);
	}
}

static void log_stats(struct vm *vm)
{
	if (log_get_level() < LOG_DEBUG)
		return;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		const struct vcpu_stats *s = &vm->vcpus[i].stats;
		char kinds[512];
		size_t len = 0;
		uint64_t exits = 0;

		kinds[0] = '\0';
		for (unsigned k = 0; k < VCPU_EXIT_KINDS && len < sizeof(kinds); k++) {
			uint64_t n = vcpu_stat(s, k);

			exits += n;
			if (n)
				len += (size_t)snprintf(kinds + len, sizeof(kinds) - len, "%s%s %llu",
							len ? ", " : "", vcpu_exit_kind_name(k),
							(unsigned long long)n);
		}
		pr_debug("vCPU %u: %llu exits (%s)", i, (unsigned long long)exits,
			 kinds);
	}
	pr_debug("unclaimed accesses: pio %llu reads, %llu writes; mmio %llu reads, %llu writes",
		 (unsigned long long)atomic_load(&vm->pio.unclaimed_reads),
		 (unsigned long long)atomic_load(&vm->pio.unclaimed_writes),
		 (unsigned long long)atomic_load(&vm->mmio.unclaimed_reads),
		 (unsigned long long)atomic_load(&vm->mmio.unclaimed_writes));
}

/* Resident, anonymous and proportional (Pss) KiB of this process: from
 * /proc/self/smaps_rollup (an exact page-table walk), else /proc/self/status
 * (VmRSS and RssAnon, per-CPU counters that can lag by a few pages; no Pss
 * there, so pss = rss). 0 when unknown. */
static void read_rss_kib(uint64_t *rss, uint64_t *anon, uint64_t *pss)
{
	char line[256];
	bool rollup = true;
	FILE *f = fopen("/proc/self/smaps_rollup", "re");
	unsigned long long v;

	*rss = *anon = *pss = 0;
	if (!f) {
		rollup = false;
		f = fopen("/proc/self/status", "re");
	}
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, rollup ? "Rss: %llu kB" : "VmRSS: %llu kB", &v) == 1)
			*rss = v;
		else if (sscanf(line, rollup ? "Anonymous: %llu kB" : "RssAnon: %llu kB", &v) == 1)
			*anon = v;
		else if (rollup && sscanf(line, "Pss: %llu kB", &v) == 1)
			*pss = v;
	}
	if (!rollup)
		*pss = *rss;
	fclose(f);
}

static unsigned long long kib_less(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* What the VMM itself costs: resident memory less the guest RAM pages it
 * holds (see guest_memory_resident()). "private" counts only anonymous
 * memory, leaving out file pages shared with the page cache (the binary,
 * libc, ld.so); "pss" charges those shared pages in proportion to the
 * processes mapping them. Guest RAM is private, so its Pss is its Rss.
 * One line at info level when the VM has stopped. */
static void log_memory(const struct vm *vm)
{
	uint64_t rss, anon, pss, guest;

	if (log_get_level() < LOG_INFO)
		return;
	read_rss_kib(&rss, &anon, &pss);
	guest = guest_memory_resident(&vm->mem) >> 10;
	pr_info("memory: rss=%llu KiB guest-resident=%llu KiB vmm=%llu KiB "
		"(private %llu KiB, pss %llu KiB)",
		(unsigned long long)rss, (unsigned long long)guest, kib_less(rss, guest),
		kib_less(anon, guest), kib_less(pss, guest));
}

static int run_machine(struct machine *m, const struct vmm_hooks *hooks, char *err, size_t errlen)
{
	int ret = console_start(m->console);

	if (ret) {
		snprintf(err, errlen, "console: %s", strerror(-ret));
		return ret;
	}
	ret = vm_start(&m->vm, err, errlen);
	if (!ret) {
		struct vmm_handles h = {
			.vm = &m->vm, .kbc = m->kbc, .balloon = m->balloon, .rng = m->rng,
			.nblk = m->ndisks, .blk = m->blk, .nnet = m->nnets, .net = m->net,
		};

		if (hooks && hooks->running)
			hooks->running(hooks->opaque, &h);
		wait_for_stop(m);
	}
	vm_join(&m->vm);
	if (hooks && hooks->stopped)
		hooks->stopped(hooks->opaque);
	console_stop(m->console);
	log_stats(&m->vm);
	return ret;
}

/* One boot: a fresh VM with its devices, the guest loaded, run until it
 * stops, torn down. Returns the exit status; *restart says whether the
 * guest reset and --on-reboot restart asks for another boot. */
static int boot_once(struct machine *m, const struct run_options *o,
		     struct file_image *kernel, struct file_image *initrd,
		     const struct vmm_hooks *hooks, bool *restart)
{
	enum vm_stop_reason reason;
	char err[512];
	int status = POPEK_EXIT_VMM_ERROR;

	*restart = false;
	/* The user's disks first: a missing or locked image is bad input,
	 * reported before any VM exists. */
	for (unsigned i = 0; i < o->ndisks; i++) {
		m->disks[i] = disk_open(&o->disks[i], err, sizeof(err));
		if (!m->disks[i]) {
			status = POPEK_EXIT_USAGE;
			goto fail;
		}
	}
	for (unsigned i = 0; i < o->nnets; i++) {
		m->nets_opened[i] = virtio_net_create(&o->nets[i], err, sizeof(err));
		if (!m->nets_opened[i]) {
			status = POPEK_EXIT_USAGE;
			goto fail;
		}
	}
	if (vm_create(&m->vm, &m->kvm, o->memory, o->cpus, err, sizeof(err)))
		goto fail;
	m->vm_created = true;
	if (attach_devices(m, err, sizeof(err)) || attach_pci(m, o, err, sizeof(err)))
		goto fail;
	if (load_guest(m, kernel, initrd, o->cmdline ? o->cmdline : "", err, sizeof(err))) {
		status = POPEK_EXIT_USAGE;   /* the kernel and initrd files are the user's */
		goto fail;
	}
	/* Both are in guest RAM now; only a restart would need them again. */
	if (o->on_reboot != ON_REBOOT_RESTART) {
		free_file(kernel);
		free_file(initrd);
	}
	if (run_machine(m, hooks, err, sizeof(err)))
		goto fail;

	reason = vm_stop_reason(&m->vm);
	status = atomic_load(&m->vm.stop_status) & 0xff;
	/* Linux with panic=N reboots after a panic: still a panic. */
	if (reason == VM_STOP_RESET && console_guest_panicked(m->console)) {
		reason = VM_STOP_PANIC;
		status = POPEK_EXIT_GUEST_PANIC;
	}
	if (take_host_signal(m)) {
		reason = VM_STOP_USER;
		status = POPEK_EXIT_SIGNAL;
	}
	*restart = reason == VM_STOP_RESET && o->on_reboot == ON_REBOOT_RESTART;
	pr_info("VM stopped: %s, %s", vm_stop_reason_name(reason),
		*restart ? "restarting" : "exiting");
	log_memory(&m->vm);
	goto out;
fail:
	pr_err("%s", err);
	if (hooks && hooks->failed)
		hooks->failed(hooks->opaque, err);
out:
	detach_devices(m);
	if (m->vm_created)
		vm_destroy(&m->vm);
	m->vm_created = false;
	return status;
}

int vmm_run(const struct run_options *o)
{
	return vmm_run_hooked(o, NULL);
}

int vmm_run_hooked(const struct run_options *o, const struct vmm_hooks *hooks)
{
	struct file_image kernel = {
		.name = "built-in guest",
		.bytes = builtin_guest_start,
		.size = (size_t)(builtin_guest_end - builtin_guest_start),
	};
	struct file_image initrd = { .name = NULL };
	struct machine *m = NULL;
	sigset_t stop_signals, saved_mask;
	char err[512];
	bool restart;
	int status;

	/* The files are read once: a restart boots what the first boot did. */
	if ((o->kernel && read_file("--kernel", o->kernel, o->memory, &kernel, err, sizeof(err))) ||
	    (o->initrd && read_file("--initrd", o->initrd, o->memory, &initrd, err, sizeof(err)))) {
		pr_err("%s", err);
		if (hooks && hooks->failed)
			hooks->failed(hooks->opaque, err);
		free_file(&kernel);
		free_file(&initrd);
		return POPEK_EXIT_USAGE;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		pr_err("out of memory");
		status = POPEK_EXIT_VMM_ERROR;
		goto out;
	}
	/* Before any thread exists, so that all of them inherit the mask. */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop_signals, &saved_mask);
	m->sigfd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (kvm_open(&m->kvm, "/dev/kvm", err, sizeof(err)) ||
	    check_config(o, &m->kvm, err, sizeof(err))) {
		pr_err("%s", err);
		if (hooks && hooks->failed)
			hooks->failed(hooks->opaque, err);
		status = POPEK_EXIT_USAGE;
		goto out;
	}
	do
		status = boot_once(m, o, &kernel, &initrd, hooks, &restart);
	while (restart);
	pr_info("exit status %d", status);
out:
	if (m) {
		kvm_close(&m->kvm);
		/* The VM is gone: a stop signal now has nothing left to stop,
		 * so drain them rather than die of one after unblocking. */
		struct signalfd_siginfo si;

		while (m->sigfd >= 0 && read(m->sigfd, &si, sizeof(si)) == sizeof(si))
			;
		if (m->sigfd >= 0)
			close(m->sigfd);
		pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
	}
	free(m);
	free_file(&kernel);
	free_file(&initrd);
	return status;
}

int vmm_dump_cpuid(unsigned ncpus)
{
	struct kvm kvm;
	char err[256];
	int status = POPEK_EXIT_OK;

	if (kvm_open(&kvm, "/dev/kvm", err, sizeof(err))) {
		pr_err("%s", err);
		return POPEK_EXIT_USAGE;
	}
	unsigned max = kvm.supported_cpuid->nent + CPUID_EXTRA_ENTRIES;
	struct kvm_cpuid_entry2 *out = calloc(max, sizeof(*out));

	for (unsigned cpu = 0; out && cpu < ncpus; cpu++) {
		int n = cpuid_build(kvm.supported_cpuid->entries, kvm.supported_cpuid->nent,
				    cpu, ncpus, out, max);

		for (int i = 0; i < n; i++)
			printf("cpu %u leaf 0x%08x.%u eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n",
			       cpu, out[i].function, out[i].index, out[i].eax, out[i].ebx,
			       out[i].ecx, out[i].edx);
	}
	if (!out) {
		pr_err("out of memory");
		status = POPEK_EXIT_VMM_ERROR;
	}
	free(out);
	kvm_close(&kvm);
	return status;
}
