#include "devices/panic_watch.h"

#include <string.h>

static void pattern_init(struct panic_pattern *p, const char *text)
{
	size_t k = 0;

	p->text = text;
	p->len = strlen(text);
	p->matched = 0;
	/* KMP failure function: fail[i] is the length of the longest proper
	 * prefix of text[0..i] that is also its suffix. */
	p->fail[0] = 0;
	for (size_t i = 1; i < p->len; i++) {
		while (k && text[i] != text[k])
			k = p->fail[k - 1];
		if (text[i] == text[k])
			k++;
		p->fail[i] = (unsigned char)k;
	}
}

/* One byte; true when the whole pattern has just been seen. */
static int pattern_step(struct panic_pattern *p, uint8_t c)
{
	while (p->matched && (char)c != p->text[p->matched])
		p->matched = p->fail[p->matched - 1];
	if ((char)c == p->text[p->matched])
		p->matched++;
	if (p->matched == p->len) {
		p->matched = p->fail[p->len - 1];
		return 1;
	}
	return 0;
}

void panic_watch_init(struct panic_watch *w)
{
	pattern_init(&w->begin, "Kernel panic - not syncing");
	pattern_init(&w->end, "end Kernel panic - not syncing");
}

enum panic_event panic_watch_feed(struct panic_watch *w, const uint8_t *buf, size_t len)
{
	enum panic_event ev = PANIC_NONE;

	/* Both patterns see every byte; the end outranks the beginning. */
	for (size_t i = 0; i < len; i++) {
		int end = pattern_step(&w->end, buf[i]);
		int begin = pattern_step(&w->begin, buf[i]);

		if (end)
			ev = PANIC_END;
		else if (begin && ev == PANIC_NONE)
			ev = PANIC_BEGIN;
	}
	return ev;
}
