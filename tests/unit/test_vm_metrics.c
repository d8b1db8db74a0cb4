/* vmm/vm_metrics: the VMM's statistics into the metrics registry: exits
 * by reason and vCPU, totals that add up, device groups named by id or
 * index, and counts that carry on across boots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/metrics.h"
#include "virtio/rng.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/vm_metrics.h"

struct fixture {
	struct metrics *reg;
	struct vm_metrics *vmm;
	struct vm vm;
	struct vcpu vcpus[2];
	struct virtio_rng rng;
	struct vmm_handles h;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->reg = metrics_create();
	f->vmm = vm_metrics_create(f->reg);
	f->vm.ncpus = 2;
	f->vm.vcpus = f->vcpus;
	f->h.vm = &f->vm;
	f->h.rng = &f->rng;
	*state = f;
	return f->reg && f->vmm ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	vm_metrics_destroy(f->vmm);
	metrics_destroy(f->reg);
	free(f);
	return 0;
}

static uint64_t value(struct fixture *f, const char *group, const char *name)
{
	return metrics_read(metrics_counter(f->reg, group, name));
}

/* What vCPU cpu has counted for reason k so far. */
static void exits(struct fixture *f, unsigned cpu, enum vcpu_exit_kind k, uint64_t n)
{
	atomic_store(&f->vcpus[cpu].stats.by_kind[k], n);
}

static void test_exits_by_reason_and_vcpu(void **state)
{
	struct fixture *f = *state;

	exits(f, 0, VCPU_EXIT_IO_OUT, 10);
	exits(f, 0, VCPU_EXIT_MMIO_READ, 3);
	exits(f, 1, VCPU_EXIT_IO_OUT, 5);
	vm_metrics_update(f->vmm, &f->h, NULL);
	assert_int_equal(value(f, "vcpu", "exits"), 18);
	assert_int_equal(value(f, "vcpu", "exit_io_out"), 15);
	assert_int_equal(value(f, "vcpu", "exit_mmio_read"), 3);
	assert_int_equal(value(f, "vcpu0", "exits"), 13);
	assert_int_equal(value(f, "vcpu0", "exit_mmio_read"), 3);
	assert_int_equal(value(f, "vcpu1", "exits"), 5);
	/* Only the reasons a vCPU had get a per-vCPU counter. */
	assert_int_equal(value(f, "vcpu1", "exit_mmio_read"), 0);
	/* Updates add what changed, not the whole again. */
	exits(f, 1, VCPU_EXIT_IO_OUT, 7);
	vm_metrics_update(f->vmm, &f->h, NULL);
	vm_metrics_update(f->vmm, &f->h, NULL);
	assert_int_equal(value(f, "vcpu", "exits"), 20);
	assert_int_equal(value(f, "vcpu1", "exits"), 7);
}

static void test_counts_carry_across_boots(void **state)
{
	struct fixture *f = *state;

	exits(f, 0, VCPU_EXIT_IO_IN, 100);
	atomic_store(&f->rng.bytes, 64);
	vm_metrics_update(f->vmm, &f->h, NULL);
	vm_metrics_boot_ended(f->vmm, &f->h, NULL);
	/* The next boot's vCPUs and devices start from 0. */
	memset(f->vcpus, 0, sizeof(f->vcpus));
	memset(&f->rng, 0, sizeof(f->rng));
	vm_metrics_update(f->vmm, &f->h, NULL);
	assert_int_equal(value(f, "vcpu", "exit_io_in"), 100);
	exits(f, 0, VCPU_EXIT_IO_IN, 30);
	atomic_store(&f->rng.bytes, 16);
	vm_metrics_update(f->vmm, &f->h, NULL);
	assert_int_equal(value(f, "vcpu", "exit_io_in"), 130);
	assert_int_equal(value(f, "vcpu0", "exit_io_in"), 130);
	assert_int_equal(value(f, "entropy", "entropy_bytes"), 80);
}

static void test_no_vm_no_counts(void **state)
{
	struct fixture *f = *state;
	struct vmm_handles none = { 0 };

	exits(f, 0, VCPU_EXIT_IO_IN, 5);
	vm_metrics_update(f->vmm, &none, NULL);
	vm_metrics_update(NULL, &f->h, NULL);
	assert_int_equal(value(f, "vcpu", "exit_io_in"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exits_by_reason_and_vcpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counts_carry_across_boots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_vm_no_counts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
