/* Multiboot Specification 0.6.96 (version 1): header search (§3.1), the
 * a.out kludge and ELF loading, and the information structure (§3.3). The
 * kernel is entered in flat 32-bit protected mode, paging off, with
 * EAX = MULTIBOOT_BOOTLOADER_MAGIC and EBX = the info structure (§3.2). */
#ifndef POPEK_ARCH_X86_MULTIBOOT_H
#define POPEK_ARCH_X86_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/elf.h"
#include "vmm/memory.h"

#define MULTIBOOT_HEADER_MAGIC     0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
#define MULTIBOOT_SEARCH           8192   /* header lies in the first 8 KiB */
#define MULTIBOOT_HEADER_ALIGN     4

/* Header flags (§3.1.2). Bits 0-15 are requirements: a loader that does
 * not know one must refuse the kernel. */
#define MULTIBOOT_PAGE_ALIGN   (1u << 0)   /* modules page-aligned: we always do */
#define MULTIBOOT_MEMORY_INFO  (1u << 1)   /* mem_* and mmap_*: we always give */
#define MULTIBOOT_VIDEO_MODE   (1u << 2)   /* a video mode: no display, ignored */
#define MULTIBOOT_AOUT_KLUDGE  (1u << 16)  /* load by the header's address fields */
#define MULTIBOOT_KNOWN_REQUIRED \
	(MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_VIDEO_MODE)

/* Info flags (§3.3). */
#define MULTIBOOT_INFO_MEMORY           (1u << 0)
#define MULTIBOOT_INFO_CMDLINE          (1u << 2)
#define MULTIBOOT_INFO_MODS             (1u << 3)
#define MULTIBOOT_INFO_MEM_MAP          (1u << 6)
#define MULTIBOOT_INFO_BOOT_LOADER_NAME (1u << 9)

#define MULTIBOOT_LOADER_NAME "popek"

/* A header found in an image; the address fields are valid only with
 * MULTIBOOT_AOUT_KLUDGE. */
struct multiboot_header {
	uint32_t offset;          /* of the magic, in the file */
	uint32_t flags;
	uint32_t header_addr;
	uint32_t load_addr;
	uint32_t load_end_addr;   /* 0: load to the end of the file */
	uint32_t bss_end_addr;    /* 0: no bss */
	uint32_t entry_addr;
};

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower;       /* KiB from 0 */
	uint32_t mem_upper;       /* KiB from 1 MiB up to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;     /* bytes */
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info;
	uint32_t vbe_mode_info;
	uint16_t vbe_mode;
	uint16_t vbe_interface_seg;
	uint16_t vbe_interface_off;
	uint16_t vbe_interface_len;
} __attribute__((packed));

/* size counts the bytes after itself (20); mmap_addr points at size. */
struct multiboot_mmap_entry {
	uint32_t size;
	uint64_t addr;
	uint64_t len;
	uint32_t type;
} __attribute__((packed));

struct multiboot_mod_list {
	uint32_t mod_start;
	uint32_t mod_end;         /* exclusive */
	uint32_t cmdline;
	uint32_t pad;
} __attribute__((packed));

/* A module already placed in guest RAM, [start, end). */
struct multiboot_module {
	uint32_t start;
	uint32_t end;
};

/* Searches the first MULTIBOOT_SEARCH bytes for a valid header. Returns 1
 * with *hdr filled, 0 when there is none, or -ENOEXEC with a message in
 * err when the header asks for something we cannot do, is truncated, or
 * only a magic with a bad checksum was found. */
int multiboot_find_header(const void *image, size_t size, struct multiboot_header *hdr,
			  char *err, size_t errlen);

/* Loads the kernel by the a.out kludge fields or, without them, by the
 * program headers of an ELF32 image. Sets *entry (physical) and *ext. */
int multiboot_load(const struct guest_memory *mem, const void *image, size_t size,
		   const struct multiboot_header *hdr, uint32_t *entry,
		   struct elf_extent *ext, char *err, size_t errlen);

/* Writes the info structure at LAYOUT_BOOT_INFO, then the memory map, the
 * module list (if mod) and the boot loader name, all in the boot info
 * page. cmdline is LAYOUT_CMDLINE: the caller puts the string there. */
int multiboot_write_info(const struct guest_memory *mem, const struct multiboot_module *mod,
			 char *err, size_t errlen);

#endif
