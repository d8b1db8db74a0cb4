/* PVH boot: entry note discovery and kernel_load() building the
 * hvm_start_info, memory map, command line and initrd module. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/e820.h"
#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "arch/x86/pvh.h"
#include "vmm/memory.h"

#include "image_builder.h"

/* A PVH kernel: a build-id note then the PHYS32_ENTRY note, text at 1 MiB
 * (virtual address high, as in Linux), data + bss at 2 MiB. The file ends
 * with the last data byte. */
#define NOTE_OFF   0x100
#define TEXT_OFF   0x200
#define TEXT_SIZE  0x100
#define TEXT_PADDR 0x100000
#define DATA_OFF   0x300
#define DATA_SIZE  0x80
#define DATA_MEMSZ 0x3000
#define DATA_PADDR 0x200000
#define STD_SIZE   (DATA_OFF + DATA_SIZE)
#define ENTRY      (TEXT_PADDR + 0x40)
#define NSEGS      3

struct pvh_img {
	bool is64;
	uint32_t entry;
	uint32_t descsz;          /* 4 or 8, or something invalid */
	const char *name;         /* note name, "Xen" */
	uint32_t type;            /* note type, 18 */
	struct seg s[NSEGS];
};

static void default_img(struct pvh_img *p, bool is64)
{
	uint64_t vbase = is64 ? 0xffffffff81000000ULL : 0xc0100000ULL;

	*p = (struct pvh_img){ .is64 = is64, .entry = ENTRY, .descsz = is64 ? 8 : 4,
			       .name = "Xen", .type = XEN_ELFNOTE_PHYS32_ENTRY };
	p->s[0] = (struct seg){ PT_NOTE, NOTE_OFF, 0, 0, 0, 0, 4 };
	p->s[1] = (struct seg){ PT_LOAD, TEXT_OFF, vbase, TEXT_PADDR, TEXT_SIZE, TEXT_SIZE, 0x1000 };
	p->s[2] = (struct seg){ PT_LOAD, DATA_OFF, vbase + 0x100000, DATA_PADDR,
				DATA_SIZE, DATA_MEMSZ, 0x1000 };
}

static size_t build(uint8_t *buf, struct pvh_img *p)
{
	static const uint8_t id[20] = { 0xde, 0xad, 0xbe, 0xef };
	uint8_t desc[16] = { 0 };
	size_t n;

	memset(buf, 0, IMG_MAX);
	/* The high half of an 8-byte desc is not part of the entry. */
	memset(desc, 0xff, sizeof(desc));
	put_u32(desc, p->entry);
	n = put_note(buf + NOTE_OFF, "GNU", NT_GNU_BUILD_ID, id, sizeof(id));
	n += put_note(buf + NOTE_OFF + n, p->name, p->type, desc, p->descsz);
	if (!p->s[0].filesz)
		p->s[0].filesz = p->s[0].memsz = n;
	put_elf(buf, p->is64, p->is64 ? EM_X86_64 : EM_386, p->s[1].vaddr, p->s, NSEGS);
	fill_pattern(buf + TEXT_OFF, TEXT_SIZE, 0x21);
	fill_pattern(buf + DATA_OFF, DATA_SIZE, 0x77);
	return STD_SIZE;
}

static size_t std_image(uint8_t *buf, bool is64)
{
	struct pvh_img p;

	default_img(&p, is64);
	return build(buf, &p);
}

static struct hvm_start_info read_start_info(const struct guest_memory *mem)
{
	struct hvm_start_info si;

	assert_int_equal(guest_memory_read(mem, LAYOUT_BOOT_INFO, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, XEN_HVM_START_MAGIC_VALUE);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(si.rsdp_paddr, 0);
	assert_int_equal(si.reserved, 0);
	return si;
}

/* The memory map in guest RAM is the e820 map, inside the boot info page. */
static void check_memmap(const struct guest_memory *mem, const struct hvm_start_info *si)
{
	struct e820_entry e820[E820_MAX_ENTRIES];
	struct hvm_memmap_table_entry m;
	int n, i;

	n = e820_build(mem, e820, E820_MAX_ENTRIES);
	assert_int_equal(si->memmap_entries, n);
	assert_true(si->memmap_paddr >= LAYOUT_BOOT_INFO + sizeof(*si));
	assert_true(si->memmap_paddr + n * sizeof(m) <= LAYOUT_BOOT_INFO + LAYOUT_BOOT_INFO_SIZE);
	assert_int_equal(si->memmap_paddr % 8, 0);
	for (i = 0; i < n; i++) {
		guest_memory_read(mem, si->memmap_paddr + i * sizeof(m), &m, sizeof(m));
		assert_int_equal(m.addr, e820[i].addr);
		assert_int_equal(m.size, e820[i].size);
		assert_int_equal(m.type, e820[i].type);
		assert_int_equal(m.reserved, 0);
	}
}

static void check_boot(bool is64)
{
	const char *cmdline = "console=ttyS0 root=/dev/vda rw";
	uint8_t buf[IMG_MAX];
	struct boot_entry out;
	struct hvm_start_info si;
	char err[256] = "";

	memset(gptr(&mem128, DATA_PADDR, DATA_MEMSZ), 0xaa, DATA_MEMSZ);
	assert_int_equal(kernel_load(&mem128, buf, std_image(buf, is64), cmdline, NULL,
				     &out, err, sizeof(err)), 0);
	assert_int_equal(out.protocol, BOOT_PROTOCOL_PVH);
	assert_string_equal(boot_protocol_name(out.protocol), "pvh");
	assert_int_equal(out.eip, ENTRY);
	assert_int_equal(out.ebx, LAYOUT_BOOT_INFO);
	assert_int_equal(out.eax, 0);
	assert_int_equal(out.esi, 0);
	/* Segments at their physical addresses, bss zeroed. */
	assert_true(is_pattern(gptr(&mem128, TEXT_PADDR, TEXT_SIZE), TEXT_SIZE, 0x21));
	assert_true(is_pattern(gptr(&mem128, DATA_PADDR, DATA_SIZE), DATA_SIZE, 0x77));
	assert_true(all_bytes(gptr(&mem128, DATA_PADDR + DATA_SIZE, DATA_MEMSZ - DATA_SIZE),
			      DATA_MEMSZ - DATA_SIZE, 0));
	si = read_start_info(&mem128);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
	check_memmap(&mem128, &si);
	assert_int_equal(si.memmap_entries, 4);
	assert_string_equal((const char *)gptr(&mem128, si.cmdline_paddr, strlen(cmdline) + 1),
			    cmdline);
}

static void test_boot_elf64(void **state)
{
	(void)state;
	check_boot(true);
}

static void test_boot_elf32(void **state)
{
	(void)state;
	check_boot(false);
}

static void test_boot_8g_memmap(void **state)
{
	struct guest_memory mem;
	struct hvm_memmap_table_entry m;
	struct hvm_start_info si;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	assert_int_equal(guest_memory_init(&mem, GiB(8)), 0);
	assert_int_equal(kernel_load(&mem, buf, std_image(buf, true), "", NULL,
				     &out, err, sizeof(err)), 0);
	si = read_start_info(&mem);
	check_memmap(&mem, &si);
	assert_int_equal(si.memmap_entries, 5);
	guest_memory_read(&mem, si.memmap_paddr + 4 * sizeof(m), &m, sizeof(m));
	assert_int_equal(m.addr, GiB(4));
	assert_int_equal(m.size, GiB(5));
	assert_int_equal(m.type, E820_RAM);
	guest_memory_read(&mem, si.memmap_paddr + 3 * sizeof(m), &m, sizeof(m));
	assert_int_equal(m.addr + m.size, GiB(3));
	guest_memory_destroy(&mem);
}

static int find(uint8_t *buf, struct pvh_img *p, uint32_t *entry, char *err, size_t errlen)
{
	struct elf_image elf;
	size_t size = build(buf, p);

	assert_int_equal(elf_parse(&elf, buf, size, err, errlen), 0);
	return pvh_find_entry(&elf, entry, err, errlen);
}

static void test_find_entry(void **state)
{
	uint8_t buf[IMG_MAX];
	struct pvh_img p;
	uint32_t entry = 0;
	char err[256] = "";

	(void)state;
	default_img(&p, true);
	assert_int_equal(find(buf, &p, &entry, err, sizeof(err)), 1);
	assert_int_equal(entry, ENTRY);
	/* Not ours: other owner, other type, name without its NUL. */
	default_img(&p, true);
	p.name = "Xem";
	assert_int_equal(find(buf, &p, &entry, err, sizeof(err)), 0);
	default_img(&p, true);
	p.name = "Xen2";
	assert_int_equal(find(buf, &p, &entry, err, sizeof(err)), 0);
	default_img(&p, true);
	p.type = 17;
	assert_int_equal(find(buf, &p, &entry, err, sizeof(err)), 0);
	/* Ours but with a descriptor that is not an address. */
	default_img(&p, true);
	p.descsz = 2;
	assert_int_equal(find(buf, &p, &entry, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "2-byte descriptor"));
	default_img(&p, false);
	p.descsz = 12;
	assert_int_equal(find(buf, &p, &entry, err, sizeof(err)), -ENOEXEC);
}

static void test_no_note_segment(void **state)
{
	uint8_t buf[IMG_MAX];
	struct pvh_img p;
	struct boot_entry out;
	char err[256];

	(void)state;
	default_img(&p, true);
	p.s[0].type = PT_NULL;
	/* A valid ELF, no PVH note, no multiboot header. */
	assert_int_equal(kernel_load(&mem128, buf, build(buf, &p), "", NULL, &out,
				     err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "not a loadable kernel: no PVH entry note and no multiboot header");
}

static void expect_fail(struct pvh_img *p, int ret, const char *msg)
{
	uint8_t buf[IMG_MAX];
	struct boot_entry out;
	char err[256] = "";

	assert_int_equal(kernel_load(&mem128, buf, build(buf, p), "", NULL, &out,
				     err, sizeof(err)), ret);
	if (!strstr(err, msg))
		fail_msg("message \"%s\" lacks \"%s\"", err, msg);
}

static void test_bad_images(void **state)
{
	struct pvh_img p;
	int c;

	(void)state;
	for (c = 0; c < 2; c++) {
		default_img(&p, c);
		p.entry = 0x5000;
		expect_fail(&p, -ENOEXEC, "PVH entry point 0x5000 is outside the loaded segments");
		default_img(&p, c);
		p.s[2].paddr = MiB(200);
		expect_fail(&p, -EFAULT, "segment 2 at 0xc800000 (size 0x3000) is outside guest RAM");
		default_img(&p, c);
		p.s[1].paddr = 0x8000;
		expect_fail(&p, -ENOEXEC, "below 1 MiB");
		default_img(&p, c);
		p.s[2].filesz = DATA_MEMSZ + 1;
		expect_fail(&p, -ENOEXEC, "larger than memory size");
		/* The note segment claims more than it holds. */
		default_img(&p, c);
		p.s[0].filesz = 0x1000;
		expect_fail(&p, -ENOEXEC, "past the end of the file");
	}
}

static void test_huge_note_sizes(void **state)
{
	uint8_t buf[IMG_MAX];
	struct boot_entry out;
	char err[256];
	size_t size;
	int c;

	(void)state;
	for (c = 0; c < 2; c++) {
		size = std_image(buf, c);
		put_u32(buf + NOTE_OFF, 0xfffffff0);          /* namesz */
		assert_int_equal(kernel_load(&mem128, buf, size, "", NULL, &out,
					     err, sizeof(err)), -ENOEXEC);
		assert_non_null(strstr(err, "overruns its segment"));
		size = std_image(buf, c);
		put_u32(buf + NOTE_OFF + 4, 0xffffffff);      /* descsz */
		assert_int_equal(kernel_load(&mem128, buf, size, "", NULL, &out,
					     err, sizeof(err)), -ENOEXEC);
		assert_non_null(strstr(err, "overruns its segment"));
	}
}

static int load_kernel(const void *image, size_t size, char *err, size_t errlen)
{
	struct boot_entry out;

	return kernel_load(&mem128, image, size, "", NULL, &out, err, errlen);
}

static void test_truncated(void **state)
{
	uint8_t buf[IMG_MAX];
	int c;

	(void)state;
	for (c = 0; c < 2; c++)
		check_truncations(buf, std_image(buf, c), load_kernel);
}

static void test_not_a_kernel(void **state)
{
	static const char junk[] = "#!/bin/sh\necho this is not a kernel\n";
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];
	size_t size;

	(void)state;
	assert_int_equal(kernel_load(&mem128, junk, sizeof(junk), "", NULL, &out,
				     err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "not a loadable kernel: no PVH entry note and no multiboot header");
	assert_int_equal(kernel_load(&mem128, junk, 0, "", NULL, &out,
				     err, sizeof(err)), -ENOEXEC);
	/* A broken ELF says what is broken. */
	size = std_image(buf, true);
	buf[offsetof(Elf64_Ehdr, e_machine)] = EM_ARM;
	assert_int_equal(kernel_load(&mem128, buf, size, "", NULL, &out,
				     err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "not a loadable kernel: invalid ELF: ELF machine 40 is not x86 (EM_386 or EM_X86_64)");
}

static void test_cmdline(void **state)
{
	char *line = malloc(LAYOUT_CMDLINE_MAX + 1);
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];
	size_t size = std_image(buf, true);

	(void)state;
	assert_non_null(line);
	/* NULL is the empty command line. */
	memset(gptr(&mem128, LAYOUT_CMDLINE, 16), 'x', 16);
	assert_int_equal(kernel_load(&mem128, buf, size, NULL, NULL, &out, err, sizeof(err)), 0);
	assert_int_equal(*gptr(&mem128, LAYOUT_CMDLINE, 1), 0);
	/* The longest that fits, NUL included. */
	memset(line, 'a', LAYOUT_CMDLINE_MAX - 1);
	line[LAYOUT_CMDLINE_MAX - 1] = 0;
	assert_int_equal(kernel_load(&mem128, buf, size, line, NULL, &out, err, sizeof(err)), 0);
	assert_memory_equal(gptr(&mem128, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX), line,
			    LAYOUT_CMDLINE_MAX);
	/* One more byte is too long. */
	memset(line, 'b', LAYOUT_CMDLINE_MAX);
	line[LAYOUT_CMDLINE_MAX] = 0;
	assert_int_equal(kernel_load(&mem128, buf, size, line, NULL, &out, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "kernel command line is 4097 bytes, the limit is 4096 (including the NUL)");
	free(line);
}

static struct hvm_modlist_entry read_module(const struct guest_memory *mem,
					    const struct hvm_start_info *si)
{
	struct hvm_modlist_entry m;

	assert_int_equal(si->nr_modules, 1);
	assert_true(si->modlist_paddr >= LAYOUT_BOOT_INFO);
	assert_true(si->modlist_paddr + sizeof(m) <= LAYOUT_BOOT_INFO + LAYOUT_BOOT_INFO_SIZE);
	/* Not on top of the memory map. */
	assert_true(si->modlist_paddr >= si->memmap_paddr +
		    si->memmap_entries * sizeof(struct hvm_memmap_table_entry));
	guest_memory_read(mem, si->modlist_paddr, &m, sizeof(m));
	assert_int_equal(m.cmdline_paddr, 0);
	assert_int_equal(m.reserved, 0);
	return m;
}

static void test_initrd(void **state)
{
	size_t isize = MiB(3) + 123;
	uint8_t *data = malloc(isize);
	struct boot_module initrd = { data, isize };
	struct hvm_modlist_entry m;
	struct hvm_start_info si;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	assert_non_null(data);
	fill_pattern(data, isize, 0x3c);
	assert_int_equal(kernel_load(&mem128, buf, std_image(buf, true), "", &initrd, &out,
				     err, sizeof(err)), 0);
	si = read_start_info(&mem128);
	check_memmap(&mem128, &si);
	m = read_module(&mem128, &si);
	/* Page-aligned, as high as it goes below the end of RAM. */
	assert_int_equal(m.paddr, (MiB(128) - isize) & ~0xfffULL);
	assert_int_equal(m.size, isize);
	assert_true(is_pattern(gptr(&mem128, m.paddr, isize), isize, 0x3c));
	free(data);
}

static void test_initrd_below_high_kernel(void **state)
{
	size_t isize = MiB(8);
	uint8_t *data = calloc(1, MiB(64)); /* room for the larger tries below */
	struct boot_module initrd = { data, isize };
	struct hvm_modlist_entry m;
	struct hvm_start_info si;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	struct pvh_img p;
	char err[256];

	(void)state;
	assert_non_null(data);
	/* A kernel whose data sits at the very top of RAM. */
	default_img(&p, true);
	p.s[1].paddr = MiB(64);
	p.entry = MiB(64);
	p.s[2].paddr = MiB(128) - DATA_MEMSZ;
	assert_int_equal(kernel_load(&mem128, buf, build(buf, &p), "", &initrd, &out,
				     err, sizeof(err)), 0);
	si = read_start_info(&mem128);
	m = read_module(&mem128, &si);
	assert_int_equal(m.paddr, MiB(64) - isize);
	assert_true(all_bytes(gptr(&mem128, m.paddr, isize), isize, 0));
	/* Still fits below the kernel with nothing to spare... */
	initrd.size = MiB(63);
	assert_int_equal(kernel_load(&mem128, buf, build(buf, &p), "", &initrd, &out,
				     err, sizeof(err)), 0);
	si = read_start_info(&mem128);
	assert_int_equal(read_module(&mem128, &si).paddr, MiB(1));
	/* ...but not one page more. */
	initrd.size = MiB(63) + 1;
	assert_int_equal(kernel_load(&mem128, buf, build(buf, &p), "", &initrd, &out,
				     err, sizeof(err)), -E2BIG);
	free(data);
}

static void test_initrd_too_big(void **state)
{
	struct boot_module initrd;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	/* Never read: placement fails first. */
	initrd = (struct boot_module){ buf, MiB(127) };
	assert_int_equal(kernel_load(&mem128, buf, std_image(buf, true), "", &initrd, &out,
				     err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "initrd of 133169152 bytes does not fit"));
	initrd.size = SIZE_MAX;
	assert_int_equal(kernel_load(&mem128, buf, std_image(buf, true), "", &initrd, &out,
				     err, sizeof(err)), -E2BIG);
}

static void test_place_initrd(void **state)
{
	struct guest_memory mem;
	uint64_t at = 0;

	(void)state;
	/* Above 3 GiB of RAM the initrd stays below the hole. */
	assert_int_equal(guest_memory_layout(&mem, MiB(3500)), 0);
	assert_int_equal(loader_place_initrd(&mem, 0x1800, MiB(1), MiB(2), &at), 0);
	assert_int_equal(at, GiB(3) - 0x2000);
	assert_int_equal(loader_place_initrd(&mem, GiB(3) - MiB(2), MiB(1), MiB(2), &at), 0);
	assert_int_equal(at, MiB(2));
	assert_int_equal(loader_place_initrd(&mem, GiB(3) - MiB(2) + 1, MiB(1), MiB(2), &at), -E2BIG);
	assert_int_equal(loader_place_initrd(&mem, GiB(3) - MiB(3), MiB(1), MiB(2), &at), 0);
	assert_int_equal(at, MiB(3));
	/* A kernel above 4 GiB does not constrain it. */
	assert_int_equal(loader_place_initrd(&mem, MiB(16), GiB(4), GiB(4) + MiB(1), &at), 0);
	assert_int_equal(at, GiB(3) - MiB(16));
	/* An empty initrd still gets an address inside RAM. */
	assert_int_equal(loader_place_initrd(&mem, 0, MiB(1), MiB(2), &at), 0);
	assert_true(at < GiB(3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_elf64),
		cmocka_unit_test(test_boot_elf32),
		cmocka_unit_test(test_boot_8g_memmap),
		cmocka_unit_test(test_find_entry),
		cmocka_unit_test(test_no_note_segment),
		cmocka_unit_test(test_bad_images),
		cmocka_unit_test(test_huge_note_sizes),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_not_a_kernel),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_initrd),
		cmocka_unit_test(test_initrd_below_high_kernel),
		cmocka_unit_test(test_initrd_too_big),
		cmocka_unit_test(test_place_initrd),
	};

	return cmocka_run_group_tests(tests, mem128_setup, mem128_teardown);
}
