/* Host terminal <-> UART. The input thread sleeps in poll() on in_fd and an
 * eventfd; the eventfd is written to stop it and by the UART's rx_space
 * callback when the guest made room, so input waiting for the guest is
 * kept, never dropped, and never polled for. */
#include "devices/console.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "devices/panic_watch.h"
#include "util/log.h"
#include "vmm/vm.h"

#define CONSOLE_READ_LEN 128

struct console {
	int in_fd, out_fd;
	int wake_fd;			/* eventfd: stop request or rx space */
	struct serial *serial;
	struct vm_stopper stopper;
	bool escapes;			/* in_fd is a terminal */
	struct console_escape esc;
	bool started;
	pthread_t thread;
	atomic_bool stopping;
	atomic_bool out_dead;		/* out_fd failed: drop guest output */
	struct panic_watch panic;	/* under the UART's lock, like all output */
	atomic_bool guest_panicked;
	/* Filtered input the UART has not taken yet. */
	uint8_t pending[CONSOLE_READ_LEN + 1];
	size_t pending_off, pending_len;
};

/* ---- Terminal state, process-wide: a signal handler needs it. ---- */

static const int fatal_signals[] = {
	SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGSEGV, SIGABRT,
};
#define NR_FATAL_SIGNALS (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static struct termios saved_termios;
static int saved_fd = -1;
static volatile sig_atomic_t termios_saved;
static bool handler_installed[NR_FATAL_SIGNALS];
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

void console_restore_terminal(void)
{
	if (termios_saved)
		tcsetattr(saved_fd, TCSANOW, &saved_termios);
}

/* Put the terminal back, then die of the signal as if we had not caught
 * it: SA_RESETHAND restored the default action on entry, and the raised
 * signal is delivered at the latest when this handler returns (for a
 * fault, the faulting instruction then runs again under SIG_DFL). */
static void console_fatal_signal(int sig)
{
	int saved_errno = errno;

	console_restore_terminal();
	raise(sig);
	errno = saved_errno;
}

static void console_atexit(void)
{
	console_restore_terminal();
}

static void register_atexit(void)
{
	atexit(console_atexit);
}

static void install_signal_handlers(void)
{
	struct sigaction sa, old;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = console_fatal_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < NR_FATAL_SIGNALS; i++) {
		handler_installed[i] = false;
		if (sigaction(fatal_signals[i], NULL, &old) ||
		    old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
			continue;
		if (!sigaction(fatal_signals[i], &sa, NULL))
			handler_installed[i] = true;
	}
}

/* Back to SIG_DFL, unless someone replaced our handler meanwhile. */
static void remove_signal_handlers(void)
{
	struct sigaction dfl, cur;
	size_t i;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (i = 0; i < NR_FATAL_SIGNALS; i++) {
		if (!handler_installed[i])
			continue;
		handler_installed[i] = false;
		if (sigaction(fatal_signals[i], NULL, &cur) ||
		    cur.sa_handler != console_fatal_signal)
			continue;
		sigaction(fatal_signals[i], &dfl, NULL);
	}
}

/* Raw input so every key reaches the guest; raw output too (no "\n" to
 * "\r\n"): the guest sends "\r\n" itself, and our log lines switch to
 * "\r\n" while this lasts. */
static int console_take_terminal(int fd)
{
	struct termios raw;

	if (tcgetattr(fd, &saved_termios))
		return -errno;
	raw = saved_termios;
	cfmakeraw(&raw);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	saved_fd = fd;
	/* The handlers must see saved_termios complete before the flag. */
	atomic_signal_fence(memory_order_seq_cst);
	termios_saved = 1;
	pthread_once(&atexit_once, register_atexit);
	install_signal_handlers();
	if (tcsetattr(fd, TCSANOW, &raw)) {
		int err = -errno;

		termios_saved = 0;
		remove_signal_handlers();
		return err;
	}
	log_set_crlf(true);
	return 0;
}

static void console_give_back_terminal(void)
{
	if (!termios_saved)
		return;
	console_restore_terminal();
	termios_saved = 0;
	remove_signal_handlers();
	log_set_crlf(false);
}

/* ---- Escape filter ---- */

size_t console_filter_input(struct console_escape *esc, const uint8_t *in,
			    size_t n, uint8_t *out, bool *stop)
{
	size_t i, len = 0;

	*stop = false;
	for (i = 0; i < n; i++) {
		uint8_t c = in[i];

		if (!esc->after_escape) {
			if (c == CONSOLE_ESCAPE_CHAR)
				esc->after_escape = true;
			else
				out[len++] = c;
			continue;
		}
		esc->after_escape = false;
		if (c == 'x') {
			*stop = true;
			break;
		}
		out[len++] = CONSOLE_ESCAPE_CHAR;
		if (c != CONSOLE_ESCAPE_CHAR)
			out[len++] = c;
	}
	return len;
}

/* ---- Output: called by the UART, with its lock held ---- */

static void console_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *con = opaque;
	struct pollfd pfd = { .fd = con->out_fd, .events = POLLOUT };
	ssize_t n;

	switch (panic_watch_feed(&con->panic, buf, len)) {
	case PANIC_BEGIN:
		/* A reboot that follows (panic=N) still counts as a panic. */
		atomic_store(&con->guest_panicked, true);
		break;
	case PANIC_END:
		/* The kernel has said all it will and now spins forever. */
		atomic_store(&con->guest_panicked, true);
		vm_stopper_request(&con->stopper, VM_STOP_PANIC, POPEK_EXIT_GUEST_PANIC);
		break;
	case PANIC_NONE:
		break;
	}

	while (len && !atomic_load(&con->out_dead)) {
		n = write(con->out_fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			poll(&pfd, 1, -1);
		} else {
			/* EPIPE and friends: the guest keeps running unheard. */
			atomic_store(&con->out_dead, true);
			pr_warn("console: output stopped: %s",
				n < 0 ? strerror(errno) : "write returned 0");
		}
	}
}

static void console_wake(struct console *con)
{
	uint64_t one = 1;

	/* Only fails if the counter would overflow: it is awake then. */
	if (write(con->wake_fd, &one, sizeof(one)) < 0)
		return;
}

static void console_rx_space(void *opaque)
{
	console_wake(opaque);
}

bool console_guest_panicked(struct console *con)
{
	return atomic_load(&con->guest_panicked);
}

struct serial_output console_serial_output(struct console *con)
{
	return (struct serial_output){
		.write = console_write,
		.rx_space = console_rx_space,
		.opaque = con,
	};
}

void console_attach_serial(struct console *con, struct serial *serial)
{
	con->serial = serial;
}

/* ---- Input thread ---- */

static void console_drain_wake(struct console *con)
{
	uint64_t count;

	if (read(con->wake_fd, &count, sizeof(count)) < 0)
		return;
}

/* Sleeps until woken (stop or rx space); no input is read meanwhile. */
static void console_wait_wake(struct console *con)
{
	struct pollfd pfd = { .fd = con->wake_fd, .events = POLLIN };

	if (poll(&pfd, 1, -1) > 0)
		console_drain_wake(con);
}

/* Reads one chunk from in_fd. Returns false when input has ended. */
static bool console_read_input(struct console *con)
{
	uint8_t buf[CONSOLE_READ_LEN];
	bool stop = false;
	ssize_t n;

	n = read(con->in_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n < 0)
		pr_warn("console: input stopped: %s", strerror(errno));
	if (n <= 0)
		return false;
	if (!con->escapes) {
		memcpy(con->pending, buf, (size_t)n);
		con->pending_len = (size_t)n;
	} else {
		con->pending_len = console_filter_input(&con->esc, buf,
							(size_t)n,
							con->pending, &stop);
	}
	con->pending_off = 0;
	if (stop)
		vm_stopper_request(&con->stopper, VM_STOP_USER, 0);
	return !stop;
}

/* Pushes pending input; returns whether all of it was taken. When not,
 * the UART owes us an rx_space call, which writes wake_fd. */
static bool console_push_pending(struct console *con)
{
	size_t len = con->pending_len - con->pending_off;

	if (!len)
		return true;
	con->pending_off += serial_receive(con->serial,
					   con->pending + con->pending_off,
					   len);
	return con->pending_off == con->pending_len;
}

static void *console_thread(void *arg)
{
	struct console *con = arg;
	struct pollfd pfd[2] = {
		{ .fd = con->wake_fd, .events = POLLIN },
		{ .fd = con->in_fd, .events = POLLIN },
	};
	bool input = con->in_fd >= 0;

	while (!atomic_load(&con->stopping)) {
		if (!console_push_pending(con) || !input) {
			console_wait_wake(con);
			continue;
		}
		if (poll(pfd, 2, -1) < 0)
			continue;	/* EINTR */
		if (pfd[0].revents)
			console_drain_wake(con);
		else if (pfd[1].revents)
			input = console_read_input(con);
	}
	return NULL;
}

int console_start(struct console *con)
{
	int err;

	if (con->started)
		return 0;
	if (!con->serial)
		return -EINVAL;
	if (con->escapes) {
		err = console_take_terminal(con->in_fd);
		if (err)
			return err;
	}
	atomic_store(&con->stopping, false);
	err = -pthread_create(&con->thread, NULL, console_thread, con);
	if (err) {
		console_give_back_terminal();
		return err;
	}
	con->started = true;
	return 0;
}

void console_stop(struct console *con)
{
	if (!con || !con->started)
		return;
	atomic_store(&con->stopping, true);
	console_wake(con);
	pthread_join(con->thread, NULL);
	con->started = false;
	if (con->escapes)
		console_give_back_terminal();
}

/* A closed pipe must end our output, not the process. */
static void ignore_sigpipe(void)
{
	struct sigaction old, ign;

	if (sigaction(SIGPIPE, NULL, &old) || old.sa_handler != SIG_DFL ||
	    (old.sa_flags & SA_SIGINFO))
		return;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGPIPE, &ign, NULL);
}

struct console *console_create(int in_fd, int out_fd, struct serial *serial,
			       const struct vm_stopper *stopper)
{
	struct console *con = calloc(1, sizeof(*con));

	if (!con)
		return NULL;
	con->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (con->wake_fd < 0) {
		free(con);
		return NULL;
	}
	con->in_fd = in_fd;
	con->out_fd = out_fd;
	con->serial = serial;
	if (stopper)
		con->stopper = *stopper;
	con->escapes = in_fd >= 0 && isatty(in_fd);
	atomic_init(&con->stopping, false);
	atomic_init(&con->out_dead, false);
	atomic_init(&con->guest_panicked, false);
	panic_watch_init(&con->panic);
	ignore_sigpipe();
	return con;
}

void console_destroy(struct console *con)
{
	if (!con)
		return;
	console_stop(con);
	close(con->wake_fd);
	free(con);
}
