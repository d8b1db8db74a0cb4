/* Fake VM controls (struct api_ops) for the API stubs (api-stub.c,
 * rpc-stub.c) that tests/system/test_api.py drives: no KVM, no VM. Each
 * call is reported on stdout, one line each ("start {config json}",
 * "pause", "resume", ...), and the controls keep a state that GET /
 * reports. */
#ifndef POPEK_TESTS_STUB_OPS_H
#define POPEK_TESTS_STUB_OPS_H

#include <stdbool.h>

#include "api/metrics.h"
#include "api/routes.h"

struct stub {
	enum vm_state state;
	bool fail_start;
	/* Counted on each state call when set (rpc-stub: the VMM's counters
	 * that popek-api reports in its metrics lines). */
	struct metrics_counter *state_calls;
};

extern const struct api_ops stub_ops;

/* One line on stdout, flushed. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
