/* Recognises a Linux kernel panic in the serial console stream.
 *
 * pvpanic tells the VMM about a panic only once its driver is loaded; a
 * kernel that panics earlier (no root file system, a bad init=) says so
 * only on the console. Linux prints "Kernel panic - not syncing: <why>"
 * first, and, when it is not going to reboot, "---[ end Kernel panic - not
 * syncing: <why> ]---" last (kernel/panic.c). A streaming matcher (KMP)
 * sees both across any split of the byte stream. */
#ifndef POPEK_DEVICES_PANIC_WATCH_H
#define POPEK_DEVICES_PANIC_WATCH_H

#include <stddef.h>
#include <stdint.h>

enum panic_event {
	PANIC_NONE,
	PANIC_BEGIN,     /* the panic message started */
	PANIC_END,       /* the kernel finished printing it and will hang */
};

#define PANIC_WATCH_MAX_PATTERN 40

struct panic_pattern {
	const char *text;
	size_t len;
	unsigned char fail[PANIC_WATCH_MAX_PATTERN];
	size_t matched;
};

struct panic_watch {
	struct panic_pattern begin, end;
};

void panic_watch_init(struct panic_watch *w);

/* Feeds console bytes; returns PANIC_END if the end was seen in them,
 * else PANIC_BEGIN if the beginning was, else PANIC_NONE. */
enum panic_event panic_watch_feed(struct panic_watch *w, const uint8_t *buf, size_t len);

#endif
