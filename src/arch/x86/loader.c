#include "arch/x86/loader.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "arch/x86/bzimage.h"
#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "arch/x86/multiboot.h"
#include "arch/x86/pvh.h"

#define PAGE_SIZE 4096ULL

const char *boot_protocol_name(enum boot_protocol p)
{
	switch (p) {
	case BOOT_PROTOCOL_PVH:
		return "pvh";
	case BOOT_PROTOCOL_MULTIBOOT:
		return "multiboot";
	case BOOT_PROTOCOL_LINUX:
		return "linux";
	}
	return "unknown";
}

static int write_cmdline(const struct guest_memory *mem, const char *cmdline,
			 char *err, size_t errlen)
{
	size_t len = strlen(cmdline);
	uint8_t *dst;

	if (len >= LAYOUT_CMDLINE_MAX) {
		boot_errf(err, errlen,
			  "kernel command line is %zu bytes, the limit is %llu (including the NUL)",
			  len + 1, (unsigned long long)LAYOUT_CMDLINE_MAX);
		return -E2BIG;
	}
	dst = guest_memory_ptr(mem, LAYOUT_CMDLINE, len + 1);
	if (!dst) {
		boot_errf(err, errlen, "no guest RAM for the command line");
		return -EFAULT;
	}
	memcpy(dst, cmdline, len + 1);
	return 0;
}

static bool overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
	return a < b_end && b < a_end;
}

int loader_place_initrd_below(const struct guest_memory *mem, uint64_t size,
			      uint64_t kernel_start, uint64_t kernel_end, uint64_t limit,
			      uint64_t *paddr)
{
	/* Kernels want their initrd below 4 GiB: the low region. */
	uint64_t top = mem->regions[0].size < limit ? mem->regions[0].size : limit;
	uint64_t span = size ? size : 1; /* an empty initrd still gets an address in RAM */
	uint64_t at;

	if (top < LAYOUT_HIGH_RAM_START || span > top - LAYOUT_HIGH_RAM_START)
		return -E2BIG;
	at = (top - span) & ~(PAGE_SIZE - 1);
	/* Below the kernel when the kernel sits at the top of low RAM. */
	if (overlaps(at, at + span, kernel_start, kernel_end)) {
		if (span > kernel_start)
			return -E2BIG;
		at = (kernel_start - span) & ~(PAGE_SIZE - 1);
	}
	if (at < LAYOUT_HIGH_RAM_START)
		return -E2BIG;
	*paddr = at;
	return 0;
}

int loader_place_initrd(const struct guest_memory *mem, uint64_t size,
			uint64_t kernel_start, uint64_t kernel_end, uint64_t *paddr)
{
	return loader_place_initrd_below(mem, size, kernel_start, kernel_end, UINT64_MAX, paddr);
}

static int load_initrd(const struct guest_memory *mem, const struct boot_module *initrd,
		       const struct elf_extent *kernel, uint64_t *paddr,
		       char *err, size_t errlen)
{
	uint8_t *dst;

	if (loader_place_initrd(mem, initrd->size, kernel->start, kernel->end, paddr)) {
		boot_errf(err, errlen,
			  "initrd of %zu bytes does not fit in guest RAM below 3 GiB next to the kernel",
			  initrd->size);
		return -E2BIG;
	}
	dst = guest_memory_ptr(mem, *paddr, initrd->size ? initrd->size : 1);
	if (!dst) {
		boot_errf(err, errlen, "no guest RAM for the initrd");
		return -EFAULT;
	}
	memcpy(dst, initrd->data, initrd->size);
	return 0;
}

static int boot_pvh(const struct guest_memory *mem, const struct elf_image *elf,
		    uint32_t entry, const struct boot_module *initrd, uint64_t rsdp_paddr,
		    struct boot_entry *out, char *err, size_t errlen)
{
	struct pvh_module mod, *modp = NULL;
	struct elf_extent ext;
	int ret;

	ret = elf_load(mem, elf, &ext, err, errlen);
	if (ret)
		return ret;
	if (entry < ext.start || entry >= ext.end) {
		boot_errf(err, errlen, "PVH entry point 0x%x is outside the loaded segments", entry);
		return -ENOEXEC;
	}
	if (initrd) {
		ret = load_initrd(mem, initrd, &ext, &mod.paddr, err, errlen);
		if (ret)
			return ret;
		mod.size = initrd->size;
		modp = &mod;
	}
	ret = pvh_write_start_info(mem, modp, err, errlen);
	if (ret)
		return ret;
	/* start_info.h: rsdp_paddr says where ACPI's RSDP is, so the kernel
	 * need not scan the BIOS area for it. */
	if (rsdp_paddr &&
	    guest_memory_write(mem, LAYOUT_BOOT_INFO + offsetof(struct hvm_start_info, rsdp_paddr),
			       &rsdp_paddr, sizeof(rsdp_paddr))) {
		boot_errf(err, errlen, "no guest RAM for the PVH start info");
		return -EFAULT;
	}
	/* PVH ABI: EBX holds the start info address; nothing else is defined. */
	*out = (struct boot_entry){
		.protocol = BOOT_PROTOCOL_PVH,
		.eip = entry,
		.ebx = (uint32_t)LAYOUT_BOOT_INFO,
	};
	return 0;
}

static int boot_multiboot(const struct guest_memory *mem, const void *image, size_t size,
			  const struct multiboot_header *hdr, const struct boot_module *initrd,
			  struct boot_entry *out, char *err, size_t errlen)
{
	struct multiboot_module mod, *modp = NULL;
	struct elf_extent ext;
	uint32_t entry;
	uint64_t at;
	int ret;

	ret = multiboot_load(mem, image, size, hdr, &entry, &ext, err, errlen);
	if (ret)
		return ret;
	if (initrd) {
		ret = load_initrd(mem, initrd, &ext, &at, err, errlen);
		if (ret)
			return ret;
		/* Below 3 GiB: both ends fit 32 bits. */
		mod = (struct multiboot_module){ (uint32_t)at, (uint32_t)(at + initrd->size) };
		modp = &mod;
	}
	ret = multiboot_write_info(mem, modp, err, errlen);
	if (ret)
		return ret;
	/* Multiboot 0.6.96 §3.2: EAX = bootloader magic, EBX = info. */
	*out = (struct boot_entry){
		.protocol = BOOT_PROTOCOL_MULTIBOOT,
		.eip = entry,
		.eax = MULTIBOOT_BOOTLOADER_MAGIC,
		.ebx = (uint32_t)LAYOUT_BOOT_INFO,
	};
	return 0;
}

/* 1 and *entry when image is a well-formed ELF with a PVH note; 0 when it
 * is not (elf_err keeps why, if it looked like ELF); <0 on a bad note. */
static int detect_pvh(const void *image, size_t size, struct elf_image *elf,
		      uint32_t *entry, char *elf_err, size_t elf_errlen,
		      char *err, size_t errlen)
{
	if (!elf_has_magic(image, size))
		return 0;
	if (elf_parse(elf, image, size, elf_err, elf_errlen))
		return 0;
	return pvh_find_entry(elf, entry, err, errlen);
}

int kernel_load_args(const struct guest_memory *mem, const void *image, size_t size,
		     const struct boot_args *args, struct boot_entry *out,
		     char *err, size_t errlen)
{
	const char *cmdline = args->cmdline ? args->cmdline : "";
	struct multiboot_header hdr;
	struct bzimage_header bz;
	struct elf_image elf;
	char elf_err[256] = "";
	uint32_t entry;
	int ret;

	boot_errf(err, errlen, "unknown error");
	ret = write_cmdline(mem, cmdline, err, errlen);
	if (ret)
		return ret;
	/* The "HdrS" magic is unambiguous: from there on, a bad header is an
	 * error about the bzImage, not a reason to try the other formats. */
	if (bzimage_has_magic(image, size)) {
		ret = bzimage_parse(image, size, &bz, err, errlen);
		if (ret)
			return ret;
		return bzimage_load(mem, image, &bz, cmdline, args->initrd, args->rsdp_paddr,
				    out, err, errlen);
	}
	ret = detect_pvh(image, size, &elf, &entry, elf_err, sizeof(elf_err), err, errlen);
	if (ret < 0)
		return ret;
	if (ret == 1)
		return boot_pvh(mem, &elf, entry, args->initrd, args->rsdp_paddr, out, err, errlen);
	ret = multiboot_find_header(image, size, &hdr, err, errlen);
	if (ret < 0)
		return ret;
	if (ret == 1)
		return boot_multiboot(mem, image, size, &hdr, args->initrd, out, err, errlen);
	/* A broken ELF without a multiboot header: say what is broken. */
	if (elf_err[0])
		boot_errf(err, errlen, "not a loadable kernel: invalid ELF: %s", elf_err);
	else if (bzimage_has_boot_flag(image, size))
		boot_errf(err, errlen, "not a bzImage: no HdrS magic at 0x%x (a boot sector "
			  "without a Linux setup header)", BZIMAGE_MAGIC_OFF);
	else
		boot_errf(err, errlen,
			  "not a loadable kernel: no PVH entry note and no multiboot header");
	return -ENOEXEC;
}

int kernel_load(const struct guest_memory *mem, const void *image, size_t size,
		const char *cmdline, const struct boot_module *initrd,
		struct boot_entry *out, char *err, size_t errlen)
{
	const struct boot_args args = { .cmdline = cmdline, .initrd = initrd };

	return kernel_load_args(mem, image, size, &args, out, err, errlen);
}
