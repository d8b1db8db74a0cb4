#include "arch/x86/bzimage.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "arch/x86/e820.h"
#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "arch/x86/pagetables.h"

/* Setup header fields (boot.rst "The Real-Mode Kernel Header"): offsets
 * in the file, which are also their offsets in boot_params. */
#define HDR_START            0x1f1   /* setup_sects: the header starts here */
#define HDR_SYSSIZE          0x1f4
#define HDR_JUMP_LEN         0x201   /* the jump's 8-bit displacement: header length */
#define HDR_VERSION          0x206
#define HDR_TYPE_OF_LOADER   0x210
#define HDR_LOADFLAGS        0x211
#define HDR_CODE32_START     0x214
#define HDR_RAMDISK_IMAGE    0x218
#define HDR_RAMDISK_SIZE     0x21c
#define HDR_HEAP_END_PTR     0x224
#define HDR_EXT_LOADER_VER   0x226
#define HDR_EXT_LOADER_TYPE  0x227
#define HDR_CMD_LINE_PTR     0x228
#define HDR_INITRD_ADDR_MAX  0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE      0x234
#define HDR_XLOADFLAGS       0x236
#define HDR_CMDLINE_SIZE     0x238
#define HDR_HARDWARE_SUBARCH 0x23c
#define HDR_SUBARCH_DATA     0x240
#define HDR_SETUP_DATA       0x250
#define HDR_PREF_ADDRESS     0x258
#define HDR_INIT_SIZE        0x260
#define HDR_MIN_END          0x264   /* through init_size: every field we read */
/* The header's room in boot_params: edd_mbr_sig_buffer follows at 0x290. */
#define HDR_MAX_END          0x290

/* boot_params fields outside the setup header (zero-page.rst). */
#define BP_SIZE              0x1000
#define BP_ACPI_RSDP_ADDR    0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_E820_TABLE        0x2d0
#define BP_E820_MAX          128     /* E820_MAX_ENTRIES_ZEROPAGE */
#define BP_E820_ENTRY_SIZE   20      /* struct boot_e820_entry, packed */

#define SECTOR               512
#define BZ_PAGE              0x1000ULL
/* Protocol 2.14 added acpi_rsdp_addr. */
#define VERSION_ACPI_RSDP    0x020e
/* heap_end_ptr: the real-mode setup code's heap ends at 0xfe00 + 0x200
 * of its 64 KiB segment, the sample configuration of boot.rst. No setup
 * code runs on the 64-bit entry, but the field is obligatory. */
#define HEAP_END_PTR         0xfe00
#define TYPE_OF_LOADER_OTHER 0xff    /* no assigned boot loader ID */

_Static_assert(E820_MAX_ENTRIES <= BP_E820_MAX, "our e820 map fits boot_params");
_Static_assert(BP_E820_TABLE + BP_E820_MAX * BP_E820_ENTRY_SIZE <= BP_SIZE, "zero-page.rst");
_Static_assert(BP_SIZE <= LAYOUT_BOOT_INFO_SIZE, "boot_params fits the boot info page");

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

bool bzimage_has_magic(const void *image, size_t size)
{
	return size >= BZIMAGE_MAGIC_OFF + 4 &&
	       le32_at((const uint8_t *)image + BZIMAGE_MAGIC_OFF) == BZIMAGE_MAGIC;
}

bool bzimage_has_boot_flag(const void *image, size_t size)
{
	return size >= BZIMAGE_BOOT_FLAG_OFF + 2 &&
	       le16_at((const uint8_t *)image + BZIMAGE_BOOT_FLAG_OFF) == BZIMAGE_BOOT_FLAG;
}

/* The fixed part: magic, boot flag, version, and a header long enough for
 * every field we read, inside the file. */
static int parse_header_bounds(const uint8_t *d, size_t size, struct bzimage_header *h,
			       char *err, size_t errlen)
{
	if (!bzimage_has_magic(d, size)) {
		boot_errf(err, errlen, "not a bzImage: no HdrS magic at 0x%x", BZIMAGE_MAGIC_OFF);
		return -ENOEXEC;
	}
	if (!bzimage_has_boot_flag(d, size)) {
		boot_errf(err, errlen, "not a bzImage: no boot flag 0x%x at 0x%x",
			  BZIMAGE_BOOT_FLAG, BZIMAGE_BOOT_FLAG_OFF);
		return -ENOEXEC;
	}
	if (size < HDR_VERSION + 2) {
		boot_errf(err, errlen, "bzImage truncated: %zu bytes end inside the setup header",
			  size);
		return -ENOEXEC;
	}
	h->version = le16_at(d + HDR_VERSION);
	if (h->version < BZIMAGE_MIN_VERSION) {
		boot_errf(err, errlen,
			  "bzImage protocol %u.%02u is too old (%u.%02u needed for the 64-bit entry point)",
			  h->version >> 8, h->version & 0xff,
			  BZIMAGE_MIN_VERSION >> 8, BZIMAGE_MIN_VERSION & 0xff);
		return -ENOEXEC;
	}
	/* boot.rst "64-bit Boot Protocol": the header ends at 0x202 + the
	 * byte at 0x201. It must reach init_size (2.10+) and fit the room
	 * boot_params has for it. */
	h->hdr_end = BZIMAGE_MAGIC_OFF + d[HDR_JUMP_LEN];
	if (h->hdr_end < HDR_MIN_END || h->hdr_end > HDR_MAX_END) {
		boot_errf(err, errlen,
			  "bzImage setup header ends at 0x%x, outside [0x%x, 0x%x] for protocol %u.%02u",
			  h->hdr_end, HDR_MIN_END, HDR_MAX_END, h->version >> 8, h->version & 0xff);
		return -ENOEXEC;
	}
	if (size < h->hdr_end) {
		boot_errf(err, errlen,
			  "bzImage truncated: its setup header ends at 0x%x, the file has %zu bytes",
			  h->hdr_end, size);
		return -ENOEXEC;
	}
	return 0;
}

int bzimage_parse(const void *image, size_t size, struct bzimage_header *h,
		  char *err, size_t errlen)
{
	const uint8_t *d = image;
	unsigned setup_sects;
	uint32_t syssize;
	int ret;

	memset(h, 0, sizeof(*h));
	ret = parse_header_bounds(d, size, h, err, errlen);
	if (ret)
		return ret;

	/* boot.rst "Loading The Rest of The Kernel": the protected-mode
	 * kernel starts at (setup_sects + 1) * 512, setup_sects 0 meaning 4;
	 * syssize counts it in 16-byte paragraphs. Bytes past it (a signed
	 * kernel's signature) are not part of the kernel. */
	setup_sects = d[HDR_START] ? d[HDR_START] : 4;
	h->setup_size = (uint64_t)(setup_sects + 1) * SECTOR;
	syssize = le32_at(d + HDR_SYSSIZE);
	h->kernel_size = (uint64_t)syssize * 16;
	if (!syssize) {
		boot_errf(err, errlen, "bzImage syssize is 0: no protected-mode kernel");
		return -ENOEXEC;
	}
	if (h->setup_size + h->kernel_size > size) {
		boot_errf(err, errlen, "bzImage truncated: setup says %" PRIu64 " bytes, file has %zu",
			  h->setup_size + h->kernel_size, size);
		return -ENOEXEC;
	}

	h->loadflags = d[HDR_LOADFLAGS];
	h->relocatable = d[HDR_RELOCATABLE] != 0;
	h->xloadflags = le16_at(d + HDR_XLOADFLAGS);
	h->kernel_alignment = le32_at(d + HDR_KERNEL_ALIGNMENT);
	h->initrd_addr_max = le32_at(d + HDR_INITRD_ADDR_MAX);
	h->cmdline_size = le32_at(d + HDR_CMDLINE_SIZE);
	h->pref_address = le64_at(d + HDR_PREF_ADDRESS);
	h->init_size = le32_at(d + HDR_INIT_SIZE);

	/* Without LOADED_HIGH this is a zImage, loaded at 0x10000. */
	if (!(h->loadflags & BZIMAGE_LOADED_HIGH)) {
		boot_errf(err, errlen,
			  "not a bzImage: loadflags 0x%x lack LOADED_HIGH (a zImage)", h->loadflags);
		return -ENOEXEC;
	}
	if (!(h->xloadflags & BZIMAGE_XLF_KERNEL_64)) {
		boot_errf(err, errlen,
			  "bzImage has no 64-bit entry point (xloadflags 0x%x lack XLF_KERNEL_64)",
			  h->xloadflags);
		return -ENOEXEC;
	}
	/* A relocatable kernel runs at its load address rounded up to
	 * kernel_alignment (boot.rst, init_size): it must be a power of two. */
	if (h->relocatable && (!is_pow2(h->kernel_alignment) || h->kernel_alignment > GiB(1))) {
		boot_errf(err, errlen,
			  "bzImage kernel_alignment 0x%x is not a power of two up to 1 GiB",
			  h->kernel_alignment);
		return -ENOEXEC;
	}
	/* A kernel that is not relocatable runs at pref_address only. */
	if (!h->relocatable && !h->pref_address) {
		boot_errf(err, errlen, "bzImage is neither relocatable nor has a pref_address");
		return -ENOEXEC;
	}
	if (h->init_size < h->kernel_size) {
		boot_errf(err, errlen,
			  "bzImage init_size 0x%x is smaller than its protected-mode kernel"
			  " (0x%" PRIx64 " bytes)",
			  h->init_size, h->kernel_size);
		return -ENOEXEC;
	}
	return 0;
}

int bzimage_place(const struct guest_memory *mem, const struct bzimage_header *h,
		  uint64_t *load, uint64_t *end, char *err, size_t errlen)
{
	uint64_t low_end = mem->regions[0].size;
	uint64_t at = h->pref_address;
	uint64_t span = h->init_size; /* >= kernel_size, checked by bzimage_parse */

	if (!at)
		at = (LAYOUT_HIGH_RAM_START + h->kernel_alignment - 1) &
		     ~((uint64_t)h->kernel_alignment - 1);
	if (h->relocatable && (at & (h->kernel_alignment - 1))) {
		boot_errf(err, errlen,
			  "bzImage pref_address 0x%" PRIx64 " is not aligned to its kernel_alignment 0x%x",
			  at, h->kernel_alignment);
		return -ENOEXEC;
	}
	/* At or above 1 MiB, clear of the boot tables; in the low RAM
	 * region, which the identity map covers (and which lies below the
	 * MMIO hole); with init_size bytes of room. */
	if (at < LAYOUT_HIGH_RAM_START) {
		boot_errf(err, errlen,
			  "bzImage pref_address 0x%" PRIx64 " is below 1 MiB, where the boot tables live",
			  at);
		return -ENOEXEC;
	}
	if (at > low_end || span > low_end - at) {
		boot_errf(err, errlen,
			  "bzImage needs RAM from pref_address 0x%" PRIx64 " for init_size 0x%x bytes,"
			  " but guest RAM below 3 GiB ends at 0x%" PRIx64 " (give it more --memory)",
			  at, h->init_size, low_end);
		return -EFAULT;
	}
	*load = at;
	*end = at + span;
	return 0;
}

static void put_e820(uint8_t *dst, const struct e820_entry *e)
{
	put64(dst, e->addr);
	put64(dst + 8, e->size);
	put32(dst + 16, e->type);
}

/* boot.rst "64-bit Boot Protocol": a zeroed boot_params with the image's
 * setup header copied in, then the fields a loader writes. */
static int build_boot_params(const struct guest_memory *mem, uint8_t *bp, const uint8_t *image,
			     const struct bzimage_header *h, uint64_t load,
			     uint64_t initrd_at, uint64_t initrd_size, uint64_t rsdp_paddr)
{
	int n;

	memset(bp, 0, BP_SIZE);
	memcpy(bp + HDR_START, image + HDR_START, h->hdr_end - HDR_START);

	bp[HDR_TYPE_OF_LOADER] = TYPE_OF_LOADER_OTHER;
	bp[HDR_EXT_LOADER_VER] = 0;
	bp[HDR_EXT_LOADER_TYPE] = 0;
	/* KEEP_SEGMENTS and QUIET_FLAG off: the kernel may reload its
	 * segments and should print early messages. */
	bp[HDR_LOADFLAGS] = BZIMAGE_LOADED_HIGH | BZIMAGE_CAN_USE_HEAP;
	put16(bp + HDR_HEAP_END_PTR, HEAP_END_PTR);
	/* A relocating loader points code32_start at the loaded kernel. */
	put32(bp + HDR_CODE32_START, (uint32_t)load);
	put32(bp + HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE);
	put32(bp + BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE >> 32));
	put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_at);
	put32(bp + HDR_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(bp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_at >> 32));
	put32(bp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	/* A plain PC (X86_SUBARCH_PC), no setup_data list: whatever the
	 * image's header held there is not ours to pass on. */
	put32(bp + HDR_HARDWARE_SUBARCH, 0);
	put64(bp + HDR_SUBARCH_DATA, 0);
	put64(bp + HDR_SETUP_DATA, 0);
	if (h->version >= VERSION_ACPI_RSDP)
		put64(bp + BP_ACPI_RSDP_ADDR, rsdp_paddr);

	n = e820_write(mem, bp + BP_E820_TABLE, BP_E820_ENTRY_SIZE, put_e820);
	if (n < 0)
		return n;
	bp[BP_E820_ENTRIES] = (uint8_t)n;
	return 0;
}

static int load_initrd(const struct guest_memory *mem, const struct bzimage_header *h,
		       const struct boot_module *initrd, uint64_t load, uint64_t end,
		       uint64_t *at, char *err, size_t errlen)
{
	/* initrd_addr_max is the highest byte the initrd may occupy. */
	uint64_t limit = (uint64_t)h->initrd_addr_max + 1;
	uint64_t low_end = mem->regions[0].size;

	if (loader_place_initrd_below(mem, initrd->size, load, end, limit, at)) {
		boot_errf(err, errlen,
			  "initrd (%" PRIu64 " MiB) does not fit below 0x%" PRIx64
			  " next to the kernel at [0x%" PRIx64 ", 0x%" PRIx64 ")",
			  ((uint64_t)initrd->size + MiB(1) - 1) >> 20,
			  limit < low_end ? limit : low_end, load, end);
		return -E2BIG;
	}
	if (initrd->size && guest_memory_write(mem, *at, initrd->data, initrd->size)) {
		boot_errf(err, errlen, "no guest RAM for the initrd");
		return -EFAULT;
	}
	return 0;
}

int bzimage_load(const struct guest_memory *mem, const void *image,
		 const struct bzimage_header *h, const char *cmdline,
		 const struct boot_module *initrd, uint64_t rsdp_paddr,
		 struct boot_entry *out, char *err, size_t errlen)
{
	const uint8_t *d = image;
	uint64_t load, end, initrd_at = 0, cr3;
	size_t len = strlen(cmdline);
	uint8_t *bp;
	int ret;

	/* cmdline_size counts the characters, without the NUL. */
	if (len > h->cmdline_size) {
		boot_errf(err, errlen,
			  "kernel command line is %zu bytes, this kernel takes at most %u",
			  len, h->cmdline_size);
		return -E2BIG;
	}
	ret = bzimage_place(mem, h, &load, &end, err, errlen);
	if (ret)
		return ret;
	if (initrd) {
		ret = load_initrd(mem, h, initrd, load, end, &initrd_at, err, errlen);
		if (ret)
			return ret;
	}
	if (guest_memory_write(mem, load, d + h->setup_size, h->kernel_size)) {
		boot_errf(err, errlen, "no guest RAM for the kernel at 0x%" PRIx64, load);
		return -EFAULT;
	}
	bp = guest_memory_ptr(mem, LAYOUT_BOOT_INFO, BP_SIZE);
	if (!bp) {
		boot_errf(err, errlen, "no guest RAM for boot_params");
		return -EFAULT;
	}
	ret = build_boot_params(mem, bp, d, h, load, initrd_at, initrd ? initrd->size : 0,
				rsdp_paddr);
	if (ret) {
		boot_errf(err, errlen, "cannot build the memory map");
		return ret;
	}
	/* The 64-bit entry needs the kernel's init_size span, boot_params
	 * and the command line identity-mapped: all lie below 3 GiB. */
	if (pagetables_write_identity(mem, &cr3)) {
		boot_errf(err, errlen, "no guest RAM for the boot page tables");
		return -EFAULT;
	}
	*out = (struct boot_entry){
		.protocol = BOOT_PROTOCOL_LINUX,
		.mode = BOOT_MODE_LONG64,
		.rip = load + BZIMAGE_ENTRY64_OFF,
		.rsi = LAYOUT_BOOT_INFO,
		.cr3 = cr3,
	};
	return 0;
}
