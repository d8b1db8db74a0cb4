/* The host side of the serial console: guest output goes to out_fd, host
 * input from in_fd is pushed into the UART by an input thread.
 *
 * Wiring (the console and the UART need each other, so the link is made
 * in two steps):
 *
 *	con = console_create(STDIN_FILENO, STDOUT_FILENO, NULL, &stopper);
 *	out = console_serial_output(con);
 *	uart = serial_create(&irq, &out);
 *	console_attach_serial(con, uart);
 *	console_start(con);		(once the VM is about to run)
 *	...
 *	console_stop(con);		(before serial_destroy)
 *	serial_destroy(uart);
 *	console_destroy(con);
 *
 * When in_fd is a terminal, console_start() puts it in raw mode and every
 * exit path puts it back: console_stop(), an atexit handler, and handlers
 * for SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGSEGV and SIGABRT that restore
 * it and re-raise the signal with its default action. Those handlers are
 * installed only for signals still at SIG_DFL, so a handler the VMM set
 * up first is kept (and must then call console_stop() or
 * console_restore_terminal() itself). Only one console can own the
 * terminal at a time.
 *
 * On a terminal, Ctrl-A is an escape: Ctrl-A x stops the machine
 * (VM_STOP_USER), Ctrl-A Ctrl-A sends one Ctrl-A, and Ctrl-A followed by
 * anything else sends both bytes. When in_fd is not a terminal its bytes
 * go to the guest untouched, and end of file just ends input: the machine
 * keeps running.
 *
 * console_create() sets SIGPIPE to SIG_IGN (if it was SIG_DFL), so that a
 * closed output pipe ends console output instead of the process.
 */
#ifndef POPEK_DEVICES_CONSOLE_H
#define POPEK_DEVICES_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/serial.h"
#include "vmm/device.h"

#define CONSOLE_ESCAPE_CHAR 0x01	/* Ctrl-A */

struct console;

/* in_fd < 0 means no input. serial may be NULL and attached later; the
 * fds stay the caller's. Returns NULL on failure (errno set). */
struct console *console_create(int in_fd, int out_fd, struct serial *serial,
			       const struct vm_stopper *stopper);

/* The callbacks to give serial_create(): write to out_fd, and wake the
 * input thread when the guest drained the RX FIFO. */
struct serial_output console_serial_output(struct console *con);

/* Sets the UART input goes to. Call before console_start(). */
void console_attach_serial(struct console *con, struct serial *serial);

/* Takes the terminal (raw mode) and starts the input thread. Returns 0 or
 * a negative errno; on failure the terminal is left as it was. */
int console_start(struct console *con);

/* Stops and joins the input thread and gives the terminal back. Safe to
 * call when not started, and more than once. */
void console_stop(struct console *con);

/* Whether the guest printed a Linux kernel panic (devices/panic_watch.h).
 * The console stops the VM with VM_STOP_PANIC when the panic message ends;
 * a reset after the panic began should count as a panic too. */
bool console_guest_panicked(struct console *con);

/* Stops if needed and frees; the fds are not closed. */
void console_destroy(struct console *con);

/* Puts the terminal back as console_start() found it, if a console holds
 * it. Async-signal-safe: only tcsetattr(). */
void console_restore_terminal(void);

/* The Ctrl-A escape, as a pure function for the input thread and tests. */
struct console_escape {
	bool after_escape;	/* the previous byte was a lone Ctrl-A */
};

/* Filters n input bytes into out, which must have room for n + 1 bytes
 * (a Ctrl-A held back from the previous call can come out with the byte
 * after it). Returns how many bytes to send. Sets *stop when Ctrl-A x was
 * seen; the bytes after it are not looked at. */
size_t console_filter_input(struct console_escape *esc, const uint8_t *in,
			    size_t n, uint8_t *out, bool *stop);

#endif
