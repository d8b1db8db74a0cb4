/* Kernel loading: recognises the boot protocol of a kernel image, loads
 * it into guest RAM with its command line, memory map, optional initrd and
 * the protocol's info structure, and says how to enter it. The MP table
 * is written separately (mptable_write). */
#ifndef POPEK_ARCH_X86_LOADER_H
#define POPEK_ARCH_X86_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

enum boot_protocol { BOOT_PROTOCOL_PVH, BOOT_PROTOCOL_MULTIBOOT };

/* 32-bit protected-mode entry, flat 4 GiB segments (CS execute/read,
 * others read/write), paging off, IF=0. */
struct boot_entry {
	enum boot_protocol protocol;
	uint32_t eip, eax, ebx, esi; /* register values at entry */
};

/* An initial ramdisk in host memory. */
struct boot_module {
	const void *data;
	size_t size;
};

/* Tries PVH (an ELF with XEN_ELFNOTE_PHYS32_ENTRY), then multiboot v1.
 * cmdline may be NULL (empty); initrd may be NULL. On success fills *out
 * and returns 0; otherwise returns a negative errno with a short message
 * in err: -ENOEXEC for an image we cannot boot, -E2BIG for a command line
 * or initrd that does not fit, -EFAULT for a kernel outside guest RAM. */
int kernel_load(const struct guest_memory *mem, const void *image, size_t size,
		const char *cmdline, const struct boot_module *initrd,
		struct boot_entry *out, char *err, size_t errlen);

/* "pvh", "multiboot". */
const char *boot_protocol_name(enum boot_protocol p);

/* Where an initrd of size bytes goes: page-aligned, as high as possible in
 * the RAM below the MMIO hole, not below 1 MiB and not overlapping the
 * kernel's loaded span. 0 with *paddr set, or -E2BIG. */
int loader_place_initrd(const struct guest_memory *mem, uint64_t size,
			uint64_t kernel_start, uint64_t kernel_end, uint64_t *paddr);

#endif
