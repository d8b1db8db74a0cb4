/* Bounds-checked reading of little-endian x86 ELF32/ELF64 executables held
 * in host memory (System V gABI, "Object Files" chapter), and loading of
 * their PT_LOAD segments into guest RAM by physical address.
 *
 * The image is untrusted input: every offset, size and sum taken from it is
 * checked against the file and for overflow before use. */
#ifndef POPEK_ARCH_X86_ELF_H
#define POPEK_ARCH_X86_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"

/* A validated ELF header: the program header table lies inside the file. */
struct elf_image {
	const uint8_t *data;
	size_t size;
	bool is64;
	uint16_t type;            /* e_type */
	uint16_t machine;         /* EM_386 or EM_X86_64 */
	uint64_t entry;           /* e_entry, as written (usually virtual) */
	uint64_t phoff;
	uint16_t phentsize;
	uint16_t phnum;
};

/* One program header, widened to 64 bits whatever the class. */
struct elf_phdr {
	uint32_t type;
	uint32_t flags;
	uint64_t offset;
	uint64_t vaddr;
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
	uint64_t align;
};

/* One note; name and desc point into the image and are namesz/descsz
 * bytes long (name is not guaranteed to be NUL-terminated). */
struct elf_note {
	uint32_t type;
	uint32_t namesz;
	uint32_t descsz;
	const char *name;
	const uint8_t *desc;
};

/* Guest-physical span [start, end) covered by what a loader wrote. */
struct elf_extent {
	uint64_t start;
	uint64_t end;
};

/* True when data starts with the ELF magic (the file claims to be ELF). */
bool elf_has_magic(const void *data, size_t size);

/* Validates the ELF header. 0, or -ENOEXEC with a message in err. */
int elf_parse(struct elf_image *elf, const void *data, size_t size,
	      char *err, size_t errlen);

/* Reads program header idx (< elf->phnum) of a parsed image. */
void elf_get_phdr(const struct elf_image *elf, unsigned idx, struct elf_phdr *ph);

/* Calls fn for each note of each PT_NOTE segment, in file order. fn
 * returns 0 to continue; anything else stops the walk and is returned.
 * A malformed note gives -ENOEXEC and a message in err. Returns 0 when
 * every note was visited. */
typedef int (*elf_note_fn)(const struct elf_note *note, void *opaque);
int elf_for_each_note(const struct elf_image *elf, elf_note_fn fn, void *opaque,
		      char *err, size_t errlen);

/* Copies every PT_LOAD segment to its p_paddr and zeroes its bss. Each
 * segment must lie in the file, have filesz <= memsz, and fit in guest RAM
 * at or above LAYOUT_HIGH_RAM_START, so a kernel cannot land on the boot
 * tables below 1 MiB or in the MMIO hole. Everything is checked before
 * anything is written. On success *ext (if not NULL) spans the loaded
 * bytes. 0, or -ENOEXEC / -EFAULT with a message in err. */
int elf_load(const struct guest_memory *mem, const struct elf_image *elf,
	     struct elf_extent *ext, char *err, size_t errlen);

/* elf_parse() then elf_load(). */
int elf_load_segments(const struct guest_memory *mem, const void *image, size_t size,
		      char *err, size_t errlen);

/* Translates a virtual address (such as e_entry) to a physical one through
 * the PT_LOAD segment containing it. Returns false if none does. */
bool elf_vaddr_to_paddr(const struct elf_image *elf, uint64_t vaddr, uint64_t *paddr);

/* snprintf() into a caller's error buffer, which may be NULL; shared by the
 * kernel loaders (elf, pvh, multiboot, loader). */
void boot_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Little-endian field readers; the caller has checked the bounds. */
static inline uint16_t le16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
	       ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t le64_at(const uint8_t *p)
{
	return (uint64_t)le32_at(p) | ((uint64_t)le32_at(p + 4) << 32);
}

#endif
