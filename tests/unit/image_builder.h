/* Kernel image builder for the loader tests (test_elf, test_pvh,
 * test_multiboot): ELF32/ELF64 headers and program headers, ELF notes and
 * byte patterns in a buffer, and a 128 MiB guest memory fixture. */
#ifndef POPEK_TESTS_UNIT_IMAGE_BUILDER_H
#define POPEK_TESTS_UNIT_IMAGE_BUILDER_H

#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "vmm/memory.h"

/* Crafted images: an ELF header and program header table at the start of
 * a buffer; the test puts segment contents and notes at their offsets. */
#define IMG_MAX 0x4000

struct seg {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

static inline void put_elf64(uint8_t *buf, uint16_t machine, uint64_t entry,
			     const struct seg *segs, unsigned n)
{
	Elf64_Ehdr eh = {
		.e_type = ET_EXEC,
		.e_machine = machine,
		.e_version = EV_CURRENT,
		.e_entry = entry,
		.e_phoff = sizeof(Elf64_Ehdr),
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = (uint16_t)n,
	};
	unsigned i;

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, sizeof(eh));
	for (i = 0; i < n; i++) {
		Elf64_Phdr ph = {
			.p_type = segs[i].type,
			.p_flags = PF_R | PF_X,
			.p_offset = segs[i].offset,
			.p_vaddr = segs[i].vaddr,
			.p_paddr = segs[i].paddr,
			.p_filesz = segs[i].filesz,
			.p_memsz = segs[i].memsz,
			.p_align = segs[i].align,
		};

		memcpy(buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
	}
}

static inline void put_elf32(uint8_t *buf, uint16_t machine, uint64_t entry,
			     const struct seg *segs, unsigned n)
{
	Elf32_Ehdr eh = {
		.e_type = ET_EXEC,
		.e_machine = machine,
		.e_version = EV_CURRENT,
		.e_entry = (uint32_t)entry,
		.e_phoff = sizeof(Elf32_Ehdr),
		.e_ehsize = sizeof(Elf32_Ehdr),
		.e_phentsize = sizeof(Elf32_Phdr),
		.e_phnum = (uint16_t)n,
	};
	unsigned i;

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, sizeof(eh));
	for (i = 0; i < n; i++) {
		Elf32_Phdr ph = {
			.p_type = segs[i].type,
			.p_flags = PF_R | PF_X,
			.p_offset = (uint32_t)segs[i].offset,
			.p_vaddr = (uint32_t)segs[i].vaddr,
			.p_paddr = (uint32_t)segs[i].paddr,
			.p_filesz = (uint32_t)segs[i].filesz,
			.p_memsz = (uint32_t)segs[i].memsz,
			.p_align = (uint32_t)segs[i].align,
		};

		memcpy(buf + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
	}
}

static inline void put_elf(uint8_t *buf, bool is64, uint16_t machine, uint64_t entry,
			   const struct seg *segs, unsigned n)
{
	if (is64)
		put_elf64(buf, machine, entry, segs, n);
	else
		put_elf32(buf, machine, entry, segs, n);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* One note (gABI "Note Section") with name and desc padded to align;
 * returns its size. */
static inline size_t put_note_aligned(uint8_t *p, const char *name, uint32_t type,
				      const void *desc, uint32_t descsz, size_t align)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	size_t off = 12;

	put_u32(p, namesz);
	put_u32(p + 4, descsz);
	put_u32(p + 8, type);
	memcpy(p + off, name, namesz);
	off += (namesz + align - 1) & ~(align - 1);
	memcpy(p + off, desc, descsz);
	off += (descsz + align - 1) & ~(align - 1);
	return off;
}

static inline size_t put_note(uint8_t *p, const char *name, uint32_t type,
			      const void *desc, uint32_t descsz)
{
	return put_note_aligned(p, name, type, desc, descsz, 4);
}

static inline void fill_pattern(uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static inline bool is_pattern(const uint8_t *p, size_t len, uint8_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed + i * 7))
			return false;
	return true;
}

static inline bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Group fixture: 128 MiB of guest RAM, shared by the tests of a file. */
static struct guest_memory mem128;

static inline int mem128_setup(void **state)
{
	(void)state;
	return guest_memory_init(&mem128, MiB(128));
}

static inline int mem128_teardown(void **state)
{
	(void)state;
	guest_memory_destroy(&mem128);
	return 0;
}

/* Host pointer to [gpa, gpa + len) of guest RAM; fails the test if the
 * range is not all RAM. */
static inline uint8_t *gptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_memory_ptr(mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* A loader under test: 0, or a negative errno with a message in err. */
typedef int (*load_fn)(const void *image, size_t size, char *err, size_t errlen);

/* Every cut of buf[0, size) short of size bytes fails to load, saying why.
 * Each cut is a heap copy of exactly its length: ASan sees any overread. */
static inline void check_truncations(const uint8_t *buf, size_t size, load_fn load)
{
	char err[256];
	size_t len;

	for (len = 0; len < size; len++) {
		uint8_t *copy = test_malloc(len ? len : 1);

		memcpy(copy, buf, len);
		err[0] = 0;
		assert_true(load(copy, len, err, sizeof(err)) < 0);
		assert_true(strlen(err) > 0);
		test_free(copy);
	}
}

#endif
