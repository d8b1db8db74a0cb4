/* Pausing without KVM: the park/unpark state machine (struct vm_park) and
 * vm_pause/vm_resume/vm_request_stop driven by plain threads that run the
 * vCPU loop's protocol (check the request with a relaxed load, park). The
 * vCPUs have no KVM fd and no kvm_run, so kicks and KVM_KVMCLOCK_CTRL are
 * skipped; tests/system and the report of the change cover those. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define NTHREADS 4

struct worker {
	struct vm *vm;
	pthread_t thread;
	atomic_ulong iterations;	/* "guest progress" */
	bool started;
};

struct fixture {
	struct vm vm;
	struct worker w[NTHREADS];
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The vCPU loop of vcpu.c, with "KVM_RUN" a counter bump. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct vm *vm = w->vm;

	while (vm_stop_reason(vm) == VM_STOP_NONE) {
		if (vm_park_requested(&vm->park)) {
			vm_park_self(&vm->park);
			continue;
		}
		atomic_fetch_add(&w->iterations, 1);
		sched_yield();
	}
	return NULL;
}

/* What vm_create sets up for stopping and pausing, with vCPUs that have
 * neither a KVM fd nor a kvm_run page. */
static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	struct vm *vm = &f->vm;

	vm->fd = -1;
	vm->ncpus = NTHREADS;
	atomic_init(&vm->stop_reason, VM_STOP_NONE);
	atomic_init(&vm->stop_status, 0);
	atomic_init(&vm->paused, false);
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(vm->stop_eventfd >= 0);
	assert_int_equal(vm_park_init(&vm->park), 0);
	assert_int_equal(pthread_mutex_init(&vm->ctl_lock, NULL), 0);
	vm->sync_ready = true;
	vm->vcpus = test_calloc(NTHREADS, sizeof(*vm->vcpus));
	for (unsigned i = 0; i < NTHREADS; i++) {
		vm->vcpus[i].vm = vm;
		vm->vcpus[i].index = i;
		vm->vcpus[i].fd = -1;
		f->w[i].vm = vm;
	}
	*state = f;
	return 0;
}

static void start_workers(struct fixture *f)
{
	for (unsigned i = 0; i < NTHREADS; i++) {
		vm_park_add_thread(&f->vm.park);
		assert_int_equal(pthread_create(&f->w[i].thread, NULL, worker_main, &f->w[i]), 0);
		f->w[i].started = true;
	}
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct vm *vm = &f->vm;

	vm_request_stop(vm, VM_STOP_USER, 0);
	for (unsigned i = 0; i < NTHREADS; i++) {
		if (f->w[i].started)
			pthread_join(f->w[i].thread, NULL);
	}
	vm_park_destroy(&vm->park);
	pthread_mutex_destroy(&vm->ctl_lock);
	close(vm->stop_eventfd);
	test_free(vm->vcpus);
	test_free(f);
	return 0;
}

static unsigned long progress(struct fixture *f)
{
	unsigned long sum = 0;

	for (unsigned i = 0; i < NTHREADS; i++)
		sum += atomic_load(&f->w[i].iterations);
	return sum;
}

/* Waits (bounded) until every worker made progress since before. */
static void expect_all_running(struct fixture *f)
{
	unsigned long before[NTHREADS];
	unsigned i, tries;

	for (i = 0; i < NTHREADS; i++)
		before[i] = atomic_load(&f->w[i].iterations);
	for (tries = 0; tries < 2000; tries++) {
		for (i = 0; i < NTHREADS; i++) {
			if (atomic_load(&f->w[i].iterations) == before[i])
				break;
		}
		if (i == NTHREADS)
			return;
		sleep_ms(1);
	}
	fail_msg("worker %u did not run", i);
}

static void test_before_start(void **state)
{
	struct fixture *f = *state;
	char err[128] = "";

	assert_int_equal(vm_pause(&f->vm, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not started"));
	assert_int_equal(vm_resume(&f->vm, err, sizeof(err)), -EALREADY);
	assert_false(vm_paused(&f->vm));
}

static void test_pause_resume(void **state)
{
	struct fixture *f = *state;
	char err[128] = "";
	unsigned long p;

	start_workers(f);
	expect_all_running(f);
	assert_int_equal(vm_pause(&f->vm, err, sizeof(err)), 0);
	assert_true(vm_paused(&f->vm));
	/* Every thread is parked: no progress at all. */
	assert_int_equal(f->vm.park.nparked, NTHREADS);
	p = progress(f);
	sleep_ms(20);
	assert_int_equal(progress(f), p);

	/* Idempotence is an error the API layer reports. */
	assert_int_equal(vm_pause(&f->vm, err, sizeof(err)), -EALREADY);
	assert_string_equal(err, "the VM is already paused");
	assert_int_equal(vm_resume(&f->vm, err, sizeof(err)), 0);
	assert_false(vm_paused(&f->vm));
	expect_all_running(f);
	assert_int_equal(vm_resume(&f->vm, err, sizeof(err)), -EALREADY);
	assert_string_equal(err, "the VM is not paused");
}

/* Back-to-back cycles: a thread woken by one resume may meet the next
 * pause before it ran at all; it must stay counted as parked. */
static void test_many_cycles(void **state)
{
	struct fixture *f = *state;
	char err[128] = "";
	int i;

	start_workers(f);
	for (i = 0; i < 2000; i++) {
		assert_int_equal(vm_pause(&f->vm, err, sizeof(err)), 0);
		assert_int_equal(f->vm.park.nparked, NTHREADS);
		assert_int_equal(vm_resume(&f->vm, err, sizeof(err)), 0);
	}
	expect_all_running(f);
}

/* A paused VM can be stopped: its parked threads wake and exit (the
 * teardown joins them), and it can no longer be paused or resumed. */
static void test_stop_while_paused(void **state)
{
	struct fixture *f = *state;
	char err[128] = "";

	start_workers(f);
	assert_int_equal(vm_pause(&f->vm, err, sizeof(err)), 0);
	vm_request_stop(&f->vm, VM_STOP_USER, 8);
	for (unsigned i = 0; i < NTHREADS; i++) {
		pthread_join(f->w[i].thread, NULL);
		f->w[i].started = false;
	}
	/* Still "paused" (nothing runs); resuming is allowed and harmless. */
	assert_true(vm_paused(&f->vm));
	assert_int_equal(vm_resume(&f->vm, err, sizeof(err)), 0);
	assert_int_equal(vm_pause(&f->vm, err, sizeof(err)), -ESHUTDOWN);
	assert_non_null(strstr(err, "stopping"));
	assert_int_equal(vm_resume(&f->vm, err, sizeof(err)), -ESHUTDOWN);
}

/* A pauser waiting for a thread that never parks: a stop ends the wait
 * (-ESHUTDOWN), and so does the timeout (-ETIMEDOUT); neither leaves a
 * thread parked once the request is withdrawn. */
static void *late_stop(void *arg)
{
	struct vm *vm = arg;

	sleep_ms(50);
	vm_request_stop(vm, VM_STOP_POWEROFF, 0);
	return NULL;
}

static void test_wait_ends(void **state)
{
	struct fixture *f = *state;
	struct vm_park *p = &f->vm.park;
	struct timespec t0, t1;
	pthread_t stopper;
	long ms;

	start_workers(f);
	vm_park_add_thread(p);	/* one that never checks */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	vm_park_request(p);
	assert_int_equal(vm_park_wait(p, 30), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 29);
	assert_int_equal(p->nparked, NTHREADS);
	vm_park_release(p);
	expect_all_running(f);

	vm_park_request(p);
	assert_int_equal(pthread_create(&stopper, NULL, late_stop, &f->vm), 0);
	assert_int_equal(vm_park_wait(p, 10000), -ESHUTDOWN);
	pthread_join(stopper, NULL);
	vm_park_remove_thread(p);
	vm_park_release(p);
}

/* Threads taking part can leave (a vCPU thread that failed to start):
 * the waiting pauser then has all it waits for. */
static void *late_remove(void *arg)
{
	struct vm_park *p = arg;

	sleep_ms(20);
	vm_park_remove_thread(p);
	return NULL;
}

static void test_remove_thread(void **state)
{
	struct fixture *f = *state;
	struct vm_park *p = &f->vm.park;
	pthread_t t;

	start_workers(f);
	vm_park_add_thread(p);
	assert_int_equal(vm_park_threads(p), NTHREADS + 1);
	vm_park_request(p);
	assert_int_equal(pthread_create(&t, NULL, late_remove, p), 0);
	assert_int_equal(vm_park_wait(p, 10000), 0);
	pthread_join(t, NULL);
	assert_int_equal(vm_park_threads(p), NTHREADS);
	vm_park_release(p);
	expect_all_running(f);
}

#define PAUSE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PAUSE_TEST(test_before_start),
		PAUSE_TEST(test_pause_resume),
		PAUSE_TEST(test_many_cycles),
		PAUSE_TEST(test_stop_while_paused),
		PAUSE_TEST(test_wait_ends),
		PAUSE_TEST(test_remove_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
