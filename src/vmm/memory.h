/* Guest RAM: one anonymous host mapping, split into KVM memory slots
 * around the 32-bit MMIO hole (see arch/x86/layout.h). */
#ifndef POPEK_VMM_MEMORY_H
#define POPEK_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEMORY_MAX_REGIONS 2

struct guest_region {
	uint64_t gpa;     /* guest-physical start */
	uint64_t size;    /* bytes */
	uint8_t *host;    /* host address of gpa; NULL until mapped */
};

struct guest_memory {
	uint64_t ram_size;            /* what the user asked for */
	int nregions;
	struct guest_region regions[GUEST_MEMORY_MAX_REGIONS];
	void *mapping;                /* the one host mapping backing all regions */
	size_t mapping_size;
};

/* Computes the regions for ram_size bytes (no allocation): [0, min(ram, 3G))
 * and, when ram exceeds 3 GiB, [4G, 4G + ram - 3G). Fails with -EINVAL when
 * ram_size is below LAYOUT_MIN_RAM, not page-aligned, or overflows. */
int guest_memory_layout(struct guest_memory *mem, uint64_t ram_size);

/* Layout plus one anonymous MAP_NORESERVE mapping: costs only what the
 * guest touches. Returns 0 or -errno. */
int guest_memory_init(struct guest_memory *mem, uint64_t ram_size);
void guest_memory_destroy(struct guest_memory *mem);

/* Host pointer to [gpa, gpa + len) when the whole range lies inside one
 * region, NULL otherwise (also on overflow). Use for every guest address. */
void *guest_memory_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);

/* Copies in or out of guest RAM; -EFAULT when the range is not all RAM. */
int guest_memory_write(const struct guest_memory *mem, uint64_t gpa, const void *src, uint64_t len);
int guest_memory_read(const struct guest_memory *mem, uint64_t gpa, void *dst, uint64_t len);

/* Bytes of guest RAM resident in host memory, i.e. what guest RAM adds to
 * the process's RSS: the Rss of the mapping in /proc/self/smaps, or, when
 * that is unreadable, mincore() over the mapping (which also counts
 * zero-page mappings of pages only read). 0 when unmapped. */
uint64_t guest_memory_resident(const struct guest_memory *mem);

/* Highest guest-physical address of RAM plus one. */
uint64_t guest_memory_end(const struct guest_memory *mem);

#endif
