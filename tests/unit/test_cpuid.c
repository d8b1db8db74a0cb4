/* CPUID topology and paravirt leaves for 1..N vCPUs, from synthetic
 * KVM_GET_SUPPORTED_CPUID lists of an Intel and an AMD host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/cpuid.h"

#define SIG(e, a, b, c) (e).ebx = (a), (e).edx = (b), (e).ecx = (c)
#define IDX KVM_CPUID_FLAG_SIGNIFCANT_INDEX

static unsigned intel_host(struct kvm_cpuid_entry2 *e)
{
	unsigned n = 0;

	e[n] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x1f };
	SIG(e[n], 0x756e6547, 0x49656e69, 0x6c65746e); n++;     /* GenuineIntel */
	e[n++] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0x50657,
		.ebx = 0x00100800 | (7u << 24), .ecx = 0x7ffefbff & ~(1u << 31), .edx = 0xbfebfbff };
	/* L1d, L2, L3 and the terminating null cache. */
	e[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 0, .flags = IDX, .eax = 0x121 | (7u << 26) | (1u << 14) };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 1, .flags = IDX, .eax = 0x143 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 2, .flags = IDX, .eax = 0x163 | (15u << 14) };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = 3, .flags = IDX, .eax = 0 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0, .flags = IDX, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 9 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 1, .flags = IDX, .eax = 5, .ebx = 32, .ecx = 0x201, .edx = 9 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x1f, .index = 0, .flags = IDX, .eax = 1 };
	e[n] = (struct kvm_cpuid_entry2){ .function = 0x40000000, .eax = 0x40000001 };
	SIG(e[n], 0, 0, 0); n++;
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x40000001, .eax = 0x01007afb };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000000, .eax = 0x80000008 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000008, .eax = 0x3030, .ecx = 0 };
	return n;
}

static unsigned amd_host(struct kvm_cpuid_entry2 *e)
{
	unsigned n = 0;

	e[n] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x10 };
	SIG(e[n], 0x68747541, 0x69746e65, 0x444d4163); n++;     /* AuthenticAMD */
	e[n++] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0xa20f10, .ebx = 0x00100800 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x40000000, .eax = 0x40000001 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x40000001, .eax = 0x01007afb };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000000, .eax = 0x8000001f };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000001, .ecx = 0x75c237ff & ~2u };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000008, .eax = 0x3030, .ecx = 0x700f };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x8000001d, .index = 3, .flags = IDX, .eax = 0x163 | (15u << 14) };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x8000001e, .eax = 0x12, .ebx = 0x109, .ecx = 0x300 };
	return n;
}

static const struct kvm_cpuid_entry2 *get(const struct kvm_cpuid_entry2 *e, int n,
					  unsigned fn, unsigned idx)
{
	const struct kvm_cpuid_entry2 *r = cpuid_find(e, (unsigned)n, fn, idx);

	if (!r)
		fail_msg("leaf 0x%x.%u missing", fn, idx);
	return r;
}

static void test_core_id_width(void **state)
{
	(void)state;
	assert_int_equal(cpuid_core_id_width(1), 0);
	assert_int_equal(cpuid_core_id_width(2), 1);
	assert_int_equal(cpuid_core_id_width(3), 2);
	assert_int_equal(cpuid_core_id_width(4), 2);
	assert_int_equal(cpuid_core_id_width(5), 3);
	assert_int_equal(cpuid_core_id_width(254), 8);
}

static void test_intel_topology(void **state)
{
	struct kvm_cpuid_entry2 sup[32], out[64];
	unsigned ns = intel_host(sup);

	(void)state;
	for (unsigned ncpus = 1; ncpus <= 16; ncpus++) {
		unsigned width = cpuid_core_id_width(ncpus);

		for (unsigned cpu = 0; cpu < ncpus; cpu++) {
			int n = cpuid_build(sup, ns, cpu, ncpus, out, 64);

			assert_true(n > 0);
			const struct kvm_cpuid_entry2 *l1 = get(out, n, 1, 0);

			assert_int_equal(l1->ebx >> 24, cpu);                          /* initial APIC ID */
			assert_int_equal((l1->ebx >> 16) & 0xff, ncpus > 1 ? 1u << width : 1);
			assert_int_equal(l1->ebx & 0xffff, 0x0800);                    /* CLFLUSH kept */
			assert_int_equal(!!(l1->edx & (1u << 28)), ncpus > 1);         /* HTT */
			assert_true(l1->ecx & (1u << 31));                             /* hypervisor */
			assert_int_equal(l1->eax, 0x50657);

			/* Leaf 0xB: SMT level, core level, then invalid. */
			const struct kvm_cpuid_entry2 *smt = get(out, n, 0xb, 0);
			const struct kvm_cpuid_entry2 *core = get(out, n, 0xb, 1);
			const struct kvm_cpuid_entry2 *end = get(out, n, 0xb, 2);

			assert_int_equal(smt->eax, 0);
			assert_int_equal(smt->ebx, 1);
			assert_int_equal(smt->ecx, 0x100);
			assert_int_equal(smt->edx, cpu);
			assert_int_equal(core->eax, width);
			assert_int_equal(core->ebx, ncpus);
			assert_int_equal(core->ecx, 0x201);
			assert_int_equal(core->edx, cpu);
			assert_int_equal(end->ebx, 0);
			assert_int_equal(end->ecx & 0xff00, 0);
			/* 0x1F mirrors 0xB when the host has it. */
			assert_int_equal(get(out, n, 0x1f, 1)->ebx, ncpus);

			/* Leaf 4: cores per package and cache sharing. */
			assert_int_equal(get(out, n, 4, 0)->eax >> 26, (1u << width) - 1);
			assert_int_equal((get(out, n, 4, 0)->eax >> 14) & 0xfff, 0);
			assert_int_equal((get(out, n, 4, 2)->eax >> 14) & 0xfff, (1u << width) - 1);
			assert_int_equal(get(out, n, 4, 3)->eax, 0);

			/* KVM paravirt leaves: signature, and the features KVM offers. */
			const struct kvm_cpuid_entry2 *hv = get(out, n, 0x40000000, 0);

			assert_int_equal(hv->eax, 0x40000001);
			assert_memory_equal(&hv->ebx, "KVMK", 4);
			assert_memory_equal(&hv->ecx, "VMKV", 4);
			assert_memory_equal(&hv->edx, "M\0\0\0", 4);
			assert_int_equal(get(out, n, 0x40000001, 0)->eax, 0x01007afb);
			/* Intel: AMD's core-count field stays as the host had it. */
			assert_int_equal(get(out, n, 0x80000008, 0)->ecx, 0);
		}
	}
}

static void test_amd_topology(void **state)
{
	struct kvm_cpuid_entry2 sup[32], out[64];
	unsigned ns = amd_host(sup);

	(void)state;
	assert_true(cpuid_vendor_is_amd(sup, ns));
	for (unsigned ncpus = 1; ncpus <= 8; ncpus++) {
		unsigned width = cpuid_core_id_width(ncpus);

		for (unsigned cpu = 0; cpu < ncpus; cpu++) {
			int n = cpuid_build(sup, ns, cpu, ncpus, out, 64);

			assert_true(n > 0);
			const struct kvm_cpuid_entry2 *e = get(out, n, 0x8000001e, 0);

			assert_int_equal(e->eax, cpu);
			assert_int_equal(e->ebx, cpu);
			assert_int_equal(e->ecx, 0);
			const struct kvm_cpuid_entry2 *l8 = get(out, n, 0x80000008, 0);

			assert_int_equal(l8->ecx & 0xff, ncpus - 1);
			assert_int_equal((l8->ecx >> 12) & 0xf, width);
			assert_int_equal(l8->eax, 0x3030);
			assert_int_equal(!!(get(out, n, 0x80000001, 0)->ecx & 2), ncpus > 1);
			assert_int_equal((get(out, n, 0x8000001d, 3)->eax >> 14) & 0xfff, (1u << width) - 1);
			/* AMD host with max basic leaf >= 0xB still gets leaf 0xB. */
			assert_int_equal(get(out, n, 0xb, 1)->ebx, ncpus);
			assert_int_equal(get(out, n, 1, 0)->ebx >> 24, cpu);
		}
	}
}

static void test_too_small_output(void **state)
{
	struct kvm_cpuid_entry2 sup[32], out[64];
	unsigned ns = intel_host(sup);

	(void)state;
	assert_int_equal(cpuid_build(sup, ns, 0, 1, out, ns), -7 /* -E2BIG */);
	assert_null(cpuid_find(sup, ns, 0x12345678, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_core_id_width),
		cmocka_unit_test(test_intel_topology),
		cmocka_unit_test(test_amd_topology),
		cmocka_unit_test(test_too_small_output),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
