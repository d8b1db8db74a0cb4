/* The guest's physical memory map, as the BIOS INT 15h E820 call would
 * report it (ACPI 6.x §15 "System Address Map Interfaces"). PVH and
 * multiboot both hand a copy of it to the kernel. */
#ifndef POPEK_ARCH_X86_E820_H
#define POPEK_ARCH_X86_E820_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4

/* Our map has at most five entries today; room for ACPI and friends. */
#define E820_MAX_ENTRIES 16

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Fills out[0..max) with the map for mem, sorted by address and without
 * overlaps. Returns the number of entries, -ENOSPC when max is too small,
 * or -EINVAL when mem has no low region of at least LAYOUT_MIN_RAM. */
int e820_build(const struct guest_memory *mem, struct e820_entry *out, int max);

/* Writes the map for mem into dst in a boot protocol's format: entry i
 * goes to dst + i * stride, encoded by put. Returns the number of entries
 * or e820_build()'s error. */
int e820_write(const struct guest_memory *mem, uint8_t *dst, size_t stride,
	       void (*put)(uint8_t *dst, const struct e820_entry *e));

#endif
