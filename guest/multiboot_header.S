/* Multiboot v1 header (Multiboot 0.6.96 section 3.1): flags bit 1 asks
 * for memory information; no a.out kludge, the loader uses the ELF
 * program headers.  The linker script puts it first in the image, well
 * inside the first 8 KiB of the file. */
#include "defs.h"

	.section .multiboot, "a"
	.balign 4
multiboot_header:
	.long	MULTIBOOT_HEADER_MAGIC
	.long	MULTIBOOT_HEADER_FLAGS
	.long	-(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_HEADER_FLAGS)

	.section .note.GNU-stack, "", @progbits
