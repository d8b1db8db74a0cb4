#include "api/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct metrics {
	/* Registration and flushing; increments never take it. */
	pthread_mutex_t lock;
	/* Fixed storage, so the pointers handed out stay valid. */
	struct metrics_counter counters[METRICS_MAX_COUNTERS];
	_Atomic unsigned ncounters;

	int fd;                     /* the metrics path, -1 when not configured */
	pthread_t thread;
	bool thread_running;
	bool stopping;              /* under lock */
	pthread_cond_t wake;
	unsigned interval_s;
	/* Called before each line is made, without the lock. */
	void (*refresh)(void *opaque);
	void *refresh_opaque;
};

struct metrics *metrics_create(void)
{
	struct metrics *m = calloc(1, sizeof(*m));
	pthread_condattr_t ca;

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	/* The periodic wait is on CLOCK_MONOTONIC: a wall-clock step must
	 * not stall or hurry the flushes. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->wake, &ca);
	pthread_condattr_destroy(&ca);
	m->fd = -1;
	return m;
}

static struct metrics_counter *lookup(struct metrics *m, const char *group, const char *name,
				      bool gauge)
{
	struct metrics_counter *c = NULL;
	unsigned i, n;

	if (!m || !group || !name || !*group || !*name || strlen(group) > METRICS_NAME_MAX ||
	    strlen(name) > METRICS_NAME_MAX)
		return NULL;
	pthread_mutex_lock(&m->lock);
	n = atomic_load(&m->ncounters);
	for (i = 0; i < n; i++) {
		if (!strcmp(m->counters[i].group, group) && !strcmp(m->counters[i].name, name)) {
			c = &m->counters[i];
			goto out;
		}
	}
	if (n < METRICS_MAX_COUNTERS) {
		c = &m->counters[n];
		strcpy(c->group, group);
		strcpy(c->name, name);
		c->gauge = gauge;
		/* Published after its name is written. */
		atomic_store(&m->ncounters, n + 1);
	}
out:
	pthread_mutex_unlock(&m->lock);
	return c;
}

struct metrics_counter *metrics_counter(struct metrics *m, const char *group, const char *name)
{
	return lookup(m, group, name, false);
}

struct metrics_counter *metrics_gauge(struct metrics *m, const char *group, const char *name)
{
	return lookup(m, group, name, true);
}

/* Builds the line under m->lock; with advance, the next period starts. */
static char *format_line(struct metrics *m, bool advance)
{
	struct timespec ts;
	unsigned i, n;
	json_t *root;
	char *s, *line;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &ts);
	root = json_object();
	if (!root)
		return NULL;
	json_object_set_new(root, "utc_timestamp_ms",
			    json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	n = atomic_load(&m->ncounters);
	for (i = 0; i < n; i++) {
		struct metrics_counter *c = &m->counters[i];
		uint64_t v = atomic_load_explicit(&c->value, memory_order_relaxed);
		uint64_t shown = c->gauge ? v : v - c->reported;
		json_t *g = json_object_get(root, c->group);

		if (!g) {
			g = json_object();
			json_object_set_new(root, c->group, g);
		}
		/* JSON integers are signed 64-bit here; a counter does not
		 * reach 2^63 in a period. */
		json_object_set_new(g, c->name, json_integer((json_int_t)(shown & INT64_MAX)));
		if (advance)
			c->reported = v;
	}
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		return NULL;
	len = strlen(s);
	line = realloc(s, len + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	return line;
}

char *metrics_snapshot(struct metrics *m)
{
	char *line;

	pthread_mutex_lock(&m->lock);
	line = format_line(m, false);
	pthread_mutex_unlock(&m->lock);
	return line;
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * A named pipe whose reader went away makes write() raise SIGPIPE, which
 * would kill the VMM. SIGPIPE is blocked in this thread for the write, and
 * one it raised is taken back before the old mask returns (the usual way
 * to get EPIPE without changing the process's disposition).
 */
static int write_nosigpipe(int fd, const char *buf, size_t len)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pipe_set, old, pending;
	bool was_pending;
	int ret;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	ret = write_all(fd, buf, len);
	if (ret == -EPIPE && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static int flush_locked(struct metrics *m, int fd)
{
	char *line = format_line(m, true);
	int ret;

	if (!line)
		return -ENOMEM;
	ret = write_nosigpipe(fd, line, strlen(line));
	free(line);
	return ret;
}

void metrics_set_refresh(struct metrics *m, void (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&m->lock);
	m->refresh = fn;
	m->refresh_opaque = opaque;
	pthread_mutex_unlock(&m->lock);
}

/* Outside m->lock: the hook registers and counts, which take it. */
static void refresh(struct metrics *m)
{
	void (*fn)(void *);
	void *opaque;

	pthread_mutex_lock(&m->lock);
	fn = m->refresh;
	opaque = m->refresh_opaque;
	pthread_mutex_unlock(&m->lock);
	if (fn)
		fn(opaque);
}

int metrics_flush(struct metrics *m, int fd)
{
	int ret;

	refresh(m);
	pthread_mutex_lock(&m->lock);
	ret = flush_locked(m, fd);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int metrics_flush_now(struct metrics *m)
{
	int ret = 0;

	refresh(m);
	pthread_mutex_lock(&m->lock);
	if (m->fd >= 0)
		ret = flush_locked(m, m->fd);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static void *flush_thread(void *arg)
{
	struct metrics *m = arg;
	struct timespec next;

	pthread_mutex_lock(&m->lock);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!m->stopping) {
		next.tv_sec += m->interval_s;
		while (!m->stopping &&
		       pthread_cond_timedwait(&m->wake, &m->lock, &next) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&m->lock);
		refresh(m);
		pthread_mutex_lock(&m->lock);
		/* A full pipe (nobody reading) loses this line, as with
		 * Firecracker: the VMM must never block on its observer. */
		flush_locked(m, m->fd);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int metrics_start(struct metrics *m, const char *path, unsigned interval_s)
{
	int fd, ret;

	pthread_mutex_lock(&m->lock);
	if (m->fd >= 0) {
		pthread_mutex_unlock(&m->lock);
		return -EEXIST;
	}
	/* O_RDWR so that opening a named pipe neither blocks nor fails with
	 * ENXIO while no reader is there (Firecracker opens it the same
	 * way); O_NONBLOCK so that writing never stalls the VMM. */
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		ret = -errno;
		pthread_mutex_unlock(&m->lock);
		return ret;
	}
	m->fd = fd;
	m->interval_s = interval_s ? interval_s : METRICS_FLUSH_INTERVAL_S;
	m->stopping = false;
	ret = -pthread_create(&m->thread, NULL, flush_thread, m);
	m->thread_running = !ret;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

void metrics_destroy(struct metrics *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	/* The thread writes the last line as it leaves. */
	if (m->thread_running)
		pthread_join(m->thread, NULL);
	if (m->fd >= 0)
		close(m->fd);
	pthread_cond_destroy(&m->wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
