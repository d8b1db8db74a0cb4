/* Linux x86 bzImage kernels: "The Linux/x86 Boot Protocol"
 * (Documentation/arch/x86/boot.rst), with the zero page of
 * Documentation/arch/x86/zero-page.rst and uapi asm/bootparam.h.
 *
 * No real-mode code runs: popek loads the protected-mode kernel at its
 * preferred address, fills boot_params (the "zero page") itself and enters
 * the 64-bit entry point (load address + 0x200) in long mode, as boot.rst
 * "64-bit Boot Protocol" describes, like Firecracker and Cloud Hypervisor.
 *
 * The image is untrusted input: every header field is checked against the
 * file and the guest's RAM before it is used. */
#ifndef POPEK_ARCH_X86_BZIMAGE_H
#define POPEK_ARCH_X86_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/loader.h"
#include "vmm/memory.h"

#define BZIMAGE_BOOT_FLAG_OFF 0x1fe
#define BZIMAGE_BOOT_FLAG     0xaa55
#define BZIMAGE_MAGIC_OFF     0x202
#define BZIMAGE_MAGIC         0x53726448   /* "HdrS" */
/* xloadflags (and so XLF_KERNEL_64, the 64-bit entry) came with 2.12;
 * pref_address and init_size, which place the kernel, with 2.10. */
#define BZIMAGE_MIN_VERSION   0x020c
#define BZIMAGE_ENTRY64_OFF   0x200        /* 64-bit entry, from the load address */

/* loadflags (boot.rst "Details of Header Fields") */
#define BZIMAGE_LOADED_HIGH   0x01
#define BZIMAGE_CAN_USE_HEAP  0x80
/* xloadflags */
#define BZIMAGE_XLF_KERNEL_64 0x0001

/* The setup header fields a loader reads, validated. */
struct bzimage_header {
	uint16_t version;          /* (major << 8) | minor */
	uint32_t hdr_end;          /* 0x202 + byte at 0x201: end of the setup header */
	uint64_t setup_size;       /* (setup_sects + 1) * 512, setup_sects 0 meaning 4:
				    * file offset of the protected-mode kernel */
	uint64_t kernel_size;      /* syssize * 16: its length in the file */
	uint8_t loadflags;
	bool relocatable;          /* relocatable_kernel */
	uint16_t xloadflags;
	uint32_t kernel_alignment;
	uint32_t initrd_addr_max;  /* highest address an initrd byte may occupy */
	uint32_t cmdline_size;     /* longest command line, without its NUL */
	uint64_t pref_address;
	uint32_t init_size;        /* bytes from the load address the kernel needs */
};

/* True when image has the "HdrS" magic at 0x202: it claims to be a
 * Linux kernel with a setup header. */
bool bzimage_has_magic(const void *image, size_t size);

/* True when image has the 0xAA55 boot-sector flag at 0x1FE. */
bool bzimage_has_boot_flag(const void *image, size_t size);

/* Validates the setup header of a kernel that bzimage_has_magic():
 * boot flag, protocol version, header length, setup and kernel sizes
 * against the file, loadflags, xloadflags, kernel_alignment, init_size.
 * 0, or -ENOEXEC with a message in err. */
int bzimage_parse(const void *image, size_t size, struct bzimage_header *h,
		  char *err, size_t errlen);

/* Where the protected-mode kernel goes: pref_address (for a relocatable
 * kernel with none, 1 MiB rounded up to kernel_alignment), which must be
 * aligned to kernel_alignment and have max(init_size, kernel_size) bytes
 * of RAM from there, at or above 1 MiB and below the MMIO hole. 0 with
 * *load and *end ([load, end) is the kernel's span), or -ENOEXEC /
 * -EFAULT with a message in err. */
int bzimage_place(const struct guest_memory *mem, const struct bzimage_header *h,
		  uint64_t *load, uint64_t *end, char *err, size_t errlen);

/* Loads a parsed bzImage: the protected-mode kernel at bzimage_place(),
 * the initrd (if any) as high as initrd_addr_max and RAM allow without
 * touching the kernel's span, boot_params at LAYOUT_BOOT_INFO and the
 * identity page tables. The command line must already be at
 * LAYOUT_CMDLINE; it is checked against cmdline_size. Fills *out for a
 * BOOT_MODE_LONG64 entry. 0, or a negative errno with a message in err:
 * -ENOEXEC, -EFAULT, or -E2BIG for a command line or initrd too big. */
int bzimage_load(const struct guest_memory *mem, const void *image,
		 const struct bzimage_header *h, const char *cmdline,
		 const struct boot_module *initrd, uint64_t rsdp_paddr,
		 struct boot_entry *out, char *err, size_t errlen);

#endif
