/* acpi_write_tables: every table as an OS finds and checks it (ACPI 6.5
 * §5.2), and the DSDT and friends run through ACPICA's own tools: iasl
 * disassembles them (and recompiles the DSDT to the same bytes), acpiexec
 * loads them and evaluates \_S5. Needs acpica-tools. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "pci/pci.h"
#include "vmm/memory.h"

static struct guest_memory mem;

static int setup(void **state)
{
	(void)state;
	return guest_memory_init(&mem, MiB(128)) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	guest_memory_destroy(&mem);
	return 0;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static const uint8_t *gptr(uint64_t gpa, uint64_t len)
{
	const uint8_t *p = guest_memory_ptr(&mem, gpa, len);

	assert_non_null(p);
	return p;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static bool in_acpi_area(uint64_t gpa, uint64_t len)
{
	return gpa >= LAYOUT_ACPI_START && len <= LAYOUT_ACPI_MAX &&
	       gpa - LAYOUT_ACPI_START <= LAYOUT_ACPI_MAX - len;
}

/* How Linux finds the RSDP without a boot-protocol pointer (§5.2.5.1):
 * 16-byte boundaries of 0xE0000-0xFFFFF, signature and ACPI 1.0 checksum. */
static uint64_t find_rsdp(void)
{
	uint64_t a;

	for (a = 0xe0000; a < 0x100000; a += 16) {
		const uint8_t *p = gptr(a, 20);

		if (!memcmp(p, "RSD PTR ", 8) && sum(p, 20) == 0)
			return a;
	}
	return 0;
}

static uint64_t write_tables(unsigned ncpus)
{
	struct acpi_config cfg = { .ncpus = ncpus };
	char err[256] = "";
	uint64_t rsdp = 0;
	int ret;

	ret = acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err));
	if (ret)
		fail_msg("acpi_write_tables(%u): %d %s", ncpus, ret, err);
	return rsdp;
}

/* A system description table at gpa: signature, length inside the ACPI
 * area, checksum over the whole length, revision, OEM fields. */
static const uint8_t *check_table(uint64_t gpa, const char *sig, uint8_t revision)
{
	const struct acpi_table_header *h;
	const uint8_t *t;
	uint32_t len;

	assert_true(in_acpi_area(gpa, sizeof(*h)));
	t = gptr(gpa, sizeof(*h));
	h = (const struct acpi_table_header *)t;
	assert_memory_equal(h->signature, sig, 4);
	len = h->length;
	assert_true(len >= sizeof(*h));
	assert_true(in_acpi_area(gpa, len));
	t = gptr(gpa, len);
	assert_int_equal(sum(t, len), 0);
	assert_int_equal(h->revision, revision);
	assert_memory_equal(h->oem_id, "POPEK ", 6);
	assert_memory_equal(h->oem_table_id, "POPEKVM ", 8);
	assert_memory_equal(h->creator_id, ACPI_CREATOR_ID, 4);
	assert_int_equal(h->oem_revision, ACPI_OEM_REVISION);
	return t;
}

struct tables {
	uint64_t rsdp, xsdt, fadt, madt, mcfg, dsdt;
	const struct acpi_fadt *f;
	const uint8_t *m;
	const uint8_t *d;
	const uint8_t *mc;          /* NULL: no MCFG */
};

static void walk(uint64_t rsdp_paddr, struct tables *tb)
{
	const struct acpi_rsdp *r;
	const uint8_t *x;
	uint32_t xlen, i;

	memset(tb, 0, sizeof(*tb));
	tb->rsdp = rsdp_paddr;
	r = (const struct acpi_rsdp *)gptr(rsdp_paddr, sizeof(*r));
	tb->xsdt = r->xsdt_address;
	x = check_table(tb->xsdt, "XSDT", 1);
	xlen = rd32(x + 4);
	assert_int_equal((xlen - 36) % 8, 0);
	for (i = 36; i < xlen; i += 8) {
		uint64_t t = rd64(x + i);
		const uint8_t *h = gptr(t, 4);

		if (!memcmp(h, "FACP", 4))
			tb->fadt = t;
		else if (!memcmp(h, "APIC", 4))
			tb->madt = t;
		else if (!memcmp(h, "MCFG", 4) && !tb->mcfg)
			tb->mcfg = t;
		else
			fail_msg("unexpected table %.4s in the XSDT", (const char *)h);
	}
	assert_int_not_equal(tb->fadt, 0);
	assert_int_not_equal(tb->madt, 0);
	tb->f = (const struct acpi_fadt *)check_table(tb->fadt, "FACP", 6);
	tb->m = check_table(tb->madt, "APIC", 5);
	tb->dsdt = tb->f->x_dsdt;
	tb->d = check_table(tb->dsdt, "DSDT", 2);
	if (tb->mcfg)
		tb->mc = check_table(tb->mcfg, "MCFG", 1);
}

static void test_rsdp(void **state)
{
	const struct acpi_rsdp *r;
	uint64_t rsdp;

	(void)state;
	rsdp = write_tables(2);
	/* Found by the legacy scan, and where the boot protocol says. */
	assert_int_equal(find_rsdp(), rsdp);
	assert_int_equal(rsdp % 16, 0);
	assert_true(rsdp >= 0xe0000 && rsdp + 36 <= 0x100000);
	assert_true(in_acpi_area(rsdp, 36));
	r = (const struct acpi_rsdp *)gptr(rsdp, sizeof(*r));
	assert_int_equal(sum((const uint8_t *)r, 20), 0);
	assert_int_equal(sum((const uint8_t *)r, 36), 0);
	assert_int_equal(r->revision, 2);
	assert_int_equal(r->length, 36);
	assert_memory_equal(r->oem_id, "POPEK ", 6);
	assert_int_equal(r->rsdt_address, 0);
	assert_true(in_acpi_area(r->xsdt_address, 36));
}

static void test_xsdt(void **state)
{
	struct tables tb;
	uint64_t a[5];
	uint32_t len[5];
	int i, j;

	(void)state;
	walk(write_tables(4), &tb);
	assert_int_equal(rd32(gptr(tb.xsdt + 4, 4)), 36 + 2 * 8);
	/* No two tables overlap. */
	a[0] = tb.rsdp;
	len[0] = 36;
	a[1] = tb.xsdt;
	a[2] = tb.fadt;
	a[3] = tb.madt;
	a[4] = tb.dsdt;
	for (i = 1; i < 5; i++)
		len[i] = rd32(gptr(a[i] + 4, 4));
	for (i = 0; i < 5; i++) {
		for (j = i + 1; j < 5; j++)
			assert_true(a[i] + len[i] <= a[j] || a[j] + len[j] <= a[i]);
	}
}

static void check_io_gas(const struct acpi_gas *g, uint64_t port)
{
	assert_int_equal(g->space_id, 1);     /* System I/O */
	assert_int_equal(g->bit_width, 8);
	assert_int_equal(g->bit_offset, 0);
	assert_int_equal(g->access_size, 1);  /* byte */
	assert_int_equal(g->address, port);
}

static void test_fadt(void **state)
{
	static const uint8_t zero[sizeof(struct acpi_gas)];
	const struct acpi_fadt *f;
	struct tables tb;

	(void)state;
	walk(write_tables(1), &tb);
	f = tb.f;
	assert_int_equal(f->header.length, 276);
	assert_int_equal(f->minor_version, 5);
	assert_true(f->flags & (1u << 20));            /* HW_REDUCED_ACPI */
	assert_true(f->flags & (1u << 10));            /* RESET_REG_SUP */
	assert_true(f->flags & (1u << 4));             /* no fixed power button */
	assert_true(f->flags & (1u << 5));             /* no fixed sleep button */
	/* an 8042, no VGA, no MSI (no PCI), no CMOS RTC */
	assert_int_equal(f->iapc_boot_arch, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 5));
	check_io_gas(&f->reset_reg, ACPI_PM_BASE + 2);
	assert_int_equal(f->reset_value, ACPI_PM_RESET_VALUE);
	check_io_gas(&f->sleep_control_reg, ACPI_PM_BASE + 0);
	check_io_gas(&f->sleep_status_reg, ACPI_PM_BASE + 1);
	assert_int_equal(f->dsdt, 0);
	assert_int_equal(f->x_dsdt, tb.dsdt);
	assert_int_equal(f->firmware_ctrl, 0);
	assert_int_equal(f->x_firmware_ctrl, 0);
	/* No fixed hardware: no SCI, PM1, PM timer or GPE blocks. */
	assert_int_equal(f->sci_int, 0);
	assert_int_equal(f->smi_cmd, 0);
	assert_int_equal(f->pm1a_evt_blk | f->pm1a_cnt_blk | f->pm_tmr_blk | f->gpe0_blk, 0);
	assert_memory_equal(&f->x_pm1a_evt_blk, zero, sizeof(zero));
	assert_memory_equal(&f->x_pm1a_cnt_blk, zero, sizeof(zero));
	assert_memory_equal(&f->x_pm_tmr_blk, zero, sizeof(zero));
	assert_memory_equal(&f->x_gpe0_blk, zero, sizeof(zero));
	assert_memory_equal(f->hypervisor_vendor_id, "POPEK   ", 8);
}

static void check_madt(unsigned ncpus)
{
	const struct acpi_madt *m;
	struct tables tb;
	const uint8_t *p, *end;
	unsigned nlapic = 0, nioapic = 0, niso = 0, nnmi = 0;
	uint32_t len;

	walk(write_tables(ncpus), &tb);
	m = (const struct acpi_madt *)tb.m;
	len = m->header.length;
	assert_int_equal(len, 44 + 8 * ncpus + 12 + 10 + 6);
	assert_int_equal(m->lapic_address, LAYOUT_LAPIC_BASE);
	assert_int_equal(m->flags, 1);       /* PCAT_COMPAT */

	p = tb.m + sizeof(*m);
	end = tb.m + len;
	while (p < end) {
		assert_true(p + 2 <= end);
		assert_true(p[1] >= 2 && p + p[1] <= end);
		switch (p[0]) {
		case 0: {
			const struct acpi_madt_lapic *l = (const void *)p;

			assert_int_equal(l->length, 8);
			/* in order, APIC ID = UID = vCPU index, enabled */
			assert_int_equal(l->apic_id, nlapic);
			assert_int_equal(l->processor_uid, nlapic);
			assert_int_equal(l->flags, 1);
			nlapic++;
			break;
		}
		case 1: {
			const struct acpi_madt_ioapic *io = (const void *)p;

			assert_int_equal(io->length, 12);
			assert_int_equal(io->ioapic_id, ncpus);
			assert_int_equal(io->address, LAYOUT_IOAPIC_BASE);
			assert_int_equal(io->gsi_base, 0);
			nioapic++;
			break;
		}
		case 2: {
			const struct acpi_madt_int_src_override *o = (const void *)p;

			assert_int_equal(o->length, 10);
			assert_int_equal(o->bus, 0);
			assert_int_equal(o->source, 0);
			assert_int_equal(o->gsi, 2);
			assert_int_equal(o->flags, 0);
			niso++;
			break;
		}
		case 4: {
			const struct acpi_madt_lapic_nmi *n = (const void *)p;

			assert_int_equal(n->length, 6);
			assert_int_equal(n->processor_uid, 0xff);
			assert_int_equal(n->lint, 1);
			nnmi++;
			break;
		}
		default:
			fail_msg("unexpected MADT entry type %u", p[0]);
		}
		p += p[1];
	}
	assert_ptr_equal(p, end);
	assert_int_equal(nlapic, ncpus);
	assert_int_equal(nioapic, 1);
	assert_int_equal(niso, 1);
	assert_int_equal(nnmi, 1);
}

static void test_madt(void **state)
{
	(void)state;
	check_madt(1);
	check_madt(2);
	check_madt(4);
	check_madt(64);
	check_madt(254);
}

/* --- ACPICA's tools on the real tables --- */

static void need_tool(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	if (system(cmd) != 0)
		fail_msg("%s not found: install acpica-tools (apt-get install acpica-tools)", tool);
}

static int run(const char *dir, const char *cmd)
{
	char buf[1024];
	int st;

	snprintf(buf, sizeof(buf), "cd '%s' && %s", dir, cmd);
	st = system(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *dir, const char *name)
{
	char path[512];
	FILE *f;
	char *s;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

static void dump(const char *dir, const char *name, uint64_t gpa)
{
	char path[512];
	uint32_t len = rd32(gptr(gpa + 4, 4));
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(gptr(gpa, len), 1, len, f), len);
	fclose(f);
}

static void expect_in(const char *text, const char *what, const char *file)
{
	const char *t = text ? text : "";

	if (!strstr(t, what))
		fail_msg("%s: \"%s\" not found in:\n%s", file, what, t);
}

static void expect_not_in(const char *text, const char *what, const char *file)
{
	const char *t = text ? text : "";

	if (strstr(t, what))
		fail_msg("%s: unexpected \"%s\" in:\n%s", file, what, t);
}

/* The scratch directory of the running test, removed by its teardown
 * even when an assertion fails half-way. */
static char scratch[256];

static void make_dir(char *dir, size_t len)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, len, "%s/popek-acpi-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(scratch, sizeof(scratch), "%s", dir);
}

static int remove_scratch(void **state)
{
	char cmd[512];
	int ret = 0;

	(void)state;
	if (scratch[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
		ret = system(cmd) ? -1 : 0;
		scratch[0] = 0;
	}
	return ret;
}

static void remove_dir(const char *dir)
{
	assert_string_equal(dir, scratch);
	assert_int_equal(remove_scratch(NULL), 0);
}

/* Disassembles name.dat in dir: iasl must succeed and say nothing bad. */
static char *disassemble(const char *dir, const char *name)
{
	char cmd[256], dsl[128];
	char *text;

	snprintf(cmd, sizeof(cmd), "iasl -d %s.dat > %s.log 2>&1", name, name);
	if (run(dir, cmd) != 0) {
		snprintf(dsl, sizeof(dsl), "%s.log", name);
		fail_msg("iasl -d %s.dat failed: %s", name, slurp(dir, dsl));
	}
	snprintf(dsl, sizeof(dsl), "%s.dsl", name);
	text = slurp(dir, dsl);
	expect_not_in(text, "Error", dsl);
	expect_not_in(text, "Warning", dsl);
	expect_not_in(text, "Invalid", dsl);
	return text;
}

static void dump_all(const char *dir, const struct tables *tb)
{
	dump(dir, "dsdt.dat", tb->dsdt);
	dump(dir, "facp.dat", tb->fadt);
	dump(dir, "apic.dat", tb->madt);
	dump(dir, "xsdt.dat", tb->xsdt);
	if (tb->mcfg)
		dump(dir, "mcfg.dat", tb->mcfg);
}

static void test_iasl_disassembly(void **state)
{
	struct tables tb;
	char dir[256];
	char *dsdt, *facp, *apic, *xsdt, *re;

	(void)state;
	need_tool("iasl");
	walk(write_tables(4), &tb);
	make_dir(dir, sizeof(dir));
	dump_all(dir, &tb);

	dsdt = disassemble(dir, "dsdt");
	expect_in(dsdt, "Name (\\_S5, Package (0x04)", "dsdt.dsl");
	expect_in(dsdt, "0x05,", "dsdt.dsl");
	expect_in(dsdt, "Scope (\\_SB)", "dsdt.dsl");
	expect_in(dsdt, "Device (COM1)", "dsdt.dsl");
	expect_in(dsdt, "Name (_HID, EisaId (\"PNP0501\")", "dsdt.dsl");
	expect_in(dsdt, "Name (_UID, One)", "dsdt.dsl");
	expect_in(dsdt, "0x03F8,             // Range Minimum", "dsdt.dsl");
	expect_in(dsdt, "0x03F8,             // Range Maximum", "dsdt.dsl");
	expect_in(dsdt, "0x08,               // Length", "dsdt.dsl");
	expect_in(dsdt, "IRQNoFlags ()\n                    {4}", "dsdt.dsl");
	expect_in(dsdt, "Device (PEVT)", "dsdt.dsl");
	expect_in(dsdt, "Name (_HID, \"QEMU0001\")", "dsdt.dsl");
	expect_in(dsdt, "0x0505,             // Range Minimum", "dsdt.dsl");
	/* The i8042 as Linux's PNP probe wants it: data port, command
	 * port, IRQ 1. */
	expect_in(dsdt, "Device (KBD)", "dsdt.dsl");
	expect_in(dsdt, "Name (_HID, EisaId (\"PNP0303\")", "dsdt.dsl");
	expect_in(dsdt,
		  "IO (Decode16,\n"
		  "                    0x0060,             // Range Minimum\n"
		  "                    0x0060,             // Range Maximum\n"
		  "                    0x01,               // Alignment\n"
		  "                    0x01,               // Length", "dsdt.dsl");
	expect_in(dsdt,
		  "IO (Decode16,\n"
		  "                    0x0064,             // Range Minimum\n"
		  "                    0x0064,             // Range Maximum\n"
		  "                    0x01,               // Alignment\n"
		  "                    0x01,               // Length", "dsdt.dsl");
	expect_in(dsdt, "IRQNoFlags ()\n                    {1}", "dsdt.dsl");
	assert_true(strstr(dsdt, "Device (KBD)") > strstr(dsdt, "Device (COM1)"));
	assert_true(strstr(dsdt, "Device (PEVT)") > strstr(dsdt, "Device (KBD)"));

	/* iasl compiles the disassembly back to the very same AML
	 * (-oa: no optimisation, so names and integers keep their form). */
	if (run(dir, "cp dsdt.dsl re.dsl && iasl -oa re.dsl > re.log 2>&1") != 0)
		fail_msg("iasl re.dsl failed: %s", slurp(dir, "re.log"));
	re = slurp(dir, "re.log");
	expect_in(re, "0 Errors, 0 Warnings", "re.log");
	free(re);
	if (run(dir, "cmp -s -i 36 re.aml dsdt.dat") != 0)
		fail_msg("recompiled DSDT differs from ours");

	facp = disassemble(dir, "facp");
	expect_in(facp, "Revision : 06", "facp.dsl");
	expect_in(facp, "Hardware Reduced (V5) : 1", "facp.dsl");
	expect_in(facp, "Reset Register Supported (V2) : 1", "facp.dsl");
	expect_in(facp, "VGA Not Present (V4) : 1", "facp.dsl");
	expect_in(facp, "MSI Not Supported (V4) : 1", "facp.dsl");
	expect_in(facp, "8042 Present on ports 60/64 (V2) : 1", "facp.dsl");
	expect_in(facp, "Address : 0000000000000602", "facp.dsl");
	expect_in(facp, "Address : 0000000000000600", "facp.dsl");
	expect_in(facp, "Address : 0000000000000601", "facp.dsl");
	expect_in(facp, "FADT Minor Revision : 05", "facp.dsl");

	apic = disassemble(dir, "apic");
	expect_in(apic, "Local Apic Address : FEE00000", "apic.dsl");
	expect_in(apic, "PC-AT Compatibility : 1", "apic.dsl");
	expect_in(apic, "I/O Apic ID : 04", "apic.dsl");
	expect_in(apic, "[Interrupt Source Override]", "apic.dsl");
	expect_in(apic, "Interrupt Input LINT : 01", "apic.dsl");
	expect_in(apic, "Local Apic ID : 03", "apic.dsl");

	xsdt = disassemble(dir, "xsdt");
	expect_in(xsdt, "ACPI Table Address   0", "xsdt.dsl");
	expect_in(xsdt, "ACPI Table Address   1", "xsdt.dsl");

	free(dsdt);
	free(facp);
	free(apic);
	free(xsdt);
	remove_dir(dir);
}

/* ACPICA, the interpreter Linux uses, loads the tables, evaluates the
 * DSDT's objects and enters S5 through the sleep control register. */
static void test_acpiexec(void **state)
{
	struct tables tb;
	char dir[256];
	char *out;

	(void)state;
	need_tool("acpiexec");
	walk(write_tables(2), &tb);
	make_dir(dir, sizeof(dir));
	dump_all(dir, &tb);
	if (run(dir, "acpiexec -b 'evaluate \\_S5; evaluate \\_SB.COM1._HID; "
		     "evaluate \\_SB.COM1._CRS; evaluate \\_SB.PEVT._HID; "
		     "evaluate \\_SB.KBD._HID; evaluate \\_SB.KBD._CRS; sleep 5' "
		     "facp.dat apic.dat dsdt.dat > exec.log 2>&1") != 0)
		fail_msg("acpiexec failed: %s", slurp(dir, "exec.log"));
	out = slurp(dir, "exec.log");
	expect_not_in(out, "Error", "exec.log");
	expect_not_in(out, "Warning", "exec.log");
	expect_not_in(out, "Exception", "exec.log");
	expect_in(out, "FACP 0x", "exec.log");
	expect_in(out, "APIC 0x", "exec.log");
	expect_in(out, "[Package] Contains 4 Elements:\n    [Integer] = 0000000000000005", "exec.log");
	expect_in(out, "[Integer] = 000000000105D041", "exec.log");
	expect_in(out, "47 01 F8 03 F8 03 01 08 22 10 00 79 00", "exec.log");
	expect_in(out, "[String] Length 08 = \"QEMU0001\"", "exec.log");
	/* PNP0303; IO 0x60, IO 0x64 (one port each), IRQ 1 (mask 0x0002). */
	expect_in(out, "[Integer] = 000000000303D041", "exec.log");
	expect_in(out, "47 01 60 00 60 00 01 01 47 01 64 00 64 00 01 01", "exec.log");
	expect_in(out, "22 02 00 79 00", "exec.log");
	/* What acpi_pm decodes: SLP_TYPa 5, via the extended (hardware-
	 * reduced) sleep registers. */
	expect_in(out, "Sleep-A: 05", "exec.log");
	expect_in(out, "HwExtendedSleep", "exec.log");
	free(out);
	remove_dir(dir);
}

static void test_bad_cpu_counts(void **state)
{
	static const unsigned bad[] = { 0, 255, 256, 1000 };
	struct acpi_config cfg;
	char err[256];
	uint64_t rsdp = 0x1234;
	uint8_t *area;
	size_t i;

	(void)state;
	area = guest_memory_ptr(&mem, LAYOUT_ACPI_START, LAYOUT_ACPI_MAX);
	assert_non_null(area);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(area, 0xaa, LAYOUT_ACPI_MAX);
		cfg = (struct acpi_config){ .ncpus = bad[i] };
		err[0] = 0;
		assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), -EINVAL);
		assert_true(strlen(err) > 0);
		assert_int_equal(rsdp, 0x1234);
		/* nothing written */
		assert_int_equal(area[0], 0xaa);
		assert_int_equal(area[LAYOUT_ACPI_MAX - 1], 0xaa);
	}
	assert_int_equal(acpi_write_tables(&mem, NULL, &rsdp, err, sizeof(err)), -EINVAL);
}

static int fill_hook(struct aml_buf *b, void *opaque)
{
	static uint8_t junk[LAYOUT_ACPI_MAX];
	size_t n = *(size_t *)opaque;

	memset(junk, 0x01, sizeof(junk));   /* OneOps */
	aml_bytes(b, junk, n);
	return 0;
}

static void test_too_big(void **state)
{
	size_t n = LAYOUT_ACPI_MAX;
	struct acpi_config cfg = { .ncpus = 254, .sb_devices = fill_hook, .sb_opaque = &n };
	char err[256] = "";
	uint64_t rsdp = 0;

	(void)state;
	assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "do not fit"));
	assert_int_equal(rsdp, 0);
	/* No half-written tables for a guest to find. */
	assert_int_equal(find_rsdp(), 0);

	/* Just short of the limit still fits: the DSDT takes what is left. */
	n = 1000;
	assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), 0);
	assert_int_equal(find_rsdp(), rsdp);
}

/* The hook a PCI host bridge will use: a device inside \_SB. */
static int pci_hook(struct aml_buf *b, void *opaque)
{
	size_t dev;

	(void)opaque;
	dev = aml_device_begin(b, "PCI0");
	aml_name(b, "_HID");
	aml_eisaid(b, "PNP0A08");
	aml_name(b, "_CID");
	aml_eisaid(b, "PNP0A03");
	aml_end(b, dev);
	return 0;
}

static int failing_hook(struct aml_buf *b, void *opaque)
{
	(void)b;
	(void)opaque;
	return -EIO;
}

static int bad_name_hook(struct aml_buf *b, void *opaque)
{
	(void)opaque;
	aml_device_begin(b, "pci0");
	return 0;
}

static void test_sb_devices_hook(void **state)
{
	struct acpi_config cfg = { .ncpus = 2, .sb_devices = pci_hook };
	struct tables tb;
	char err[256] = "";
	char dir[256];
	uint64_t rsdp = 0;
	char *dsdt;

	(void)state;
	need_tool("iasl");
	assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), 0);
	walk(rsdp, &tb);
	make_dir(dir, sizeof(dir));
	dump_all(dir, &tb);
	dsdt = disassemble(dir, "dsdt");
	expect_in(dsdt, "Device (PEVT)", "dsdt.dsl");
	expect_in(dsdt, "Device (PCI0)", "dsdt.dsl");
	expect_in(dsdt, "EisaId (\"PNP0A08\")", "dsdt.dsl");
	/* inside \_SB: after PEVT, before the scope closes */
	assert_true(strstr(dsdt, "Device (PCI0)") > strstr(dsdt, "Device (PEVT)"));
	free(dsdt);
	remove_dir(dir);

	cfg.sb_devices = failing_hook;
	assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), -EIO);
	cfg.sb_devices = bad_name_hook;
	assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), -EINVAL);
}

/* --- PCI --- */

#define W64_BASE GiB(64)
#define W64_SIZE GiB(64)

/* A bus as pci_attach() leaves it: layout.h's 32-bit window and ECAM. */
static void pci_bus_setup(struct pci_bus *bus, uint64_t mmio64_base, uint64_t mmio64_size)
{
	assert_int_equal(pci_bus_init(bus, LAYOUT_PCI_MMIO32_START, LAYOUT_PCI_MMIO32_SIZE,
				      mmio64_base, mmio64_size), 0);
	bus->ecam_base = LAYOUT_PCI_ECAM_START;
	bus->ecam_size = LAYOUT_PCI_ECAM_SIZE;
}

/* What the builder hands acpi_write_tables for a machine with PCI. */
static struct acpi_config pci_config(unsigned ncpus, const struct pci_bus *bus)
{
	struct acpi_config cfg = { .ncpus = ncpus, .pci = true };
	struct pci_windows w;

	pci_bus_windows(bus, &w);
	cfg.pci_windows = (struct acpi_pci_windows){
		.ecam_base = w.ecam_base, .ecam_size = w.ecam_size,
		.mmio32_base = w.mmio32_base, .mmio32_size = w.mmio32_size,
		.mmio64_base = w.mmio64_base, .mmio64_size = w.mmio64_size,
		.intx_gsi_base = w.intx_gsi_base,
	};
	return cfg;
}

static uint64_t write_cfg(const struct acpi_config *cfg)
{
	char err[256] = "";
	uint64_t rsdp = 0;
	int ret;

	ret = acpi_write_tables(&mem, cfg, &rsdp, err, sizeof(err));
	if (ret)
		fail_msg("acpi_write_tables: %d %s", ret, err);
	return rsdp;
}

static void check_no_overlap(const struct tables *tb)
{
	uint64_t a[6] = { tb->rsdp, tb->xsdt, tb->fadt, tb->madt, tb->dsdt, tb->mcfg };
	uint32_t len[6] = { 36 };
	int n = tb->mcfg ? 6 : 5, i, j;

	for (i = 1; i < n; i++)
		len[i] = rd32(gptr(a[i] + 4, 4));
	for (i = 0; i < n; i++) {
		for (j = i + 1; j < n; j++)
			assert_true(a[i] + len[i] <= a[j] || a[j] + len[j] <= a[i]);
	}
}

/* MCFG (PCI Firmware 3.x §4.1.2) and the FADT boot flags with PCI. */
static void test_pci_mcfg_fadt(void **state)
{
	static const uint8_t zero[8];
	const struct acpi_mcfg_allocation *a;
	struct pci_bus bus;
	struct acpi_config cfg;
	struct tables tb;

	(void)state;
	pci_bus_setup(&bus, W64_BASE, W64_SIZE);
	cfg = pci_config(4, &bus);
	walk(write_cfg(&cfg), &tb);
	check_no_overlap(&tb);
	assert_int_equal(rd32(gptr(tb.xsdt + 4, 4)), 36 + 3 * 8);
	assert_non_null(tb.mc);
	assert_int_equal(rd32(tb.mc + 4), 44 + 16);
	assert_memory_equal(tb.mc + 36, zero, 8);
	a = (const struct acpi_mcfg_allocation *)(tb.mc + 44);
	assert_int_equal(a->base_address, LAYOUT_PCI_ECAM_START);
	assert_int_equal(a->segment, 0);
	assert_int_equal(a->start_bus, 0);
	assert_int_equal(a->end_bus, 0);
	assert_int_equal(a->reserved, 0);
	/* An 8042, MSI allowed, ASPM left alone, no VGA, no CMOS RTC. */
	assert_int_equal(tb.f->iapc_boot_arch, (1u << 1) | (1u << 2) | (1u << 4) | (1u << 5));

	/* ECAM for two buses: MCFG says buses 0-1. */
	cfg.pci_windows.ecam_size = MiB(2);
	walk(write_cfg(&cfg), &tb);
	a = (const struct acpi_mcfg_allocation *)(tb.mc + 44);
	assert_int_equal(a->end_bus, 1);

	/* No ECAM: no MCFG (config space through 0xCF8 only), still PCI. */
	cfg.pci_windows.ecam_size = 0;
	walk(write_cfg(&cfg), &tb);
	check_no_overlap(&tb);
	assert_null(tb.mc);
	assert_int_equal(rd32(gptr(tb.xsdt + 4, 4)), 36 + 2 * 8);
	assert_int_equal(tb.f->iapc_boot_arch, (1u << 1) | (1u << 2) | (1u << 4) | (1u << 5));
	pci_bus_destroy(&bus);
}

static int extra_hook(struct aml_buf *b, void *opaque)
{
	size_t dev;

	(void)opaque;
	dev = aml_device_begin(b, "XTRA");
	aml_name(b, "_HID");
	aml_string(b, "POPK0001");
	aml_name(b, "_UID");
	aml_integer(b, 7);
	aml_end(b, dev);
	return 0;
}

/* The DSDT's PCI0 and MBRD, the MCFG and the FADT as iasl reads them,
 * and the DSDT recompiled to the same bytes (iasl checks every resource
 * descriptor's fields on the way). */
static void test_pci_iasl(void **state)
{
	struct pci_bus bus;
	struct acpi_config cfg;
	struct tables tb;
	char dir[256];
	char *dsdt, *mcfg, *facp, *re;

	(void)state;
	need_tool("iasl");
	pci_bus_setup(&bus, W64_BASE, W64_SIZE);
	cfg = pci_config(2, &bus);
	cfg.sb_devices = extra_hook;
	walk(write_cfg(&cfg), &tb);
	make_dir(dir, sizeof(dir));
	dump_all(dir, &tb);

	dsdt = disassemble(dir, "dsdt");
	expect_in(dsdt, "Device (PCI0)", "dsdt.dsl");
	expect_in(dsdt, "Name (_HID, EisaId (\"PNP0A08\")", "dsdt.dsl");
	expect_in(dsdt, "Name (_CID, EisaId (\"PNP0A03\")", "dsdt.dsl");
	expect_in(dsdt, "Name (_SEG, Zero)", "dsdt.dsl");
	expect_in(dsdt, "Name (_BBN, Zero)", "dsdt.dsl");
	expect_in(dsdt, "Name (_UID, Zero)", "dsdt.dsl");
	expect_in(dsdt,
		  "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,\n"
		  "                    0x0000,             // Granularity\n"
		  "                    0x0000,             // Range Minimum\n"
		  "                    0x0000,             // Range Maximum\n"
		  "                    0x0000,             // Translation Offset\n"
		  "                    0x0001,             // Length", "dsdt.dsl");
	expect_in(dsdt,
		  "IO (Decode16,\n"
		  "                    0x0CF8,             // Range Minimum\n"
		  "                    0x0CF8,             // Range Maximum\n"
		  "                    0x01,               // Alignment\n"
		  "                    0x08,               // Length", "dsdt.dsl");
	expect_in(dsdt,
		  "WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,\n"
		  "                    0x0000,             // Granularity\n"
		  "                    0x0000,             // Range Minimum\n"
		  "                    0x0CF7,             // Range Maximum\n"
		  "                    0x0000,             // Translation Offset\n"
		  "                    0x0CF8,             // Length", "dsdt.dsl");
	expect_in(dsdt,
		  "                    0x0D00,             // Range Minimum\n"
		  "                    0xFFFF,             // Range Maximum\n"
		  "                    0x0000,             // Translation Offset\n"
		  "                    0xF300,             // Length", "dsdt.dsl");
	expect_in(dsdt,
		  "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, "
		  "ReadWrite,\n"
		  "                    0x00000000,         // Granularity\n"
		  "                    0xC0000000,         // Range Minimum\n"
		  "                    0xDFFFFFFF,         // Range Maximum\n"
		  "                    0x00000000,         // Translation Offset\n"
		  "                    0x20000000,         // Length", "dsdt.dsl");
	expect_in(dsdt,
		  "QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, "
		  "ReadWrite,\n"
		  "                    0x0000000000000000, // Granularity\n"
		  "                    0x0000001000000000, // Range Minimum\n"
		  "                    0x0000001FFFFFFFFF, // Range Maximum\n"
		  "                    0x0000000000000000, // Translation Offset\n"
		  "                    0x0000001000000000, // Length", "dsdt.dsl");
	expect_in(dsdt, "Name (_PRT, Package (0x80)", "dsdt.dsl");
	expect_in(dsdt, "Device (MBRD)", "dsdt.dsl");
	expect_in(dsdt, "Name (_HID, EisaId (\"PNP0C02\")", "dsdt.dsl");
	expect_in(dsdt,
		  "Memory32Fixed (ReadWrite,\n"
		  "                    0xE0000000,         // Address Base\n"
		  "                    0x00100000,         // Address Length", "dsdt.dsl");
	/* In \_SB, in order, the hook's device last. */
	assert_true(strstr(dsdt, "Device (PCI0)") > strstr(dsdt, "Device (PEVT)"));
	assert_true(strstr(dsdt, "Device (MBRD)") > strstr(dsdt, "Device (PCI0)"));
	assert_true(strstr(dsdt, "Device (XTRA)") > strstr(dsdt, "Device (MBRD)"));

	if (run(dir, "cp dsdt.dsl re.dsl && iasl -oa re.dsl > re.log 2>&1") != 0)
		fail_msg("iasl re.dsl failed: %s", slurp(dir, "re.log"));
	re = slurp(dir, "re.log");
	expect_in(re, "0 Errors, 0 Warnings", "re.log");
	free(re);
	if (run(dir, "cmp -s -i 36 re.aml dsdt.dat") != 0)
		fail_msg("recompiled DSDT differs from ours");

	mcfg = disassemble(dir, "mcfg");
	expect_in(mcfg, "Revision : 01", "mcfg.dsl");
	expect_in(mcfg, "Base Address : 00000000E0000000", "mcfg.dsl");
	expect_in(mcfg, "Segment Group Number : 0000", "mcfg.dsl");
	expect_in(mcfg, "Start Bus Number : 00", "mcfg.dsl");
	expect_in(mcfg, "End Bus Number : 00", "mcfg.dsl");

	facp = disassemble(dir, "facp");
	expect_in(facp, "VGA Not Present (V4) : 1", "facp.dsl");
	expect_in(facp, "MSI Not Supported (V4) : 0", "facp.dsl");
	expect_in(facp, "PCIe ASPM Not Supported (V4) : 1", "facp.dsl");
	expect_in(facp, "CMOS RTC Not Present (V5) : 1", "facp.dsl");
	free(dsdt);
	free(mcfg);
	free(facp);
	remove_dir(dir);

	/* No 64-bit window: no QWordMemory. ECAM above 4 GiB: MBRD holds
	 * it with a QWordMemory, which Linux's check takes as well. */
	cfg.pci_windows.mmio64_size = 0;
	cfg.pci_windows.ecam_base = GiB(256);
	walk(write_cfg(&cfg), &tb);
	make_dir(dir, sizeof(dir));
	dump_all(dir, &tb);
	dsdt = disassemble(dir, "dsdt");
	expect_not_in(dsdt, "Memory32Fixed", "dsdt.dsl");
	expect_in(dsdt,
		  "QWordMemory (ResourceConsumer, PosDecode, MinFixed, MaxFixed, NonCacheable, "
		  "ReadWrite,\n"
		  "                    0x0000000000000000, // Granularity\n"
		  "                    0x0000004000000000, // Range Minimum\n"
		  "                    0x00000040000FFFFF, // Range Maximum", "dsdt.dsl");
	/* the only QWordMemory is MBRD's */
	assert_true(strstr(dsdt, "QWordMemory") > strstr(dsdt, "Device (MBRD)"));
	if (run(dir, "cp dsdt.dsl re.dsl && iasl -oa re.dsl > re.log 2>&1") != 0)
		fail_msg("iasl re.dsl failed: %s", slurp(dir, "re.log"));
	if (run(dir, "cmp -s -i 36 re.aml dsdt.dat") != 0)
		fail_msg("recompiled DSDT differs from ours");
	free(dsdt);
	remove_dir(dir);
	pci_bus_destroy(&bus);
}

/* One _PRT entry as acpiexec prints it (ACPICA's AcpiGetIrqRoutingTable,
 * what Linux's drivers/acpi/pci_irq.c reads). */
struct prt_entry {
	unsigned long long address;
	unsigned pin, gsi;
};

static unsigned parse_prt(const char *out, struct prt_entry *e, unsigned max)
{
	const char *p = out;
	unsigned n = 0;

	while ((p = strstr(p, "PCI IRQ Routing Table Package")) != NULL) {
		const char *a = strstr(p, "Address : ");
		const char *pin = a ? strstr(a, "Pin : ") : NULL;
		const char *src = pin ? strstr(pin, "Source : [NULL NAMESTRING]") : NULL;
		const char *idx = src ? strstr(src, "Source Index : ") : NULL;

		assert_non_null(idx);
		assert_true(n < max);
		assert_int_equal(sscanf(a, "Address : %llx", &e[n].address), 1);
		assert_int_equal(sscanf(pin, "Pin : %x", &e[n].pin), 1);
		assert_int_equal(sscanf(idx, "Source Index : %x", &e[n].gsi), 1);
		n++;
		p = idx;
	}
	return n;
}

static struct pci_device devs[PCI_MAX_DEVICES];

/* ACPICA evaluates PCI0 and MBRD: _HID, the resources Linux's pci_root
 * and mmconfig code get from _CRS, and a _PRT that routes every slot and
 * pin where pci_device_intx_gsi() says the bus raises it. */
static void test_pci_acpiexec(void **state)
{
	struct prt_entry prt[PCI_MAX_DEVICES * 4 + 1];
	struct pci_bus bus;
	struct acpi_config cfg;
	struct tables tb;
	char dir[256];
	char *out;
	unsigned n, i, slot, pin;

	(void)state;
	need_tool("acpiexec");
	pci_bus_setup(&bus, W64_BASE, W64_SIZE);
	for (i = 1; i < PCI_MAX_DEVICES; i++) {
		pci_device_init(&devs[i], "intx", 0x1af4, 0x1000 + i, 0x020000, 0, 0x1af4, 0);
		pci_device_set_intx_pin(&devs[i], 1);
		assert_int_equal(pci_bus_add_device(&bus, &devs[i]), (int)i);
	}
	cfg = pci_config(2, &bus);
	walk(write_cfg(&cfg), &tb);
	make_dir(dir, sizeof(dir));
	dump_all(dir, &tb);
	if (run(dir, "acpiexec -b 'evaluate \\_SB.PCI0._HID; evaluate \\_SB.PCI0._CID; "
		     "evaluate \\_SB.PCI0._SEG; evaluate \\_SB.MBRD._HID; "
		     "resources \\_SB.PCI0; resources \\_SB.MBRD' "
		     "facp.dat apic.dat mcfg.dat dsdt.dat > exec.log 2>&1") != 0)
		fail_msg("acpiexec failed: %s", slurp(dir, "exec.log"));
	out = slurp(dir, "exec.log");
	expect_not_in(out, "Error", "exec.log");
	expect_not_in(out, "Warning", "exec.log");
	expect_not_in(out, "Exception", "exec.log");
	expect_in(out, "MCFG 0x", "exec.log");
	expect_in(out, "[Integer] = 00000000080AD041", "exec.log");   /* PNP0A08 */
	expect_in(out, "[Integer] = 00000000030AD041", "exec.log");   /* PNP0A03 */
	expect_in(out, "[Integer] = 00000000020CD041", "exec.log");   /* PNP0C02 */

	/* _CRS through ACPICA's resource manager. */
	expect_in(out, "Resource Type : Bus Number Range", "exec.log");
	expect_in(out, "Address Minimum : 0CF8\n"
		       "            Address Maximum : 0CF8", "exec.log");
	expect_in(out, "Address Minimum : 0000\n"
		       "            Address Maximum : 0CF7", "exec.log");
	expect_in(out, "Address Minimum : 0D00\n"
		       "            Address Maximum : FFFF", "exec.log");
	expect_in(out, "Caching : NonCacheable", "exec.log");
	expect_in(out, "Address Minimum : C0000000\n"
		       "            Address Maximum : DFFFFFFF\n"
		       "         Translation Offset : 00000000\n"
		       "             Address Length : 20000000", "exec.log");
	expect_in(out, "Address Minimum : 0000001000000000\n"
		       "            Address Maximum : 0000001FFFFFFFFF\n"
		       "         Translation Offset : 0000000000000000\n"
		       "             Address Length : 0000001000000000", "exec.log");
	expect_in(out, "32-Bit Fixed Memory Range Resource\n"
		       "              Write Protect : ReadWrite\n"
		       "                    Address : E0000000\n"
		       "             Address Length : 00100000", "exec.log");

	/* _PRT: every slot, every pin, in GSI form, as the bus routes. */
	n = parse_prt(out, prt, sizeof(prt) / sizeof(prt[0]));
	assert_int_equal(n, PCI_MAX_DEVICES * 4);
	for (i = 0; i < n; i++) {
		slot = (unsigned)(prt[i].address >> 16);
		pin = prt[i].pin + 1;
		assert_int_equal(prt[i].address & 0xffff, 0xffff);
		assert_int_equal(slot, i / 4);
		assert_int_equal(prt[i].pin, i % 4);
		if (slot == 0) {
			/* the host bridge raises no INTx; same swizzle anyway */
			assert_int_equal(prt[i].gsi, 16 + prt[i].pin);
			continue;
		}
		pci_device_set_intx_pin(&devs[slot], (uint8_t)pin);
		assert_int_equal(prt[i].gsi, pci_device_intx_gsi(&devs[slot]));
	}
	free(out);
	remove_dir(dir);
	pci_bus_destroy(&bus);
}

static void test_bad_pci_windows(void **state)
{
	const struct acpi_pci_windows good = {
		.ecam_base = LAYOUT_PCI_ECAM_START, .ecam_size = LAYOUT_PCI_ECAM_SIZE,
		.mmio32_base = LAYOUT_PCI_MMIO32_START, .mmio32_size = LAYOUT_PCI_MMIO32_SIZE,
		.mmio64_base = W64_BASE, .mmio64_size = W64_SIZE,
		.intx_gsi_base = 16,
	};
	struct acpi_pci_windows bad[9];
	struct acpi_config cfg = { .ncpus = 1, .pci = true };
	char err[256];
	uint64_t rsdp = 0x1234;
	uint8_t *area;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		bad[i] = good;
	bad[0].mmio32_size = 0;
	bad[1].mmio32_base = 0xf0000000;            /* past 4 GiB */
	bad[2].mmio64_base = 0xfffffffff0000000ULL; /* wraps */
	bad[3].ecam_size = MiB(1) + KiB(512);       /* not whole buses */
	bad[4].ecam_base = LAYOUT_PCI_ECAM_START + KiB(4);
	bad[5].ecam_size = MiB(512);                /* 512 buses */
	bad[6].intx_gsi_base = 0;                   /* ISA IRQs */
	bad[7].intx_gsi_base = 21;                  /* past pin 23 */
	bad[8].ecam_base = 0xfffffffffff00000ULL;   /* wraps */
	bad[8].ecam_size = MiB(2);
	area = guest_memory_ptr(&mem, LAYOUT_ACPI_START, LAYOUT_ACPI_MAX);
	assert_non_null(area);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(area, 0xaa, LAYOUT_ACPI_MAX);
		cfg.pci_windows = bad[i];
		err[0] = 0;
		if (acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)) != -EINVAL)
			fail_msg("bad windows %zu accepted", i);
		assert_true(strlen(err) > 0);
		assert_int_equal(rsdp, 0x1234);
		assert_int_equal(area[0], 0xaa);
		assert_int_equal(area[LAYOUT_ACPI_MAX - 1], 0xaa);
	}
	/* The edges that are fine: INTx on pins 20-23, a window ending at
	 * 4 GiB, 256 buses. */
	cfg.pci_windows = good;
	cfg.pci_windows.intx_gsi_base = 20;
	cfg.pci_windows.mmio32_base = GiB(3);
	cfg.pci_windows.mmio32_size = GiB(1);
	cfg.pci_windows.ecam_size = MiB(256);
	assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), 0);
	/* Without PCI the windows are not looked at. */
	cfg = (struct acpi_config){ .ncpus = 1, .pci_windows = bad[0] };
	assert_int_equal(acpi_write_tables(&mem, &cfg, &rsdp, err, sizeof(err)), 0);
}

static void test_not_ram(void **state)
{
	struct guest_memory unmapped;
	struct acpi_config cfg = { .ncpus = 1 };
	char err[256] = "";
	uint64_t rsdp = 0;

	(void)state;
	/* regions computed but never mapped: no host memory behind them */
	assert_int_equal(guest_memory_layout(&unmapped, MiB(16)), 0);
	assert_int_equal(acpi_write_tables(&unmapped, &cfg, &rsdp, err, sizeof(err)), -EFAULT);
	assert_true(strlen(err) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp),
		cmocka_unit_test(test_xsdt),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_madt),
		cmocka_unit_test_teardown(test_iasl_disassembly, remove_scratch),
		cmocka_unit_test_teardown(test_acpiexec, remove_scratch),
		cmocka_unit_test(test_bad_cpu_counts),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test_teardown(test_sb_devices_hook, remove_scratch),
		cmocka_unit_test(test_pci_mcfg_fadt),
		cmocka_unit_test_teardown(test_pci_iasl, remove_scratch),
		cmocka_unit_test_teardown(test_pci_acpiexec, remove_scratch),
		cmocka_unit_test(test_bad_pci_windows),
		cmocka_unit_test(test_not_ram),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
