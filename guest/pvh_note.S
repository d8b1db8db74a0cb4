/* PVH entry note (Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY = 18): tells a
 * PVH-capable loader to enter at pvh_entry in 32-bit protected mode. */
	.section .note.Xen, "a", @note
	.balign 4
	.long	4		/* name size */
	.long	4		/* descriptor size */
	.long	18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.balign 4
	.long	pvh_entry
	.balign 4

	.section .note.GNU-stack, "", @progbits
