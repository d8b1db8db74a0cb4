/* Identity-mapped page tables for entering a kernel in long mode. */
#ifndef POPEK_ARCH_X86_PAGETABLES_H
#define POPEK_ARCH_X86_PAGETABLES_H

#include <stdint.h>

#include "vmm/memory.h"

/* Paging-structure entry bits (SDM vol. 3A §4.5, tables 4-15 to 4-18). */
#define PTE_PRESENT (1ULL << 0)
#define PTE_RW      (1ULL << 1)
#define PTE_PS      (1ULL << 7)   /* in a PDE: maps a 2 MiB page */

/* Writes a PML4 at LAYOUT_PML4, a PDPT at LAYOUT_PDPT and LAYOUT_PD_COUNT
 * page directories from LAYOUT_PD that map [0, LAYOUT_IDENTITY_MAP_END)
 * onto itself with present, writable, supervisor 2 MiB pages, and sets
 * *cr3 to the PML4. 0, or -EFAULT when those pages are not RAM. */
int pagetables_write_identity(const struct guest_memory *mem, uint64_t *cr3);

#endif
