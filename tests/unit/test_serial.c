/* 16550A UART model, and the console that feeds it (escape filter, input
 * thread through real pipes). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/console.h"
#include "devices/serial.h"

#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

struct fake_irq {
	bool level;
	int changes;
	int raises;
};

struct fake_out {
	uint8_t buf[256];
	size_t len;
	int writes;
	int rx_space_calls;
};

struct fixture {
	struct fake_irq irq;
	struct fake_out out;
	struct serial *s;
};

static void fake_set_level(void *opaque, unsigned gsi, bool level)
{
	struct fake_irq *irq = opaque;

	assert_int_equal(gsi, SERIAL_COM1_IRQ);
	/* The model promises to pass on changes only. */
	assert_true(level != irq->level);
	irq->level = level;
	irq->changes++;
	if (level)
		irq->raises++;
}

static void fake_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct fake_out *out = opaque;

	assert_true(out->len + len <= sizeof(out->buf));
	memcpy(out->buf + out->len, buf, len);
	out->len += len;
	out->writes++;
}

static void fake_rx_space(void *opaque)
{
	struct fake_out *out = opaque;

	out->rx_space_calls++;
}

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	struct irq_line irq = {
		.set_level = fake_set_level,
		.opaque = &f->irq,
		.gsi = SERIAL_COM1_IRQ,
	};
	struct serial_output out = {
		.write = fake_write,
		.rx_space = fake_rx_space,
		.opaque = &f->out,
	};

	f->s = serial_create(&irq, &out);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	serial_destroy(f->s);
	test_free(f);
	return 0;
}

static uint8_t rd(struct serial *s, unsigned int reg)
{
	uint8_t v;

	serial_bus_ops.read(s, reg, &v, 1);
	return v;
}

static void wr(struct serial *s, unsigned int reg, uint8_t v)
{
	serial_bus_ops.write(s, reg, &v, 1);
}

static size_t receive_str(struct serial *s, const char *str)
{
	return serial_receive(s, (const uint8_t *)str, strlen(str));
}

static void test_reset_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f->s, IIR), 0x01);
	assert_int_equal(rd(f->s, IER), 0x00);
	assert_int_equal(rd(f->s, LCR), 0x00);
	assert_int_equal(rd(f->s, MCR), 0x00);
	assert_int_equal(rd(f->s, LSR), 0x60);	/* THRE | TEMT */
	assert_int_equal(rd(f->s, MSR), 0xb0);	/* DCD | DSR | CTS */
	assert_int_equal(f->irq.changes, 0);
}

static void test_divisor_latch(void **state)
{
	struct fixture *f = *state;

	wr(f->s, IER, 0x0f);
	assert_int_equal(receive_str(f->s, "q"), 1);
	wr(f->s, LCR, 0x83);			/* DLAB, 8 data bits */
	wr(f->s, DLL, 0x0c);
	wr(f->s, DLM, 0x01);
	assert_int_equal(rd(f->s, DLL), 0x0c);
	assert_int_equal(rd(f->s, DLM), 0x01);
	/* Under DLAB neither RBR nor IER is reachable, and a write at 0 is
	 * not a transmission. */
	assert_int_equal(rd(f->s, LSR) & 0x01, 0x01);
	assert_int_equal(f->out.len, 0);

	wr(f->s, LCR, 0x03);
	assert_int_equal(rd(f->s, LCR), 0x03);
	assert_int_equal(rd(f->s, IER), 0x0f);
	assert_int_equal(rd(f->s, RBR), 'q');
	assert_int_equal(rd(f->s, LSR) & 0x01, 0x00);

	/* The latch kept its value. */
	wr(f->s, LCR, 0x83);
	assert_int_equal(rd(f->s, DLL), 0x0c);
	assert_int_equal(rd(f->s, DLM), 0x01);
}

static void test_fcr(void **state)
{
	struct fixture *f = *state;

	/* 16450 mode: no FIFO bits, one byte of room. */
	assert_int_equal(rd(f->s, IIR), 0x01);
	assert_int_equal(receive_str(f->s, "abc"), 1);
	assert_int_equal(rd(f->s, RBR), 'a');

	wr(f->s, FCR, 0x01);
	assert_int_equal(rd(f->s, IIR), 0xc1);
	assert_int_equal(receive_str(f->s, "defgh"), 5);
	assert_int_equal(rd(f->s, LSR) & 0x01, 0x01);

	/* Clear RX (bit 1 self-clears; FIFOs stay enabled). */
	wr(f->s, FCR, 0x03);
	assert_int_equal(rd(f->s, LSR) & 0x01, 0x00);
	assert_int_equal(rd(f->s, IIR), 0xc1);
	assert_int_equal(receive_str(f->s, "ij"), 2);

	/* Disabling the FIFOs clears them too. */
	wr(f->s, FCR, 0x00);
	assert_int_equal(rd(f->s, IIR), 0x01);
	assert_int_equal(rd(f->s, LSR) & 0x01, 0x00);
}

static void test_rx_interrupt(void **state)
{
	struct fixture *f = *state;

	wr(f->s, FCR, 0x01);
	wr(f->s, MCR, MCR_OUT2);
	wr(f->s, IER, 0x01);
	assert_false(f->irq.level);

	assert_int_equal(receive_str(f->s, "abc"), 3);
	assert_true(f->irq.level);
	assert_int_equal(f->irq.changes, 1);
	assert_int_equal(rd(f->s, LSR), 0x61);
	assert_int_equal(rd(f->s, IIR), 0xc4);

	assert_int_equal(rd(f->s, RBR), 'a');
	assert_int_equal(rd(f->s, RBR), 'b');
	assert_true(f->irq.level);
	assert_int_equal(rd(f->s, RBR), 'c');
	assert_false(f->irq.level);
	assert_int_equal(f->irq.changes, 2);
	assert_int_equal(rd(f->s, LSR), 0x60);
	assert_int_equal(rd(f->s, IIR), 0xc1);
}

static void test_rx_trigger_and_timeout(void **state)
{
	struct fixture *f = *state;

	wr(f->s, FCR, 0xc1);			/* trigger at 14 bytes */
	wr(f->s, MCR, MCR_OUT2);
	wr(f->s, IER, 0x01);
	assert_int_equal(receive_str(f->s, "abc"), 3);
	/* Below the trigger level: character timeout, still an interrupt. */
	assert_int_equal(rd(f->s, IIR), 0xcc);
	assert_true(f->irq.level);
	assert_int_equal(receive_str(f->s, "defghijklmn"), 11);
	assert_int_equal(rd(f->s, IIR), 0xc4);

	wr(f->s, FCR, 0x41);			/* trigger at 4 */
	assert_int_equal(rd(f->s, IIR), 0xc4);
	assert_int_equal(rd(f->s, RBR), 'a');
	assert_int_equal(rd(f->s, IIR), 0xc4);

	/* Without FIFOs there is no timeout: RDA (0x04). */
	wr(f->s, FCR, 0x00);
	assert_int_equal(receive_str(f->s, "z"), 1);
	assert_int_equal(rd(f->s, IIR), 0x04);
}

static void test_rx_full_refused_then_rx_space(void **state)
{
	struct fixture *f = *state;
	const char *in = "0123456789abcdefGHIJ";
	int i;

	wr(f->s, FCR, 0x01);
	/* The FIFO takes 16; the rest is the caller's to retry. */
	assert_int_equal(receive_str(f->s, in), SERIAL_FIFO_LEN);
	assert_int_equal(receive_str(f->s, "GHIJ"), 0);
	/* Refusing is not an overrun. */
	assert_int_equal(rd(f->s, LSR), 0x61);

	for (i = 0; i < SERIAL_FIFO_LEN - 1; i++)
		assert_int_equal(rd(f->s, RBR), in[i]);
	assert_int_equal(f->out.rx_space_calls, 0);
	assert_int_equal(rd(f->s, RBR), in[SERIAL_FIFO_LEN - 1]);
	assert_int_equal(f->out.rx_space_calls, 1);
	/* Once per refusal. */
	assert_int_equal(rd(f->s, RBR), in[SERIAL_FIFO_LEN - 1]);
	assert_int_equal(f->out.rx_space_calls, 1);

	assert_int_equal(receive_str(f->s, "GHIJ"), 4);
	assert_int_equal(rd(f->s, RBR), 'G');
	assert_int_equal(f->out.rx_space_calls, 1);
}

static void test_out2_gates_irq(void **state)
{
	struct fixture *f = *state;

	wr(f->s, IER, 0x01);
	assert_int_equal(receive_str(f->s, "a"), 1);
	assert_int_equal(rd(f->s, IIR), 0x04);
	assert_false(f->irq.level);
	wr(f->s, MCR, MCR_OUT2);
	assert_true(f->irq.level);
	wr(f->s, MCR, 0);
	assert_false(f->irq.level);
	assert_int_equal(f->irq.changes, 2);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;

	wr(f->s, FCR, 0x01);
	wr(f->s, MCR, MCR_OUT2);
	assert_int_equal(f->irq.changes, 0);

	/* Enabling ETBEI while THR is empty raises THRE at once. */
	wr(f->s, IER, 0x02);
	assert_true(f->irq.level);
	assert_int_equal(rd(f->s, IIR), 0xc2);
	/* Reading IIR cleared it. */
	assert_false(f->irq.level);
	assert_int_equal(rd(f->s, IIR), 0xc1);
	/* Rewriting the same IER does not re-arm it. */
	wr(f->s, IER, 0x02);
	assert_false(f->irq.level);

	/* A byte goes out, THR is empty again: THRE again. */
	wr(f->s, THR, 'x');
	assert_int_equal(f->out.len, 1);
	assert_int_equal(f->out.buf[0], 'x');
	assert_true(f->irq.level);
	assert_int_equal(rd(f->s, LSR), 0x60);
	assert_int_equal(rd(f->s, IIR), 0xc2);
	assert_false(f->irq.level);

	/* Toggling ETBEI re-arms it (Linux's THRE test does this)... */
	wr(f->s, IER, 0x00);
	wr(f->s, IER, 0x02);
	assert_true(f->irq.level);
	/* ...and clearing ETBEI drops it. */
	wr(f->s, IER, 0x00);
	assert_false(f->irq.level);
	assert_int_equal(rd(f->s, IIR), 0xc1);
	assert_int_equal(f->irq.raises, 3);
}

static void test_tx_order(void **state)
{
	struct fixture *f = *state;
	const char *msg = "Hello, 16550!\r\n";
	size_t i;

	for (i = 0; msg[i]; i++)
		wr(f->s, THR, (uint8_t)msg[i]);
	assert_int_equal(f->out.len, strlen(msg));
	assert_memory_equal(f->out.buf, msg, strlen(msg));
	/* THRE interrupt not enabled: the line stays low. */
	assert_int_equal(f->irq.changes, 0);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	int i;

	wr(f->s, FCR, 0x01);
	/* Linux's autoconfig check: LOOP | OUT2 | RTS reads back DCD | CTS. */
	wr(f->s, MCR, MCR_LOOP | 0x0a);
	assert_int_equal(rd(f->s, MSR) & 0xf0, 0x90);
	wr(f->s, MCR, MCR_LOOP | 0x0f);
	assert_int_equal(rd(f->s, MSR) & 0xf0, 0xf0);
	wr(f->s, MCR, MCR_LOOP | 0x01);		/* DTR only */
	assert_int_equal(rd(f->s, MSR) & 0xf0, 0x20);

	/* TX goes to RX, not to the host; host input waits. */
	wr(f->s, THR, 'z');
	assert_int_equal(f->out.len, 0);
	assert_int_equal(receive_str(f->s, "h"), 0);
	assert_int_equal(rd(f->s, LSR), 0x61);
	assert_int_equal(rd(f->s, RBR), 'z');
	assert_int_equal(f->out.rx_space_calls, 0);

	/* A full FIFO overruns: OE set, the 17th byte lost. */
	for (i = 0; i < SERIAL_FIFO_LEN + 1; i++)
		wr(f->s, THR, (uint8_t)('A' + i));
	assert_int_equal(rd(f->s, LSR), 0x63);
	assert_int_equal(rd(f->s, LSR), 0x61);	/* OE cleared by the read */
	for (i = 0; i < SERIAL_FIFO_LEN; i++)
		assert_int_equal(rd(f->s, RBR), 'A' + i);
	assert_int_equal(rd(f->s, LSR), 0x60);

	/* Leaving loopback reconnects the input: the owed rx_space comes. */
	wr(f->s, MCR, 0);
	assert_int_equal(f->out.rx_space_calls, 1);
	assert_int_equal(rd(f->s, MSR) & 0xf0, 0xb0);
	assert_int_equal(receive_str(f->s, "h"), 1);
}

static void test_loopback_16450_overrun(void **state)
{
	struct fixture *f = *state;

	wr(f->s, MCR, MCR_LOOP);
	wr(f->s, THR, '1');
	wr(f->s, THR, '2');
	/* Without FIFOs the new byte overwrites RBR. */
	assert_int_equal(rd(f->s, LSR), 0x63);
	assert_int_equal(rd(f->s, RBR), '2');
}

static void test_irq_priorities(void **state)
{
	struct fixture *f = *state;
	int i;

	wr(f->s, FCR, 0x01);
	wr(f->s, MCR, MCR_LOOP | MCR_OUT2);
	wr(f->s, IER, 0x0f);
	/* In loopback the PC's IRQ line is off (OUT2 pin forced inactive). */
	assert_int_equal(rd(f->s, IIR), 0xc2);
	assert_false(f->irq.level);
	assert_int_equal(f->irq.changes, 0);
	/* Entering loopback dropped CTS and DSR: a modem status change is
	 * pending too, below THRE. */
	for (i = 0; i < SERIAL_FIFO_LEN + 1; i++)
		wr(f->s, THR, (uint8_t)i);
	assert_int_equal(rd(f->s, IIR), 0xc6);	/* line status: overrun */
	assert_int_equal(rd(f->s, LSR), 0x63);
	assert_int_equal(rd(f->s, IIR), 0xc4);	/* data at trigger level */
	for (i = 0; i < SERIAL_FIFO_LEN; i++)
		rd(f->s, RBR);
	assert_int_equal(rd(f->s, IIR), 0xc2);	/* THRE, cleared by the read */
	assert_int_equal(rd(f->s, IIR), 0xc0);	/* modem status */
	assert_int_equal(rd(f->s, MSR), 0x83);	/* DCD (OUT2), DDSR, DCTS */
	assert_int_equal(rd(f->s, IIR), 0xc1);
	assert_int_equal(f->irq.changes, 0);
}

static void test_modem_status_interrupt(void **state)
{
	struct fixture *f = *state;

	wr(f->s, MCR, MCR_LOOP);
	rd(f->s, MSR);				/* clear the deltas entering loop */
	wr(f->s, IER, 0x08);
	assert_int_equal(rd(f->s, IIR), 0x01);
	wr(f->s, MCR, MCR_LOOP | 0x02);		/* RTS -> CTS */
	assert_int_equal(rd(f->s, IIR), 0x00);
	assert_int_equal(rd(f->s, MSR), 0x11);	/* CTS, DCTS */
	assert_int_equal(rd(f->s, IIR), 0x01);
	/* RI: delta only on the trailing edge. */
	wr(f->s, MCR, MCR_LOOP | 0x06);
	assert_int_equal(rd(f->s, MSR), 0x50);
	wr(f->s, MCR, MCR_LOOP | 0x02);
	assert_int_equal(rd(f->s, MSR), 0x14);
	/* Leaving loopback: back to the host's lines, with their deltas. */
	wr(f->s, MCR, 0);
	assert_int_equal(rd(f->s, MSR), 0xba);
}

static void test_scratch(void **state)
{
	struct fixture *f = *state;

	wr(f->s, SCR, 0x5a);
	assert_int_equal(rd(f->s, SCR), 0x5a);
	wr(f->s, SCR, 0xa5);
	assert_int_equal(rd(f->s, SCR), 0xa5);
}

static void test_wide_and_stray_accesses(void **state)
{
	struct fixture *f = *state;
	uint8_t d[4];

	/* A 16-bit access is two byte accesses, as on the ISA bus. */
	wr(f->s, LCR, 0x80);
	d[0] = 0x34;
	d[1] = 0x12;
	serial_bus_ops.write(f->s, DLL, d, 2);
	memset(d, 0, sizeof(d));
	serial_bus_ops.read(f->s, DLL, d, 2);
	assert_int_equal(d[0], 0x34);
	assert_int_equal(d[1], 0x12);
	wr(f->s, LCR, 0x00);

	wr(f->s, SCR, 0x77);
	serial_bus_ops.read(f->s, SCR, d, 4);
	assert_int_equal(d[0], 0x77);
	assert_int_equal(d[1], 0xff);
	assert_int_equal(d[2], 0xff);
	assert_int_equal(d[3], 0xff);

	serial_bus_ops.read(f->s, 9, d, 1);
	assert_int_equal(d[0], 0xff);
	d[0] = 'x';
	serial_bus_ops.write(f->s, 8, d, 4);
	assert_int_equal(f->out.len, 0);
	assert_int_equal(rd(f->s, SCR), 0x77);
}

/* ---- Console ---- */

static size_t filter_str(struct console_escape *esc, const char *in,
			 uint8_t *out, bool *stop)
{
	return console_filter_input(esc, (const uint8_t *)in, strlen(in), out,
				    stop);
}

static void test_console_filter(void **state)
{
	struct console_escape esc = { 0 };
	uint8_t out[32];
	bool stop;
	size_t n;

	(void)state;
	n = filter_str(&esc, "plain", out, &stop);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "plain", 5);
	assert_false(stop);

	/* Ctrl-A Ctrl-A: one Ctrl-A. */
	n = filter_str(&esc, "a\x01\x01" "b", out, &stop);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "a\x01" "b", 3);
	assert_false(stop);

	/* Ctrl-A then something else: both. */
	n = filter_str(&esc, "\x01y", out, &stop);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\x01y", 2);

	/* The escape split across reads is held back, then resolved. */
	n = filter_str(&esc, "c\x01", out, &stop);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 'c');
	assert_true(esc.after_escape);
	n = filter_str(&esc, "q", out, &stop);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "\x01q", 2);
	assert_false(esc.after_escape);

	/* Ctrl-A x: stop; what came before is still sent, after is not. */
	n = filter_str(&esc, "ok\x01xlost", out, &stop);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "ok", 2);
	assert_true(stop);

	/* A plain x is just an x. */
	n = filter_str(&esc, "x", out, &stop);
	assert_int_equal(n, 1);
	assert_false(stop);
}

/* Called from the console thread: calls is atomic and published last. */
struct fake_stopper {
	atomic_int calls;
	enum vm_stop_reason reason;
};

static void fake_stop(void *opaque, enum vm_stop_reason reason, int status)
{
	struct fake_stopper *st = opaque;

	(void)status;
	st->reason = reason;
	atomic_fetch_add(&st->calls, 1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	nanosleep(&ts, NULL);
}

/* Reads what the guest would: waits up to 5 s for each byte. */
static size_t guest_read(struct serial *s, uint8_t *buf, size_t want)
{
	size_t got = 0;
	int waited = 0;

	while (got < want && waited < 5000) {
		if (rd(s, LSR) & 0x01) {
			buf[got++] = rd(s, RBR);
			continue;
		}
		sleep_ms(1);
		waited++;
	}
	return got;
}

struct console_fixture {
	int in[2], out[2];
	struct fake_stopper stopper;
	struct console *con;
	struct serial *s;
};

static void console_fixture_start(struct console_fixture *cf)
{
	struct vm_stopper stopper = { .stop = fake_stop, .opaque = &cf->stopper };
	struct serial_output out;

	memset(cf, 0, sizeof(*cf));
	assert_int_equal(pipe(cf->in), 0);
	assert_int_equal(pipe(cf->out), 0);
	cf->con = console_create(cf->in[0], cf->out[1], NULL, &stopper);
	assert_non_null(cf->con);
	/* No UART attached yet: refuse to start. */
	assert_int_equal(console_start(cf->con), -EINVAL);
	out = console_serial_output(cf->con);
	cf->s = serial_create(NULL, &out);
	assert_non_null(cf->s);
	console_attach_serial(cf->con, cf->s);
	assert_int_equal(console_start(cf->con), 0);
}

static void console_fixture_stop(struct console_fixture *cf)
{
	console_stop(cf->con);
	console_stop(cf->con);
	serial_destroy(cf->s);
	console_destroy(cf->con);
	if (cf->in[1] >= 0)
		close(cf->in[1]);
	close(cf->in[0]);
	if (cf->out[0] >= 0)
		close(cf->out[0]);
	close(cf->out[1]);
}

static void test_console_pipe_input(void **state)
{
	struct console_fixture cf;
	uint8_t in[100], got[100];
	size_t i;

	(void)state;
	console_fixture_start(&cf);
	wr(cf.s, FCR, 0x01);
	/* Much more than a FIFO, with Ctrl-A x in it: not a terminal, so
	 * no escapes, and nothing is lost while the guest is slow. */
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	in[10] = 0x01;
	in[11] = 'x';
	assert_int_equal(write(cf.in[1], in, sizeof(in)), sizeof(in));
	sleep_ms(20);
	assert_int_equal(guest_read(cf.s, got, sizeof(got)), sizeof(got));
	assert_memory_equal(got, in, sizeof(in));

	/* The same in 16450 mode, one byte of room at a time. */
	wr(cf.s, FCR, 0x00);
	assert_int_equal(write(cf.in[1], in, 40), 40);
	assert_int_equal(guest_read(cf.s, got, 40), 40);
	assert_memory_equal(got, in, 40);

	/* EOF ends input, not the machine. */
	close(cf.in[1]);
	cf.in[1] = -1;
	sleep_ms(20);
	assert_int_equal(cf.stopper.calls, 0);
	assert_int_equal(rd(cf.s, LSR) & 0x01, 0);
	console_fixture_stop(&cf);
}

static void test_console_output(void **state)
{
	struct console_fixture cf;
	const char *msg = "guest says hi\r\n";
	char got[32] = { 0 };
	size_t i;

	(void)state;
	console_fixture_start(&cf);
	for (i = 0; msg[i]; i++)
		wr(cf.s, THR, (uint8_t)msg[i]);
	assert_int_equal(read(cf.out[0], got, sizeof(got)), strlen(msg));
	assert_string_equal(got, msg);

	/* The reader went away: output stops, the process lives on. */
	close(cf.out[0]);
	cf.out[0] = -1;
	wr(cf.s, THR, 'a');
	wr(cf.s, THR, 'b');
	assert_int_equal(rd(cf.s, LSR), 0x60);
	assert_int_equal(cf.stopper.calls, 0);
	console_fixture_stop(&cf);
}

static void test_console_no_input(void **state)
{
	struct fake_stopper st = { 0 };
	struct vm_stopper stopper = { .stop = fake_stop, .opaque = &st };
	struct console *con;
	struct serial *s;
	struct serial_output out;
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	con = console_create(-1, p[1], NULL, &stopper);
	assert_non_null(con);
	out = console_serial_output(con);
	s = serial_create(NULL, &out);
	console_attach_serial(con, s);
	assert_int_equal(console_start(con), 0);
	console_destroy(con);	/* stops it */
	serial_destroy(s);
	close(p[0]);
	close(p[1]);
	assert_int_equal(st.calls, 0);
}

/* A pseudo-terminal stands in for the user's terminal. */
struct pty {
	int master, slave;
};

static void pty_open(struct pty *p)
{
	struct termios t;

	p->master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(p->master >= 0);
	assert_int_equal(grantpt(p->master), 0);
	assert_int_equal(unlockpt(p->master), 0);
	p->slave = open(ptsname(p->master), O_RDWR | O_NOCTTY);
	assert_true(p->slave >= 0);
	assert_int_equal(tcgetattr(p->slave, &t), 0);
	assert_true(t.c_lflag & ICANON);
}

static void pty_close(struct pty *p)
{
	close(p->slave);
	close(p->master);
}

static bool pty_is_cooked(const struct pty *p)
{
	struct termios t;

	assert_int_equal(tcgetattr(p->slave, &t), 0);
	return (t.c_lflag & (ICANON | ECHO | ISIG)) == (ICANON | ECHO | ISIG);
}

static bool pty_is_raw(const struct pty *p)
{
	struct termios t;

	assert_int_equal(tcgetattr(p->slave, &t), 0);
	return !(t.c_lflag & (ICANON | ECHO | ISIG)) && !(t.c_oflag & OPOST);
}

static void test_console_tty_escapes(void **state)
{
	struct fake_stopper st = { 0 };
	struct vm_stopper stopper = { .stop = fake_stop, .opaque = &st };
	struct serial_output out;
	struct console *con;
	struct serial *s;
	struct pty p;
	uint8_t got[8];
	int waited;

	(void)state;
	pty_open(&p);
	con = console_create(p.slave, p.slave, NULL, &stopper);
	assert_non_null(con);
	out = console_serial_output(con);
	s = serial_create(NULL, &out);
	console_attach_serial(con, s);
	assert_true(pty_is_cooked(&p));
	assert_int_equal(console_start(con), 0);
	assert_true(pty_is_raw(&p));

	/* Ctrl-A Ctrl-A is one Ctrl-A, Ctrl-A b is both; Ctrl-C is data. */
	assert_int_equal(write(p.master, "a\x01\x01\x01" "b\x03", 6), 6);
	assert_int_equal(guest_read(s, got, 5), 5);
	assert_memory_equal(got, "a\x01\x01" "b\x03", 5);

	/* Ctrl-A x stops the machine; what follows stays out of the guest. */
	assert_int_equal(write(p.master, "\x01xzz", 4), 4);
	for (waited = 0; !st.calls && waited < 5000; waited++)
		sleep_ms(1);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.reason, VM_STOP_USER);
	sleep_ms(20);
	assert_int_equal(rd(s, LSR) & 0x01, 0);

	console_stop(con);
	assert_true(pty_is_cooked(&p));
	console_destroy(con);
	serial_destroy(s);
	pty_close(&p);
}

/* A fatal signal while the terminal is raw: it is restored, and the
 * process still dies of that signal. */
static void test_console_tty_signal_restores(void **state)
{
	static const int sigs[] = { SIGTERM, SIGSEGV };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct pty p;
		pid_t pid;
		int wstatus;

		pty_open(&p);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct console *con;
			struct serial *s;
			struct serial_output out;

			/* cmocka and the sanitizers catch SIGSEGV themselves;
			 * the console only hooks signals left at SIG_DFL. */
			signal(sigs[i], SIG_DFL);
			con = console_create(p.slave, p.slave, NULL, NULL);
			out = console_serial_output(con);
			s = serial_create(NULL, &out);
			console_attach_serial(con, s);
			if (console_start(con) || !pty_is_raw(&p))
				_exit(2);
			raise(sigs[i]);
			_exit(3);
		}
		assert_int_equal(waitpid(pid, &wstatus, 0), pid);
		assert_true(WIFSIGNALED(wstatus));
		assert_int_equal(WTERMSIG(wstatus), sigs[i]);
		assert_true(pty_is_cooked(&p));
		pty_close(&p);
	}
}

/* exit() with the console still running restores it too (atexit). */
static void test_console_tty_exit_restores(void **state)
{
	struct pty p;
	pid_t pid;
	int wstatus;

	(void)state;
	pty_open(&p);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct console *con;
		struct serial *s;
		struct serial_output out;

		con = console_create(p.slave, p.slave, NULL, NULL);
		out = console_serial_output(con);
		s = serial_create(NULL, &out);
		console_attach_serial(con, s);
		if (console_start(con) || !pty_is_raw(&p))
			_exit(2);
		exit(7);
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 7);
	assert_true(pty_is_cooked(&p));
	pty_close(&p);
}

/* Each test gets a fresh device. */
#define DEVICE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DEVICE_TEST(test_reset_state),
		DEVICE_TEST(test_divisor_latch),
		DEVICE_TEST(test_fcr),
		DEVICE_TEST(test_rx_interrupt),
		DEVICE_TEST(test_rx_trigger_and_timeout),
		DEVICE_TEST(test_rx_full_refused_then_rx_space),
		DEVICE_TEST(test_out2_gates_irq),
		DEVICE_TEST(test_thre_interrupt),
		DEVICE_TEST(test_tx_order),
		DEVICE_TEST(test_loopback),
		DEVICE_TEST(test_loopback_16450_overrun),
		DEVICE_TEST(test_irq_priorities),
		DEVICE_TEST(test_modem_status_interrupt),
		DEVICE_TEST(test_scratch),
		DEVICE_TEST(test_wide_and_stray_accesses),
		cmocka_unit_test(test_console_filter),
		cmocka_unit_test(test_console_pipe_input),
		cmocka_unit_test(test_console_output),
		cmocka_unit_test(test_console_no_input),
		cmocka_unit_test(test_console_tty_escapes),
		cmocka_unit_test(test_console_tty_signal_restores),
		cmocka_unit_test(test_console_tty_exit_restores),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
