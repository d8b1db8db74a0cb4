/* ELF parsing, note walking and segment loading on crafted images. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/elf.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

#include "image_builder.h"

/* The standard image: a PT_NOTE with two notes, a text segment loaded at
 * 1 MiB from a high virtual address, and a data segment with bss. The file
 * ends with the last data byte, so every truncation cuts something. */
#define NOTE_OFF   0x100
#define TEXT_OFF   0x200
#define TEXT_SIZE  0x100
#define TEXT_PADDR 0x100000
#define DATA_OFF   0x300
#define DATA_SIZE  0x80
#define DATA_MEMSZ 0x1000
#define DATA_PADDR 0x200000
#define STD_SIZE   (DATA_OFF + DATA_SIZE)
#define NSEGS      3

static const uint8_t build_id[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
				      11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };

static void std_segs(struct seg *s, bool is64, size_t notes_size)
{
	uint64_t vbase = is64 ? 0xffffffff81000000ULL : 0xc0100000ULL;

	s[0] = (struct seg){ PT_NOTE, NOTE_OFF, 0, 0, notes_size, notes_size, 4 };
	s[1] = (struct seg){ PT_LOAD, TEXT_OFF, vbase, TEXT_PADDR, TEXT_SIZE, TEXT_SIZE, 0x1000 };
	s[2] = (struct seg){ PT_LOAD, DATA_OFF, vbase + 0x100000, DATA_PADDR,
			     DATA_SIZE, DATA_MEMSZ, 0x1000 };
}

static size_t std_notes(uint8_t *buf)
{
	uint32_t entry = TEXT_PADDR + 0x10;
	size_t n;

	n = put_note(buf + NOTE_OFF, "GNU", NT_GNU_BUILD_ID, build_id, sizeof(build_id));
	n += put_note(buf + NOTE_OFF + n, "Xen", 18, &entry, sizeof(entry));
	return n;
}

/* Builds the standard image with segs (or the standard ones if NULL). */
static size_t std_image_with(uint8_t *buf, bool is64, struct seg *segs)
{
	struct seg s[NSEGS];
	size_t notes;

	memset(buf, 0, IMG_MAX);
	notes = std_notes(buf);
	std_segs(s, is64, notes);
	if (segs) {
		memcpy(segs, s, sizeof(s));
		return 0;
	}
	put_elf(buf, is64, is64 ? EM_X86_64 : EM_386, s[1].vaddr + 0x10, s, NSEGS);
	fill_pattern(buf + TEXT_OFF, TEXT_SIZE, 0x11);
	fill_pattern(buf + DATA_OFF, DATA_SIZE, 0x55);
	return STD_SIZE;
}

static size_t std_image(uint8_t *buf, bool is64)
{
	return std_image_with(buf, is64, NULL);
}

/* Rebuilds the standard image around modified segments. */
static size_t custom_image(uint8_t *buf, bool is64, const struct seg *s, unsigned n)
{
	std_image(buf, is64);
	put_elf(buf, is64, is64 ? EM_X86_64 : EM_386, 0x100010, s, n);
	return STD_SIZE;
}

static void poison(const struct guest_memory *mem)
{
	memset(gptr(mem, TEXT_PADDR, 0x2000), 0xaa, 0x2000);
	memset(gptr(mem, DATA_PADDR, 0x2000), 0xaa, 0x2000);
}

static void check_parse(bool is64)
{
	uint8_t buf[IMG_MAX];
	size_t size = std_image(buf, is64);
	struct elf_image elf;
	struct elf_phdr ph;
	char err[256] = "";

	assert_int_equal(elf_parse(&elf, buf, size, err, sizeof(err)), 0);
	assert_int_equal(elf.is64, is64);
	assert_int_equal(elf.machine, is64 ? EM_X86_64 : EM_386);
	assert_int_equal(elf.phnum, NSEGS);
	assert_int_equal(elf.entry, (is64 ? 0xffffffff81000000ULL : 0xc0100000ULL) + 0x10);
	elf_get_phdr(&elf, 2, &ph);
	assert_int_equal(ph.type, PT_LOAD);
	assert_int_equal(ph.offset, DATA_OFF);
	assert_int_equal(ph.paddr, DATA_PADDR);
	assert_int_equal(ph.vaddr, (is64 ? 0xffffffff81000000ULL : 0xc0100000ULL) + 0x100000);
	assert_int_equal(ph.filesz, DATA_SIZE);
	assert_int_equal(ph.memsz, DATA_MEMSZ);
	assert_int_equal(ph.align, 0x1000);
	assert_int_equal(ph.flags, PF_R | PF_X);
}

static void test_parse_elf64(void **state)
{
	(void)state;
	check_parse(true);
}

static void test_parse_elf32(void **state)
{
	(void)state;
	check_parse(false);
}

static void check_load(bool is64)
{
	uint8_t buf[IMG_MAX];
	size_t size = std_image(buf, is64);
	struct elf_image elf;
	struct elf_extent ext;
	char err[256] = "";

	poison(&mem128);
	assert_int_equal(elf_parse(&elf, buf, size, err, sizeof(err)), 0);
	assert_int_equal(elf_load(&mem128, &elf, &ext, err, sizeof(err)), 0);
	assert_int_equal(ext.start, TEXT_PADDR);
	assert_int_equal(ext.end, DATA_PADDR + DATA_MEMSZ);
	/* Loaded by physical address, bss zeroed, nothing past memsz. */
	assert_true(is_pattern(gptr(&mem128, TEXT_PADDR, TEXT_SIZE), TEXT_SIZE, 0x11));
	assert_true(all_bytes(gptr(&mem128, TEXT_PADDR + TEXT_SIZE, 0x100), 0x100, 0xaa));
	assert_true(is_pattern(gptr(&mem128, DATA_PADDR, DATA_SIZE), DATA_SIZE, 0x55));
	assert_true(all_bytes(gptr(&mem128, DATA_PADDR + DATA_SIZE, DATA_MEMSZ - DATA_SIZE),
			      DATA_MEMSZ - DATA_SIZE, 0));
	assert_true(all_bytes(gptr(&mem128, DATA_PADDR + DATA_MEMSZ, 0x100), 0x100, 0xaa));
}

static void test_load_elf64(void **state)
{
	(void)state;
	check_load(true);
}

static void test_load_elf32(void **state)
{
	char err[256] = "";
	uint8_t buf[IMG_MAX];

	(void)state;
	check_load(false);
	/* The one-call wrapper does the same. */
	poison(&mem128);
	assert_int_equal(elf_load_segments(&mem128, buf, std_image(buf, false), err, sizeof(err)), 0);
	assert_true(is_pattern(gptr(&mem128, TEXT_PADDR, TEXT_SIZE), TEXT_SIZE, 0x11));
}

/* Header corruptions, each applied to a fresh standard image. */
enum mutation {
	M_MAGIC, M_CLASS, M_DATA, M_IDENT_VERSION, M_VERSION, M_MACHINE_ARM, M_TYPE_REL,
	M_PHENTSIZE, M_PHNUM_ZERO, M_PHNUM_XNUM, M_PHOFF_PAST_END, M_PHOFF_HUGE,
	M_PHNUM_PAST_END, M_COUNT
};

static void mutate(uint8_t *buf, size_t size, bool is64, enum mutation m)
{
	size_t phoff = is64 ? offsetof(Elf64_Ehdr, e_phoff) : offsetof(Elf32_Ehdr, e_phoff);
	size_t phnum = is64 ? offsetof(Elf64_Ehdr, e_phnum) : offsetof(Elf32_Ehdr, e_phnum);
	size_t phent = is64 ? offsetof(Elf64_Ehdr, e_phentsize) : offsetof(Elf32_Ehdr, e_phentsize);
	uint16_t v16;
	uint64_t v64;

	switch (m) {
	case M_MAGIC: buf[1] = 'e'; break;
	case M_CLASS: buf[EI_CLASS] = 3; break;
	case M_DATA: buf[EI_DATA] = ELFDATA2MSB; break;
	case M_IDENT_VERSION: buf[EI_VERSION] = 2; break;
	case M_VERSION: put_u32(buf + offsetof(Elf32_Ehdr, e_version), 2); break;
	case M_MACHINE_ARM: v16 = EM_ARM; memcpy(buf + offsetof(Elf32_Ehdr, e_machine), &v16, 2); break;
	case M_TYPE_REL: v16 = ET_REL; memcpy(buf + offsetof(Elf32_Ehdr, e_type), &v16, 2); break;
	case M_PHENTSIZE: v16 = is64 ? 55 : 31; memcpy(buf + phent, &v16, 2); break;
	case M_PHNUM_ZERO: v16 = 0; memcpy(buf + phnum, &v16, 2); break;
	case M_PHNUM_XNUM: v16 = PN_XNUM; memcpy(buf + phnum, &v16, 2); break;
	case M_PHOFF_PAST_END:
		if (is64) {
			v64 = size - 8;
			memcpy(buf + phoff, &v64, 8);
		} else {
			put_u32(buf + phoff, (uint32_t)size - 8);
		}
		break;
	case M_PHOFF_HUGE:
		/* phoff + table size wraps around. */
		if (is64) {
			v64 = UINT64_MAX - 16;
			memcpy(buf + phoff, &v64, 8);
		} else {
			put_u32(buf + phoff, UINT32_MAX - 16);
		}
		break;
	case M_PHNUM_PAST_END: v16 = 1000; memcpy(buf + phnum, &v16, 2); break;
	case M_COUNT: break;
	}
}

static void test_bad_headers(void **state)
{
	uint8_t buf[IMG_MAX];
	struct elf_image elf;
	char err[256];
	int m, c;

	(void)state;
	for (c = 0; c < 2; c++) {
		for (m = 0; m < M_COUNT; m++) {
			size_t size = std_image(buf, c);

			mutate(buf, size, c, m);
			err[0] = 0;
			assert_int_equal(elf_parse(&elf, buf, size, err, sizeof(err)), -ENOEXEC);
			assert_true(strlen(err) > 0);
			assert_int_not_equal(elf_load_segments(&mem128, buf, size, err, sizeof(err)), 0);
		}
	}
}

static void test_header_messages(void **state)
{
	uint8_t buf[IMG_MAX];
	struct elf_image elf;
	char err[256];
	size_t size;

	(void)state;
	size = std_image(buf, true);
	mutate(buf, size, true, M_MACHINE_ARM);
	elf_parse(&elf, buf, size, err, sizeof(err));
	assert_non_null(strstr(err, "machine 40"));
	size = std_image(buf, true);
	mutate(buf, size, true, M_PHOFF_HUGE);
	elf_parse(&elf, buf, size, err, sizeof(err));
	assert_non_null(strstr(err, "past the end of the file"));
	/* NULL error buffers are allowed. */
	assert_int_equal(elf_parse(&elf, buf, size, NULL, 0), -ENOEXEC);
	/* ET_DYN (a relocatable kernel) is fine. */
	size = std_image(buf, true);
	buf[offsetof(Elf64_Ehdr, e_type)] = ET_DYN;
	assert_int_equal(elf_parse(&elf, buf, size, err, sizeof(err)), 0);
}

static int count_note(const struct elf_note *note, void *opaque)
{
	(void)note;
	(*(unsigned *)opaque)++;
	return 0;
}

/* elf_load_segments(), then the note walk, whose result is not checked:
 * it only has to stay inside the image. */
static int load_and_walk(const void *image, size_t size, char *err, size_t errlen)
{
	int ret = elf_load_segments(&mem128, image, size, err, errlen);
	struct elf_image elf;
	char walk_err[256];
	unsigned count = 0;

	if (elf_parse(&elf, image, size, walk_err, sizeof(walk_err)) == 0)
		elf_for_each_note(&elf, count_note, &count, walk_err, sizeof(walk_err));
	return ret;
}

static void test_truncated(void **state)
{
	uint8_t buf[IMG_MAX];
	char err[256];
	size_t size;
	int c;

	(void)state;
	for (c = 0; c < 2; c++) {
		size = std_image(buf, c);
		check_truncations(buf, size, load_and_walk);
		assert_int_equal(elf_load_segments(&mem128, buf, size, err, sizeof(err)), 0);
	}
}

struct seg_case {
	const char *what;
	int seg;                  /* index into the standard segments */
	uint64_t offset, paddr, filesz, memsz;
	int ret;
	const char *msg;
};

#define KEEP UINT64_C(0x5a5a5a5a5a5a5a5a)

static void run_seg_case(const struct guest_memory *mem, bool is64, const struct seg_case *c)
{
	uint8_t buf[IMG_MAX];
	struct seg s[NSEGS];
	char err[256] = "";
	size_t size;

	std_image_with(buf, is64, s);
	if (c->offset != KEEP)
		s[c->seg].offset = c->offset;
	if (c->paddr != KEEP)
		s[c->seg].paddr = c->paddr;
	if (c->filesz != KEEP)
		s[c->seg].filesz = c->filesz;
	if (c->memsz != KEEP)
		s[c->seg].memsz = c->memsz;
	size = custom_image(buf, is64, s, NSEGS);
	assert_int_equal(elf_load_segments(mem, buf, size, err, sizeof(err)), c->ret);
	if (!strstr(err, c->msg))
		fail_msg("%s: message \"%s\" lacks \"%s\"", c->what, err, c->msg);
}

static void test_bad_segments(void **state)
{
	static const struct seg_case cases[] = {
		{ "past RAM", 2, KEEP, MiB(256), KEEP, KEEP, -EFAULT, "segment 2 at 0x10000000 (size 0x1000) is outside guest RAM" },
		{ "straddles RAM end", 2, KEEP, MiB(128) - 0x800, KEEP, KEEP, -EFAULT, "outside guest RAM" },
		{ "below 1 MiB", 1, KEEP, 0x9000, KEEP, KEEP, -ENOEXEC, "below 1 MiB" },
		{ "at 0", 1, KEEP, 0, KEEP, KEEP, -ENOEXEC, "below 1 MiB" },
		{ "in the BIOS area", 1, KEEP, 0xf0000, KEEP, KEEP, -ENOEXEC, "below 1 MiB" },
		{ "filesz > memsz", 2, KEEP, KEEP, DATA_SIZE, DATA_SIZE - 1, -ENOEXEC, "larger than memory size" },
		{ "offset past file", 1, STD_SIZE, KEEP, KEEP, KEEP, -ENOEXEC, "past the end of the file" },
		{ "filesz past file", 2, KEEP, KEEP, DATA_SIZE + 1, KEEP, -ENOEXEC, "past the end of the file" },
		{ "offset + filesz wraps", 2, 0xfffffff0, KEEP, 0x20, 0x1000, -ENOEXEC, "past the end of the file" },
		{ "paddr + memsz wraps", 2, KEEP, 0xffffff00, KEEP, 0x1000, -EFAULT, "outside guest RAM" },
	};
	size_t i;
	int c;

	(void)state;
	for (c = 0; c < 2; c++)
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			run_seg_case(&mem128, c, &cases[i]);
}

static void test_bad_segments_64bit_values(void **state)
{
	static const struct seg_case cases[] = {
		{ "offset near 2^64", 2, UINT64_MAX - 8, KEEP, KEEP, KEEP, -ENOEXEC, "past the end of the file" },
		{ "paddr near 2^64", 2, KEEP, UINT64_MAX - 0x10, KEEP, KEEP, -EFAULT, "outside guest RAM" },
		{ "huge memsz", 2, KEEP, KEEP, KEEP, UINT64_MAX, -EFAULT, "outside guest RAM" },
		{ "huge filesz", 2, KEEP, KEEP, UINT64_MAX, UINT64_MAX, -ENOEXEC, "past the end of the file" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_seg_case(&mem128, true, &cases[i]);
}

static void test_mmio_hole(void **state)
{
	static const struct seg_case cases[] = {
		{ "in the hole", 2, KEEP, GiB(3), KEEP, KEEP, -EFAULT, "outside guest RAM" },
		{ "straddles into the hole", 2, KEEP, GiB(3) - 0x800, KEEP, KEEP, -EFAULT, "outside guest RAM" },
		{ "on the IOAPIC", 2, KEEP, LAYOUT_IOAPIC_BASE, KEEP, KEEP, -EFAULT, "outside guest RAM" },
		{ "straddles out of the hole", 2, KEEP, GiB(4) - 0x800, KEEP, KEEP, -EFAULT, "outside guest RAM" },
		{ "just below the hole", 2, KEEP, GiB(3) - DATA_MEMSZ, KEEP, KEEP, 0, "" },
		{ "above 4 GiB", 2, KEEP, GiB(4), KEEP, KEEP, 0, "" },
		{ "past high RAM", 2, KEEP, GiB(5), KEEP, KEEP, -EFAULT, "outside guest RAM" },
	};
	struct guest_memory mem;
	size_t i;

	(void)state;
	assert_int_equal(guest_memory_init(&mem, GiB(4)), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_seg_case(&mem, true, &cases[i]);
	assert_true(is_pattern(gptr(&mem, GiB(4), DATA_SIZE), DATA_SIZE, 0x55));
	guest_memory_destroy(&mem);
}

static void test_nothing_written_on_error(void **state)
{
	uint8_t buf[IMG_MAX];
	struct seg s[NSEGS];
	char err[256];

	(void)state;
	poison(&mem128);
	std_image_with(buf, true, s);
	s[2].paddr = MiB(512);
	assert_int_equal(elf_load_segments(&mem128, buf, custom_image(buf, true, s, NSEGS),
					   err, sizeof(err)), -EFAULT);
	/* Segment 1 was fine but must not have been copied. */
	assert_true(all_bytes(gptr(&mem128, TEXT_PADDR, TEXT_SIZE), TEXT_SIZE, 0xaa));
}

static void test_no_loadable_segments(void **state)
{
	uint8_t buf[IMG_MAX];
	struct seg s[NSEGS];
	char err[256];

	(void)state;
	std_image_with(buf, true, s);
	s[1].type = PT_NULL;
	s[2].memsz = 0;
	s[2].filesz = 0;
	assert_int_equal(elf_load_segments(&mem128, buf, custom_image(buf, true, s, NSEGS),
					   err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "no loadable segments"));
}

struct collected {
	unsigned n;
	uint32_t types[4];
	char names[4][8];
	uint32_t descsz[4];
	const uint8_t *desc[4];
	unsigned stop_at;
};

static int collect(const struct elf_note *note, void *opaque)
{
	struct collected *c = opaque;

	assert_true(c->n < 4);
	c->types[c->n] = note->type;
	assert_true(note->namesz < 8);
	memcpy(c->names[c->n], note->name, note->namesz);
	c->descsz[c->n] = note->descsz;
	c->desc[c->n] = note->desc;
	c->n++;
	return c->n == c->stop_at ? 42 : 0;
}

static void test_notes(void **state)
{
	uint8_t buf[IMG_MAX];
	struct collected c = { 0 };
	struct elf_image elf;
	char err[256];
	int cls;

	(void)state;
	for (cls = 0; cls < 2; cls++) {
		size_t size = std_image(buf, cls);

		memset(&c, 0, sizeof(c));
		assert_int_equal(elf_parse(&elf, buf, size, err, sizeof(err)), 0);
		assert_int_equal(elf_for_each_note(&elf, collect, &c, err, sizeof(err)), 0);
		assert_int_equal(c.n, 2);
		assert_string_equal(c.names[0], "GNU");
		assert_int_equal(c.types[0], NT_GNU_BUILD_ID);
		assert_int_equal(c.descsz[0], sizeof(build_id));
		assert_memory_equal(c.desc[0], build_id, sizeof(build_id));
		assert_string_equal(c.names[1], "Xen");
		assert_int_equal(c.types[1], 18);
		assert_int_equal(c.descsz[1], 4);
		assert_int_equal(get_u32(c.desc[1]), TEXT_PADDR + 0x10);
		/* A non-zero return stops the walk and is passed back. */
		memset(&c, 0, sizeof(c));
		c.stop_at = 1;
		assert_int_equal(elf_for_each_note(&elf, collect, &c, err, sizeof(err)), 42);
		assert_int_equal(c.n, 1);
	}
}

static void test_notes_8_aligned(void **state)
{
	uint8_t buf[IMG_MAX];
	struct collected c = { 0 };
	struct elf_image elf;
	struct seg s[NSEGS];
	uint32_t v = 0x1234;
	char err[256];
	size_t n;

	(void)state;
	std_image_with(buf, true, s);
	/* .note.gnu.property style: name and desc padded to 8. */
	n = put_note_aligned(buf + NOTE_OFF, "GNU", 5, &v, 4, 8);
	n += put_note_aligned(buf + NOTE_OFF + n, "Xen", 18, &v, 4, 8);
	s[0].filesz = s[0].memsz = n;
	s[0].align = 8;
	custom_image(buf, true, s, NSEGS);
	n = put_note_aligned(buf + NOTE_OFF, "GNU", 5, &v, 4, 8);
	put_note_aligned(buf + NOTE_OFF + n, "Xen", 18, &v, 4, 8);
	assert_int_equal(elf_parse(&elf, buf, STD_SIZE, err, sizeof(err)), 0);
	assert_int_equal(elf_for_each_note(&elf, collect, &c, err, sizeof(err)), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.names[1], "Xen");
	assert_int_equal(get_u32(c.desc[1]), 0x1234);
}

/* Walks the notes of buf with note 0's header fields replaced. */
static int walk_with(uint8_t *buf, bool is64, uint32_t namesz, uint32_t descsz,
		     uint64_t seg_filesz, char *err, size_t errlen)
{
	struct elf_image elf;
	struct seg s[NSEGS];
	unsigned count = 0;

	std_image_with(buf, is64, s);
	if (seg_filesz)
		s[0].filesz = seg_filesz;
	custom_image(buf, is64, s, NSEGS);
	put_u32(buf + NOTE_OFF, namesz);
	put_u32(buf + NOTE_OFF + 4, descsz);
	assert_int_equal(elf_parse(&elf, buf, STD_SIZE, err, errlen), 0);
	return elf_for_each_note(&elf, count_note, &count, err, errlen);
}

static void test_bad_notes(void **state)
{
	uint8_t buf[IMG_MAX];
	char err[256];
	int c;

	(void)state;
	for (c = 0; c < 2; c++) {
		assert_int_equal(walk_with(buf, c, 0xffffffff, 20, 0, err, sizeof(err)), -ENOEXEC);
		assert_non_null(strstr(err, "overruns its segment"));
		assert_int_equal(walk_with(buf, c, 0xfffffffd, 20, 0, err, sizeof(err)), -ENOEXEC);
		assert_int_equal(walk_with(buf, c, 4, 0xffffffff, 0, err, sizeof(err)), -ENOEXEC);
		assert_int_equal(walk_with(buf, c, 4, 0xfffffff0, 0, err, sizeof(err)), -ENOEXEC);
		/* desc one byte longer than what is left of the segment */
		assert_int_equal(walk_with(buf, c, 4, 20 + 20 + 1, 0, err, sizeof(err)), -ENOEXEC);
		/* segment too short for a note header */
		assert_int_equal(walk_with(buf, c, 4, 20, 8, err, sizeof(err)), -ENOEXEC);
		assert_non_null(strstr(err, "truncated"));
		/* segment runs past the end of the file */
		assert_int_equal(walk_with(buf, c, 4, 20, STD_SIZE, err, sizeof(err)), -ENOEXEC);
		assert_non_null(strstr(err, "past the end of the file"));
		assert_int_equal(walk_with(buf, c, 4, 20, c ? UINT64_MAX : UINT32_MAX,
					   err, sizeof(err)), -ENOEXEC);
	}
}

static void test_vaddr_to_paddr(void **state)
{
	uint8_t buf[IMG_MAX];
	struct elf_image elf;
	uint64_t pa = 0;
	char err[256];

	(void)state;
	assert_int_equal(elf_parse(&elf, buf, std_image(buf, true), err, sizeof(err)), 0);
	assert_true(elf_vaddr_to_paddr(&elf, elf.entry, &pa));
	assert_int_equal(pa, TEXT_PADDR + 0x10);
	/* bss is part of the segment */
	assert_true(elf_vaddr_to_paddr(&elf, 0xffffffff81100000ULL + DATA_MEMSZ - 1, &pa));
	assert_int_equal(pa, DATA_PADDR + DATA_MEMSZ - 1);
	assert_false(elf_vaddr_to_paddr(&elf, 0xffffffff81100000ULL + DATA_MEMSZ, &pa));
	assert_false(elf_vaddr_to_paddr(&elf, 0x1000, &pa));
}

/* Random corruption of the headers never crashes and never writes outside
 * what guest_memory_ptr allowed (ASan watches). */
static void test_random_corruption(void **state)
{
	uint32_t rng = 12345;
	uint8_t buf[IMG_MAX];
	char err[256];
	int i, j;

	(void)state;
	for (i = 0; i < 20000; i++) {
		bool is64 = i & 1;
		size_t size = std_image(buf, is64);
		uint8_t *copy;

		for (j = 0; j < 1 + (i % 4); j++) {
			rng = rng * 1103515245 + 12345;
			buf[(rng >> 8) % (NOTE_OFF + 64)] = (uint8_t)(rng >> 24);
		}
		copy = test_malloc(size);
		memcpy(copy, buf, size);
		elf_load_segments(&mem128, copy, size, err, sizeof(err));
		test_free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_elf64),
		cmocka_unit_test(test_parse_elf32),
		cmocka_unit_test(test_load_elf64),
		cmocka_unit_test(test_load_elf32),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_header_messages),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_segments),
		cmocka_unit_test(test_bad_segments_64bit_values),
		cmocka_unit_test(test_mmio_hole),
		cmocka_unit_test(test_nothing_written_on_error),
		cmocka_unit_test(test_no_loadable_segments),
		cmocka_unit_test(test_notes),
		cmocka_unit_test(test_notes_8_aligned),
		cmocka_unit_test(test_bad_notes),
		cmocka_unit_test(test_vaddr_to_paddr),
		cmocka_unit_test(test_random_corruption),
	};

	return cmocka_run_group_tests(tests, mem128_setup, mem128_teardown);
}
