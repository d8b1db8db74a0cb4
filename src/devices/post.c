/* POST-code port. Relaxed ordering is enough: the code is a standalone
 * value for diagnostics, nothing else is published through it. */
#include "devices/post.h"

#include <string.h>

static void post_read(void *opaque, uint64_t offset, uint8_t *data,
		      uint32_t len)
{
	struct post_port *p = opaque;

	(void)offset;
	memset(data, 0xff, len);
	data[0] = post_port_last(p);
}

static void post_write(void *opaque, uint64_t offset, const uint8_t *data,
		       uint32_t len)
{
	struct post_port *p = opaque;

	(void)offset;
	(void)len;
	atomic_store_explicit(&p->last, data[0], memory_order_relaxed);
}

const struct bus_ops post_bus_ops = {
	.read = post_read,
	.write = post_write,
};
