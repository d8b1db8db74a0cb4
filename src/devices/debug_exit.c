/* isa-debug-exit, matching QEMU's hw/misc/debugexit.c: reads return 0,
 * writes of 1 to 4 bytes are taken little-endian at any offset inside
 * the range and end the machine with (value << 1) | 1. */
#include "devices/debug_exit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct debug_exit {
	struct vm_stopper stopper;
};

static void debug_exit_read(void *opaque, uint64_t offset, uint8_t *data,
			    uint32_t len)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, len);
}

static void debug_exit_write(void *opaque, uint64_t offset, const uint8_t *data,
			     uint32_t len)
{
	struct debug_exit *dev = opaque;
	uint32_t v = 0;
	uint32_t i;

	(void)offset;
	for (i = 0; i < len && i < sizeof(v); i++)
		v |= (uint32_t)data[i] << (8 * i);
	vm_stopper_request(&dev->stopper, VM_STOP_DEBUG_EXIT,
			   (int)((v << 1) | 1));
}

const struct bus_ops debug_exit_bus_ops = {
	.read = debug_exit_read,
	.write = debug_exit_write,
};

struct debug_exit *debug_exit_create(const struct vm_stopper *stopper)
{
	struct debug_exit *dev = calloc(1, sizeof(*dev));

	if (dev && stopper)
		dev->stopper = *stopper;
	return dev;
}

void debug_exit_destroy(struct debug_exit *dev)
{
	free(dev);
}
