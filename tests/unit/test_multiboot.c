/* Multiboot v1: header search, ELF32 and a.out-kludge loading, and the
 * multiboot_info that kernel_load() builds. */
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
#include "arch/x86/multiboot.h"
#include "vmm/memory.h"

#include "image_builder.h"

/* A multiboot header (§3.1.1) at p; with MULTIBOOT_AOUT_KLUDGE in flags
 * the five address fields follow. */
struct mb_fields {
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

static void put_mb_header(uint8_t *p, uint32_t flags, const struct mb_fields *f)
{
	put_u32(p, MULTIBOOT_HEADER_MAGIC);
	put_u32(p + 4, flags);
	put_u32(p + 8, -(MULTIBOOT_HEADER_MAGIC + flags));
	if (!f)
		return;
	put_u32(p + 12, f->header_addr);
	put_u32(p + 16, f->load_addr);
	put_u32(p + 20, f->load_end_addr);
	put_u32(p + 24, f->bss_end_addr);
	put_u32(p + 28, f->entry_addr);
}

/* ELF32 multiboot kernel: the header opens the text segment, which is
 * linked at 3 GiB + 1 MiB but loaded at 1 MiB; data + bss at 2 MiB. */
#define TEXT_OFF   0x100
#define TEXT_SIZE  0x200
#define TEXT_PADDR 0x100000
#define TEXT_VADDR 0xc0100000
#define DATA_OFF   0x300
#define DATA_SIZE  0x80
#define DATA_MEMSZ 0x2000
#define DATA_PADDR 0x200000
#define ELF_SIZE   (DATA_OFF + DATA_SIZE)
#define MB_FLAGS   (MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO)

static size_t elf_kernel(uint8_t *buf, bool is64, uint64_t entry_vaddr, uint64_t text_paddr)
{
	struct seg s[2] = {
		{ PT_LOAD, TEXT_OFF, TEXT_VADDR, text_paddr, TEXT_SIZE, TEXT_SIZE, 0x1000 },
		{ PT_LOAD, DATA_OFF, TEXT_VADDR + 0x100000, DATA_PADDR, DATA_SIZE, DATA_MEMSZ, 0x1000 },
	};

	memset(buf, 0, IMG_MAX);
	put_elf(buf, is64, is64 ? EM_X86_64 : EM_386, entry_vaddr, s, 2);
	fill_pattern(buf + TEXT_OFF, TEXT_SIZE, 0x31);
	fill_pattern(buf + DATA_OFF, DATA_SIZE, 0x99);
	put_mb_header(buf + TEXT_OFF, MB_FLAGS, NULL);
	return ELF_SIZE;
}

static size_t std_elf(uint8_t *buf)
{
	return elf_kernel(buf, false, TEXT_VADDR + 0x20, TEXT_PADDR);
}

/* a.out-kludge kernel: a flat binary whose first 0x300 bytes load at
 * 1 MiB, with bss up to 1 MiB + 8 KiB; the file has 0x100 bytes of
 * trailing junk that load_end_addr leaves out. */
#define AOUT_HDR_OFF  0x40
#define AOUT_LOAD     0x100000
#define AOUT_LOADLEN  0x300
#define AOUT_BSS_END  0x102000
#define AOUT_ENTRY    0x100080
#define AOUT_SIZE     0x400

static struct mb_fields aout_fields(void)
{
	return (struct mb_fields){
		.header_addr = AOUT_LOAD + AOUT_HDR_OFF,
		.load_addr = AOUT_LOAD,
		.load_end_addr = AOUT_LOAD + AOUT_LOADLEN,
		.bss_end_addr = AOUT_BSS_END,
		.entry_addr = AOUT_ENTRY,
	};
}

static size_t aout_kernel(uint8_t *buf, const struct mb_fields *f)
{
	memset(buf, 0, IMG_MAX);
	fill_pattern(buf, AOUT_SIZE, 0x44);
	put_mb_header(buf + AOUT_HDR_OFF, MB_FLAGS | MULTIBOOT_AOUT_KLUDGE, f);
	return AOUT_SIZE;
}

static void poison(void)
{
	memset(gptr(&mem128, MiB(1), MiB(2)), 0xaa, MiB(2));
}

/* --- header search ---------------------------------------------------- */

static int find_at(uint8_t *buf, size_t size, size_t off, uint32_t flags,
		   struct multiboot_header *hdr, char *err)
{
	struct mb_fields f = aout_fields();

	memset(buf, 0, size);
	put_mb_header(buf + off, flags, (flags & MULTIBOOT_AOUT_KLUDGE) ? &f : NULL);
	return multiboot_find_header(buf, size, hdr, err, 256);
}

static void test_find_header(void **state)
{
	static uint8_t buf[0x3000];
	struct multiboot_header hdr;
	char err[256];

	(void)state;
	assert_int_equal(find_at(buf, sizeof(buf), 0, MB_FLAGS, &hdr, err), 1);
	assert_int_equal(hdr.offset, 0);
	assert_int_equal(hdr.flags, MB_FLAGS);
	/* The last place a header fits in the first 8 KiB... */
	assert_int_equal(find_at(buf, sizeof(buf), 8192 - 12, 0, &hdr, err), 1);
	assert_int_equal(hdr.offset, 8192 - 12);
	/* ...but not a byte beyond it, nor past 8 KiB, nor unaligned. */
	assert_int_equal(find_at(buf, sizeof(buf), 8192 - 8, 0, &hdr, err), 0);
	assert_int_equal(find_at(buf, sizeof(buf), 8192, 0, &hdr, err), 0);
	assert_int_equal(find_at(buf, sizeof(buf), 0x2000 + 0x100, 0, &hdr, err), 0);
	assert_int_equal(find_at(buf, sizeof(buf), 2, 0, &hdr, err), 0);
	assert_int_equal(find_at(buf, sizeof(buf), 0x102, 0, &hdr, err), 0);
	/* A header at the very end of a short file. */
	assert_int_equal(find_at(buf, 0x10c, 0x100, 0, &hdr, err), 1);
	assert_int_equal(find_at(buf, 0x10b, 0x100, 0, &hdr, err), 0);
	assert_int_equal(multiboot_find_header(buf, 0, &hdr, err, sizeof(err)), 0);
}

static void test_header_flags(void **state)
{
	static uint8_t buf[0x3000];
	struct multiboot_header hdr;
	char err[256];

	(void)state;
	/* Video mode requested: ignored, not refused. */
	assert_int_equal(find_at(buf, sizeof(buf), 0, MULTIBOOT_VIDEO_MODE, &hdr, err), 1);
	/* Unknown optional bits (16-31) are fine. */
	assert_int_equal(find_at(buf, sizeof(buf), 0, 1u << 20, &hdr, err), 1);
	/* Unknown required bits (3-15) are not. */
	assert_int_equal(find_at(buf, sizeof(buf), 0, MB_FLAGS | (1u << 3), &hdr, err), -ENOEXEC);
	assert_string_equal(err, "multiboot header requires unsupported features (flags 0x8)");
	assert_int_equal(find_at(buf, sizeof(buf), 0, 1u << 15, &hdr, err), -ENOEXEC);
	/* The a.out fields are read. */
	assert_int_equal(find_at(buf, sizeof(buf), AOUT_HDR_OFF, MULTIBOOT_AOUT_KLUDGE, &hdr, err), 1);
	assert_int_equal(hdr.header_addr, AOUT_LOAD + AOUT_HDR_OFF);
	assert_int_equal(hdr.load_addr, AOUT_LOAD);
	assert_int_equal(hdr.load_end_addr, AOUT_LOAD + AOUT_LOADLEN);
	assert_int_equal(hdr.bss_end_addr, AOUT_BSS_END);
	assert_int_equal(hdr.entry_addr, AOUT_ENTRY);
	/* ...and must lie in the first 8 KiB and in the file. */
	assert_int_equal(find_at(buf, sizeof(buf), 8192 - 12, MULTIBOOT_AOUT_KLUDGE, &hdr, err),
			 -ENOEXEC);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(find_at(buf, 0x100 + 20, 0x100, MULTIBOOT_AOUT_KLUDGE, &hdr, err), -ENOEXEC);
}

static void test_bad_checksum(void **state)
{
	static uint8_t buf[0x3000];
	struct multiboot_header hdr;
	struct boot_entry out;
	char err[256];

	(void)state;
	memset(buf, 0, sizeof(buf));
	put_mb_header(buf + 0x20, 0, NULL);
	put_u32(buf + 0x28, 0x12345678);
	assert_int_equal(multiboot_find_header(buf, sizeof(buf), &hdr, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "multiboot header at offset 0x20 has a bad checksum");
	assert_int_equal(kernel_load(&mem128, buf, sizeof(buf), "", NULL, &out,
				     err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "multiboot header at offset 0x20 has a bad checksum");
	/* A valid header after a bad one is found. */
	put_mb_header(buf + 0x40, MB_FLAGS, NULL);
	assert_int_equal(multiboot_find_header(buf, sizeof(buf), &hdr, err, sizeof(err)), 1);
	assert_int_equal(hdr.offset, 0x40);
}

/* --- kernel_load ------------------------------------------------------ */

static struct multiboot_info read_mbi(const struct guest_memory *mem, uint32_t flags)
{
	struct multiboot_info mbi;

	assert_int_equal(guest_memory_read(mem, LAYOUT_BOOT_INFO, &mbi, sizeof(mbi)), 0);
	assert_int_equal(mbi.flags, flags);
	assert_int_equal(mbi.mem_lower, 639);
	assert_int_equal(mbi.mem_upper, (mem->regions[0].size - MiB(1)) / 1024);
	assert_int_equal(mbi.cmdline, LAYOUT_CMDLINE);
	assert_string_equal((const char *)gptr(mem, mbi.boot_loader_name, 6), "popek");
	assert_true(mbi.boot_loader_name >= LAYOUT_BOOT_INFO + sizeof(mbi));
	assert_true(mbi.boot_loader_name + 6 <= LAYOUT_BOOT_INFO + LAYOUT_BOOT_INFO_SIZE);
	assert_int_equal(mbi.boot_device, 0);
	assert_int_equal(mbi.drives_length, 0);
	return mbi;
}

static void check_mmap(const struct guest_memory *mem, const struct multiboot_info *mbi)
{
	struct e820_entry e820[E820_MAX_ENTRIES];
	struct multiboot_mmap_entry m;
	uint32_t off = 0;
	int n, i = 0;

	n = e820_build(mem, e820, E820_MAX_ENTRIES);
	assert_int_equal(mbi->mmap_length, n * sizeof(m));
	assert_true(mbi->mmap_addr >= LAYOUT_BOOT_INFO + sizeof(*mbi));
	assert_true(mbi->mmap_addr + mbi->mmap_length <= LAYOUT_BOOT_INFO + LAYOUT_BOOT_INFO_SIZE);
	/* Walked as §3.3 says: each entry is size + 4 bytes long. */
	while (off < mbi->mmap_length) {
		guest_memory_read(mem, mbi->mmap_addr + off, &m, sizeof(m));
		assert_int_equal(m.size, 20);
		assert_int_equal(m.addr, e820[i].addr);
		assert_int_equal(m.len, e820[i].size);
		assert_int_equal(m.type, e820[i].type);
		off += m.size + 4;
		i++;
	}
	assert_int_equal(i, n);
}

#define INFO_FLAGS (MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | \
		    MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_BOOT_LOADER_NAME)

static void test_boot_elf32(void **state)
{
	const char *cmdline = "console=com1 -v";
	struct multiboot_info mbi;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256] = "";

	(void)state;
	poison();
	assert_int_equal(kernel_load(&mem128, buf, std_elf(buf), cmdline, NULL, &out,
				     err, sizeof(err)), 0);
	assert_int_equal(out.protocol, BOOT_PROTOCOL_MULTIBOOT);
	assert_string_equal(boot_protocol_name(out.protocol), "multiboot");
	/* e_entry is virtual: translated to where the text was loaded. */
	assert_int_equal(out.eip, TEXT_PADDR + 0x20);
	assert_int_equal(out.eax, 0x2BADB002);
	assert_int_equal(out.ebx, LAYOUT_BOOT_INFO);
	assert_true(is_pattern(gptr(&mem128, TEXT_PADDR + 12, TEXT_SIZE - 12), TEXT_SIZE - 12,
			       (uint8_t)(0x31 + 12 * 7)));
	assert_true(is_pattern(gptr(&mem128, DATA_PADDR, DATA_SIZE), DATA_SIZE, 0x99));
	assert_true(all_bytes(gptr(&mem128, DATA_PADDR + DATA_SIZE, DATA_MEMSZ - DATA_SIZE),
			      DATA_MEMSZ - DATA_SIZE, 0));
	assert_true(all_bytes(gptr(&mem128, DATA_PADDR + DATA_MEMSZ, 0x100), 0x100, 0xaa));
	mbi = read_mbi(&mem128, INFO_FLAGS);
	assert_int_equal(mbi.mem_upper, 130048);
	assert_int_equal(mbi.mods_count, 0);
	assert_int_equal(mbi.mmap_length, 4 * 24);
	check_mmap(&mem128, &mbi);
	assert_string_equal((const char *)gptr(&mem128, LAYOUT_CMDLINE, 16), cmdline);
}

static void test_boot_elf32_physical_entry(void **state)
{
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	/* An e_entry that is already physical is taken as is. */
	assert_int_equal(kernel_load(&mem128, buf, elf_kernel(buf, false, TEXT_PADDR + 4, TEXT_PADDR),
				     "", NULL, &out, err, sizeof(err)), 0);
	assert_int_equal(out.eip, TEXT_PADDR + 4);
	/* An entry in no segment is refused. */
	assert_int_equal(kernel_load(&mem128, buf, elf_kernel(buf, false, 0x500000, TEXT_PADDR),
				     "", NULL, &out, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "ELF entry point 0x500000 is outside the loaded segments");
	/* Text below 1 MiB is refused. */
	assert_int_equal(kernel_load(&mem128, buf, elf_kernel(buf, false, TEXT_VADDR, 0x10000),
				     "", NULL, &out, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "below 1 MiB"));
}

static void test_boot_8g(void **state)
{
	struct guest_memory mem;
	struct multiboot_info mbi;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	assert_int_equal(guest_memory_init(&mem, GiB(8)), 0);
	assert_int_equal(kernel_load(&mem, buf, std_elf(buf), "", NULL, &out,
				     err, sizeof(err)), 0);
	mbi = read_mbi(&mem, INFO_FLAGS);
	/* mem_upper stops at the MMIO hole; the map has the rest. */
	assert_int_equal(mbi.mem_upper, (GiB(3) - MiB(1)) / 1024);
	assert_int_equal(mbi.mmap_length, 5 * 24);
	check_mmap(&mem, &mbi);
	guest_memory_destroy(&mem);
}

static void test_elf64_refused(void **state)
{
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	assert_int_equal(kernel_load(&mem128, buf, elf_kernel(buf, true, TEXT_PADDR, TEXT_PADDR),
				     "", NULL, &out, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "64-bit ELF multiboot kernels are not supported"));
}

static void test_elf64_with_aout_kludge(void **state)
{
	struct mb_fields f = {
		.header_addr = TEXT_PADDR,
		.load_addr = TEXT_PADDR,
		.load_end_addr = TEXT_PADDR + TEXT_SIZE,
		.bss_end_addr = 0,
		.entry_addr = TEXT_PADDR + 0x20,
	};
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];
	size_t size;

	(void)state;
	/* The kludge says where the bytes go whatever the file format, as in
	 * GRUB and QEMU: a 64-bit ELF container loads. */
	size = elf_kernel(buf, true, TEXT_PADDR, TEXT_PADDR);
	put_mb_header(buf + TEXT_OFF, MB_FLAGS | MULTIBOOT_AOUT_KLUDGE, &f);
	assert_int_equal(kernel_load(&mem128, buf, size, "", NULL, &out, err, sizeof(err)), 0);
	assert_int_equal(out.eip, TEXT_PADDR + 0x20);
	assert_memory_equal(gptr(&mem128, TEXT_PADDR, TEXT_SIZE), buf + TEXT_OFF, TEXT_SIZE);
}

static void test_boot_aout(void **state)
{
	struct mb_fields f = aout_fields();
	struct multiboot_info mbi;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256] = "";
	size_t size;

	(void)state;
	poison();
	size = aout_kernel(buf, &f);
	assert_int_equal(kernel_load(&mem128, buf, size, "x", NULL, &out, err, sizeof(err)), 0);
	assert_int_equal(out.protocol, BOOT_PROTOCOL_MULTIBOOT);
	assert_int_equal(out.eip, AOUT_ENTRY);
	assert_int_equal(out.eax, MULTIBOOT_BOOTLOADER_MAGIC);
	assert_int_equal(out.ebx, LAYOUT_BOOT_INFO);
	assert_memory_equal(gptr(&mem128, AOUT_LOAD, AOUT_LOADLEN), buf, AOUT_LOADLEN);
	assert_true(all_bytes(gptr(&mem128, AOUT_LOAD + AOUT_LOADLEN, AOUT_BSS_END - AOUT_LOAD - AOUT_LOADLEN),
			      AOUT_BSS_END - AOUT_LOAD - AOUT_LOADLEN, 0));
	assert_true(all_bytes(gptr(&mem128, AOUT_BSS_END, 0x100), 0x100, 0xaa));
	mbi = read_mbi(&mem128, INFO_FLAGS);
	check_mmap(&mem128, &mbi);

	/* load_end_addr 0: the whole rest of the file; bss_end_addr 0: none. */
	poison();
	f.load_end_addr = 0;
	f.bss_end_addr = 0;
	size = aout_kernel(buf, &f);
	assert_int_equal(kernel_load(&mem128, buf, size, "x", NULL, &out, err, sizeof(err)), 0);
	assert_memory_equal(gptr(&mem128, AOUT_LOAD, AOUT_SIZE), buf, AOUT_SIZE);
	assert_true(all_bytes(gptr(&mem128, AOUT_LOAD + AOUT_SIZE, 0x100), 0x100, 0xaa));

	/* The header need not be at the start of what is loaded. */
	poison();
	f = aout_fields();
	f.load_addr = AOUT_LOAD + 0x10;
	f.header_addr = AOUT_LOAD + 0x10 + AOUT_HDR_OFF - 0x20;
	size = aout_kernel(buf, &f);
	assert_int_equal(kernel_load(&mem128, buf, size, "x", NULL, &out, err, sizeof(err)), 0);
	assert_memory_equal(gptr(&mem128, AOUT_LOAD + 0x10, 0x100), buf + 0x20, 0x100);
}

struct aout_case {
	const char *what;
	struct mb_fields f;
	int ret;
	const char *msg;
};

static void test_aout_errors(void **state)
{
	const struct mb_fields ok = aout_fields();
	const struct aout_case cases[] = {
		{ "load_addr above header_addr",
		  { ok.header_addr, ok.header_addr + 4, ok.load_end_addr, ok.bss_end_addr, ok.entry_addr },
		  -ENOEXEC, "does not fit header_addr" },
		{ "load starts before the file",
		  { ok.header_addr, ok.header_addr - AOUT_HDR_OFF - 4, ok.load_end_addr, ok.bss_end_addr, ok.entry_addr },
		  -ENOEXEC, "does not fit header_addr" },
		{ "load_end past the file",
		  { ok.header_addr, ok.load_addr, ok.load_addr + AOUT_SIZE + 1, 0, ok.entry_addr },
		  -ENOEXEC, "past the end of the file" },
		{ "load_end before load",
		  { ok.header_addr, ok.load_addr, ok.load_addr - 1, 0, ok.entry_addr },
		  -ENOEXEC, "before load_addr" },
		{ "bss_end below load_end",
		  { ok.header_addr, ok.load_addr, ok.load_end_addr, ok.load_end_addr - 1, ok.entry_addr },
		  -ENOEXEC, "bss_end_addr 0x1002ff is below load_end_addr 0x100300" },
		{ "entry before the image",
		  { ok.header_addr, ok.load_addr, ok.load_end_addr, ok.bss_end_addr, ok.load_addr - 1 },
		  -ENOEXEC, "entry_addr 0xfffff is outside the loaded image" },
		{ "entry in bss",
		  { ok.header_addr, ok.load_addr, ok.load_end_addr, ok.bss_end_addr, ok.load_end_addr },
		  -ENOEXEC, "outside the loaded image" },
		{ "below 1 MiB",
		  { 0x8040, 0x8000, 0x8300, 0x9000, 0x8080 },
		  -ENOEXEC, "below 1 MiB" },
		{ "past RAM",
		  { 0x10000040, 0x10000000, 0x10000300, 0, 0x10000080 },
		  -EFAULT, "multiboot kernel at 0x10000000 (size 0x300) is outside guest RAM" },
		{ "bss past RAM",
		  { ok.header_addr, ok.load_addr, ok.load_end_addr, 0xffffffff, ok.entry_addr },
		  -EFAULT, "outside guest RAM" },
		{ "MMIO hole",
		  { 0xfec00040, 0xfec00000, 0xfec00300, 0, 0xfec00080 },
		  -EFAULT, "outside guest RAM" },
		{ "wrapping header_addr - load_addr",
		  { 0x40, 0xffffffff, 0, 0, 0x80 },
		  -ENOEXEC, "does not fit header_addr" },
	};
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret;

		err[0] = 0;
		ret = kernel_load(&mem128, buf, aout_kernel(buf, &cases[i].f), "", NULL, &out,
				  err, sizeof(err));
		if (ret != cases[i].ret || !strstr(err, cases[i].msg))
			fail_msg("%s: got %d \"%s\", want %d \"%s\"", cases[i].what, ret, err,
				 cases[i].ret, cases[i].msg);
	}
}

static void test_not_elf_without_kludge(void **state)
{
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	memset(buf, 0x90, sizeof(buf));
	put_mb_header(buf + 0x40, MB_FLAGS, NULL);
	assert_int_equal(kernel_load(&mem128, buf, sizeof(buf), "", NULL, &out,
				     err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "multiboot kernel is not ELF and its header has no address fields (flags bit 16)");
}

static void test_header_beyond_8k(void **state)
{
	static uint8_t buf[0x3000];
	struct boot_entry out;
	char err[256];
	struct seg s = { PT_LOAD, 0x2000, TEXT_PADDR, TEXT_PADDR, 0x1000, 0x1000, 0x1000 };

	(void)state;
	memset(buf, 0, sizeof(buf));
	put_elf(buf, false, EM_386, TEXT_PADDR, &s, 1);
	put_mb_header(buf + 0x2000, MB_FLAGS, NULL);
	assert_int_equal(kernel_load(&mem128, buf, sizeof(buf), "", NULL, &out,
				     err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "not a loadable kernel: no PVH entry note and no multiboot header");
	/* The same kernel with its header moved into the first 8 KiB boots. */
	put_u32(buf + 0x2000, 0);
	put_mb_header(buf + 0x1ff0, MB_FLAGS, NULL);
	assert_int_equal(kernel_load(&mem128, buf, sizeof(buf), "", NULL, &out,
				     err, sizeof(err)), 0);
}

static int load_kernel(const void *image, size_t size, char *err, size_t errlen)
{
	struct boot_entry out;

	return kernel_load(&mem128, image, size, "", NULL, &out, err, errlen);
}

static void test_truncated(void **state)
{
	struct mb_fields f = aout_fields();
	uint8_t buf[IMG_MAX];

	(void)state;
	check_truncations(buf, std_elf(buf), load_kernel);
	/* load_end_addr covers up to AOUT_LOADLEN: cutting into the junk
	 * after it is harmless, cutting before it is not. */
	aout_kernel(buf, &f);
	check_truncations(buf, AOUT_LOADLEN, load_kernel);
}

static void test_initrd_module(void **state)
{
	size_t isize = 0x12345;
	uint8_t *data = malloc(isize);
	struct boot_module initrd = { data, isize };
	struct multiboot_mod_list mod;
	struct multiboot_info mbi;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];

	(void)state;
	assert_non_null(data);
	fill_pattern(data, isize, 0x5e);
	assert_int_equal(kernel_load(&mem128, buf, std_elf(buf), "", &initrd, &out,
				     err, sizeof(err)), 0);
	mbi = read_mbi(&mem128, INFO_FLAGS | MULTIBOOT_INFO_MODS);
	check_mmap(&mem128, &mbi);
	assert_int_equal(mbi.mods_count, 1);
	assert_true(mbi.mods_addr >= mbi.mmap_addr + mbi.mmap_length);
	assert_true(mbi.mods_addr + sizeof(mod) <= LAYOUT_BOOT_INFO + LAYOUT_BOOT_INFO_SIZE);
	guest_memory_read(&mem128, mbi.mods_addr, &mod, sizeof(mod));
	/* Page-aligned (header flag bit 0), at the top of RAM. */
	assert_int_equal(mod.mod_start % 4096, 0);
	assert_int_equal(mod.mod_start, (MiB(128) - isize) & ~0xfffULL);
	assert_int_equal(mod.mod_end, mod.mod_start + isize);
	assert_string_equal((const char *)gptr(&mem128, mod.cmdline, 1), "");
	assert_true(is_pattern(gptr(&mem128, mod.mod_start, isize), isize, 0x5e));
	/* Too big for the RAM left above the kernel and below it. */
	initrd.size = MiB(127);
	assert_int_equal(kernel_load(&mem128, buf, std_elf(buf), "", &initrd, &out,
				     err, sizeof(err)), -E2BIG);
	free(data);
}

static void test_pvh_wins(void **state)
{
	struct seg s[2] = {
		{ PT_NOTE, TEXT_OFF + TEXT_SIZE, 0, 0, 0, 0, 4 },
		{ PT_LOAD, TEXT_OFF, TEXT_PADDR, TEXT_PADDR, TEXT_SIZE, TEXT_SIZE, 0x1000 },
	};
	uint32_t pvh_entry = TEXT_PADDR + 0x40;
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	char err[256];
	size_t n;

	(void)state;
	memset(buf, 0, sizeof(buf));
	n = put_note_aligned(buf + TEXT_OFF + TEXT_SIZE, "Xen", 18, &pvh_entry, 4, 4);
	s[0].filesz = s[0].memsz = n;
	put_elf(buf, false, EM_386, TEXT_PADDR + 0x10, s, 2);
	put_mb_header(buf + TEXT_OFF, MB_FLAGS, NULL);
	assert_int_equal(kernel_load(&mem128, buf, TEXT_OFF + TEXT_SIZE + n, "", NULL, &out, err, sizeof(err)), 0);
	assert_int_equal(out.protocol, BOOT_PROTOCOL_PVH);
	assert_int_equal(out.eip, pvh_entry);
	assert_int_equal(out.eax, 0);
}

/* Random corruption of headers, program headers and the multiboot header
 * never crashes (ASan watches), and whatever loads enters inside RAM. */
static void test_random_corruption(void **state)
{
	struct mb_fields f = aout_fields();
	struct boot_entry out;
	uint8_t buf[IMG_MAX];
	uint32_t rng = 4242;
	char err[256];
	int i, j;

	(void)state;
	for (i = 0; i < 20000; i++) {
		size_t size = (i & 1) ? std_elf(buf) : aout_kernel(buf, &f);
		size_t hot = (i & 1) ? TEXT_OFF + 32 : AOUT_HDR_OFF + 32;
		uint8_t *copy;

		for (j = 0; j < 1 + (i % 3); j++) {
			rng = rng * 1103515245 + 12345;
			buf[(rng >> 8) % hot] ^= (uint8_t)(1u << ((rng >> 4) & 7));
		}
		copy = test_malloc(size);
		memcpy(copy, buf, size);
		if (kernel_load(&mem128, copy, size, "", NULL, &out, err, sizeof(err)) == 0)
			assert_non_null(guest_memory_ptr(&mem128, out.eip, 1));
		test_free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_header),
		cmocka_unit_test(test_header_flags),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_boot_elf32),
		cmocka_unit_test(test_boot_elf32_physical_entry),
		cmocka_unit_test(test_boot_8g),
		cmocka_unit_test(test_elf64_refused),
		cmocka_unit_test(test_elf64_with_aout_kludge),
		cmocka_unit_test(test_boot_aout),
		cmocka_unit_test(test_aout_errors),
		cmocka_unit_test(test_not_elf_without_kludge),
		cmocka_unit_test(test_header_beyond_8k),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_initrd_module),
		cmocka_unit_test(test_pvh_wins),
		cmocka_unit_test(test_random_corruption),
	};

	return cmocka_run_group_tests(tests, mem128_setup, mem128_teardown);
}
