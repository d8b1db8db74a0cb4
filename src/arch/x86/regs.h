/* vCPU register state at kernel entry, and a register dump for post-mortems. */
#ifndef POPEK_ARCH_X86_REGS_H
#define POPEK_ARCH_X86_REGS_H

#include <stdint.h>
#include <stdio.h>

#include "arch/x86/loader.h"
#include "vmm/memory.h"

/* GDT selectors of the boot GDT at LAYOUT_BOOT_GDT. The code segment is
 * 32-bit or, for BOOT_MODE_LONG64, 64-bit: Linux's 64-bit boot protocol
 * wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18 either way. */
#define BOOT_GDT_CODE32 0x10
#define BOOT_GDT_CODE   BOOT_GDT_CODE32
#define BOOT_GDT_DATA32 0x18
#define BOOT_GDT_TSS    0x20

/* Writes the flat boot GDT for entering in mode into guest memory. */
int regs_write_boot_gdt(const struct guest_memory *mem, enum boot_mode mode);

/* Writes the stub at the BIOS reset vector (LAYOUT_RESET_VECTOR): in real
 * mode, pulse the i8042 reset line, then halt. */
int regs_write_reset_vector(const struct guest_memory *mem);

/* Puts the BSP in the state entry->mode says, IF=0:
 * - BOOT_MODE_PROTECTED32: 32-bit protected mode, flat 4 GiB segments,
 *   paging off, at entry->eip with EAX/EBX/ESI from entry: what both the
 *   PVH ABI and Multiboot v1 (§3.2 "Machine state") require;
 * - BOOT_MODE_LONG64: 64-bit mode (EFER.LME/LMA, CR0.PG, CR4.PAE) on the
 *   page tables at entry->cr3, at entry->rip with RSI = entry->rsi: Linux
 *   boot.rst "64-bit Boot Protocol".
 * The GDT must be regs_write_boot_gdt()'s for the same mode. */
int regs_set_boot_entry(int vcpu_fd, const struct boot_entry *entry);

/* General, segment and control registers in a readable block. */
void regs_dump(int vcpu_fd, FILE *out);

#endif
