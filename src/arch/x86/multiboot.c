#include "arch/x86/multiboot.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

_Static_assert(sizeof(struct multiboot_info) == 88, "multiboot 0.6.96 §3.3");
_Static_assert(sizeof(struct multiboot_mmap_entry) == 24, "multiboot 0.6.96 §3.3");
_Static_assert(sizeof(struct multiboot_mod_list) == 16, "multiboot 0.6.96 §3.3");

/* Header field offsets (§3.1.1); the address fields follow the checksum. */
#define MB_MAGIC         0
#define MB_FLAGS         4
#define MB_CHECKSUM      8
#define MB_HEADER_ADDR   12
#define MB_LOAD_ADDR     16
#define MB_LOAD_END_ADDR 20
#define MB_BSS_END_ADDR  24
#define MB_ENTRY_ADDR    28
#define MB_MIN_SIZE      12
#define MB_AOUT_SIZE     32

static int mb_parse_header(const uint8_t *p, uint32_t off, size_t limit,
			   struct multiboot_header *hdr, char *err, size_t errlen)
{
	uint32_t flags = le32_at(p + MB_FLAGS);
	uint32_t unknown = flags & 0xffff & ~MULTIBOOT_KNOWN_REQUIRED;

	/* §3.1.2: an unknown bit in 0-15 is a requirement we cannot meet. */
	if (unknown) {
		boot_errf(err, errlen,
			  "multiboot header requires unsupported features (flags 0x%x)", unknown);
		return -ENOEXEC;
	}
	memset(hdr, 0, sizeof(*hdr));
	hdr->offset = off;
	hdr->flags = flags;
	if (!(flags & MULTIBOOT_AOUT_KLUDGE))
		return 1;
	if (limit - off < MB_AOUT_SIZE) {
		boot_errf(err, errlen,
			  "multiboot header at offset 0x%x is truncated: its address fields are missing", off);
		return -ENOEXEC;
	}
	hdr->header_addr = le32_at(p + MB_HEADER_ADDR);
	hdr->load_addr = le32_at(p + MB_LOAD_ADDR);
	hdr->load_end_addr = le32_at(p + MB_LOAD_END_ADDR);
	hdr->bss_end_addr = le32_at(p + MB_BSS_END_ADDR);
	hdr->entry_addr = le32_at(p + MB_ENTRY_ADDR);
	return 1;
}

int multiboot_find_header(const void *image, size_t size, struct multiboot_header *hdr,
			  char *err, size_t errlen)
{
	const uint8_t *d = image;
	size_t limit = size < MULTIBOOT_SEARCH ? size : MULTIBOOT_SEARCH;
	int64_t bad_sum = -1;
	size_t off;

	/* §3.1: the header is 32-bit aligned, wholly within the first 8 KiB,
	 * and its magic, flags and checksum sum to zero. */
	for (off = 0; off + MB_MIN_SIZE <= limit; off += MULTIBOOT_HEADER_ALIGN) {
		const uint8_t *p = d + off;
		uint32_t magic = le32_at(p + MB_MAGIC);

		if (magic != MULTIBOOT_HEADER_MAGIC)
			continue;
		if ((uint32_t)(magic + le32_at(p + MB_FLAGS) + le32_at(p + MB_CHECKSUM)) == 0)
			return mb_parse_header(p, (uint32_t)off, limit, hdr, err, errlen);
		if (bad_sum < 0)
			bad_sum = (int64_t)off;
	}
	if (bad_sum >= 0) {
		boot_errf(err, errlen, "multiboot header at offset 0x%" PRIx64 " has a bad checksum",
			  (uint64_t)bad_sum);
		return -ENOEXEC;
	}
	return 0;
}

/* Where the a.out kludge says the file goes (§3.1.3): the byte at file
 * offset hdr->offset lands at header_addr, so the load starts
 * header_addr - load_addr bytes before the header in the file. */
struct mb_aout {
	uint64_t file_off;
	uint64_t load;
	uint64_t load_end;
	uint64_t bss_end;
};

static int mb_aout_layout(const struct multiboot_header *hdr, size_t size,
			  struct mb_aout *a, char *err, size_t errlen)
{
	uint64_t before = (uint64_t)hdr->header_addr - hdr->load_addr;

	if (hdr->load_addr > hdr->header_addr || before > hdr->offset) {
		boot_errf(err, errlen,
			  "multiboot load_addr 0x%x does not fit header_addr 0x%x at file offset 0x%x",
			  hdr->load_addr, hdr->header_addr, hdr->offset);
		return -ENOEXEC;
	}
	a->file_off = hdr->offset - before;
	a->load = hdr->load_addr;
	if (!hdr->load_end_addr) {
		a->load_end = a->load + (size - a->file_off);
	} else if (hdr->load_end_addr < hdr->load_addr ||
		   hdr->load_end_addr - hdr->load_addr > size - a->file_off) {
		boot_errf(err, errlen,
			  "multiboot load_end_addr 0x%x is before load_addr or past the end of the file",
			  hdr->load_end_addr);
		return -ENOEXEC;
	} else {
		a->load_end = hdr->load_end_addr;
	}
	a->bss_end = hdr->bss_end_addr ? hdr->bss_end_addr : a->load_end;
	if (a->bss_end < a->load_end) {
		boot_errf(err, errlen, "multiboot bss_end_addr 0x%x is below load_end_addr 0x%" PRIx64,
			  hdr->bss_end_addr, a->load_end);
		return -ENOEXEC;
	}
	return 0;
}

static int mb_load_aout(const struct guest_memory *mem, const uint8_t *image, size_t size,
			const struct multiboot_header *hdr, uint32_t *entry,
			struct elf_extent *ext, char *err, size_t errlen)
{
	struct mb_aout a;
	uint8_t *dst;
	int ret;

	ret = mb_aout_layout(hdr, size, &a, err, errlen);
	if (ret)
		return ret;
	if (a.load < LAYOUT_HIGH_RAM_START) {
		boot_errf(err, errlen,
			  "multiboot load_addr 0x%" PRIx64 " is below 1 MiB, where the boot tables live",
			  a.load);
		return -ENOEXEC;
	}
	dst = guest_memory_ptr(mem, a.load, a.bss_end - a.load);
	if (!dst || a.bss_end == a.load) {
		boot_errf(err, errlen,
			  "multiboot kernel at 0x%" PRIx64 " (size 0x%" PRIx64 ") is outside guest RAM",
			  a.load, a.bss_end - a.load);
		return -EFAULT;
	}
	if (hdr->entry_addr < a.load || hdr->entry_addr >= a.load_end) {
		boot_errf(err, errlen, "multiboot entry_addr 0x%x is outside the loaded image",
			  hdr->entry_addr);
		return -ENOEXEC;
	}
	memcpy(dst, image + a.file_off, a.load_end - a.load);
	/* The .bss: zeroed here on purpose, see elf_copy_segment(). */
	memset(dst + (a.load_end - a.load), 0, a.bss_end - a.load_end);
	*entry = hdr->entry_addr;
	*ext = (struct elf_extent){ a.load, a.bss_end };
	return 0;
}

static int mb_load_elf(const struct guest_memory *mem, const void *image, size_t size,
		       uint32_t *entry, struct elf_extent *ext, char *err, size_t errlen)
{
	struct elf_image elf;
	uint64_t pentry;
	int ret;

	if (!elf_has_magic(image, size)) {
		boot_errf(err, errlen,
			  "multiboot kernel is not ELF and its header has no address fields (flags bit 16)");
		return -ENOEXEC;
	}
	ret = elf_parse(&elf, image, size, err, errlen);
	if (ret)
		return ret;
	/* Multiboot v1 defines 32-bit ELF loading only; QEMU refuses 64-bit
	 * images too. */
	if (elf.is64) {
		boot_errf(err, errlen,
			  "64-bit ELF multiboot kernels are not supported: multiboot v1 loads ELF32 (link as elf32, or set the a.out kludge)");
		return -ENOEXEC;
	}
	ret = elf_load(mem, &elf, ext, err, errlen);
	if (ret)
		return ret;
	/* As GRUB does: e_entry may be virtual, translate it through the
	 * segment that holds it. */
	if (!elf_vaddr_to_paddr(&elf, elf.entry, &pentry))
		pentry = elf.entry;
	if (pentry < ext->start || pentry >= ext->end) {
		boot_errf(err, errlen, "ELF entry point 0x%" PRIx64 " is outside the loaded segments",
			  elf.entry);
		return -ENOEXEC;
	}
	*entry = (uint32_t)pentry;
	return 0;
}

int multiboot_load(const struct guest_memory *mem, const void *image, size_t size,
		   const struct multiboot_header *hdr, uint32_t *entry,
		   struct elf_extent *ext, char *err, size_t errlen)
{
	if (hdr->flags & MULTIBOOT_AOUT_KLUDGE)
		return mb_load_aout(mem, image, size, hdr, entry, ext, err, errlen);
	return mb_load_elf(mem, image, size, entry, ext, err, errlen);
}

/* Layout of the boot info page. */
#define MB_MMAP_OFF    sizeof(struct multiboot_info)
#define MB_MODS_OFF    (MB_MMAP_OFF + E820_MAX_ENTRIES * sizeof(struct multiboot_mmap_entry))
#define MB_NAME_OFF    (MB_MODS_OFF + sizeof(struct multiboot_mod_list))
#define MB_MODSTR_OFF  (MB_NAME_OFF + sizeof(MULTIBOOT_LOADER_NAME))
_Static_assert(MB_MODSTR_OFF + 1 <= LAYOUT_BOOT_INFO_SIZE, "multiboot info must fit its page");

/* §3.3: size is that of the rest of the entry. */
static void mb_put_mmap_entry(uint8_t *dst, const struct e820_entry *e)
{
	struct multiboot_mmap_entry m = {
		.size = sizeof(m) - sizeof(m.size),
		.addr = e->addr,
		.len = e->size,
		.type = e->type,
	};

	memcpy(dst, &m, sizeof(m));
}

static int mb_write_mmap(const struct guest_memory *mem, uint8_t *page,
			 struct multiboot_info *mbi, char *err, size_t errlen)
{
	int n = e820_write(mem, page + MB_MMAP_OFF, sizeof(struct multiboot_mmap_entry),
			   mb_put_mmap_entry);

	if (n < 0) {
		boot_errf(err, errlen, "cannot build the memory map");
		return n;
	}
	mbi->mmap_addr = (uint32_t)(LAYOUT_BOOT_INFO + MB_MMAP_OFF);
	mbi->mmap_length = (uint32_t)(n * sizeof(struct multiboot_mmap_entry));
	/* mem_upper stops at the first hole above 1 MiB: the end of the low
	 * region, which is never above 3 GiB. */
	mbi->mem_lower = (uint32_t)(LAYOUT_LOW_RAM_END >> 10);
	mbi->mem_upper = (uint32_t)((mem->regions[0].size - LAYOUT_HIGH_RAM_START) >> 10);
	return 0;
}

int multiboot_write_info(const struct guest_memory *mem, const struct multiboot_module *mod,
			 char *err, size_t errlen)
{
	struct multiboot_info mbi = {
		.flags = MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE |
			 MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_BOOT_LOADER_NAME,
		.cmdline = (uint32_t)LAYOUT_CMDLINE,
		.boot_loader_name = (uint32_t)(LAYOUT_BOOT_INFO + MB_NAME_OFF),
	};
	uint8_t *page = guest_memory_ptr(mem, LAYOUT_BOOT_INFO, LAYOUT_BOOT_INFO_SIZE);
	int ret;

	if (!page) {
		boot_errf(err, errlen, "no guest RAM for the multiboot information");
		return -EFAULT;
	}
	memset(page, 0, LAYOUT_BOOT_INFO_SIZE);
	ret = mb_write_mmap(mem, page, &mbi, err, errlen);
	if (ret)
		return ret;
	memcpy(page + MB_NAME_OFF, MULTIBOOT_LOADER_NAME, sizeof(MULTIBOOT_LOADER_NAME));
	if (mod) {
		/* The module's command line is empty: page + MB_MODSTR_OFF is 0. */
		struct multiboot_mod_list m = {
			.mod_start = mod->start,
			.mod_end = mod->end,
			.cmdline = (uint32_t)(LAYOUT_BOOT_INFO + MB_MODSTR_OFF),
		};

		memcpy(page + MB_MODS_OFF, &m, sizeof(m));
		mbi.flags |= MULTIBOOT_INFO_MODS;
		mbi.mods_count = 1;
		mbi.mods_addr = (uint32_t)(LAYOUT_BOOT_INFO + MB_MODS_OFF);
	}
	memcpy(page, &mbi, sizeof(mbi));
	return 0;
}
