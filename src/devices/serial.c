/* 16550A UART model. Register semantics follow the National PC16550D
 * datasheet (section 8, "Registers"); the choices where a PC or a VMM has to
 * decide something the datasheet leaves open are commented where made. */
#include "devices/serial.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Register offsets (DLAB = 0 unless noted). */
#define UART_RBR	0	/* read: receiver buffer */
#define UART_THR	0	/* write: transmitter holding */
#define UART_DLL	0	/* DLAB = 1: divisor latch, low byte */
#define UART_IER	1
#define UART_DLM	1	/* DLAB = 1: divisor latch, high byte */
#define UART_IIR	2	/* read */
#define UART_FCR	2	/* write */
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define IER_ERBFI	0x01	/* received data available */
#define IER_ETBEI	0x02	/* transmitter holding register empty */
#define IER_ELSI	0x04	/* receiver line status */
#define IER_EDSSI	0x08	/* modem status */
#define IER_MASK	0x0f	/* bits 4-7 are always 0 */

#define IIR_NO_INT	0x01
#define IIR_MSI		0x00
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_RLSI	0x06
#define IIR_CTI		0x0c	/* character timeout */
#define IIR_FIFO_BITS	0xc0	/* set while FCR bit 0 is */

#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define FCR_CLEAR_TX	0x04
#define FCR_TRIGGER	0xc0

#define LCR_DLAB	0x80

#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define MCR_MASK	0x1f

#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_PE		0x04
#define LSR_FE		0x08
#define LSR_BI		0x10
#define LSR_THRE	0x20
#define LSR_TEMT	0x40
#define LSR_ERRORS	(LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS	0x01
#define MSR_DDSR	0x02
#define MSR_TERI	0x04
#define MSR_DDCD	0x08
#define MSR_DELTAS	0x0f
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80

/* The host terminal is a modem that is always there and always ready. */
#define MSR_HOST_LINES	(MSR_DCD | MSR_DSR | MSR_CTS)

struct serial {
	pthread_mutex_t lock;
	struct irq_line irq;
	struct serial_output out;

	uint8_t ier, fcr, lcr, mcr, scr;
	uint16_t divisor;
	uint8_t lsr_errors;	/* sticky LSR bits 1-4, cleared by reading LSR */
	uint8_t msr_lines;	/* MSR bits 4-7: current modem inputs */
	uint8_t msr_deltas;	/* MSR bits 0-3, cleared by reading MSR */
	uint8_t rbr;		/* last byte read, returned again on an empty read */

	uint8_t rx[SERIAL_FIFO_LEN];
	unsigned int rx_head, rx_count;

	bool thr_ipending;	/* THRE interrupt armed, see serial_iir_id() */
	bool irq_level;		/* what we last drove on the irq line */
	bool rx_waiting;	/* serial_receive() refused bytes: owe rx_space */
};

static bool fifo_enabled(const struct serial *s)
{
	return s->fcr & FCR_ENABLE;
}

/* Without FIFOs the receiver holds one byte in RBR (16450 mode). */
static unsigned int rx_capacity(const struct serial *s)
{
	return fifo_enabled(s) ? SERIAL_FIFO_LEN : 1;
}

/* FCR bits 7:6 select 1, 4, 8 or 14 bytes (PC16550D table VII). */
static unsigned int rx_trigger(const struct serial *s)
{
	static const unsigned int levels[4] = { 1, 4, 8, 14 };

	return levels[(s->fcr & FCR_TRIGGER) >> 6];
}

/* The highest-priority pending interrupt, as IIR bits 3:0 (PC16550D
 * table IV): line status > received data / timeout > THR empty > modem.
 *
 * The character timeout fires after four character times without FIFO
 * activity while the FIFO holds fewer bytes than the trigger level. With
 * no baud timing those four character times have always elapsed by the
 * time the guest looks, so "data below the trigger level" reads as a
 * timeout (0xCC) and "at or above it" as data available (0xC4); a guest
 * drains the FIFO either way. */
static uint8_t serial_iir_id(const struct serial *s)
{
	if ((s->ier & IER_ELSI) && s->lsr_errors)
		return IIR_RLSI;
	if ((s->ier & IER_ERBFI) && s->rx_count) {
		if (fifo_enabled(s) && s->rx_count < rx_trigger(s))
			return IIR_CTI;
		return IIR_RDI;
	}
	if ((s->ier & IER_ETBEI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_EDSSI) && s->msr_deltas)
		return IIR_MSI;
	return IIR_NO_INT;
}

/* On a PC the UART's INTRPT pin reaches the PIC through a buffer enabled by
 * the OUT2 pin (IBM PC/AT technical reference, asynchronous adapter), and in
 * loopback mode the 16550 forces OUT2 inactive (PC16550D, MCR bit 4), so
 * both gate the line here. QEMU ignores OUT2; Linux sets OUT2 before it
 * relies on interrupts, so real-hardware behaviour costs it nothing.
 * Only changes of level are passed on. Called with the lock held. */
static void serial_update_irq(struct serial *s)
{
	bool level = serial_iir_id(s) != IIR_NO_INT &&
		     (s->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	irq_line_set(&s->irq, level);
}

/* In loopback mode the modem inputs are wired to the modem outputs:
 * CTS = RTS, DSR = DTR, RI = OUT1, DCD = OUT2 (PC16550D, MCR bit 4).
 * Otherwise the host terminal drives them. */
static uint8_t modem_lines(const struct serial *s)
{
	uint8_t lines = 0;

	if (!(s->mcr & MCR_LOOP))
		return MSR_HOST_LINES;
	if (s->mcr & MCR_RTS)
		lines |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		lines |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		lines |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		lines |= MSR_DCD;
	return lines;
}

/* Sets the delta bits for changed inputs; TERI is set on the trailing
 * edge of RI only. */
static void serial_update_msr(struct serial *s)
{
	uint8_t lines = modem_lines(s);
	uint8_t changed = lines ^ s->msr_lines;

	if (changed & MSR_CTS)
		s->msr_deltas |= MSR_DCTS;
	if (changed & MSR_DSR)
		s->msr_deltas |= MSR_DDSR;
	if ((changed & MSR_RI) && !(lines & MSR_RI))
		s->msr_deltas |= MSR_TERI;
	if (changed & MSR_DCD)
		s->msr_deltas |= MSR_DDCD;
	s->msr_lines = lines;
}

static void rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

static void rx_push(struct serial *s, uint8_t byte)
{
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_LEN] = byte;
	s->rx_count++;
}

/* A byte arriving at the receiver shift register when there is no room:
 * in FIFO mode it is lost and the FIFO kept; in 16450 mode it overwrites
 * RBR. Either way OE is set (PC16550D, LSR bit 1). Only loopback can get
 * here, as serial_receive() refuses what does not fit. */
static void rx_shift_in(struct serial *s, uint8_t byte)
{
	if (s->rx_count < rx_capacity(s)) {
		rx_push(s, byte);
		return;
	}
	s->lsr_errors |= LSR_OE;
	if (!fifo_enabled(s))
		s->rx[s->rx_head] = byte;
}

static uint8_t rx_pop(struct serial *s)
{
	if (!s->rx_count)
		return s->rbr;
	s->rbr = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_LEN;
	s->rx_count--;
	return s->rbr;
}

/* Whether an owed rx_space call is due now: the guest emptied the FIFO
 * and the receiver is connected. The caller calls it after unlocking. */
static bool rx_space_due(struct serial *s)
{
	if (!s->rx_waiting || s->rx_count || (s->mcr & MCR_LOOP))
		return false;
	s->rx_waiting = false;
	return true;
}

/* Transmission is instant: the byte leaves and THR is empty again, which
 * is the "THR becomes empty" event that arms the THRE interrupt. */
static void serial_write_thr(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP)
		rx_shift_in(s, byte);
	else if (s->out.write)
		s->out.write(s->out.opaque, &byte, 1);
	s->thr_ipending = true;
}

/* The THRE interrupt is also raised when ETBEI goes from 0 to 1 while THR
 * is empty (it always is here). Only the rising edge counts, as in QEMU
 * and Bochs; clearing ETBEI forgets a pending THRE. */
static void serial_write_ier(struct serial *s, uint8_t val)
{
	uint8_t old = s->ier;

	s->ier = val & IER_MASK;
	if ((old ^ s->ier) & IER_ETBEI)
		s->thr_ipending = s->ier & IER_ETBEI;
}

/* FCR bit 0 must be set for the other bits to be programmed; changing it
 * clears both FIFOs (PC16550D, FCR). The TX FIFO is always empty, so only
 * the RX side has anything to clear. */
static void serial_write_fcr(struct serial *s, uint8_t val)
{
	if (!(val & FCR_ENABLE)) {
		if (fifo_enabled(s))
			rx_clear(s);
		s->fcr = 0;
		return;
	}
	if (!fifo_enabled(s) || (val & FCR_CLEAR_RX))
		rx_clear(s);
	s->fcr = val & (FCR_ENABLE | FCR_TRIGGER);
}

static void serial_write_mcr(struct serial *s, uint8_t val)
{
	s->mcr = val & MCR_MASK;
	serial_update_msr(s);
}

static void serial_write_reg(struct serial *s, unsigned int reg, uint8_t val)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_THR:
		if (dlab)
			s->divisor = (s->divisor & 0xff00) | val;
		else
			serial_write_thr(s, val);
		break;
	case UART_IER:
		if (dlab)
			s->divisor = (s->divisor & 0x00ff) | (uint16_t)(val << 8);
		else
			serial_write_ier(s, val);
		break;
	case UART_FCR:
		serial_write_fcr(s, val);
		break;
	case UART_LCR:
		s->lcr = val;
		break;
	case UART_MCR:
		serial_write_mcr(s, val);
		break;
	case UART_SCR:
		s->scr = val;
		break;
	default:
		/* LSR and MSR writes are factory test only: ignored. */
		break;
	}
}

static uint8_t serial_read_iir(struct serial *s)
{
	uint8_t id = serial_iir_id(s);

	/* Reading IIR clears a THRE interrupt only if it is the one reported. */
	if (id == IIR_THRI)
		s->thr_ipending = false;
	return id | (fifo_enabled(s) ? IIR_FIFO_BITS : 0);
}

/* THR and the shift register are always empty: THRE and TEMT stay set.
 * Bit 7 (error in RX FIFO) stays 0: no byte ever enters with an error. */
static uint8_t serial_read_lsr(struct serial *s)
{
	uint8_t val = LSR_THRE | LSR_TEMT | s->lsr_errors;

	if (s->rx_count)
		val |= LSR_DR;
	s->lsr_errors = 0;
	return val;
}

static uint8_t serial_read_msr(struct serial *s)
{
	uint8_t val = s->msr_lines | s->msr_deltas;

	s->msr_deltas = 0;
	return val;
}

static uint8_t serial_read_reg(struct serial *s, unsigned int reg)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR:
		return dlab ? (uint8_t)s->divisor : rx_pop(s);
	case UART_IER:
		return dlab ? (uint8_t)(s->divisor >> 8) : s->ier;
	case UART_IIR:
		return serial_read_iir(s);
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return serial_read_lsr(s);
	case UART_MSR:
		return serial_read_msr(s);
	default:
		return s->scr;
	}
}

static void serial_bus_read(void *opaque, uint64_t offset, uint8_t *data,
			    uint32_t len)
{
	struct serial *s = opaque;
	bool space;
	uint32_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < len; i++) {
		if (offset + i < SERIAL_NR_PORTS)
			data[i] = serial_read_reg(s, (unsigned int)(offset + i));
		else
			data[i] = 0xff;
	}
	serial_update_irq(s);
	space = rx_space_due(s);
	pthread_mutex_unlock(&s->lock);
	if (space && s->out.rx_space)
		s->out.rx_space(s->out.opaque);
}

static void serial_bus_write(void *opaque, uint64_t offset, const uint8_t *data,
			     uint32_t len)
{
	struct serial *s = opaque;
	bool space;
	uint32_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < len && offset + i < SERIAL_NR_PORTS; i++)
		serial_write_reg(s, (unsigned int)(offset + i), data[i]);
	serial_update_irq(s);
	space = rx_space_due(s);
	pthread_mutex_unlock(&s->lock);
	if (space && s->out.rx_space)
		s->out.rx_space(s->out.opaque);
}

const struct bus_ops serial_bus_ops = {
	.read = serial_bus_read,
	.write = serial_bus_write,
};

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP)) {
		while (n < len && s->rx_count < rx_capacity(s))
			rx_push(s, buf[n++]);
	}
	if (n < len)
		s->rx_waiting = true;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Master reset values (PC16550D table III), except the divisor: reset
 * leaves it undefined, and Linux's early console divides by it to guess
 * the baud rate, so it starts at 1 (115200 baud). */
static void serial_reset(struct serial *s)
{
	s->ier = 0;
	s->fcr = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->scr = 0;
	s->divisor = 1;
	s->lsr_errors = 0;
	s->msr_lines = MSR_HOST_LINES;
	s->msr_deltas = 0;
	s->rbr = 0;
	rx_clear(s);
	s->thr_ipending = false;
	s->irq_level = false;
	s->rx_waiting = false;
}

struct serial *serial_create(const struct irq_line *irq,
			     const struct serial_output *out)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL)) {
		free(s);
		return NULL;
	}
	if (irq)
		s->irq = *irq;
	if (out)
		s->out = *out;
	serial_reset(s);
	return s;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}
