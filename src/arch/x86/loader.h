/* Kernel loading: recognises the boot protocol of a kernel image, loads
 * it into guest RAM with its command line, memory map, optional initrd and
 * the protocol's info structure, and says how to enter it. The MP table
 * is written separately (mptable_write). */
#ifndef POPEK_ARCH_X86_LOADER_H
#define POPEK_ARCH_X86_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

enum boot_protocol { BOOT_PROTOCOL_PVH, BOOT_PROTOCOL_MULTIBOOT, BOOT_PROTOCOL_LINUX };

/* The CPU mode the kernel is entered in. */
enum boot_mode {
	/* PVH, multiboot: 32-bit protected mode, flat 4 GiB segments (CS
	 * execute/read, others read/write), paging off, IF=0; eip, eax,
	 * ebx and esi hold the entry registers. */
	BOOT_MODE_PROTECTED32,
	/* Linux bzImage (boot.rst "64-bit Boot Protocol"): long mode on the
	 * identity page tables at cr3, flat 64-bit CS 0x10 and data 0x18,
	 * IF=0; rip and rsi hold the entry registers. */
	BOOT_MODE_LONG64,
};

struct boot_entry {
	enum boot_protocol protocol;
	enum boot_mode mode;          /* 0: BOOT_MODE_PROTECTED32 */
	uint32_t eip, eax, ebx, esi;  /* BOOT_MODE_PROTECTED32 */
	uint64_t rip, rsi, cr3;       /* BOOT_MODE_LONG64 */
};

/* An initial ramdisk in host memory. */
struct boot_module {
	const void *data;
	size_t size;
};

/* What a kernel is handed besides its image. */
struct boot_args {
	const char *cmdline;                /* NULL: empty */
	const struct boot_module *initrd;   /* NULL: none */
	/* Guest-physical address of the ACPI RSDP, 0 when there are no ACPI
	 * tables: Linux gets it in boot_params.acpi_rsdp_addr (protocol
	 * 2.14+), PVH in hvm_start_info.rsdp_paddr; multiboot v1 has no
	 * field for it (the kernel scans the BIOS area). */
	uint64_t rsdp_paddr;
};

/* Tries a Linux bzImage (the "HdrS" setup header), then PVH (an ELF with
 * XEN_ELFNOTE_PHYS32_ENTRY), then multiboot v1. On success fills *out
 * and returns 0; otherwise returns a negative errno with a short message
 * in err: -ENOEXEC for an image we cannot boot, -E2BIG for a command line
 * or initrd that does not fit, -EFAULT for a kernel outside guest RAM. */
int kernel_load_args(const struct guest_memory *mem, const void *image, size_t size,
		     const struct boot_args *args, struct boot_entry *out,
		     char *err, size_t errlen);

/* kernel_load_args() without ACPI. cmdline may be NULL (empty); initrd
 * may be NULL. */
int kernel_load(const struct guest_memory *mem, const void *image, size_t size,
		const char *cmdline, const struct boot_module *initrd,
		struct boot_entry *out, char *err, size_t errlen);

/* "pvh", "multiboot", "linux". */
const char *boot_protocol_name(enum boot_protocol p);

/* Where an initrd of size bytes goes: page-aligned, as high as possible in
 * the RAM below the MMIO hole, not below 1 MiB and not overlapping the
 * kernel's loaded span. 0 with *paddr set, or -E2BIG. */
int loader_place_initrd(const struct guest_memory *mem, uint64_t size,
			uint64_t kernel_start, uint64_t kernel_end, uint64_t *paddr);

/* The same, with the initrd also ending at or below limit (exclusive): a
 * kernel's highest initrd address plus one. */
int loader_place_initrd_below(const struct guest_memory *mem, uint64_t size,
			      uint64_t kernel_start, uint64_t kernel_end, uint64_t limit,
			      uint64_t *paddr);

#endif
