#include "arch/x86/pagetables.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"

#define PT_PAGE    0x1000ULL
#define PT_ENTRIES 512

/* The tables sit between the command line and the EBDA, clear of the boot
 * GDT, the boot info page and the command line, and must cover the RAM
 * below the MMIO hole, where the kernel, its initrd and boot_params go. */
_Static_assert(LAYOUT_PML4 >= LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX,
	       "page tables overlap the command line");
_Static_assert(LAYOUT_PDPT == LAYOUT_PML4 + PT_PAGE && LAYOUT_PD == LAYOUT_PDPT + PT_PAGE,
	       "page tables are contiguous");
_Static_assert(LAYOUT_PD + LAYOUT_PD_COUNT * PT_PAGE <= LAYOUT_LOW_RAM_END,
	       "page tables must end below the EBDA");
_Static_assert(LAYOUT_MMIO_HOLE_START <= LAYOUT_IDENTITY_MAP_END,
	       "the identity map must cover the low RAM region");
_Static_assert(LAYOUT_PD_COUNT <= PT_ENTRIES, "one PDPT");

int pagetables_write_identity(const struct guest_memory *mem, uint64_t *cr3)
{
	uint64_t len = LAYOUT_PD + LAYOUT_PD_COUNT * PT_PAGE - LAYOUT_PML4;
	uint8_t *base = guest_memory_ptr(mem, LAYOUT_PML4, len);
	uint64_t e;
	unsigned i, j;

	if (!base)
		return -EFAULT;
	memset(base, 0, len);
	/* PML4[0] covers [0, 512 GiB), PDPT[i] covers [i GiB, i + 1 GiB). */
	e = LAYOUT_PDPT | PTE_PRESENT | PTE_RW;
	memcpy(base, &e, sizeof(e));   /* base is the PML4 */
	for (i = 0; i < LAYOUT_PD_COUNT; i++) {
		uint8_t *pd = base + (LAYOUT_PD - LAYOUT_PML4) + i * PT_PAGE;

		e = (LAYOUT_PD + i * PT_PAGE) | PTE_PRESENT | PTE_RW;
		memcpy(base + (LAYOUT_PDPT - LAYOUT_PML4) + i * sizeof(e), &e, sizeof(e));
		/* 2 MiB pages rather than 1 GiB ones: every 64-bit CPU has
		 * them, while 1 GiB pages need CPUID pdpe1gb. */
		for (j = 0; j < PT_ENTRIES; j++) {
			e = (GiB(i) + MiB(2) * j) | PTE_PRESENT | PTE_RW | PTE_PS;
			memcpy(pd + j * sizeof(e), &e, sizeof(e));
		}
	}
	*cr3 = LAYOUT_PML4;
	return 0;
}
