#include "arch/x86/regs.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "arch/x86/layout.h"

#define X86_CR0_PE     (1ULL << 0)
#define X86_CR0_ET     (1ULL << 4)
#define X86_CR0_NE     (1ULL << 5)
#define X86_CR0_PG     (1ULL << 31)
#define X86_CR4_PAE    (1ULL << 5)
#define X86_EFER_LME   (1ULL << 8)
#define X86_EFER_LMA   (1ULL << 10)
#define X86_RFLAGS_RSV (1ULL << 1)   /* bit 1 always reads as 1 */

/* Descriptor as in SDM vol. 3A §3.4.5, from base, limit and access/flags. */
static uint64_t gdt_entry(uint32_t base, uint32_t limit, uint16_t flags)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
	       (limit & 0x0000ffff);
}

int regs_write_boot_gdt(const struct guest_memory *mem, enum boot_mode mode)
{
	/* Entries 0 and 1 stay null, as in Linux's boot GDT. */
	uint64_t gdt[BOOT_GDT_TSS / 8 + 1] = { 0 };

	if (mode == BOOT_MODE_LONG64)  /* G, L (D clear, SDM §5.2.1), P, code r/x accessed */
		gdt[BOOT_GDT_CODE / 8] = gdt_entry(0, 0xfffff, 0xa09b);
	else                           /* G, D, P, code r/x accessed */
		gdt[BOOT_GDT_CODE / 8] = gdt_entry(0, 0xfffff, 0xc09b);
	gdt[BOOT_GDT_DATA32 / 8] = gdt_entry(0, 0xfffff, 0xc093); /* G, B, P, data r/w accessed */
	gdt[BOOT_GDT_TSS / 8] = gdt_entry(0, 0x67, 0x008b);       /* P, 32-bit TSS busy */
	return guest_memory_write(mem, LAYOUT_BOOT_GDT, gdt, sizeof(gdt));
}

int regs_write_reset_vector(const struct guest_memory *mem)
{
	static const uint8_t stub[] = {
		0xfa,             /* cli */
		0xb0, 0xfe,       /* mov al, 0xfe: i8042 "pulse reset line" */
		0xe6, 0x64,       /* out 0x64, al */
		0xf4,             /* hlt */
		0xeb, 0xfd,       /* jmp back to hlt */
	};

	return guest_memory_write(mem, LAYOUT_RESET_VECTOR, stub, sizeof(stub));
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

int regs_set_boot_entry(int vcpu_fd, const struct boot_entry *entry)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = flat_segment(BOOT_GDT_CODE, 0xb);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = flat_segment(BOOT_GDT_DATA32, 0x3);
	sregs.tr = (struct kvm_segment){
		.base = 0, .limit = 0x67, .selector = BOOT_GDT_TSS, .type = 0xb, .present = 1,
	};
	sregs.gdt.base = LAYOUT_BOOT_GDT;
	sregs.gdt.limit = BOOT_GDT_TSS + 7;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs.cr3 = 0;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (entry->mode == BOOT_MODE_LONG64) {
		/* A 64-bit code segment (SDM §5.2.1: L=1 needs D=0); the data
		 * segments stay as they are, ignored in 64-bit mode. */
		sregs.cs.l = 1;
		sregs.cs.db = 0;
		/* IA-32e mode is active once EFER.LME, CR4.PAE and CR0.PG
		 * are all set (SDM vol. 3A "Initializing IA-32e Mode"); KVM
		 * takes the resulting state, LMA included. CR0.NE for native
		 * x87 error reporting, as every 64-bit OS sets it; caches on
		 * (CD and NW clear, unlike the reset value). The TSS keeps its
		 * 8-byte descriptor: only the cached TR matters at VM entry,
		 * and the kernel loads its own GDT and TSS. */
		sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
		sregs.cr3 = entry->cr3;
		sregs.cr4 = X86_CR4_PAE;
		sregs.efer = X86_EFER_LME | X86_EFER_LMA;
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	if (entry->mode == BOOT_MODE_LONG64) {
		regs.rip = entry->rip;
		regs.rsi = entry->rsi;
	} else {
		regs.rip = entry->eip;
		regs.rax = entry->eax;
		regs.rbx = entry->ebx;
		regs.rsi = entry->esi;
	}
	regs.rflags = X86_RFLAGS_RSV;   /* IF=0 */
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static void dump_segment(FILE *out, const char *name, const struct kvm_segment *s)
{
	fprintf(out, "  %-3s sel=%04x base=%016llx limit=%08x type=%x p=%u dpl=%u db=%u l=%u g=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->present,
		s->dpl, s->db, s->l, s->g);
}

void regs_dump(int vcpu_fd, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(out, "  (registers unavailable: %s)\n", strerror(errno));
		return;
	}
	fprintf(out,
		"  rip=%016llx rsp=%016llx rflags=%016llx\n"
		"  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
		"  rsi=%016llx rdi=%016llx rbp=%016llx\n"
		"  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
		"  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n",
		r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
		r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
	fprintf(out, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n",
		s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
	dump_segment(out, "cs", &s.cs);
	dump_segment(out, "ss", &s.ss);
	dump_segment(out, "ds", &s.ds);
	dump_segment(out, "tr", &s.tr);
	fprintf(out, "  gdt base=%016llx limit=%04x  idt base=%016llx limit=%04x\n",
		s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
	fflush(out);
}
