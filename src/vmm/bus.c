#include "vmm/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	atomic_init(&bus->unclaimed_reads, 0);
	atomic_init(&bus->unclaimed_writes, 0);
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->count = bus->capacity = 0;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 const struct bus_ops *ops, void *opaque, const char *name)
{
	size_t pos;

	if (!ops || len == 0 || base + len - 1 < base)
		return -EINVAL;
	/* Keep the table sorted; the new range must end before the next one
	 * starts and start after the previous one ends. */
	for (pos = 0; pos < bus->count && bus->ranges[pos].base < base; pos++)
		;
	if (pos > 0) {
		const struct bus_range *prev = &bus->ranges[pos - 1];

		if (prev->base + prev->len - 1 >= base)
			return -EEXIST;
	}
	if (pos < bus->count && base + len - 1 >= bus->ranges[pos].base)
		return -EEXIST;
	if (bus->count == bus->capacity) {
		size_t cap = bus->capacity ? bus->capacity * 2 : 8;
		struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		bus->ranges = r;
		bus->capacity = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->count - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct bus_range){
		.base = base, .len = len, .ops = ops, .opaque = opaque, .name = name,
	};
	bus->count++;
	return 0;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	size_t lo = 0, hi = bus->count;

	/* Binary search for the last range starting at or below addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (bus->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct bus_range *r = &bus->ranges[lo - 1];
	uint64_t off = addr - r->base;

	/* An access straddling the end of a range is not the device's. */
	if (off >= r->len || len > r->len - off)
		return NULL;
	return r;
}

bool bus_read(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_range *r = bus_find(bus, addr, len);

	if (!r || !r->ops->read) {
		memset(data, 0xff, len);
		if (!r)
			atomic_fetch_add_explicit(&bus->unclaimed_reads, 1, memory_order_relaxed);
		return r != NULL;
	}
	r->ops->read(r->opaque, addr - r->base, data, len);
	return true;
}

bool bus_write(struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_range *r = bus_find(bus, addr, len);

	if (!r) {
		atomic_fetch_add_explicit(&bus->unclaimed_writes, 1, memory_order_relaxed);
		return false;
	}
	if (r->ops->write)
		r->ops->write(r->opaque, addr - r->base, data, len);
	return true;
}
