#include "stub-ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config.h"

void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int stub_start(void *opaque, const struct vm_config *cfg, char *err, size_t errlen)
{
	struct stub *s = opaque;
	char *json;

	if (s->fail_start) {
		snprintf(err, errlen, "stub: start refused on purpose");
		return -1;
	}
	json = vm_config_to_json(cfg);
	say("start %s", json ? json : "null");
	free(json);
	s->state = VM_STATE_RUNNING;
	return 0;
}

static int stub_pause(void *opaque, char *err, size_t errlen)
{
	struct stub *s = opaque;

	(void)err;
	(void)errlen;
	say("pause");
	s->state = VM_STATE_PAUSED;
	return 0;
}

static int stub_resume(void *opaque, char *err, size_t errlen)
{
	struct stub *s = opaque;

	(void)err;
	(void)errlen;
	say("resume");
	s->state = VM_STATE_RUNNING;
	return 0;
}

static int stub_ctrl_alt_del(void *opaque, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("ctrl_alt_del");
	return 0;
}

static int stub_balloon_target(void *opaque, uint32_t mib, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("balloon_target %u", mib);
	return 0;
}

static int stub_balloon_interval(void *opaque, uint32_t s, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("balloon_interval %u", s);
	return 0;
}

static int stub_balloon_stats(void *opaque, char **json, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	*json = strdup("{\"target_pages\":0,\"actual_pages\":0,\"target_mib\":0,\"actual_mib\":0}");
	return *json ? 0 : -1;
}

static int stub_update_drive(void *opaque, const struct drive_config *d, char *err,
			     size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("update_drive %s %s", d->id, d->path_on_host);
	return 0;
}

static int stub_update_net(void *opaque, const struct net_config *n, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("update_net %s", n->id);
	return 0;
}

static int stub_logger(void *opaque, const struct logger_config *l, char *err, size_t errlen)
{
	(void)opaque;
	(void)err;
	(void)errlen;
	say("logger %s %s", l->log_path ? l->log_path : "-", vm_config_level_name(l->level));
	return 0;
}

static enum vm_state stub_state(void *opaque)
{
	struct stub *s = opaque;

	metrics_inc(s->state_calls);
	return s->state;
}

const struct api_ops stub_ops = {
	.start = stub_start,
	.pause = stub_pause,
	.resume = stub_resume,
	.ctrl_alt_del = stub_ctrl_alt_del,
	.set_balloon_target = stub_balloon_target,
	.set_balloon_stats_interval = stub_balloon_interval,
	.balloon_stats = stub_balloon_stats,
	.update_drive = stub_update_drive,
	.update_net = stub_update_net,
	.configure_logger = stub_logger,
	.state = stub_state,
};
