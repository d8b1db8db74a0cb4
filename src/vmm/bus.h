/* Address buses: port I/O and MMIO exits are dispatched to the device that
 * registered the range containing the address. Registration happens while
 * the VM is built; dispatch after that is lock-free (the table is frozen). */
#ifndef POPEK_VMM_BUS_H
#define POPEK_VMM_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus_ops {
	/* offset is relative to the registered base; len is 1, 2, 4 or 8.
	 * read must fill all len bytes of data. */
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name;           /* "pio" or "mmio", for messages */
	struct bus_range *ranges;   /* sorted by base, never overlapping */
	size_t count, capacity;
	atomic_uint_fast64_t unclaimed_reads;
	atomic_uint_fast64_t unclaimed_writes;
};

void bus_init(struct bus *bus, const char *name);
void bus_destroy(struct bus *bus);

/* Returns 0, -EINVAL (empty or wrapping range, no ops), -EEXIST (overlaps
 * a registered range) or -ENOMEM. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name);

/* Looks up the range holding [addr, addr + len); NULL if none holds all of it. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len);

/* Dispatch. An access nobody claims reads all-ones and drops writes, as on
 * a PC, and is counted. Return whether a device claimed it. */
bool bus_read(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len);
bool bus_write(struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len);

#endif
