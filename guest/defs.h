/* popek built-in guest: constants shared by the assembly and the C code.
 * Only #defines here: this file is included from .S files too. */
#ifndef POPEK_GUEST_DEFS_H
#define POPEK_GUEST_DEFS_H

#define GUEST_MAX_CPUS      64          /* CPU slots: stacks, TSSes, results */
#define GUEST_STACK_SHIFT   14          /* 16 KiB stack per CPU (ring 0 and ring 3) */
#define GUEST_STACK_SIZE    (1 << GUEST_STACK_SHIFT)
#define GUEST_TSS_STRIDE    128         /* bytes between per-CPU TSSes */
#define GUEST_IOBITMAP_SIZE 8192        /* 65536 ports, one bit each, all 0 = allowed */

/* GDT selectors. */
#define SEL_KCODE64  0x08
#define SEL_KDATA    0x10
#define SEL_UDATA    0x18               /* used with RPL 3: 0x1b */
#define SEL_UCODE64  0x20               /* used with RPL 3: 0x23 */
#define SEL_KCODE32  0x28
#define SEL_TSS0     0x30               /* slot i: 0x30 + 16 * i (16-byte descriptors) */
#define GDT_ENTRIES  (6 + 2 * GUEST_MAX_CPUS)

/* Boot protocols, recorded by the 32-bit entry code. */
#define BOOT_UNKNOWN   0
#define BOOT_PVH       1
#define BOOT_MULTIBOOT 2

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_HEADER_FLAGS 0x00000002   /* bit 1: memory information wanted */
#define MULTIBOOT_LOADER_MAGIC 0x2BADB002

/* The AP start-up trampoline is copied here (SIPI vector 0x08). */
#define TRAMPOLINE_ADDR 0x8000

#define LAPIC_BASE  0xFEE00000
#define MSR_EFER    0xC0000080
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

#endif
