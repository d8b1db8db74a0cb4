/* mptable_write: the MP spec 1.4 structures as a guest OS would parse them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "arch/x86/mptable.h"
#include "vmm/memory.h"

static int setup(void **state)
{
	static struct guest_memory mem;

	if (guest_memory_init(&mem, MiB(128)))
		return -1;
	*state = &mem;
	return 0;
}

static int teardown(void **state)
{
	guest_memory_destroy(*state);
	return 0;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static const uint8_t *gptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = guest_memory_ptr(mem, gpa, len);

	assert_non_null(p);
	return p;
}

/* Finds the floating pointer the way Linux does (MP spec 1.4 §4): in the
 * first KiB of the EBDA named by the BDA, on a 16-byte boundary. */
static const struct mpf_intel *find_mpf(const struct guest_memory *mem)
{
	uint16_t seg;
	uint64_t ebda, off;

	memcpy(&seg, gptr(mem, LAYOUT_BDA_EBDA_SEG, 2), 2);
	ebda = (uint64_t)seg << 4;
	for (off = 0; off < 1024; off += 16) {
		const uint8_t *p = gptr(mem, ebda + off, 16);

		if (!memcmp(p, "_MP_", 4) && sum(p, 16) == 0)
			return (const struct mpf_intel *)p;
	}
	return NULL;
}

static const struct mpc_table *check_headers(const struct guest_memory *mem)
{
	const struct mpf_intel *mpf = find_mpf(mem);
	const struct mpc_table *mpc;
	uint16_t basemem;

	assert_non_null(mpf);
	assert_ptr_equal(mpf, gptr(mem, LAYOUT_EBDA_START, 16));
	assert_int_equal(mpf->length, 1);
	assert_int_equal(mpf->specification, 4);
	assert_int_equal(mpf->feature1, 0);
	assert_int_equal(mpf->physptr, LAYOUT_MPTABLE_START);
	memcpy(&basemem, gptr(mem, LAYOUT_BDA_BASEMEM_KB, 2), 2);
	assert_int_equal(basemem, 639);

	mpc = (const struct mpc_table *)gptr(mem, mpf->physptr, sizeof(*mpc));
	assert_memory_equal(mpc->signature, "PCMP", 4);
	assert_int_equal(mpc->spec, 4);
	assert_true(mpc->length <= LAYOUT_MPTABLE_MAX);
	assert_int_equal(sum(gptr(mem, mpf->physptr, mpc->length), mpc->length), 0);
	assert_int_equal(mpc->lapic, LAYOUT_LAPIC_BASE);
	assert_int_equal(mpc->ext_length, 0);
	assert_int_equal(mpc->ext_checksum, 0);
	return mpc;
}

struct seen {
	unsigned cpus, buses, ioapics, intsrcs, lintsrcs;
	uint8_t ioapic_id;
	int pin_of_irq[16];
	unsigned pin_users[MPTABLE_IOAPIC_PINS];
	int lint_type[2];
};

static void check_cpu(const struct mpc_cpu *c, unsigned idx)
{
	assert_int_equal(c->apicid, idx);
	assert_int_equal(c->apicver, MPTABLE_LAPIC_VERSION);
	assert_true(c->cpuflag & MP_CPU_ENABLED);
	assert_int_equal(!!(c->cpuflag & MP_CPU_BSP), idx == 0);
	assert_int_equal((c->cpufeature >> 8) & 0xf, 6);   /* family */
	assert_true(c->featureflag & (1u << 9));            /* APIC */
}

static void check_intsrc(const struct mpc_intsrc *e, struct seen *s)
{
	if (e->type == MP_INTSRC) {
		assert_int_equal(e->irqtype, MP_INT);
		assert_int_equal(e->srcbus, 0);
		assert_int_equal(e->dstapic, s->ioapic_id);
		assert_true(e->srcbusirq < 16);
		assert_true(e->dstirq < MPTABLE_IOAPIC_PINS);
		assert_int_equal(s->pin_of_irq[e->srcbusirq], -1);
		s->pin_of_irq[e->srcbusirq] = e->dstirq;
		s->pin_users[e->dstirq]++;
		s->intsrcs++;
		return;
	}
	assert_int_equal(e->dstapic, 0xff);
	assert_true(e->dstirq < 2);
	s->lint_type[e->dstirq] = e->irqtype;
	s->lintsrcs++;
}

/* Walks the entries, checking that they come in type order (§4.3). */
static void walk(const struct mpc_table *mpc, struct seen *s)
{
	const uint8_t *p = (const uint8_t *)mpc + sizeof(*mpc);
	const uint8_t *end = (const uint8_t *)mpc + mpc->length;
	unsigned i, last_type = 0;

	memset(s, 0, sizeof(*s));
	memset(s->pin_of_irq, 0xff, sizeof(s->pin_of_irq));
	for (i = 0; i < mpc->oemcount; i++) {
		assert_true(p < end);
		assert_true(*p >= last_type);
		last_type = *p;
		switch (*p) {
		case MP_PROCESSOR:
			check_cpu((const struct mpc_cpu *)p, s->cpus++);
			p += sizeof(struct mpc_cpu);
			break;
		case MP_BUS:
			assert_memory_equal(((const struct mpc_bus *)p)->bustype, "ISA   ", 6);
			s->buses++;
			p += 8;
			break;
		case MP_IOAPIC: {
			const struct mpc_ioapic *io = (const struct mpc_ioapic *)p;

			assert_int_equal(io->apicver, MPTABLE_IOAPIC_VERSION);
			assert_int_equal(io->flags, MP_IOAPIC_ENABLED);
			assert_int_equal(io->apicaddr, LAYOUT_IOAPIC_BASE);
			s->ioapic_id = io->apicid;
			s->ioapics++;
			p += 8;
			break;
		}
		case MP_INTSRC:
		case MP_LINTSRC:
			check_intsrc((const struct mpc_intsrc *)p, s);
			p += 8;
			break;
		default:
			fail_msg("unknown entry type %u", *p);
		}
	}
	assert_ptr_equal(p, end);
}

static void check_ncpus(struct guest_memory *mem, unsigned ncpus)
{
	struct seen s;
	unsigned irq, pin;

	assert_int_equal(mptable_write(mem, ncpus), 0);
	walk(check_headers(mem), &s);
	assert_int_equal(s.cpus, ncpus);
	assert_int_equal(s.buses, 1);
	assert_int_equal(s.ioapics, 1);
	assert_int_equal(s.ioapic_id, ncpus);
	/* PIT on pin 2; IRQ 2 (the cascade) has no entry; IRQ n on pin n. */
	assert_int_equal(s.pin_of_irq[0], 2);
	assert_int_equal(s.pin_of_irq[2], -1);
	for (irq = 1; irq < 16; irq++)
		if (irq != 2)
			assert_int_equal(s.pin_of_irq[irq], irq);
	for (pin = 0; pin < MPTABLE_IOAPIC_PINS; pin++)
		assert_true(s.pin_users[pin] <= 1);
	assert_int_equal(s.intsrcs, 15);
	assert_int_equal(s.lintsrcs, 2);
	assert_int_equal(s.lint_type[0], MP_EXTINT);
	assert_int_equal(s.lint_type[1], MP_NMI);
}

static void test_one_cpu(void **state)
{
	check_ncpus(*state, 1);
}

static void test_many_cpus(void **state)
{
	unsigned n;

	for (n = 1; n <= 16; n++)
		check_ncpus(*state, n);
	check_ncpus(*state, 64);
	check_ncpus(*state, MPTABLE_MAX_CPUS);
	/* A smaller table after a bigger one is still self-consistent. */
	check_ncpus(*state, 2);
}

static void test_bad_ncpus(void **state)
{
	assert_int_equal(mptable_write(*state, 0), -EINVAL);
	assert_int_equal(mptable_write(*state, 255), -EINVAL);
	assert_int_equal(mptable_write(*state, 100000), -EINVAL);
}

static void test_unmapped_memory(void **state)
{
	struct guest_memory mem;

	(void)state;
	/* Layout only: no host mapping, so nothing is writable. */
	assert_int_equal(guest_memory_layout(&mem, MiB(128)), 0);
	assert_int_equal(mptable_write(&mem, 1), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_cpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ncpus, setup, teardown),
		cmocka_unit_test(test_unmapped_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
