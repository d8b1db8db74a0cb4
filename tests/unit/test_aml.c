/* The AML builder: byte-exact encodings from ACPI 6.5 §20.2 and §6.4, and
 * errors reported instead of overruns. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/aml.h"

#define BIG 16384

static uint8_t storage[BIG];

static struct aml_buf fresh(void)
{
	struct aml_buf b;

	memset(storage, 0xcc, sizeof(storage));
	aml_init(&b, storage, sizeof(storage));
	return b;
}

static void expect_bytes(const struct aml_buf *b, const uint8_t *want, size_t n)
{
	assert_int_equal(aml_error(b), 0);
	assert_int_equal(b->len, n);
	assert_memory_equal(b->data, want, n);
}

/* Decodes a PkgLength the way an AML interpreter does (§20.2.4). */
static uint32_t decode_pkglength(const uint8_t *p, int *nbytes)
{
	int extra = p[0] >> 6, i;
	uint32_t v;

	if (!extra) {
		*nbytes = 1;
		return p[0] & 0x3f;
	}
	v = p[0] & 0x0f;
	for (i = 1; i <= extra; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	*nbytes = extra + 1;
	return v;
}

static void check_pkglength(uint32_t len, const uint8_t *want, int n)
{
	uint8_t out[4];
	int got, dn;

	memset(out, 0xcc, sizeof(out));
	got = aml_pkglength_encode(out, len);
	assert_int_equal(got, n);
	assert_memory_equal(out, want, (size_t)n);
	/* Bits 5:4 of a multi-byte lead byte are reserved (zero). */
	if (n > 1)
		assert_int_equal(out[0] & 0x30, 0);
	assert_int_equal(decode_pkglength(out, &dn), len);
	assert_int_equal(dn, n);
}

static void test_pkglength_encoding(void **state)
{
	uint8_t out[4];

	(void)state;
	check_pkglength(0, (const uint8_t[]){ 0x00 }, 1);
	check_pkglength(1, (const uint8_t[]){ 0x01 }, 1);
	check_pkglength(63, (const uint8_t[]){ 0x3f }, 1);
	check_pkglength(64, (const uint8_t[]){ 0x40, 0x04 }, 2);
	check_pkglength(0x123, (const uint8_t[]){ 0x43, 0x12 }, 2);
	check_pkglength(4095, (const uint8_t[]){ 0x4f, 0xff }, 2);
	check_pkglength(4096, (const uint8_t[]){ 0x80, 0x00, 0x01 }, 3);
	check_pkglength(0xfffff, (const uint8_t[]){ 0x8f, 0xff, 0xff }, 3);
	check_pkglength(0x100000, (const uint8_t[]){ 0xc0, 0x00, 0x00, 0x01 }, 4);
	check_pkglength(0x0fffffff, (const uint8_t[]){ 0xcf, 0xff, 0xff, 0xff }, 4);
	assert_int_equal(aml_pkglength_encode(out, 0x10000000), 0);
	assert_int_equal(aml_pkglength_encode(out, UINT32_MAX), 0);
}

/* An object of content bytes gets a PkgLength that counts itself: the
 * encoding grows a byte exactly when content + its size crosses 63,
 * 4095, 0xfffff. */
static void check_wrapped(size_t content, int want_n, uint32_t want_len)
{
	struct aml_buf b = fresh();
	uint8_t filler[BIG];
	uint32_t got;
	size_t mark;
	int n;

	memset(filler, 0x5a, content);
	aml_byte(&b, AML_SCOPE_OP);
	mark = b.len;
	aml_bytes(&b, filler, content);
	aml_end(&b, mark);
	assert_int_equal(aml_error(&b), 0);
	got = decode_pkglength(b.data + 1, &n);
	assert_int_equal(n, want_n);
	assert_int_equal(got, want_len);
	assert_int_equal(b.len, 1 + (size_t)n + content);
	/* the content moved up intact */
	assert_memory_equal(b.data + 1 + n, filler, content);
}

static void test_pkglength_wrap_boundaries(void **state)
{
	(void)state;
	check_wrapped(0, 1, 1);
	check_wrapped(62, 1, 63);
	check_wrapped(63, 2, 65);
	check_wrapped(4093, 2, 4095);
	check_wrapped(4094, 3, 4097);
	check_wrapped(BIG - 8, 3, BIG - 8 + 3);
}

static void check_integer(uint64_t v, const uint8_t *want, size_t n)
{
	struct aml_buf b = fresh();

	aml_integer(&b, v);
	expect_bytes(&b, want, n);
}

static void test_integers(void **state)
{
	(void)state;
	check_integer(0, (const uint8_t[]){ 0x00 }, 1);
	check_integer(1, (const uint8_t[]){ 0x01 }, 1);
	check_integer(2, (const uint8_t[]){ 0x0a, 0x02 }, 2);
	check_integer(0xff, (const uint8_t[]){ 0x0a, 0xff }, 2);
	check_integer(0x100, (const uint8_t[]){ 0x0b, 0x00, 0x01 }, 3);
	check_integer(0xffff, (const uint8_t[]){ 0x0b, 0xff, 0xff }, 3);
	check_integer(0x10000, (const uint8_t[]){ 0x0c, 0x00, 0x00, 0x01, 0x00 }, 5);
	check_integer(0xfec00000, (const uint8_t[]){ 0x0c, 0x00, 0x00, 0xc0, 0xfe }, 5);
	check_integer(0x100000000ULL,
		      (const uint8_t[]){ 0x0e, 0, 0, 0, 0, 1, 0, 0, 0 }, 9);
	check_integer(UINT64_MAX,
		      (const uint8_t[]){ 0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 9);
}

static void test_strings(void **state)
{
	struct aml_buf b = fresh();

	(void)state;
	aml_string(&b, "QEMU0001");
	expect_bytes(&b, (const uint8_t *)"\x0dQEMU0001", 10); /* NUL included */
	assert_int_equal(b.data[9], 0);

	b = fresh();
	aml_string(&b, "");
	expect_bytes(&b, (const uint8_t[]){ 0x0d, 0x00 }, 2);

	b = fresh();
	aml_string(&b, "caf\xc3\xa9");
	assert_int_equal(aml_error(&b), -EINVAL);
}

static void check_name(const char *path, const void *want, size_t n)
{
	struct aml_buf b = fresh();

	aml_namestring(&b, path);
	expect_bytes(&b, want, n);
}

static void check_bad_name(const char *path)
{
	struct aml_buf b = fresh();

	aml_namestring(&b, path);
	assert_int_equal(aml_error(&b), -EINVAL);
}

static void test_names(void **state)
{
	(void)state;
	check_name("_HID", "_HID", 4);
	check_name("COM1", "COM1", 4);
	check_name("\\_SB_", "\\_SB_", 5);
	check_name("\\_SB", "\\_SB_", 5);         /* padded as ASL does */
	check_name("\\_S5", "\\_S5_", 5);
	check_name("_UID", "_UID", 4);
	check_name("\\_SB_.COM1", "\\\x2e_SB_COM1", 10);
	check_name("\\_SB.PCI0.S08", "\\\x2f\x03_SB_PCI0S08_", 15);
	check_name("^^FOO", "^^FOO_", 6);
	check_name("^PCI0.S00", "^\x2ePCI0S00_", 10);
	check_name("", "\x00", 1);                /* NullName */
	check_name("\\", "\\\x00", 2);            /* the root itself */

	check_bad_name("1ABC");      /* digit first */
	check_bad_name("ABCDE");     /* five characters */
	check_bad_name("com1");      /* lower case */
	check_bad_name("A..B");
	check_bad_name("_SB_.");
	check_bad_name(".COM1");
	check_bad_name("\\^FOO");    /* root then parent */
	check_bad_name("A-B");
}

static void test_eisaid(void **state)
{
	struct aml_buf b = fresh();
	uint32_t v;

	(void)state;
	assert_int_equal(aml_eisaid_value("PNP0501", &v), 0);
	assert_int_equal(v, 0x0105D041);
	assert_int_equal(aml_eisaid_value("PNP0A03", &v), 0);
	assert_int_equal(v, 0x030AD041);
	assert_int_equal(aml_eisaid_value("PNP0a03", &v), 0);  /* hex digits in any case */
	assert_int_equal(v, 0x030AD041);
	assert_int_equal(aml_eisaid_value("PNP0C0C", &v), 0);  /* power button */
	assert_int_equal(v, 0x0C0CD041);

	assert_int_equal(aml_eisaid_value("pnp0501", &v), -EINVAL);
	assert_int_equal(aml_eisaid_value("PNP050", &v), -EINVAL);
	assert_int_equal(aml_eisaid_value("PNP05011", &v), -EINVAL);
	assert_int_equal(aml_eisaid_value("PNP050G", &v), -EINVAL);
	assert_int_equal(aml_eisaid_value("P1P0501", &v), -EINVAL);

	aml_eisaid(&b, "PNP0501");
	expect_bytes(&b, (const uint8_t[]){ 0x0c, 0x41, 0xd0, 0x05, 0x01 }, 5);
	aml_eisaid(&b, "nope");
	assert_int_equal(aml_error(&b), -EINVAL);
}

/* Scope(\_SB) { Device(COM1) { Name(_UID, 1) } }, by hand. */
static void test_nested_device(void **state)
{
	static const uint8_t want[] = {
		0x10, 19, '\\', '_', 'S', 'B', '_',
		0x5b, 0x82, 11, 'C', 'O', 'M', '1',
		0x08, '_', 'U', 'I', 'D', 0x01,
	};
	struct aml_buf b = fresh();
	size_t sb, dev;

	(void)state;
	sb = aml_scope_begin(&b, "\\_SB");
	dev = aml_device_begin(&b, "COM1");
	aml_name(&b, "_UID");
	aml_integer(&b, 1);
	aml_end(&b, dev);
	aml_end(&b, sb);
	expect_bytes(&b, want, sizeof(want));
}

/* A device whose content needs a 2-byte PkgLength inside a scope: the
 * scope's length must count the device's grown header. */
static void test_nested_growth(void **state)
{
	struct aml_buf b = fresh();
	uint8_t blob[100];
	size_t sb, dev;
	uint32_t slen, dlen;
	int sn, dn;

	(void)state;
	memset(blob, 0x01, sizeof(blob));   /* 100 OneOps */
	sb = aml_scope_begin(&b, "\\_SB_");
	dev = aml_device_begin(&b, "DEV0");
	aml_bytes(&b, blob, sizeof(blob));
	aml_end(&b, dev);
	aml_end(&b, sb);
	assert_int_equal(aml_error(&b), 0);

	assert_int_equal(b.data[0], AML_SCOPE_OP);
	slen = decode_pkglength(b.data + 1, &sn);
	/* everything after the ScopeOp */
	assert_int_equal(slen, b.len - 1);
	assert_int_equal(sn, 2);
	assert_memory_equal(b.data + 1 + sn, "\\_SB_", 5);
	assert_int_equal(b.data[1 + sn + 5], AML_EXT_OP_PREFIX);
	assert_int_equal(b.data[1 + sn + 6], AML_DEVICE_OP);
	dlen = decode_pkglength(b.data + 1 + sn + 7, &dn);
	assert_int_equal(dn, 2);
	assert_int_equal(dlen, 2 + 4 + sizeof(blob));
	assert_int_equal(b.len, 1 + sn + 5 + 2 + dlen);
}

static void test_package(void **state)
{
	static const uint8_t want[] = {
		0x08, '\\', '_', 'S', '5', '_',
		0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00,
	};
	struct aml_buf b = fresh();
	size_t pkg;

	(void)state;
	aml_name(&b, "\\_S5");
	pkg = aml_package_begin(&b, 4);
	aml_integer(&b, 5);
	aml_integer(&b, 0);
	aml_integer(&b, 0);
	aml_integer(&b, 0);
	aml_end(&b, pkg);
	expect_bytes(&b, want, sizeof(want));

	b = fresh();
	aml_package_begin(&b, 256);
	assert_int_equal(aml_error(&b), -EINVAL);
}

/* ResourceTemplate() { IO(Decode16, 0x3F8, 0x3F8, 1, 8) IRQNoFlags() {4} } */
static void test_resource_template(void **state)
{
	static const uint8_t want[] = {
		0x11, 0x10, 0x0a, 0x0d,                         /* Buffer, PkgLength 16, size 13 */
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, /* I/O port, Decode16 */
		0x22, 0x10, 0x00,                               /* IRQ mask 1 << 4 */
		0x79, 0x00,                                     /* End Tag, checksum 0 */
	};
	struct aml_buf b = fresh();
	size_t rt;

	(void)state;
	rt = aml_resource_template_begin(&b);
	aml_io(&b, true, 0x3f8, 0x3f8, 1, 8);
	aml_irq_noflags(&b, 4);
	aml_resource_template_end(&b, rt);
	expect_bytes(&b, want, sizeof(want));

	b = fresh();
	aml_io(&b, false, 0x505, 0x505, 1, 1);
	expect_bytes(&b, (const uint8_t[]){ 0x47, 0x00, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01 }, 8);

	b = fresh();
	aml_irq_noflags(&b, 15);
	expect_bytes(&b, (const uint8_t[]){ 0x22, 0x00, 0x80 }, 3);
	aml_irq_noflags(&b, 16);
	assert_int_equal(aml_error(&b), -EINVAL);
}

/* A template with more than 255 descriptor bytes takes a WordPrefix
 * BufferSize and a 2-byte PkgLength. */
static void test_large_resource_template(void **state)
{
	struct aml_buf b = fresh();
	uint32_t len;
	size_t rt;
	int i, n;

	(void)state;
	rt = aml_resource_template_begin(&b);
	for (i = 0; i < 40; i++)
		aml_io(&b, true, (uint16_t)(0x1000 + i), (uint16_t)(0x1000 + i), 1, 1);
	aml_resource_template_end(&b, rt);
	assert_int_equal(aml_error(&b), 0);
	len = decode_pkglength(b.data + 1, &n);
	assert_int_equal(n, 2);
	assert_int_equal(b.data[1 + n], AML_WORD_PREFIX);
	assert_int_equal(b.data[2 + n] | b.data[3 + n] << 8, 40 * 8 + 2);
	assert_int_equal(len, n + 3 + 40 * 8 + 2);
	assert_int_equal(b.len, 1 + len);
	assert_int_equal(b.data[b.len - 2], 0x79);
}

/* §6.4.3.5.1-3, byte for byte as iasl -oa compiles the same ASL:
 * WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)
 * WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
 *         0, 0x0D00, 0xFFFF, 0, 0xF300)
 * DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
 *              ReadWrite, 0, 0xC0000000, 0xDFFFFFFF, 0, 0x20000000)
 * QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable,
 *              ReadWrite, 0, 0x1000000000, 0x1FFFFFFFFF, 0, 0x1000000000)
 * Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000) */
static void test_address_space_descriptors(void **state)
{
	static const uint8_t bus[] = {
		0x88, 0x0d, 0x00,               /* Word AS, length 13 */
		0x02, 0x0c, 0x00,               /* bus number; MinFixed, MaxFixed; no flags */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* _GRA, _MIN, _MAX */
		0x00, 0x00, 0x01, 0x00,         /* _TRA, _LEN */
	};
	static const uint8_t io[] = {
		0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, /* I/O, EntireRange */
		0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3,
	};
	static const uint8_t mem32[] = {
		0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, /* DWord AS, memory, ReadWrite */
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0xc0,
		0xff, 0xff, 0xff, 0xdf,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x20,
	};
	static const uint8_t mem64[] = {
		0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x03, /* QWord AS, Cacheable, ReadWrite */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
		0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
	};
	static const uint8_t fixed[] = {
		0x86, 0x09, 0x00, 0x01,
		0x00, 0x00, 0x00, 0xe0,
		0x00, 0x00, 0x10, 0x00,
	};
	struct aml_buf b;

	(void)state;
	b = fresh();
	aml_word_bus_number(&b, 0, 0);
	expect_bytes(&b, bus, sizeof(bus));
	b = fresh();
	aml_word_io(&b, 0x0d00, 0xffff);
	expect_bytes(&b, io, sizeof(io));
	b = fresh();
	aml_dword_memory(&b, AML_MEM_NON_CACHEABLE | AML_MEM_READ_WRITE, 0xc0000000, 0xdfffffff);
	expect_bytes(&b, mem32, sizeof(mem32));
	b = fresh();
	aml_qword_memory(&b, AML_MEM_CACHEABLE | AML_MEM_READ_WRITE, 0x1000000000ULL,
			 0x1fffffffffULL);
	expect_bytes(&b, mem64, sizeof(mem64));
	b = fresh();
	aml_memory32_fixed(&b, true, 0xe0000000, 0x100000);
	expect_bytes(&b, fixed, sizeof(fixed));
	b = fresh();
	aml_memory32_fixed(&b, false, 0x1000, 0x1000);
	assert_int_equal(b.data[3], 0x00);
}

/* The generic form: every field lands at its offset, in its width. */
static void test_address_space_fields(void **state)
{
	struct aml_address_space as = {
		.type = AML_AS_MEMORY,
		.general_flags = AML_AS_CONSUMER | AML_AS_SUB_DECODE,
		.type_flags = AML_MEM_PREFETCHABLE,
		.granularity = 0xfff,
		.min = 0x1000, .max = 0x8fff,
		.translation = 0x12345678,
		.length = 0x2000,           /* variable location, fixed size */
	};
	static const uint8_t dword[] = {
		0x87, 0x17, 0x00, 0x00, 0x03, 0x06,
		0xff, 0x0f, 0x00, 0x00,
		0x00, 0x10, 0x00, 0x00,
		0xff, 0x8f, 0x00, 0x00,
		0x78, 0x56, 0x34, 0x12,
		0x00, 0x20, 0x00, 0x00,
	};
	struct aml_buf b = fresh();

	(void)state;
	aml_dword_address_space(&b, &as);
	expect_bytes(&b, dword, sizeof(dword));

	b = fresh();
	as.translation = 0x123456789aULL;
	aml_qword_address_space(&b, &as);
	assert_int_equal(aml_error(&b), 0);
	assert_int_equal(b.len, 46);
	assert_int_equal(b.data[0], 0x8a);
	assert_int_equal(b.data[1] | b.data[2] << 8, 43);
	assert_memory_equal(b.data + 30,
			    ((const uint8_t[]){ 0x9a, 0x78, 0x56, 0x34, 0x12, 0, 0, 0 }), 8);

	b = fresh();
	as.translation = 0x1234;
	aml_word_address_space(&b, &as);
	assert_int_equal(aml_error(&b), 0);
	assert_int_equal(b.len, 16);
	assert_int_equal(b.data[4], 0x03);
	assert_int_equal(b.data[5], 0x06);
	assert_int_equal(b.data[12] | b.data[13] << 8, 0x1234);
}

static void expect_einval(void (*emit)(struct aml_buf *, const struct aml_address_space *),
			  const struct aml_address_space *as)
{
	struct aml_buf b = fresh();

	emit(&b, as);
	assert_int_equal(aml_error(&b), -EINVAL);
	assert_int_equal(b.len, 0);
}

static void test_address_space_invalid(void **state)
{
	const struct aml_address_space ok = {
		.type = AML_AS_MEMORY,
		.general_flags = AML_AS_MIN_FIXED | AML_AS_MAX_FIXED,
		.min = 0x1000, .max = 0x1fff, .length = 0x1000,
	};
	struct aml_address_space as;
	struct aml_buf b;

	(void)state;
	b = fresh();
	aml_word_address_space(&b, &ok);
	assert_int_equal(aml_error(&b), 0);

	as = ok;                            /* _LEN != _MAX - _MIN + 1 */
	as.length = 0x800;
	expect_einval(aml_dword_address_space, &as);
	as.length = 0;                      /* fixed at both ends, no length */
	expect_einval(aml_dword_address_space, &as);
	as = ok;                            /* _MIN past _MAX */
	as.general_flags = 0;
	as.min = 0x2000;
	expect_einval(aml_qword_address_space, &as);
	as = ok;                            /* granularity not 2^n - 1 */
	as.granularity = 0x1000;
	expect_einval(aml_qword_address_space, &as);
	as = ok;                            /* reserved general flags */
	as.general_flags |= 0x10;
	expect_einval(aml_qword_address_space, &as);
	as = ok;                            /* too wide for a Word / DWord */
	as.translation = 0x10000;
	expect_einval(aml_word_address_space, &as);
	as.translation = 0x100000000ULL;
	expect_einval(aml_dword_address_space, &as);

	/* The helpers: a length the descriptor cannot hold, or a wrap. */
	b = fresh();
	aml_word_io(&b, 0, 0xffff);         /* 0x10000 ports */
	assert_int_equal(aml_error(&b), -EINVAL);
	b = fresh();
	aml_word_bus_number(&b, 1, 0);
	assert_int_equal(aml_error(&b), -EINVAL);
	b = fresh();
	aml_dword_memory(&b, AML_MEM_READ_WRITE, 0, 0xffffffff);
	assert_int_equal(aml_error(&b), -EINVAL);
	b = fresh();
	aml_qword_memory(&b, AML_MEM_READ_WRITE, 0, UINT64_MAX);
	assert_int_equal(aml_error(&b), -EINVAL);
	b = fresh();
	aml_qword_memory(&b, 0x08, 0, 0xfff);   /* not a memory flag */
	assert_int_equal(aml_error(&b), -EINVAL);
	assert_int_equal(b.len, 0);
}

static void test_overflow_reported(void **state)
{
	uint8_t small[16 + 8];
	struct aml_buf b;
	size_t sb, i;

	(void)state;
	memset(small, 0xcc, sizeof(small));
	aml_init(&b, small, 16);
	for (i = 0; i < 100; i++)
		aml_string(&b, "ABCDEFG");
	assert_int_equal(aml_error(&b), -ENOSPC);
	assert_true(b.len <= 16);
	/* nothing written past the capacity */
	for (i = 16; i < sizeof(small); i++)
		assert_int_equal(small[i], 0xcc);

	/* Sticky: later calls change nothing. */
	i = b.len;
	aml_byte(&b, 0);
	aml_integer(&b, 1);
	assert_int_equal(b.len, i);
	assert_int_equal(aml_error(&b), -ENOSPC);

	/* The content fits exactly but its PkgLength does not. */
	aml_init(&b, small, 6);
	sb = aml_scope_begin(&b, "\\_SB_");
	assert_int_equal(aml_error(&b), 0);
	assert_int_equal(b.len, 6);
	aml_end(&b, sb);
	assert_int_equal(aml_error(&b), -ENOSPC);
	assert_int_equal(b.len, 6);

	/* Resource template end tag that does not fit. */
	aml_init(&b, small, 9);
	sb = aml_resource_template_begin(&b);
	aml_io(&b, true, 1, 1, 1, 1);
	aml_resource_template_end(&b, sb);
	assert_int_equal(aml_error(&b), -ENOSPC);

	/* No storage at all. */
	aml_init(&b, NULL, 100);
	aml_byte(&b, 1);
	assert_int_equal(aml_error(&b), -ENOSPC);
	assert_int_equal(b.len, 0);
}

static void test_unbalanced_end(void **state)
{
	struct aml_buf b = fresh();

	(void)state;
	aml_byte(&b, 0);
	aml_end(&b, 5);     /* a mark beyond the end */
	assert_int_equal(aml_error(&b), -EINVAL);
	assert_int_equal(b.len, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglength_encoding),
		cmocka_unit_test(test_pkglength_wrap_boundaries),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_nested_device),
		cmocka_unit_test(test_nested_growth),
		cmocka_unit_test(test_package),
		cmocka_unit_test(test_resource_template),
		cmocka_unit_test(test_large_resource_template),
		cmocka_unit_test(test_address_space_descriptors),
		cmocka_unit_test(test_address_space_fields),
		cmocka_unit_test(test_address_space_invalid),
		cmocka_unit_test(test_overflow_reported),
		cmocka_unit_test(test_unbalanced_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
