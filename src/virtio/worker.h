/* The thread virtio devices work on: an epoll loop over file descriptors
 * (the queues' kick eventfds, later tap or disk completions), calling a
 * handler for each one that is readable. Device work never runs on a
 * vCPU thread: a guest notification is an ioeventfd the kernel signals
 * without leaving KVM_RUN, or, without ioeventfd, an eventfd write on the
 * exit path (virtio_dev_kick).
 *
 * Life cycle: create, watch (before or after start), start; destroy stops
 * and joins the thread before anything else: destroy the worker before
 * the devices it watches.
 */
#ifndef POPEK_VIRTIO_WORKER_H
#define POPEK_VIRTIO_WORKER_H

#include <stddef.h>

struct virtio_dev;
struct virtio_worker;

/* name: the thread's name (at most 15 characters are kept). NULL on
 * failure with err set. */
struct virtio_worker *virtio_worker_create(const char *name, char *err, size_t errlen);

/* Calls fn(opaque) on the worker whenever fd is readable (level-triggered:
 * fn must consume what made it readable). Returns 0 or -errno. */
int virtio_worker_watch(struct virtio_worker *w, int fd, void (*fn)(void *opaque), void *opaque);

/* Watches every queue of d: a kick runs virtio_dev_process_queue(). */
int virtio_worker_watch_queues(struct virtio_worker *w, struct virtio_dev *d);

/* Starts the thread (with every signal blocked). Returns 0 or -errno. */
int virtio_worker_start(struct virtio_worker *w, char *err, size_t errlen);

/* Stops the thread (after the handler running now returns), joins it and
 * frees the worker. NULL is fine. */
void virtio_worker_destroy(struct virtio_worker *w);

#endif
