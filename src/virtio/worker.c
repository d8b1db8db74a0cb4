#include "virtio/worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/virtio.h"

struct watch {
	void (*fn)(void *opaque);
	void *opaque;
	struct watch *next;
};

struct virtio_worker {
	char name[16];
	int epfd;
	int stop_fd;               /* readable: the thread leaves its loop */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;      /* the watch list */
	struct watch *watches;
	struct watch stop_watch;   /* marks stop_fd's events */
};

struct virtio_worker *virtio_worker_create(const char *name, char *err, size_t errlen)
{
	struct virtio_worker *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!w) {
		snprintf(err, errlen, "virtio worker: out of memory");
		return NULL;
	}
	snprintf(w->name, sizeof(w->name), "%s", name ? name : "virtio");
	w->stop_fd = -1;
	w->epfd = -1;
	pthread_mutex_init(&w->lock, NULL);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0) {
		snprintf(err, errlen, "virtio worker: epoll_create1: %s", strerror(errno));
		goto fail;
	}
	w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->stop_fd < 0) {
		snprintf(err, errlen, "virtio worker: eventfd: %s", strerror(errno));
		goto fail;
	}
	ev.data.ptr = &w->stop_watch;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->stop_fd, &ev) < 0) {
		snprintf(err, errlen, "virtio worker: epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	return w;
fail:
	virtio_worker_destroy(w);
	return NULL;
}

int virtio_worker_watch(struct virtio_worker *w, int fd, void (*fn)(void *opaque), void *opaque)
{
	struct watch *wa = calloc(1, sizeof(*wa));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!wa)
		return -ENOMEM;
	wa->fn = fn;
	wa->opaque = opaque;
	ev.data.ptr = wa;
	pthread_mutex_lock(&w->lock);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int ret = -errno;

		pthread_mutex_unlock(&w->lock);
		free(wa);
		return ret;
	}
	wa->next = w->watches;
	w->watches = wa;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static void queue_kicked(void *opaque)
{
	struct virtio_vq *vq = opaque;

	virtio_dev_process_queue(vq->dev, vq->index);
}

int virtio_worker_watch_queues(struct virtio_worker *w, struct virtio_dev *d)
{
	for (unsigned i = 0; i < d->nqueues; i++) {
		int ret = virtio_worker_watch(w, d->vqs[i].kick_fd, queue_kicked, &d->vqs[i]);

		if (ret)
			return ret;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct virtio_worker *w = arg;
	struct epoll_event events[16];

	for (;;) {
		int n = epoll_wait(w->epfd, events, 16, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			pr_err("%s: epoll_wait: %s", w->name, strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct watch *wa = events[i].data.ptr;

			if (wa == &w->stop_watch)
				return NULL;
			wa->fn(wa->opaque);
		}
	}
}

int virtio_worker_start(struct virtio_worker *w, char *err, size_t errlen)
{
	sigset_t all, old;
	int ret;

	/* Signals belong to the main thread (signalfd) and the vCPUs (the
	 * kick signal): the worker inherits a fully blocked mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		snprintf(err, errlen, "%s: pthread_create: %s", w->name, strerror(ret));
		return -ret;
	}
	pthread_setname_np(w->thread, w->name);
	w->started = true;
	return 0;
}

void virtio_worker_destroy(struct virtio_worker *w)
{
	struct watch *wa, *next;
	uint64_t one = 1;

	if (!w)
		return;
	if (w->started) {
		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			pr_err("%s: stopping: %s", w->name, strerror(errno));
		pthread_join(w->thread, NULL);
	}
	for (wa = w->watches; wa; wa = next) {
		next = wa->next;
		free(wa);
	}
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	if (w->epfd >= 0)
		close(w->epfd);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
