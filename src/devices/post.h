/* The POST-code port 0x80: firmware and kernels write progress codes here,
 * and Linux uses it as an I/O delay (outb to 0x80). Reads return the last
 * code written, like the latch on a POST card.
 *
 * Needs no allocation or teardown:
 *
 *	static struct post_port post;	(or a member of the VM; zero = code 0)
 *	bus_register(pio, POST_PORT, POST_NR_PORTS, &post_bus_ops, &post, "post");
 *
 * It is the port the exit-cost benchmark hammers, so the write path is one
 * relaxed atomic store: no lock, no allocation, no logging. */
#ifndef POPEK_DEVICES_POST_H
#define POPEK_DEVICES_POST_H

#include <stdatomic.h>
#include <stdint.h>

#include "vmm/bus.h"

#define POST_PORT 0x80
#define POST_NR_PORTS 1

struct post_port {
	_Atomic uint8_t last;
};

static inline void post_port_init(struct post_port *p)
{
	atomic_init(&p->last, 0);
}

static inline uint8_t post_port_last(struct post_port *p)
{
	return atomic_load_explicit(&p->last, memory_order_relaxed);
}

/* A wider access uses its first byte; the other bytes read 0xff. */
extern const struct bus_ops post_bus_ops;

#endif
