/* popek built-in guest: the ring-3 part, run by every CPU.
 *
 * The BSP copies the boot information, finds the CPUs, starts the APs
 * (INIT-SIPI-SIPI through the user-mapped LAPIC), runs the workload,
 * checks every CPU's result and prints the report; each AP checks in,
 * runs its workload and prints its own line when its turn comes. */
#include "guest.h"

#define WORK_WORDS (64 * 1024 / 8)	/* 64 KiB per CPU */
#define WORK_PASSES 8

struct cpu_state {
	volatile u32 online;		/* set by the CPU on arrival in ring 3 */
	volatile u32 ready;		/* set by the CPU when its workload is done */
	volatile u64 result;		/* workload checksum */
	volatile u32 ok;		/* BSP's verdict */
	volatile u64 arrived;		/* clock_now() on arrival (debug) */
} __attribute__((aligned(64)));

static struct cpu_state cpus[GUEST_MAX_CPUS];
static volatile int print_turn = -1, print_done = -1;
/* The workload buffers live in free RAM just past the image, not in .bss:
 * nobody has to zero 4 MiB at boot, and only the CPUs that run touch
 * theirs (each CPU fills its buffer before reading it). */
static u64 (*work_buf)[WORK_WORDS];
static u64 *verify_buf;
static struct cpu_list cl;
static struct line bsp_line;
static u64 t_ring3, t_sipi, t_report;

static struct {
	bool nosmp, triple, exit_set, debug, echo;
	u64 exits;
	u32 exit_value;
	bool exits_set;
} opt;

/* ---- the workload: PRNG fill + mixing passes over 64 KiB ---- */
static u64 workload(unsigned idx, u64 *buf)
{
	u64 x = 0x9e3779b97f4a7c15ULL * (idx + 1) ^ 0xd1b54a32d192ed03ULL;
	for (int i = 0; i < WORK_WORDS; i++) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		buf[i] = x * 0x2545f4914f6cdd1dULL;
	}
	u64 sum = idx;
	for (int pass = 0; pass < WORK_PASSES; pass++) {
		for (u32 i = 0; i < WORK_WORDS; i++) {
			u32 j = (i * 2654435761u + (u32)pass * 40503u) & (WORK_WORDS - 1);
			sum = ((sum << 5) | (sum >> 59)) ^ buf[j];
			buf[j] += sum;
		}
	}
	return sum;
}

/* ---- helpers ---- */
static u8 lapic_id(void)
{
	return (u8)(mmio_read32(LAPIC_BASE + 0x20) >> 24);
}

static u32 max_basic_leaf(void)
{
	u32 r[4];
	cpuid(0, 0, r);
	return r[0];
}

static u32 max_ext_leaf(void)
{
	u32 r[4];
	cpuid(0x80000000, 0, r);
	return (r[0] >= 0x80000000 && r[0] < 0x8000ffff) ? r[0] : 0;
}

static void line_opt_dec(struct line *l, bool valid, u64 v)
{
	if (valid)
		line_dec(l, v);
	else
		line_str(l, "none");
}

/* "cpu <i>: ..." -- run by CPU i itself, in ring 3. */
static void print_cpu_line(unsigned slot)
{
	struct line *l = slot ? NULL : &bsp_line;
	struct line ap_line;
	if (!l)
		l = &ap_line;
	u32 r[4];
	u32 maxb = max_basic_leaf(), maxe = max_ext_leaf();

	line_start(l);
	line_str(l, "cpu ");
	line_dec(l, slot);
	line_str(l, ": apic-id=");
	line_dec(l, lapic_id());
	cpuid(1, 0, r);
	line_str(l, " leaf1-apic-id=");
	line_dec(l, r[1] >> 24);
	u32 lpp = (r[1] >> 16) & 0xff;

	bool x2 = false, core = false;
	u32 x2id = 0, smt_w = 0, core_w = 0, cores = 0;
	if (maxb >= 0xb) {
		cpuid(0xb, 0, r);
		if ((r[2] >> 8) & 0xff) {
			x2 = true;
			x2id = r[3];
			smt_w = r[0] & 0x1f;
			cpuid(0xb, 1, r);
			if ((r[2] >> 8) & 0xff) {
				core = true;
				core_w = r[0] & 0x1f;
				cores = r[1] & 0xffff;
			}
		}
	}
	line_str(l, " x2apic-id=");
	line_opt_dec(l, x2, x2id);
	line_str(l, " logical-per-package=");
	line_dec(l, lpp);
	line_str(l, " smt-width=");
	line_opt_dec(l, x2, smt_w);
	line_str(l, " core-width=");
	line_opt_dec(l, core, core_w);
	line_str(l, " cores=");
	line_opt_dec(l, core, cores);
	line_str(l, " ext-apic-id=");
	if (maxe >= 0x8000001e) {
		cpuid(0x8000001e, 0, r);
		line_dec(l, r[0]);
	} else {
		line_str(l, "none");
	}
	line_str(l, " workload=");
	line_str(l, cpus[slot].ok ? "ok" : "FAILED");
	line_str(l, " result=0x");
	line_hex(l, cpus[slot].result, 16);
	if (!quiet)
		line_emit(l);
}

static void NORETURN spin_forever(void)
{
	for (;;)
		cpu_relax();
}

/* ---- APs ---- */
static void NORETURN ap_main(unsigned slot)
{
	cpus[slot].arrived = clock_now();
	cpus[slot].online = 1;
	cpus[slot].result = workload(slot, work_buf[slot]);
	cpus[slot].ready = 1;
	while (print_turn != (int)slot)
		cpu_relax();
	print_cpu_line(slot);
	print_done = (int)slot;
	spin_forever();
}

/* ---- command line ---- */
static bool parse_u64(const char *s, size_t n, u64 *out)
{
	u64 v = 0;
	int base = 10;
	size_t i = 0;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n)
		return false;
	for (; i < n; i++) {
		char c = s[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = v * (u64)base + (u64)d;
	}
	*out = v;
	return true;
}

static bool token_is(const char *t, size_t n, const char *key)
{
	size_t k = strlen(key);
	return n == k && !memcmp(t, key, k);
}

static void parse_cmdline(void)
{
	const char *s = boot.cmdline;
	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		const char *t = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		size_t n = (size_t)(s - t), k = 0;
		while (k < n && t[k] != '=')
			k++;
		const char *v = k < n ? t + k + 1 : NULL;
		size_t vn = v ? n - k - 1 : 0;
		u64 num;
		if (token_is(t, n, "quiet"))
			quiet = true;
		else if (token_is(t, n, "debug"))
			opt.debug = true;
		else if (token_is(t, n, "nosmp"))
			opt.nosmp = true;
		else if (token_is(t, n, "echo"))
			opt.echo = true;
		else if (token_is(t, n, "fault=triple"))
			opt.triple = true;
		else if (v && token_is(t, k, "exits") && parse_u64(v, vn, &num)) {
			opt.exits_set = true;
			opt.exits = num;
		} else if (v && token_is(t, k, "exit") && parse_u64(v, vn, &num)) {
			opt.exit_set = true;
			opt.exit_value = (u32)num;
		}
	}
}

/* ---- SMP start-up from ring 3 (the LAPIC page is user-mapped) ---- */
#define LAPIC_SVR     0xf0
#define LAPIC_ICR_LO  0x300
#define LAPIC_ICR_HI  0x310

static void lapic_icr(u8 apic_id, u32 low)
{
	for (u32 i = 0; i < 100000 && (mmio_read32(LAPIC_BASE + LAPIC_ICR_LO) & (1u << 12)); i++)
		cpu_relax();
	mmio_write32(LAPIC_BASE + LAPIC_ICR_HI, (u32)apic_id << 24);
	mmio_write32(LAPIC_BASE + LAPIC_ICR_LO, low);
}

static bool modern_cpu(void)
{
	u32 r[4];
	cpuid(0, 0, r);
	bool intel = r[1] == 0x756e6547 && r[3] == 0x49656e69 && r[2] == 0x6c65746e;
	bool amd = r[1] == 0x68747541 && r[3] == 0x69746e65 && r[2] == 0x444d4163;
	bool hygon = r[1] == 0x6f677948 && r[3] == 0x6e65476e && r[2] == 0x656e6975;
	cpuid(1, 0, r);
	u32 family = (r[0] >> 8) & 0xf;
	if (family == 0xf)
		family += (r[0] >> 20) & 0xff;
	return (r[2] & (1u << 31)) || (intel && family >= 6) || (amd && family >= 0xf) ||
	       (hygon && family >= 0x18);
}

static bool is_ram(u64 start, u64 end)
{
	for (int i = 0; i < boot.nmap; i++)
		if (boot.map[i].type == 1 && boot.map[i].addr <= start &&
		    boot.map[i].addr + boot.map[i].size >= end)
			return true;
	return false;
}

static const char *start_aps(void)
{
	u64 tsize = (u64)(trampoline_end - trampoline_start);
	if (boot.nmap && !is_ram(TRAMPOLINE_ADDR, TRAMPOLINE_ADDR + 0x1000))
		return "trampoline page is not RAM";
	memcpy((void *)phys(TRAMPOLINE_ADDR), trampoline_start, tsize);
	for (int i = 1; i < cl.nslots; i++)
		apic_to_slot[cl.apic_id[i]] = (u8)i;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	/* Software-enable the local APIC (spurious vector 0xff). */
	u32 svr = mmio_read32(LAPIC_BASE + LAPIC_SVR);
	mmio_write32(LAPIC_BASE + LAPIC_SVR, svr | 0x1ff);

	for (int i = 1; i < cl.nslots; i++)
		lapic_icr(cl.apic_id[i], 0xc500);	/* INIT, level, assert */
	for (int i = 1; i < cl.nslots; i++)
		lapic_icr(cl.apic_id[i], 0x8500);	/* INIT, level, de-assert */
	/* The MP spec's 10 ms INIT delay and 200 us between SIPIs are for
	 * old parts; like Linux (smp_quirk_init_udelay) skip them on modern
	 * CPUs and under a hypervisor. */
	bool modern = modern_cpu();
	delay_us(modern ? 0 : 10000);
	t_sipi = clock_now();
	for (int round = 0; round < 2; round++) {
		for (int i = 1; i < cl.nslots; i++)
			if (!cpus[i].online)
				lapic_icr(cl.apic_id[i], 0x4600 | (TRAMPOLINE_ADDR >> 12));
		delay_us(modern ? 10 : 300);
	}

	/* Wait up to 1 s for the APs (they may crawl through an emulated
	 * ring 0 for tens of ms). */
	u64 deadline = clock_now() + 1000000000ULL;
	for (u64 spins = 0; spins < 2000000000ULL; spins++) {
		int n = 0;
		for (int i = 1; i < cl.nslots; i++)
			n += cpus[i].online ? 1 : 0;
		if (n == cl.nslots - 1 || clock_now() > deadline)
			break;
		cpu_relax();
	}
	return NULL;
}

/* ---- report pieces ---- */
struct feature {
	u8 bit;
	const char *name;
};
static const struct feature f1_edx[] = {
	{0, "fpu"}, {1, "vme"}, {2, "de"}, {3, "pse"}, {4, "tsc"}, {5, "msr"}, {6, "pae"},
	{7, "mce"}, {8, "cx8"}, {9, "apic"}, {11, "sep"}, {12, "mtrr"}, {13, "pge"},
	{14, "mca"}, {15, "cmov"}, {16, "pat"}, {17, "pse36"}, {19, "clflush"}, {23, "mmx"},
	{24, "fxsr"}, {25, "sse"}, {26, "sse2"}, {27, "ss"}, {28, "ht"}, {29, "tm"}, {31, "pbe"},
};
static const struct feature f1_ecx[] = {
	{0, "sse3"}, {1, "pclmulqdq"}, {3, "monitor"}, {5, "vmx"}, {6, "smx"}, {7, "est"},
	{9, "ssse3"}, {12, "fma"}, {13, "cx16"}, {15, "pdcm"}, {17, "pcid"}, {19, "sse4_1"},
	{20, "sse4_2"}, {21, "x2apic"}, {22, "movbe"}, {23, "popcnt"}, {24, "tsc_deadline"},
	{25, "aes"}, {26, "xsave"}, {27, "osxsave"}, {28, "avx"}, {29, "f16c"}, {30, "rdrand"},
	{31, "hypervisor"},
};
static const struct feature f7_ebx[] = {
	{0, "fsgsbase"}, {1, "tsc_adjust"}, {3, "bmi1"}, {4, "hle"}, {5, "avx2"}, {7, "smep"},
	{8, "bmi2"}, {9, "erms"}, {10, "invpcid"}, {11, "rtm"}, {16, "avx512f"}, {17, "avx512dq"},
	{18, "rdseed"}, {19, "adx"}, {20, "smap"}, {23, "clflushopt"}, {24, "clwb"},
	{28, "avx512cd"}, {29, "sha_ni"}, {30, "avx512bw"}, {31, "avx512vl"},
};
static const struct feature f81_edx[] = {
	{11, "syscall"}, {20, "nx"}, {26, "pdpe1gb"}, {27, "rdtscp"}, {29, "lm"},
};
static const struct feature f81_ecx[] = {
	{0, "lahf_lm"}, {2, "svm"}, {5, "abm"}, {6, "sse4a"}, {8, "3dnowprefetch"},
	{22, "topoext"},
};

static void add_features(struct line *l, bool *first, u32 reg, const struct feature *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (reg & (1u << f[i].bit)) {
			if (!*first)
				line_char(l, ' ');
			line_str(l, f[i].name);
			*first = false;
		}
	}
}

static void print_cpu_identity(struct line *l)
{
	u32 r[4];
	u32 maxb = max_basic_leaf(), maxe = max_ext_leaf();

	cpuid(0, 0, r);
	char vendor[13];
	memcpy(vendor + 0, &r[1], 4);
	memcpy(vendor + 4, &r[3], 4);
	memcpy(vendor + 8, &r[2], 4);
	vendor[12] = 0;
	line_start(l);
	line_str(l, "cpu-vendor=");
	line_str(l, vendor);
	line_emit(l);

	cpuid(1, 0, r);
	u32 eax1 = r[0], ecx1 = r[2], edx1 = r[3];
	u32 family = (eax1 >> 8) & 0xf, model = (eax1 >> 4) & 0xf;
	if (family == 0xf)
		family += (eax1 >> 20) & 0xff;
	if (family == 0x6 || family >= 0xf)
		model |= ((eax1 >> 16) & 0xf) << 4;
	line_start(l);
	line_str(l, "cpu-signature=family ");
	line_dec(l, family);
	line_str(l, " model ");
	line_dec(l, model);
	line_str(l, " stepping ");
	line_dec(l, eax1 & 0xf);
	line_emit(l);

	bool first = true;
	line_start(l);
	line_str(l, "cpu-features=");
	add_features(l, &first, edx1, f1_edx, ARRAY_SIZE(f1_edx));
	add_features(l, &first, ecx1, f1_ecx, ARRAY_SIZE(f1_ecx));
	if (maxb >= 7) {
		cpuid(7, 0, r);
		add_features(l, &first, r[1], f7_ebx, ARRAY_SIZE(f7_ebx));
	}
	if (maxe >= 0x80000001) {
		cpuid(0x80000001, 0, r);
		add_features(l, &first, r[3], f81_edx, ARRAY_SIZE(f81_edx));
		add_features(l, &first, r[2], f81_ecx, ARRAY_SIZE(f81_ecx));
	}
	line_emit(l);

	line_start(l);
	line_str(l, "hypervisor=");
	u32 hmax = 0, kvmf = 0;
	if (ecx1 & (1u << 31)) {
		cpuid(0x40000000, 0, r);
		hmax = r[0];
		char sig[13];
		memcpy(sig + 0, &r[1], 4);
		memcpy(sig + 4, &r[2], 4);
		memcpy(sig + 8, &r[3], 4);
		sig[12] = 0;
		for (int i = 0; i < 12 && sig[i]; i++)
			line_char(l, (sig[i] > ' ' && sig[i] < 127) ? sig[i] : '?');
		if (!sig[0])
			line_str(l, "unknown");
		if (!memcmp(sig, "KVMKVMKVM\0\0\0", 12) && hmax >= 0x40000001) {
			cpuid(0x40000001, 0, r);
			kvmf = r[0];
		}
	} else {
		line_str(l, "none");
	}
	line_str(l, " max-leaf=0x");
	line_hex(l, hmax, 0);
	line_str(l, " kvm-features=0x");
	line_hex(l, kvmf, 0);
	line_emit(l);
}

static const char *map_type(u32 t, char *buf)
{
	switch (t) {
	case 1: return "ram";
	case 2: return "reserved";
	case 3: return "acpi";
	case 4: return "nvs";
	}
	char *p = buf;
	*p++ = 't'; *p++ = 'y'; *p++ = 'p'; *p++ = 'e'; *p++ = '-';
	char d[12];
	int n = 0;
	do {
		d[n++] = (char)('0' + t % 10);
		t /= 10;
	} while (t);
	while (n)
		*p++ = d[--n];
	*p = 0;
	return buf;
}

/* Write and read back a pattern in the last 4 KiB page of RAM; above
 * 4 GiB, map its 2 MiB region first (the page tables are user-writable). */
static bool test_memory_top(u64 page)
{
	if (page >= (512ULL << 30))
		return false;
	if (page >= (4ULL << 30)) {
		unsigned gi = (unsigned)(page >> 30);
		if (!pdpt[gi]) {
			memset(pd_high, 0, sizeof(u64) * 512);
			pdpt[gi] = (u64)(uintptr_t)pd_high | 0x7;
		}
		u64 *pd = (u64 *)(uintptr_t)(pdpt[gi] & ~0xfffULL);
		pd[(page >> 21) & 511] = (page & ~0x1fffffULL) | 0x87;
		__asm__ volatile("" ::: "memory");
	}
	volatile u64 *p = (volatile u64 *)phys(page);
	for (int i = 0; i < 512; i++)
		p[i] = 0x5a5a0000a5a50000ULL ^ (page + (u64)i * 8) ^ ((u64)i << 40);
	for (int i = 0; i < 512; i++)
		if (p[i] != (0x5a5a0000a5a50000ULL ^ (page + (u64)i * 8) ^ ((u64)i << 40)))
			return false;
	return true;
}

static void print_memory(struct line *l)
{
	u64 total = 0, top_end = 0;
	char tbuf[20];
	for (int i = 0; i < boot.nmap; i++) {
		const struct memmap_entry *e = &boot.map[i];
		line_start(l);
		line_str(l, "e820 0x");
		line_hex(l, e->addr, 16);
		line_str(l, "-0x");
		line_hex(l, e->addr + e->size, 16);
		line_char(l, ' ');
		line_str(l, map_type(e->type, tbuf));
		if (!quiet)
			line_emit(l);
		if (e->type == 1) {
			total += e->size;
			u64 end = (e->addr + e->size) & ~0xfffULL;
			if (end >= e->addr + 0x1000 && end > top_end)
				top_end = end;
		}
	}
	line_start(l);
	line_str(l, "memory-total=");
	line_dec(l, total);
	line_str(l, " (");
	line_dec(l, total >> 20);
	line_str(l, " MiB)");
	if (!quiet)
		line_emit(l);

	line_start(l);
	line_str(l, "memory-top=");
	if (top_end) {
		u64 page = top_end - 0x1000;
		line_str(l, "0x");
		line_hex(l, page, 0);
		line_str(l, test_memory_top(page) ? " ok" : " FAILED");
	} else {
		line_str(l, "none FAILED");
	}
	if (!quiet)
		line_emit(l);
}

/* ---- the end ---- */
static void NORETURN finish(void)
{
	struct line *l = &bsp_line;
	line_start(l);
	line_str(l, "done");
	line_emit(l);
	if (opt.exit_set) {
		outb(0xf4, (u8)opt.exit_value);
		spin_forever();
	}
	/* Reset through the i8042 (after waiting, boundedly, for its input
	 * buffer to drain as a real driver would). */
	for (int i = 0; i < 64 && (inb(0x64) & 0x02); i++)
		cpu_relax();
	outb(0x64, 0xfe);
	/* A VMM resets synchronously, and a real KBC within microseconds:
	 * still running after 1 ms means there is no i8042. */
	delay_us(1000);
	outb(0xf4, 0);		/* no i8042 (e.g. microvm): isa-debug-exit */
	spin_forever();
}

/* "echo": an interactive session on the serial console, for tests of the
 * host terminal path. Reads COM1 by polling LSR.DR (no interrupts in
 * ring 3), echoes each line back, and returns on the line "exit". */
static void echo_loop(struct line *l)
{
	char buf[256];

	line_start(l);
	line_str(l, "echo: ready");
	line_emit(l);
	for (;;) {
		size_t n = 0;

		for (;;) {
			while (!(inb(COM1 + 5) & 0x01))
				cpu_relax();
			char c = (char)inb(COM1);

			if (c == '\r' || c == '\n') {
				if (n)
					break;
				continue;
			}
			if (n < sizeof(buf))
				buf[n++] = c;
		}
		line_start(l);
		line_str(l, "echo: ");
		line_strn(l, buf, n);
		line_emit(l);
		if (n == 4 && !memcmp(buf, "exit", 4))
			return;
	}
}

static void NORETURN bsp_main(void)
{
	struct line *l = &bsp_line;

	u64 t0 = clock_raw();
	memset(__bss_start, 0, (size_t)(__bss_end - __bss_start));
	bootinfo_copy();
	parse_cmdline();
	serial_init();
	clock_init();
	t_ring3 = clock_to_ns(t0);

	u64 work_base = ((u64)(uintptr_t)__image_end + 4095) & ~4095ULL;
	u64 work_end = work_base + (GUEST_MAX_CPUS + 1) * sizeof(work_buf[0]);

	if (!is_ram(work_base, work_end)) {
		line_start(l);
		line_str(l, "error: no RAM for the workload buffers at 0x");
		line_hex(l, work_base, 0);
		line_emit(l);
		outb(0xf4, 1);		/* VMM exit status 3: the guest could not run */
		spin_forever();
	}
	work_buf = (u64 (*)[WORK_WORDS])(uintptr_t)work_base;
	verify_buf = work_buf[GUEST_MAX_CPUS];

	u8 my_apic = lapic_id();
	find_cpus(&cl, my_apic);
	cpus[0].online = 1;
	const char *smp_problem = NULL;
	if (!opt.nosmp && cl.nslots > 1)
		smp_problem = start_aps();

	cpus[0].result = workload(0, work_buf[0]);
	cpus[0].ready = 1;
	int online = 0;
	for (int i = 0; i < cl.nslots; i++)
		online += cpus[i].online ? 1 : 0;
	u64 deadline = clock_now() + 1000000000ULL;
	for (int i = 1; i < cl.nslots; i++)
		while (cpus[i].online && !cpus[i].ready && clock_now() < deadline)
			cpu_relax();
	int good = 0;
	for (int i = 0; i < cl.nslots; i++) {
		if (!cpus[i].online)
			continue;
		cpus[i].ok = cpus[i].ready && cpus[i].result == workload((unsigned)i, verify_buf);
		good += cpus[i].ok ? 1 : 0;
	}

	t_report = clock_now();
	if (!quiet) {
		line_start(l);
		line_str(l, "boot=");
		line_str(l, boot.protocol == BOOT_PVH ? "pvh" :
			    boot.protocol == BOOT_MULTIBOOT ? "multiboot" : "unknown");
		line_emit(l);

		line_start(l);
		line_str(l, "cmdline=\"");
		for (const char *c = boot.cmdline; *c; c++)
			line_char(l, (*c >= ' ' && *c < 127) ? *c : '?');
		line_char(l, '"');
		line_emit(l);

		if (smp_problem) {
			line_start(l);
			line_str(l, "smp: ");
			line_str(l, smp_problem);
			line_emit(l);
		}
		line_start(l);
		line_str(l, "cpus=");
		line_dec(l, (u64)cl.n);
		line_str(l, " online=");
		line_dec(l, (u64)online);
		line_emit(l);

		if (opt.debug) {
			line_start(l);
			line_str(l, "debug: cpus-from=");
			line_str(l, cl.source);
			line_str(l, " bda-ebda=0x");
			line_hex(l, peek16(0x40e), 0);
			line_str(l, " bda-basemem-kb=");
			line_dec(l, peek16(0x413));
			line_str(l, " rsdp=0x");
			line_hex(l, boot.rsdp, 0);
			line_str(l, " boot-info=0x");
			line_hex(l, boot_info_addr, 0);
			line_str(l, " image=0x");
			line_hex(l, (uintptr_t)__image_start, 0);
			line_str(l, "-0x");
			line_hex(l, (uintptr_t)__image_end, 0);
			line_emit(l);
			line_start(l);
			line_str(l, "debug: clock=");
			line_str(l, kvmclock_enabled ? "kvmclock" : "tsc-estimate");
			line_str(l, " ring3-entry-ns=");
			line_dec(l, t_ring3);
			line_str(l, " setup-ns=");
			line_dec(l, t_report - t_ring3);
			for (int i = 1; i < cl.nslots; i++) {
				if (!cpus[i].online)
					continue;
				line_str(l, " ap");
				line_dec(l, (u64)i);
				line_str(l, "-after-sipi-ns=");
				line_dec(l, cpus[i].arrived - t_sipi);
			}
			line_emit(l);
		}
		line_start(l);
		line_str(l, "apic-ids=");
		for (int i = 0; i < cl.nslots; i++) {
			if (i)
				line_char(l, ',');
			line_dec(l, cl.apic_id[i]);
		}
		line_emit(l);

		print_cpu_identity(l);
	}
	print_memory(l);

	/* One line per online CPU, each printed by that CPU, in order. */
	for (int i = 0; i < cl.nslots; i++) {
		if (!cpus[i].online)
			continue;
		if (i == 0) {
			print_cpu_line(0);
			continue;
		}
		print_turn = i;
		/* 10 s: on a loaded host a vCPU thread can wait long for
		 * its turn; a healthy AP answers in microseconds. */
		u64 until = clock_now() + 10000000000ULL;
		while (print_done != i && clock_now() < until)
			cpu_relax();
		if (print_done != i && !quiet) {
			line_start(l);
			line_str(l, "cpu ");
			line_dec(l, (u64)i);
			line_str(l, ": apic-id=");
			line_dec(l, cl.apic_id[i]);
			line_str(l, " no-response workload=FAILED");
			line_emit(l);
		}
	}
	if (!quiet) {
		line_start(l);
		line_str(l, good == online ? "workload ok on " : "workload FAILED on ");
		line_dec(l, (u64)online);
		line_str(l, " cpus");
		line_emit(l);
	}

	if (opt.exits_set) {
		u64 t0 = clock_raw();
		for (u64 i = 0; i < opt.exits; i++)
			outb(0x80, (u8)i);
		u64 t1 = clock_raw();
		{	/* printed even with "quiet": it is what was asked for */
			line_start(l);
			line_str(l, "exits=");
			line_dec(l, opt.exits);
			line_str(l, " ns=");
			line_dec(l, t1 - t0);
			line_str(l, " ns-per-exit=");
			line_dec(l, opt.exits ? (t1 - t0) / opt.exits : 0);
			line_str(l, " clock=");
			line_str(l, kvmclock_enabled ? "kvmclock" : "tsc-ticks");
			line_emit(l);
		}
	}

	if (opt.echo)
		echo_loop(l);
	if (opt.triple)
		__asm__ volatile("ud2");	/* #UD -> zero-limit IDT -> triple fault */
	finish();
}

void NORETURN cpu_main(unsigned slot)
{
	if (slot)
		ap_main(slot);
	bsp_main();
}
