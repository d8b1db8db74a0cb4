/* vCPU register state at kernel entry, and a register dump for post-mortems. */
#ifndef POPEK_ARCH_X86_REGS_H
#define POPEK_ARCH_X86_REGS_H

#include <stdint.h>
#include <stdio.h>

#include "arch/x86/loader.h"
#include "vmm/memory.h"

/* GDT selectors of the boot GDT at LAYOUT_BOOT_GDT. */
#define BOOT_GDT_CODE32 0x10
#define BOOT_GDT_DATA32 0x18
#define BOOT_GDT_TSS    0x20

/* Writes the flat boot GDT into guest memory. */
int regs_write_boot_gdt(const struct guest_memory *mem);

/* Puts the BSP in 32-bit protected mode with flat 4 GiB segments, paging
 * off, IF=0, at entry->eip with EAX/EBX/ESI from entry: what both the PVH
 * ABI and Multiboot v1 (§3.2 "Machine state") require. */
int regs_set_boot_entry(int vcpu_fd, const struct boot_entry *entry);

/* General, segment and control registers in a readable block. */
void regs_dump(int vcpu_fd, FILE *out);

#endif
