/* Xen's PVH boot ABI as used by KVM VMMs (Xen public/arch-x86/hvm/
 * start_info.h, public/elfnote.h): the kernel announces a 32-bit physical
 * entry point in an ELF note and is entered in flat 32-bit protected mode,
 * paging off, with EBX = guest-physical address of a struct hvm_start_info. */
#ifndef POPEK_ARCH_X86_PVH_H
#define POPEK_ARCH_X86_PVH_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/elf.h"
#include "vmm/memory.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18   /* public/elfnote.h */
#define XEN_HVM_START_MAGIC_VALUE 0x336ec578
#define PVH_START_INFO_VERSION 1      /* version 1 adds the memory map */

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;   /* array of struct hvm_modlist_entry */
	uint64_t cmdline_paddr;   /* NUL-terminated */
	uint64_t rsdp_paddr;      /* 0: no ACPI yet */
	uint64_t memmap_paddr;    /* array of struct hvm_memmap_table_entry */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;   /* 0: none */
	uint64_t reserved;
};

/* Types are the E820 ones. */
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* A module already placed in guest RAM. */
struct pvh_module {
	uint64_t paddr;
	uint64_t size;
};

/* Looks for XEN_ELFNOTE_PHYS32_ENTRY (name "Xen", desc 4 or 8 bytes of
 * which the low 32 bits are the entry) in the PT_NOTE segments. Returns 1
 * with *entry set, 0 when there is no such note, or -ENOEXEC with a
 * message in err when the notes are malformed. */
int pvh_find_entry(const struct elf_image *elf, uint32_t *entry, char *err, size_t errlen);

/* Writes hvm_start_info at LAYOUT_BOOT_INFO, followed in the same page by
 * the memory map (from e820_build) and, if mod is not NULL, a one-entry
 * module list. cmdline_paddr is LAYOUT_CMDLINE: the caller puts the
 * command line there. 0 or a negative errno with a message in err. */
int pvh_write_start_info(const struct guest_memory *mem, const struct pvh_module *mod,
			 char *err, size_t errlen);

#endif
