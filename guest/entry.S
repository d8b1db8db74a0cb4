/* popek built-in guest: everything that runs in ring 0.
 *
 * Ring 0 only sets up: it switches to long mode with static page tables,
 * loads a static GDT, a zero-limit IDT and a per-CPU TSS, enables kvmclock
 * on the BSP, and drops to ring 3 with IOPL=3 and IF=0.  Everything else
 * (including starting the APs) happens in ring 3, see main.c.  On hosts
 * where ring 0 is emulated instruction by instruction the whole path is a
 * few dozen instructions per CPU. */
#include "defs.h"

/* ---------------------------------------------------------------- */
/* 32-bit entry points (flat protected mode, paging off, IF=0).     */
	.section .text.entry, "ax"
	.code32

	/* Firmware may hand over with the local APIC in x2APIC mode; we use
	 * the xAPIC MMIO page (from ring 3 too), so go back to xAPIC mode
	 * (x2APIC -> disabled -> xAPIC; the only legal path).  Clobbers
	 * EAX, ECX, EDX. */
	.macro xapic_mode
	movl	$0x1b, %ecx			/* IA32_APIC_BASE */
	rdmsr
	testl	$0x400, %eax			/* EXTD */
	jz	9f
	andl	$~0xc00, %eax
	wrmsr
	orl	$0x800, %eax			/* EN */
	wrmsr
9:
	.endm

	/* PVH: EBX = guest-physical address of struct hvm_start_info. */
	.globl pvh_entry
pvh_entry:
	movl	$BOOT_PVH, %ecx
	jmp	1f

	/* Multiboot (and the ELF entry): EAX = 0x2BADB002, EBX = info. */
	.globl _start
_start:
	xorl	%ecx, %ecx			/* BOOT_UNKNOWN */
	cmpl	$MULTIBOOT_LOADER_MAGIC, %eax
	jne	1f
	movl	$BOOT_MULTIBOOT, %ecx
1:	movl	%ecx, boot_type
	movl	%ebx, boot_info_addr
	xapic_mode
	xorl	%edi, %edi			/* CPU slot 0: the BSP */

	/* Common to BSP and APs: EDI = CPU slot. */
enter_long_mode:
	lgdt	gdt_desc
	lidt	idt_desc			/* limit 0: any exception triple-faults */
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$0x20, %eax			/* CR4.PAE */
	movl	%eax, %cr4
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$0x100, %eax			/* EFER.LME */
	wrmsr
	movl	$0x80010011, %eax		/* CR0.PG | WP | ET | PE, caches on */
	movl	%eax, %cr0
	ljmp	$SEL_KCODE64, $long_mode

	/* APs arrive here from the real-mode trampoline. */
	.globl ap_entry32
ap_entry32:
	movl	$SEL_KDATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	xapic_mode
	movl	LAPIC_BASE + 0x20, %eax		/* LAPIC ID register */
	shrl	$24, %eax
	movzbl	apic_to_slot(%eax), %edi
	cmpl	$GUEST_MAX_CPUS, %edi
	jb	enter_long_mode
2:	hlt					/* not one of ours: park */
	jmp	2b

/* ---------------------------------------------------------------- */
	.code64
long_mode:
	movl	$SEL_KDATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss

	testl	%edi, %edi
	jnz	3f
	/* BSP: enable kvmclock if the hypervisor is KVM and offers it. */
	movl	$0x40000000, %eax
	cpuid
	cmpl	$0x4b4d564b, %ebx		/* "KVMK" */
	jne	3f
	cmpl	$0x564b4d56, %ecx		/* "VMKV" */
	jne	3f
	cmpl	$0x0000004d, %edx		/* "M\0\0\0" */
	jne	3f
	cmpl	$0x40000001, %eax
	jb	3f
	movl	$0x40000001, %eax
	cpuid
	testb	$0x08, %al			/* KVM_FEATURE_CLOCKSOURCE2 */
	jz	3f
	movl	$MSR_KVM_SYSTEM_TIME_NEW, %ecx
	movl	$(pvclock_bsp + 1), %eax	/* enable bit */
	xorl	%edx, %edx
	wrmsr
	movl	$1, kvmclock_enabled
3:
	/* 64-bit TSS descriptor of this slot: base = tss_area + slot * 128,
	 * limit = offset of the shared I/O bitmap + 8 KiB (the 0xFF byte). */
	movl	%edi, %esi
	shll	$7, %esi
	leal	tss_area(%rsi), %eax		/* base (< 4 GiB) */
	movl	$(GUEST_MAX_CPUS * GUEST_TSS_STRIDE + GUEST_IOBITMAP_SIZE), %edx
	subl	%esi, %edx			/* limit, < 64 KiB */
	movl	%eax, %ecx
	andl	$0x00ffffff, %ecx
	shlq	$16, %rcx
	orq	%rcx, %rdx			/* base[23:0] */
	movl	%eax, %ecx
	shrl	$24, %ecx
	shlq	$56, %rcx
	orq	%rcx, %rdx			/* base[31:24] */
	movabsq	$0x0000890000000000, %rcx	/* present, 64-bit available TSS */
	orq	%rcx, %rdx
	movl	%edi, %eax
	shll	$4, %eax
	movq	%rdx, gdt + SEL_TSS0(%rax)	/* upper half (base[63:32]) stays 0 */
	addl	$SEL_TSS0, %eax
	ltr	%ax

	/* Drop to ring 3: stack = top of this slot's stack, IOPL=3, IF=0. */
	leal	1(%rdi), %eax
	shlq	$GUEST_STACK_SHIFT, %rax
	leaq	stacks(%rax), %rsp
	leaq	-8(%rsp), %rax			/* SysV entry alignment */
	pushq	$(SEL_UDATA | 3)
	pushq	%rax
	pushq	$0x3002
	pushq	$(SEL_UCODE64 | 3)
	pushq	$cpu_main			/* void cpu_main(unsigned slot) */
	iretq

/* ---------------------------------------------------------------- */
/* AP trampoline, copied to TRAMPOLINE_ADDR by the BSP (from ring 3).
 * Starts in real mode at CS:IP = 0x0800:0000.                       */
	.section .rodata.trampoline, "a"
	.code16
	.globl trampoline_start, trampoline_end
trampoline_start:
	cli
	lgdtl	%cs:(trampoline_gdtr - trampoline_start)
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_KCODE32, $ap_entry32
	.balign 8
trampoline_gdtr:
	.word	GDT_ENTRIES * 8 - 1
	.long	gdt
trampoline_end:
	.code64

/* ---------------------------------------------------------------- */
/* Static descriptor tables and page tables.                        */
	.section .data.tables, "aw"
	.balign 16
gdt_desc:
	.word	GDT_ENTRIES * 8 - 1
	.long	gdt
	.balign 16
idt_desc:
	.word	0
	.long	0

	.globl boot_type, boot_info_addr, kvmclock_enabled
	.balign 8
boot_type:		.long 0
boot_info_addr:		.long 0
kvmclock_enabled:	.long 0

	.balign 16
	.globl gdt
gdt:
	.quad	0					/* null */
	.quad	0x00af9a000000ffff			/* 0x08 ring-0 code, 64-bit */
	.quad	0x00cf92000000ffff			/* 0x10 ring-0 data */
	.quad	0x00cff2000000ffff			/* 0x18 ring-3 data */
	.quad	0x00affa000000ffff			/* 0x20 ring-3 code, 64-bit */
	.quad	0x00cf9a000000ffff			/* 0x28 ring-0 code, 32-bit */
	.fill	2 * GUEST_MAX_CPUS, 8, 0		/* 0x30 TSS descriptors */

	/* Per-CPU TSSes, 128 bytes apart, followed by ONE I/O permission
	 * bitmap shared by all: each TSS's I/O map base (offset 0x66) points
	 * at it, relative to that TSS.  All zero bits: every port allowed. */
	.balign 128
	.globl tss_area
tss_area:
	.set	slot, 0
	.rept	GUEST_MAX_CPUS
	.fill	0x66, 1, 0
	.word	(GUEST_MAX_CPUS - slot) * GUEST_TSS_STRIDE
	.fill	GUEST_TSS_STRIDE - 0x68, 1, 0
	.set	slot, slot + 1
	.endr
io_bitmap:
	.fill	GUEST_IOBITMAP_SIZE, 1, 0
	.byte	0xff

	/* Identity map of the first 4 GiB with 2 MiB pages, all user
	 * accessible and writable; [3 GiB, 4 GiB) (LAPIC, IOAPIC, MMIO)
	 * uncached.  pdpt[4..511] and pd_high are filled in from ring 3 to
	 * reach the top of RAM above 4 GiB. */
	.balign 4096
	.globl pml4, pdpt, pd_high
pml4:
	.quad	pdpt + 0x7
	.fill	511, 8, 0
pdpt:
	.quad	pd0 + 0x7
	.quad	pd0 + 0x1007
	.quad	pd0 + 0x2007
	.quad	pd0 + 0x3007
	.fill	508, 8, 0
pd0:
	.set	addr, 0
	.rept	2048
	.if	addr >= 0xC0000000
	.quad	addr + 0x9f			/* P RW US PWT PCD PS */
	.else
	.quad	addr + 0x87			/* P RW US PS */
	.endif
	.set	addr, addr + 0x200000
	.endr
pd_high:
	.fill	512, 8, 0

	/* pvclock_vcpu_time_info of the BSP (32 bytes, in its own page). */
	.balign 4096
	.globl pvclock_bsp
pvclock_bsp:
	.fill	4096, 1, 0

	/* APIC ID -> CPU slot, 0xff = not ours; filled by the BSP. */
	.globl apic_to_slot
apic_to_slot:
	.fill	256, 1, 0xff

/* Per-CPU stacks: not part of .bss (ring 3 clears .bss while running on
 * one of them). */
	.section .stacks, "aw", @nobits
	.balign 4096
	.globl stacks
stacks:
	.skip	GUEST_MAX_CPUS * GUEST_STACK_SIZE

	.section .note.GNU-stack, "", @progbits
