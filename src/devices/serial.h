/* A 16550A UART (PC16550D compatible), as the PC's COM1.
 *
 * Transmission has no baud timing: a byte written to THR reaches the host
 * at once, so THR, the TX FIFO and the shift register are always empty
 * again by the time the guest looks. Reception is fed by the host through
 * serial_receive(), which takes only what fits in the RX FIFO; the caller
 * keeps the rest and retries when the rx_space callback says the guest
 * drained the FIFO, so host input is never dropped.
 *
 * Register it on the port-I/O bus as SERIAL_NR_PORTS ports at
 * SERIAL_COM1_BASE with serial_bus_ops and the struct serial as opaque;
 * its interrupt is GSI SERIAL_COM1_IRQ.
 *
 * Threads: bus accesses (vCPU threads) and serial_receive() (the console
 * input thread) serialise on a mutex inside struct serial. The irq and
 * out->write callbacks are called with that mutex held, so the level
 * changes and the output bytes keep their order; they must not call back
 * into this serial. rx_space is called with the mutex released, so it may
 * call serial_receive(). Lock order: serial lock -> whatever the
 * irq_line/output implementation takes.
 */
#ifndef POPEK_DEVICES_SERIAL_H
#define POPEK_DEVICES_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/device.h"

#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_NR_PORTS 8
#define SERIAL_FIFO_LEN 16

/* Where the UART's line goes on the host side. */
struct serial_output {
	/* Bytes the guest transmitted, in order. May be NULL (bytes dropped). */
	void (*write)(void *opaque, const uint8_t *buf, size_t len);
	/* serial_receive() refused bytes earlier and the guest has now
	 * emptied the RX FIFO: push more. Called once per refusal, from
	 * whichever thread drained it, without the serial lock. May be NULL. */
	void (*rx_space)(void *opaque);
	void *opaque;
};

struct serial;

/* Copies *irq and *out (either may be NULL: no interrupt, no output).
 * Returns NULL on allocation failure. The UART starts in its reset state. */
struct serial *serial_create(const struct irq_line *irq,
			     const struct serial_output *out);
void serial_destroy(struct serial *s);

/* Pushes host input into the RX FIFO. Returns how many bytes of buf were
 * taken (0..len); the caller retries the rest after rx_space. Takes
 * nothing while the UART is in loopback mode, its input pin being
 * disconnected then (PC16550D, MCR bit 4). */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);

/* Accesses wider than a byte are split into byte accesses at consecutive
 * offsets, as the ISA bus does for an 8-bit device; bytes beyond the 8
 * registers read 0xff and drop writes. */
extern const struct bus_ops serial_bus_ops;

#endif
