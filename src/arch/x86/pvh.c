#include "arch/x86/pvh.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"

_Static_assert(sizeof(struct hvm_start_info) == 56, "start_info.h layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "start_info.h layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "start_info.h layout");

/* Offsets inside the boot info page: the memory map follows the start
 * info, the module list follows the memory map; all 8-byte aligned. */
#define PVH_MEMMAP_OFF sizeof(struct hvm_start_info)
#define PVH_MODLIST_OFF \
	(PVH_MEMMAP_OFF + E820_MAX_ENTRIES * sizeof(struct hvm_memmap_table_entry))
_Static_assert(PVH_MODLIST_OFF + sizeof(struct hvm_modlist_entry) <= LAYOUT_BOOT_INFO_SIZE,
	       "PVH boot info must fit its page");

struct pvh_search {
	uint32_t entry;
	char *err;
	size_t errlen;
};

static int pvh_note(const struct elf_note *note, void *opaque)
{
	struct pvh_search *s = opaque;

	/* elfnote.h: Xen notes are named "Xen" (namesz 4, with the NUL). */
	if (note->type != XEN_ELFNOTE_PHYS32_ENTRY || note->namesz != 4 ||
	    memcmp(note->name, "Xen", 4) != 0)
		return 0;
	/* The entry is a 32-bit physical address; Linux emits it as a
	 * pointer-sized value, so an 8-byte desc carries it in its low half. */
	if (note->descsz != 4 && note->descsz != 8) {
		boot_errf(s->err, s->errlen,
			  "PVH entry note has a %u-byte descriptor, expected 4 or 8",
			  note->descsz);
		return -ENOEXEC;
	}
	s->entry = le32_at(note->desc);
	return 1;
}

int pvh_find_entry(const struct elf_image *elf, uint32_t *entry, char *err, size_t errlen)
{
	struct pvh_search s = { .entry = 0, .err = err, .errlen = errlen };
	int ret;

	ret = elf_for_each_note(elf, pvh_note, &s, err, errlen);
	if (ret == 1)
		*entry = s.entry;
	return ret;
}

static void pvh_put_memmap_entry(uint8_t *dst, const struct e820_entry *e)
{
	struct hvm_memmap_table_entry m = { .addr = e->addr, .size = e->size, .type = e->type };

	memcpy(dst, &m, sizeof(m));
}

static int pvh_write_memmap(const struct guest_memory *mem, uint8_t *page,
			    struct hvm_start_info *si, char *err, size_t errlen)
{
	int n = e820_write(mem, page + PVH_MEMMAP_OFF, sizeof(struct hvm_memmap_table_entry),
			   pvh_put_memmap_entry);

	if (n < 0) {
		boot_errf(err, errlen, "cannot build the memory map");
		return n;
	}
	si->memmap_paddr = LAYOUT_BOOT_INFO + PVH_MEMMAP_OFF;
	si->memmap_entries = (uint32_t)n;
	return 0;
}

int pvh_write_start_info(const struct guest_memory *mem, const struct pvh_module *mod,
			 char *err, size_t errlen)
{
	struct hvm_start_info si = {
		.magic = XEN_HVM_START_MAGIC_VALUE,
		.version = PVH_START_INFO_VERSION,
		.cmdline_paddr = LAYOUT_CMDLINE,
	};
	uint8_t *page = guest_memory_ptr(mem, LAYOUT_BOOT_INFO, LAYOUT_BOOT_INFO_SIZE);
	int ret;

	if (!page) {
		boot_errf(err, errlen, "no guest RAM for the PVH start info");
		return -EFAULT;
	}
	memset(page, 0, LAYOUT_BOOT_INFO_SIZE);
	ret = pvh_write_memmap(mem, page, &si, err, errlen);
	if (ret)
		return ret;
	if (mod) {
		struct hvm_modlist_entry m = { .paddr = mod->paddr, .size = mod->size };

		memcpy(page + PVH_MODLIST_OFF, &m, sizeof(m));
		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_BOOT_INFO + PVH_MODLIST_OFF;
	}
	memcpy(page, &si, sizeof(si));
	return 0;
}
