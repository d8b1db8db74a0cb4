/* Linux bzImage boot: setup header validation on a synthetic image shaped
 * like a real one, the load address, boot_params (checked at the offsets
 * boot.rst and zero-page.rst give, independently of bzimage.c), the
 * initrd, the identity page tables and the 64-bit entry. */
#include <errno.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/bzimage.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "arch/x86/loader.h"
#include "arch/x86/pagetables.h"
#include "vmm/memory.h"

#include "image_builder.h"

/* Setup header offsets, from boot.rst. */
#define O_SETUP_SECTS   0x1f1
#define O_ROOT_FLAGS    0x1f2
#define O_SYSSIZE       0x1f4
#define O_VID_MODE      0x1fa
#define O_BOOT_FLAG     0x1fe
#define O_JUMP          0x200
#define O_HEADER        0x202
#define O_VERSION       0x206
#define O_TYPE_OF_LOADER 0x210
#define O_LOADFLAGS     0x211
#define O_CODE32_START  0x214
#define O_RAMDISK_IMAGE 0x218
#define O_RAMDISK_SIZE  0x21c
#define O_HEAP_END_PTR  0x224
#define O_CMD_LINE_PTR  0x228
#define O_INITRD_ADDR_MAX 0x22c
#define O_KERNEL_ALIGN  0x230
#define O_RELOCATABLE   0x234
#define O_MIN_ALIGN     0x235
#define O_XLOADFLAGS    0x236
#define O_CMDLINE_SIZE  0x238
#define O_HW_SUBARCH    0x23c
#define O_SETUP_DATA    0x250
#define O_PREF_ADDRESS  0x258
#define O_INIT_SIZE     0x260
/* boot_params offsets outside the header, from zero-page.rst. */
#define O_ACPI_RSDP     0x070
#define O_EXT_RD_IMAGE  0x0c0
#define O_EXT_RD_SIZE   0x0c4
#define O_EXT_CMD_LINE  0x0c8
#define O_E820_ENTRIES  0x1e8
#define O_SENTINEL      0x1ef
#define O_E820_TABLE    0x2d0

/* The synthetic kernel: 3 setup sectors after the boot sector, a header
 * of protocol 2.15 ending at 0x26c (jump displacement 0x6a, as in Linux
 * 6.1), 12 KiB of protected-mode kernel, then 256 bytes of "signature"
 * that syssize leaves out. */
#define SETUP_SECTS 3
#define SETUP_SIZE  ((SETUP_SECTS + 1) * 512)
#define KSIZE       0x3000
#define SIG_SIZE    0x100
#define HDR_END     0x26c
#define PREF        MiB(16)
#define INIT_SIZE   MiB(8)
#define BZ_MAX      0x4000
#define IMG_SIZE    (SETUP_SIZE + KSIZE + SIG_SIZE)

static void put_u16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint16_t get_u16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* Header fields a test may change before build_image() lays them out. */
struct bz {
	uint8_t setup_sects;
	uint16_t version;
	uint8_t hdr_len;          /* byte at 0x201 */
	uint8_t loadflags;
	uint8_t relocatable;
	uint16_t xloadflags;
	uint32_t syssize;
	uint32_t kernel_alignment;
	uint32_t initrd_addr_max;
	uint32_t cmdline_size;
	uint64_t pref_address;
	uint32_t init_size;
};

static struct bz default_bz(void)
{
	return (struct bz){
		.setup_sects = SETUP_SECTS,
		.version = 0x020f,
		.hdr_len = HDR_END - 0x202,
		.loadflags = 0x01,                /* LOADED_HIGH */
		.relocatable = 1,
		.xloadflags = 0x0003,             /* XLF_KERNEL_64, CAN_BE_LOADED_ABOVE_4G */
		.syssize = KSIZE / 16,
		.kernel_alignment = MiB(2),
		.initrd_addr_max = 0x7fffffff,
		.cmdline_size = 2047,
		.pref_address = PREF,
		.init_size = INIT_SIZE,
	};
}

/* Lays out an image; returns its size (with the signature). */
static size_t build_image(uint8_t *buf, const struct bz *b)
{
	unsigned sects = b->setup_sects ? b->setup_sects : 4;
	size_t setup = (sects + 1) * 512;

	memset(buf, 0, BZ_MAX);
	memset(buf, 0xdd, O_SETUP_SECTS);              /* boot sector: never copied */
	memset(buf + HDR_END, 0xee, setup - HDR_END);  /* setup code past the header */
	buf[O_SETUP_SECTS] = b->setup_sects;
	put_u16(buf + O_ROOT_FLAGS, 1);
	put_u32(buf + O_SYSSIZE, b->syssize);
	put_u16(buf + O_VID_MODE, 0xffff);
	put_u16(buf + O_BOOT_FLAG, 0xaa55);
	buf[O_JUMP] = 0xeb;
	buf[O_JUMP + 1] = b->hdr_len;
	memcpy(buf + O_HEADER, "HdrS", 4);
	put_u16(buf + O_VERSION, b->version);
	buf[O_TYPE_OF_LOADER] = 0;
	buf[O_LOADFLAGS] = b->loadflags;
	put_u32(buf + O_CODE32_START, 0x100000);
	put_u32(buf + O_INITRD_ADDR_MAX, b->initrd_addr_max);
	put_u32(buf + O_KERNEL_ALIGN, b->kernel_alignment);
	buf[O_RELOCATABLE] = b->relocatable;
	buf[O_MIN_ALIGN] = 21;
	put_u16(buf + O_XLOADFLAGS, b->xloadflags);
	put_u32(buf + O_CMDLINE_SIZE, b->cmdline_size);
	put_u32(buf + O_HW_SUBARCH, 2);                /* hostile: Xen */
	put_u64(buf + O_SETUP_DATA, 0xdeadbeef000ULL); /* hostile: a list we never wrote */
	put_u64(buf + O_PREF_ADDRESS, b->pref_address);
	put_u32(buf + O_INIT_SIZE, b->init_size);
	put_u32(buf + 0x264, 0x190);                   /* handover_offset */
	put_u32(buf + 0x268, 0x1234);                  /* kernel_info_offset */
	fill_pattern(buf + setup, KSIZE, 0x42);
	memset(buf + setup + KSIZE, 0x5a, SIG_SIZE);
	return setup + KSIZE + SIG_SIZE;
}

static size_t std_image(uint8_t *buf)
{
	struct bz b = default_bz();

	return build_image(buf, &b);
}

static int load(const uint8_t *buf, size_t size, const char *cmdline,
		const struct boot_module *initrd, uint64_t rsdp, struct boot_entry *out,
		char *err, size_t errlen)
{
	struct boot_args args = { .cmdline = cmdline, .initrd = initrd, .rsdp_paddr = rsdp };

	return kernel_load_args(&mem128, buf, size, &args, out, err, errlen);
}

/* Loads an image built from b and expects an error mentioning needle. */
static void expect_fail(const struct bz *b, int ret, const char *needle)
{
	uint8_t buf[BZ_MAX];
	struct boot_entry out;
	char err[256] = "";
	size_t size = build_image(buf, b);

	assert_int_equal(load(buf, size, "", NULL, 0, &out, err, sizeof(err)), ret);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void test_parse(void **state)
{
	struct bzimage_header h;
	uint8_t buf[BZ_MAX];
	char err[256];
	size_t size = std_image(buf);

	(void)state;
	assert_true(bzimage_has_magic(buf, size));
	assert_true(bzimage_has_boot_flag(buf, size));
	assert_int_equal(bzimage_parse(buf, size, &h, err, sizeof(err)), 0);
	assert_int_equal(h.version, 0x020f);
	assert_int_equal(h.hdr_end, HDR_END);
	assert_int_equal(h.setup_size, SETUP_SIZE);
	assert_int_equal(h.kernel_size, KSIZE);
	assert_int_equal(h.loadflags, 0x01);
	assert_true(h.relocatable);
	assert_int_equal(h.xloadflags, 0x0003);
	assert_int_equal(h.kernel_alignment, MiB(2));
	assert_int_equal(h.initrd_addr_max, 0x7fffffff);
	assert_int_equal(h.cmdline_size, 2047);
	assert_int_equal(h.pref_address, PREF);
	assert_int_equal(h.init_size, INIT_SIZE);
	assert_false(bzimage_has_magic(buf, O_HEADER + 3));
}

/* boot.rst: "if setup_sects == 0 the real value is 4". */
static void test_setup_sects_zero(void **state)
{
	struct bz b = default_bz();
	struct bzimage_header h;
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	char err[256];
	size_t size;

	(void)state;
	b.setup_sects = 0;
	size = build_image(buf, &b);
	assert_int_equal(bzimage_parse(buf, size, &h, err, sizeof(err)), 0);
	assert_int_equal(h.setup_size, 5 * 512);
	memset(gptr(&mem128, PREF, KSIZE), 0, KSIZE);
	assert_int_equal(load(buf, size, "", NULL, 0, &out, err, sizeof(err)), 0);
	assert_true(is_pattern(gptr(&mem128, PREF, KSIZE), KSIZE, 0x42));
}

/* Every prefix of the image short of the kernel's end is refused with a
 * message; a cut inside the trailing signature does not matter. */
static void test_every_truncation(void **state)
{
	uint8_t buf[BZ_MAX];
	struct boot_entry out;
	char err[256];
	size_t size = std_image(buf), len;

	(void)state;
	for (len = 0; len < size; len++) {
		int ret;

		err[0] = '\0';
		ret = load(buf, len, "", NULL, 0, &out, err, sizeof(err));
		if (len >= SETUP_SIZE + KSIZE) {
			if (ret)
				fail_msg("length %zu: %s", len, err);
			continue;
		}
		if (ret != -ENOEXEC)
			fail_msg("length %zu: %d (%s)", len, ret, err);
		if (len >= O_VERSION)          /* "HdrS" visible: about the bzImage */
			assert_non_null(strstr(err, "bzImage truncated"));
		else if (len >= O_BOOT_FLAG + 2)
			assert_non_null(strstr(err, "not a bzImage: no HdrS magic"));
		else
			assert_non_null(strstr(err, "not a loadable kernel"));
	}
	/* The three kinds of truncation name what is cut. */
	assert_int_equal(load(buf, O_VERSION + 1, "", NULL, 0, &out, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "bzImage truncated: 519 bytes end inside the setup header");
	assert_int_equal(load(buf, 0x240, "", NULL, 0, &out, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err,
			    "bzImage truncated: its setup header ends at 0x26c, the file has 576 bytes");
	assert_int_equal(load(buf, SETUP_SIZE + KSIZE - 1, "", NULL, 0, &out, err, sizeof(err)),
			 -ENOEXEC);
	assert_string_equal(err, "bzImage truncated: setup says 14336 bytes, file has 14335");
}

static void test_bad_magic(void **state)
{
	uint8_t buf[BZ_MAX];
	struct boot_entry out;
	struct bzimage_header h;
	char err[256];
	size_t size = std_image(buf);

	(void)state;
	buf[O_HEADER] = 'h';
	assert_false(bzimage_has_magic(buf, size));
	assert_int_equal(load(buf, size, "", NULL, 0, &out, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "not a bzImage: no HdrS magic at 0x202 (a boot sector without "
			    "a Linux setup header)");
	assert_int_equal(bzimage_parse(buf, size, &h, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "not a bzImage: no HdrS magic at 0x202");

	size = std_image(buf);
	put_u16(buf + O_BOOT_FLAG, 0x55aa);
	assert_int_equal(load(buf, size, "", NULL, 0, &out, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "not a bzImage: no boot flag 0xaa55 at 0x1fe");
}

static void test_old_protocol(void **state)
{
	struct bz b = default_bz();

	(void)state;
	b.version = 0x0205;
	expect_fail(&b, -ENOEXEC, "bzImage protocol 2.05 is too old (2.12 needed");
	b.version = 0x020b;
	expect_fail(&b, -ENOEXEC, "bzImage protocol 2.11 is too old");
	b.version = 0x0100;
	expect_fail(&b, -ENOEXEC, "bzImage protocol 1.00 is too old");
}

static void test_bad_fields(void **state)
{
	struct bz b;

	(void)state;
	b = default_bz();
	b.xloadflags = 0x0002;
	expect_fail(&b, -ENOEXEC, "no 64-bit entry point (xloadflags 0x2 lack XLF_KERNEL_64)");
	b = default_bz();
	b.loadflags = 0;
	expect_fail(&b, -ENOEXEC, "lack LOADED_HIGH");
	b = default_bz();
	b.hdr_len = 0x50;                    /* ends before init_size */
	expect_fail(&b, -ENOEXEC, "setup header ends at 0x252, outside [0x264, 0x290]");
	b = default_bz();
	b.hdr_len = 0xff;                    /* longer than boot_params has room for */
	expect_fail(&b, -ENOEXEC, "setup header ends at 0x301");
	b = default_bz();
	b.syssize = 0;
	expect_fail(&b, -ENOEXEC, "syssize is 0");
	b = default_bz();
	b.syssize = 0xffffffff;              /* 64 GiB: no overflow, just truncated */
	expect_fail(&b, -ENOEXEC, "bzImage truncated: setup says 68719478768 bytes");
	b = default_bz();
	b.kernel_alignment = 0x300000;
	expect_fail(&b, -ENOEXEC, "kernel_alignment 0x300000 is not a power of two");
	b = default_bz();
	b.kernel_alignment = 0;
	expect_fail(&b, -ENOEXEC, "kernel_alignment 0x0 is not a power of two");
	b = default_bz();
	b.init_size = KSIZE - 16;
	expect_fail(&b, -ENOEXEC, "init_size 0x2ff0 is smaller than its protected-mode kernel");
}

static void test_not_relocatable(void **state)
{
	struct bz b = default_bz();
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	char err[256];
	size_t size;

	(void)state;
	/* It runs at pref_address only: loaded there, alignment moot. */
	b.relocatable = 0;
	b.kernel_alignment = 0;
	b.pref_address = MiB(5) + 0x1000;
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", NULL, 0, &out, err, sizeof(err)), 0);
	assert_int_equal(out.rip, MiB(5) + 0x1000 + 0x200);
	assert_true(is_pattern(gptr(&mem128, MiB(5) + 0x1000, KSIZE), KSIZE, 0x42));
	/* Without a pref_address there is no address it can run at. */
	b.pref_address = 0;
	expect_fail(&b, -ENOEXEC, "neither relocatable nor has a pref_address");
}

static void test_load_address(void **state)
{
	struct bz b = default_bz();
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	char err[256];
	size_t size;

	(void)state;
	/* No pref_address: 1 MiB rounded up to kernel_alignment. */
	b.pref_address = 0;
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", NULL, 0, &out, err, sizeof(err)), 0);
	assert_int_equal(out.rip, MiB(2) + 0x200);
	assert_int_equal(get_u32(gptr(&mem128, LAYOUT_BOOT_INFO + O_CODE32_START, 4)), MiB(2));

	b = default_bz();
	b.pref_address = MiB(16) + MiB(1);
	expect_fail(&b, -ENOEXEC,
		    "pref_address 0x1100000 is not aligned to its kernel_alignment 0x200000");
	b.pref_address = 0x80000;
	b.kernel_alignment = 0x1000;
	expect_fail(&b, -ENOEXEC, "pref_address 0x80000 is below 1 MiB");
	/* init_size past the end of RAM, or a kernel outside it. */
	b = default_bz();
	b.pref_address = MiB(122);
	expect_fail(&b, -EFAULT, "bzImage needs RAM from pref_address 0x7a00000 for init_size "
		    "0x800000 bytes, but guest RAM below 3 GiB ends at 0x8000000 (give it more --memory)");
	b.pref_address = MiB(120);           /* exactly fits */
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", NULL, 0, &out, err, sizeof(err)), 0);
	b.pref_address = GiB(4);
	expect_fail(&b, -EFAULT, "more --memory");
	b.pref_address = 0xffffffffffe00000ULL;
	expect_fail(&b, -EFAULT, "more --memory");
	b = default_bz();
	b.init_size = 0xfffff000;
	expect_fail(&b, -EFAULT, "more --memory");
}

static void check_e820(const struct guest_memory *mem, const uint8_t *bp)
{
	struct e820_entry e820[E820_MAX_ENTRIES];
	int n = e820_build(mem, e820, E820_MAX_ENTRIES), i;

	assert_true(n > 0);
	assert_int_equal(bp[O_E820_ENTRIES], n);
	for (i = 0; i < n; i++) {
		const uint8_t *e = bp + O_E820_TABLE + i * 20;   /* packed boot_e820_entry */

		assert_int_equal(get_u64(e), e820[i].addr);
		assert_int_equal(get_u64(e + 8), e820[i].size);
		assert_int_equal(get_u32(e + 16), e820[i].type);
	}
	assert_true(all_bytes(bp + O_E820_TABLE + n * 20, 20, 0));
}

static void test_boot_params(void **state)
{
	const char *cmdline = "console=ttyS0 earlyprintk=serial root=/dev/vda";
	uint8_t buf[BZ_MAX], rd[0x2100];
	struct boot_module initrd = { rd, sizeof(rd) };
	struct boot_entry out;
	uint64_t rd_at;
	char err[256];
	const uint8_t *bp;
	size_t size = std_image(buf);

	(void)state;
	fill_pattern(rd, sizeof(rd), 0x99);
	memset(gptr(&mem128, LAYOUT_BOOT_INFO, 0x1000), 0xcc, 0x1000);
	memset(gptr(&mem128, PREF, INIT_SIZE), 0xcc, INIT_SIZE);
	assert_int_equal(load(buf, size, cmdline, &initrd, 0xf0000 + 0x10, &out, err, sizeof(err)),
			 0);

	/* The 64-bit entry (boot.rst "64-bit Boot Protocol"). */
	assert_int_equal(out.protocol, BOOT_PROTOCOL_LINUX);
	assert_string_equal(boot_protocol_name(out.protocol), "linux");
	assert_int_equal(out.mode, BOOT_MODE_LONG64);
	assert_int_equal(out.rip, PREF + 0x200);
	assert_int_equal(out.rsi, LAYOUT_BOOT_INFO);
	assert_int_equal(out.cr3, LAYOUT_PML4);

	/* The protected-mode kernel, without the signature after it. */
	assert_true(is_pattern(gptr(&mem128, PREF, KSIZE), KSIZE, 0x42));
	assert_true(all_bytes(gptr(&mem128, PREF + KSIZE, SIG_SIZE), SIG_SIZE, 0xcc));

	bp = gptr(&mem128, LAYOUT_BOOT_INFO, 0x1000);
	/* The setup header, copied from 0x1f1 to 0x202 + byte at 0x201. */
	assert_int_equal(bp[O_SETUP_SECTS], SETUP_SECTS);
	assert_int_equal(get_u16(bp + O_ROOT_FLAGS), 1);
	assert_int_equal(get_u32(bp + O_SYSSIZE), KSIZE / 16);
	assert_int_equal(get_u16(bp + O_VID_MODE), 0xffff);
	assert_int_equal(get_u16(bp + O_BOOT_FLAG), 0xaa55);
	assert_memory_equal(bp + O_HEADER, "HdrS", 4);
	assert_int_equal(get_u16(bp + O_VERSION), 0x020f);
	assert_int_equal(get_u32(bp + O_INITRD_ADDR_MAX), 0x7fffffff);
	assert_int_equal(get_u32(bp + O_KERNEL_ALIGN), MiB(2));
	assert_int_equal(bp[O_RELOCATABLE], 1);
	assert_int_equal(get_u16(bp + O_XLOADFLAGS), 3);
	assert_int_equal(get_u32(bp + O_CMDLINE_SIZE), 2047);
	assert_int_equal(get_u64(bp + O_PREF_ADDRESS), PREF);
	assert_int_equal(get_u32(bp + O_INIT_SIZE), INIT_SIZE);
	assert_int_equal(get_u32(bp + 0x268), 0x1234);
	/* Nothing before it or after it: the rest of boot_params is zero
	 * but for the fields a loader fills. */
	assert_true(all_bytes(bp + HDR_END, O_E820_TABLE - HDR_END, 0));
	assert_int_equal(bp[O_SENTINEL], 0);
	assert_true(all_bytes(bp, O_ACPI_RSDP, 0));
	assert_true(all_bytes(bp + O_ACPI_RSDP + 8, O_EXT_RD_IMAGE - O_ACPI_RSDP - 8, 0));
	assert_true(all_bytes(bp + O_EXT_CMD_LINE + 4, O_E820_ENTRIES - O_EXT_CMD_LINE - 4, 0));

	/* What the loader writes. */
	assert_int_equal(bp[O_TYPE_OF_LOADER], 0xff);
	assert_int_equal(bp[O_LOADFLAGS], 0x81);          /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(get_u32(bp + O_CODE32_START), PREF);
	assert_int_equal(get_u16(bp + O_HEAP_END_PTR), 0xfe00);
	assert_int_equal(bp[0x226], 0);                   /* ext_loader_ver */
	assert_int_equal(bp[0x227], 0);                   /* ext_loader_type */
	assert_int_equal(get_u32(bp + O_CMD_LINE_PTR), LAYOUT_CMDLINE);
	assert_int_equal(get_u32(bp + O_EXT_CMD_LINE), 0);
	assert_int_equal(get_u32(bp + O_HW_SUBARCH), 0);
	assert_int_equal(get_u64(bp + 0x240), 0);         /* hardware_subarch_data */
	assert_int_equal(get_u64(bp + O_SETUP_DATA), 0);
	assert_int_equal(get_u64(bp + O_ACPI_RSDP), 0xf0010);
	assert_string_equal((const char *)gptr(&mem128, LAYOUT_CMDLINE, strlen(cmdline) + 1),
			    cmdline);
	check_e820(&mem128, bp);
	assert_int_equal(bp[O_E820_ENTRIES], 4);

	/* The initrd: page-aligned, at the top of RAM below 128 MiB. */
	rd_at = get_u32(bp + O_RAMDISK_IMAGE);
	assert_int_equal(get_u32(bp + O_RAMDISK_SIZE), sizeof(rd));
	assert_int_equal(get_u32(bp + O_EXT_RD_IMAGE), 0);
	assert_int_equal(get_u32(bp + O_EXT_RD_SIZE), 0);
	assert_int_equal(rd_at % 4096, 0);
	assert_int_equal(rd_at, (MiB(128) - sizeof(rd)) & ~0xfffULL);
	assert_true(is_pattern(gptr(&mem128, rd_at, sizeof(rd)), sizeof(rd), 0x99));
}

/* acpi_rsdp_addr is protocol 2.14+: older kernels never read it. */
static void test_rsdp_needs_2_14(void **state)
{
	struct bz b = default_bz();
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	char err[256];
	size_t size;

	(void)state;
	b.version = 0x020d;
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", NULL, 0xe0000, &out, err, sizeof(err)), 0);
	assert_int_equal(get_u64(gptr(&mem128, LAYOUT_BOOT_INFO + O_ACPI_RSDP, 8)), 0);
	b.version = 0x020e;
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", NULL, 0xe0000, &out, err, sizeof(err)), 0);
	assert_int_equal(get_u64(gptr(&mem128, LAYOUT_BOOT_INFO + O_ACPI_RSDP, 8)), 0xe0000);
	/* No initrd: ramdisk fields stay zero. */
	assert_int_equal(get_u32(gptr(&mem128, LAYOUT_BOOT_INFO + O_RAMDISK_IMAGE, 4)), 0);
	assert_int_equal(get_u32(gptr(&mem128, LAYOUT_BOOT_INFO + O_RAMDISK_SIZE, 4)), 0);
}

/* cmdline_size is the longest command line without its NUL. */
static void test_cmdline_size(void **state)
{
	struct bz b = default_bz();
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	char err[256], line[300];
	size_t size;

	(void)state;
	b.cmdline_size = 255;
	size = build_image(buf, &b);
	memset(line, 'x', 255);
	line[255] = '\0';
	assert_int_equal(load(buf, size, line, NULL, 0, &out, err, sizeof(err)), 0);
	line[255] = 'y';
	line[256] = '\0';
	assert_int_equal(load(buf, size, line, NULL, 0, &out, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "kernel command line is 256 bytes, this kernel takes at most 255");
	/* popek's own limit still holds for kernels that take more. */
	b.cmdline_size = 0xffffffff;
	size = build_image(buf, &b);
	{
		char *big = malloc(LAYOUT_CMDLINE_MAX + 1);

		assert_non_null(big);
		memset(big, 'z', LAYOUT_CMDLINE_MAX);
		big[LAYOUT_CMDLINE_MAX] = '\0';
		assert_int_equal(load(buf, size, big, NULL, 0, &out, err, sizeof(err)), -E2BIG);
		assert_non_null(strstr(err, "kernel command line is"));
		free(big);
	}
}

static void test_initrd_placement(void **state)
{
	struct bz b = default_bz();
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	static uint8_t rd[MiB(4)];
	struct boot_module initrd = { rd, sizeof(rd) };
	char err[256];
	uint32_t at;
	size_t size;

	(void)state;
	fill_pattern(rd, sizeof(rd), 0x31);
	/* Below initrd_addr_max (the highest byte it may occupy). */
	b.initrd_addr_max = MiB(64) - 1;
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", &initrd, 0, &out, err, sizeof(err)), 0);
	at = get_u32(gptr(&mem128, LAYOUT_BOOT_INFO + O_RAMDISK_IMAGE, 4));
	assert_int_equal(at, MiB(60));
	assert_true(is_pattern(gptr(&mem128, at, sizeof(rd)), sizeof(rd), 0x31));

	/* A limit inside the kernel's init_size span: below the kernel. */
	b.initrd_addr_max = PREF + MiB(3) - 1;
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", &initrd, 0, &out, err, sizeof(err)), 0);
	at = get_u32(gptr(&mem128, LAYOUT_BOOT_INFO + O_RAMDISK_IMAGE, 4));
	assert_int_equal(at, PREF - sizeof(rd));

	/* No room below the limit. */
	b.initrd_addr_max = MiB(4);
	size = build_image(buf, &b);
	assert_int_equal(load(buf, size, "", &initrd, 0, &out, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "initrd (4 MiB) does not fit below 0x400001 next to the kernel "
			    "at [0x1000000, 0x1800000)");

	/* Larger than the RAM left beside the kernel. */
	b = default_bz();
	size = build_image(buf, &b);
	initrd.size = MiB(110);
	initrd.data = calloc(1, initrd.size);
	assert_non_null(initrd.data);
	assert_int_equal(load(buf, size, "", &initrd, 0, &out, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "initrd (110 MiB) does not fit below 0x8000000 next to the kernel "
			    "at [0x1000000, 0x1800000)");
	/* One that fits above it. */
	initrd.size = MiB(100);
	assert_int_equal(load(buf, size, "", &initrd, 0, &out, err, sizeof(err)), 0);
	at = get_u32(gptr(&mem128, LAYOUT_BOOT_INFO + O_RAMDISK_IMAGE, 4));
	assert_int_equal(at, MiB(28));
	free((void *)initrd.data);

	assert_int_equal(loader_place_initrd_below(&mem128, 0x1000, MiB(16), MiB(24), MiB(1),
						   &(uint64_t){ 0 }), -E2BIG);
}

/* PML4[0] -> PDPT, PDPT[0..3] -> four PDs of 2 MiB pages: [0, 4 GiB)
 * mapped onto itself, nothing else. */
static void check_page_tables(const struct guest_memory *mem)
{
	const uint8_t *pml4 = gptr(mem, LAYOUT_PML4, 0x1000);
	const uint8_t *pdpt = gptr(mem, LAYOUT_PDPT, 0x1000);
	unsigned i, j;

	assert_int_equal(get_u64(pml4), LAYOUT_PDPT | 0x3);   /* P | RW */
	assert_true(all_bytes(pml4 + 8, 0x1000 - 8, 0));
	for (i = 0; i < 4; i++) {
		const uint8_t *pd = gptr(mem, LAYOUT_PD + i * 0x1000ULL, 0x1000);

		assert_int_equal(get_u64(pdpt + i * 8), (LAYOUT_PD + i * 0x1000ULL) | 0x3);
		for (j = 0; j < 512; j++)   /* P | RW | PS, identity */
			assert_int_equal(get_u64(pd + j * 8),
					 ((uint64_t)i << 30) + ((uint64_t)j << 21) + 0x83);
	}
	assert_true(all_bytes(pdpt + 32, 0x1000 - 32, 0));
}

static void test_page_tables(void **state)
{
	struct guest_memory small;
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	uint64_t cr3 = 0;
	char err[256];

	(void)state;
	/* Stale bytes in the table pages must not survive. */
	memset(gptr(&mem128, LAYOUT_PML4, 0x6000), 0xff, 0x6000);
	assert_int_equal(load(buf, std_image(buf), "", NULL, 0, &out, err, sizeof(err)), 0);
	assert_int_equal(out.cr3, LAYOUT_PML4);
	check_page_tables(&mem128);
	/* The smallest guest still has room for them. */
	assert_int_equal(guest_memory_init(&small, LAYOUT_MIN_RAM), 0);
	assert_int_equal(pagetables_write_identity(&small, &cr3), 0);
	assert_int_equal(cr3, LAYOUT_PML4);
	check_page_tables(&small);
	guest_memory_destroy(&small);
}

/* The bzImage path leaves the 32-bit protocols' entry alone, and an
 * 8 GiB guest's memory map reaches boot_params whole. */
static void test_8g_memmap(void **state)
{
	struct guest_memory mem;
	struct boot_args args = { .cmdline = "" };
	struct boot_entry out;
	uint8_t buf[BZ_MAX];
	const uint8_t *bp;
	char err[256];

	(void)state;
	assert_int_equal(guest_memory_init(&mem, GiB(8)), 0);
	assert_int_equal(kernel_load_args(&mem, buf, std_image(buf), &args, &out, err, sizeof(err)),
			 0);
	bp = gptr(&mem, LAYOUT_BOOT_INFO, 0x1000);
	check_e820(&mem, bp);
	assert_int_equal(bp[O_E820_ENTRIES], 5);
	assert_int_equal(get_u64(bp + O_E820_TABLE + 4 * 20), GiB(4));
	assert_int_equal(get_u64(bp + O_E820_TABLE + 4 * 20 + 8), GiB(5));
	assert_int_equal(out.eip, 0);
	assert_int_equal(out.ebx, 0);
	guest_memory_destroy(&mem);
}

/* The installed Debian kernel, when there is one: its real header. */
static void test_real_kernel(void **state)
{
	struct guest_memory mem;
	struct bzimage_header h;
	struct boot_args args = { .cmdline = "console=ttyS0" };
	struct boot_entry out;
	char err[256];
	glob_t g;
	FILE *f;
	uint8_t *img;
	long size;

	(void)state;
	if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0) {
		print_message("no /boot/vmlinuz-*: nothing to check\n");
		return;
	}
	f = fopen(g.gl_pathv[g.gl_pathc - 1], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) {
		print_message("%s unreadable: nothing to check\n", g.gl_pathv[g.gl_pathc - 1]);
		if (f)
			fclose(f);
		globfree(&g);
		return;
	}
	img = malloc((size_t)size);
	assert_non_null(img);
	assert_int_equal(fread(img, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	assert_true(bzimage_has_magic(img, (size_t)size));
	assert_int_equal(bzimage_parse(img, (size_t)size, &h, err, sizeof(err)), 0);
	assert_true(h.version >= 0x020c);
	assert_true(h.xloadflags & BZIMAGE_XLF_KERNEL_64);
	assert_true(h.setup_size + h.kernel_size <= (uint64_t)size);
	assert_true(h.init_size >= h.kernel_size);
	assert_int_equal(guest_memory_init(&mem, MiB(512)), 0);
	assert_int_equal(kernel_load_args(&mem, img, (size_t)size, &args, &out, err, sizeof(err)),
			 0);
	assert_int_equal(out.mode, BOOT_MODE_LONG64);
	assert_int_equal(out.rip, (h.pref_address ? h.pref_address : MiB(16)) + 0x200);
	assert_memory_equal(gptr(&mem, out.rip - 0x200, 4096), img + h.setup_size, 4096);
	guest_memory_destroy(&mem);
	free(img);
	globfree(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_setup_sects_zero),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_old_protocol),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_not_relocatable),
		cmocka_unit_test(test_load_address),
		cmocka_unit_test(test_boot_params),
		cmocka_unit_test(test_rsdp_needs_2_14),
		cmocka_unit_test(test_cmdline_size),
		cmocka_unit_test(test_initrd_placement),
		cmocka_unit_test(test_page_tables),
		cmocka_unit_test(test_8g_memmap),
		cmocka_unit_test(test_real_kernel),
	};

	return cmocka_run_group_tests(tests, mem128_setup, mem128_teardown);
}
