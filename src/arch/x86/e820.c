#include "arch/x86/e820.h"

#include <errno.h>

#include "arch/x86/layout.h"

struct e820_map {
	struct e820_entry *e;
	int n;
	int max;
};

static int e820_add(struct e820_map *map, uint64_t addr, uint64_t end, uint32_t type)
{
	if (end <= addr)
		return 0;
	if (map->n >= map->max)
		return -ENOSPC;
	map->e[map->n++] = (struct e820_entry){ .addr = addr, .size = end - addr, .type = type };
	return 0;
}

int e820_build(const struct guest_memory *mem, struct e820_entry *out, int max)
{
	struct e820_map map = { .e = out, .n = 0, .max = max };
	uint64_t low_end;
	int ret, i;

	if (mem->nregions < 1 || mem->regions[0].gpa != 0 ||
	    mem->regions[0].size < LAYOUT_MIN_RAM)
		return -EINVAL;
	low_end = mem->regions[0].size;

	/* Conventional memory stops at the EBDA, which holds the MP floating
	 * pointer (MP spec 1.4 §4) and so must not be handed out as RAM. The
	 * VGA window and option ROM space [0xa0000, 0xf0000) are not
	 * reported at all, as on a PC; the BIOS area is reserved because the
	 * MP configuration table (and later ACPI) lives there. */
	ret = e820_add(&map, 0, LAYOUT_EBDA_START, E820_RAM);
	if (!ret)
		ret = e820_add(&map, LAYOUT_EBDA_START,
			       LAYOUT_EBDA_START + LAYOUT_EBDA_SIZE, E820_RESERVED);
	if (!ret)
		ret = e820_add(&map, LAYOUT_BIOS_START, LAYOUT_HIGH_RAM_START, E820_RESERVED);
	if (!ret)
		ret = e820_add(&map, LAYOUT_HIGH_RAM_START, low_end, E820_RAM);
	/* RAM displaced by the MMIO hole, above 4 GiB. */
	for (i = 1; !ret && i < mem->nregions; i++)
		ret = e820_add(&map, mem->regions[i].gpa,
			       mem->regions[i].gpa + mem->regions[i].size, E820_RAM);
	return ret ? ret : map.n;
}

int e820_write(const struct guest_memory *mem, uint8_t *dst, size_t stride,
	       void (*put)(uint8_t *dst, const struct e820_entry *e))
{
	struct e820_entry e820[E820_MAX_ENTRIES];
	int n, i;

	n = e820_build(mem, e820, E820_MAX_ENTRIES);
	for (i = 0; i < n; i++)
		put(dst + i * stride, &e820[i]);
	return n;
}
