/* AML byte-code builder; encodings from ACPI 6.5 §20.2 (AML grammar) and
 * §6.4 (resource descriptors). See aml.h for the error model. */
#include "arch/x86/aml.h"

#include <errno.h>
#include <string.h>

/* §6.4.2: small resource items, tag byte = (item name << 3) | length. */
#define AML_RES_IRQ_NOFLAGS ((0x04 << 3) | 2)
#define AML_RES_IO          ((0x08 << 3) | 7)
#define AML_RES_END_TAG     ((0x0f << 3) | 1)
/* §6.4.3: large items, tag byte = 0x80 | item name, then a 16-bit length
 * of the data that follows. */
#define AML_RES_MEMORY32_FIXED 0x86
#define AML_RES_DWORD_AS       0x87
#define AML_RES_WORD_AS        0x88
#define AML_RES_QWORD_AS       0x8a

#define AML_NAMESEG_LEN 4

static void aml_fail(struct aml_buf *b, int err)
{
	if (!b->err)
		b->err = err;
}

void aml_init(struct aml_buf *b, uint8_t *storage, size_t cap)
{
	b->data = storage;
	b->len = 0;
	b->cap = storage ? cap : 0;
	b->err = 0;
}

int aml_error(const struct aml_buf *b)
{
	return b->err;
}

void aml_bytes(struct aml_buf *b, const void *p, size_t n)
{
	if (b->err)
		return;
	if (n > b->cap - b->len) {
		aml_fail(b, -ENOSPC);
		return;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void aml_byte(struct aml_buf *b, uint8_t v)
{
	aml_bytes(b, &v, 1);
}

/* Inserts n header bytes at pos, moving what follows up: how an object's
 * PkgLength lands in front of content that was built first. */
static void aml_insert(struct aml_buf *b, size_t pos, const uint8_t *hdr, size_t n)
{
	if (b->err)
		return;
	if (pos > b->len) {
		aml_fail(b, -EINVAL);
		return;
	}
	if (n > b->cap - b->len) {
		aml_fail(b, -ENOSPC);
		return;
	}
	memmove(b->data + pos + n, b->data + pos, b->len - pos);
	memcpy(b->data + pos, hdr, n);
	b->len += n;
}

/* §20.2.4: one byte holds 0..63 in bits 5:0. Otherwise bits 7:6 of the
 * lead byte count the 1 to 3 bytes that follow, bits 3:0 hold the low
 * nibble and each following byte the next 8 bits. */
int aml_pkglength_encode(uint8_t out[4], uint32_t len)
{
	int extra, i;

	if (len > AML_PKGLENGTH_MAX)
		return 0;
	if (len < 0x40) {
		out[0] = (uint8_t)len;
		return 1;
	}
	if (len < (1u << 12))
		extra = 1;
	else if (len < (1u << 20))
		extra = 2;
	else
		extra = 3;
	out[0] = (uint8_t)((extra << 6) | (len & 0x0f));
	for (i = 1; i <= extra; i++)
		out[i] = (uint8_t)(len >> (4 + 8 * (i - 1)));
	return extra + 1;
}

/* The PkgLength of content bytes counts its own 1 to 4 bytes too, so
 * pick the smallest encoding whose value (content + its size) fits. */
static int aml_pkglength_for(uint8_t out[4], size_t content)
{
	uint32_t n;

	for (n = 1; n <= 4; n++) {
		if (content > AML_PKGLENGTH_MAX - n)
			return 0;
		if (aml_pkglength_encode(out, (uint32_t)(content + n)) == (int)n)
			return (int)n;
	}
	return 0;
}

void aml_integer(struct aml_buf *b, uint64_t v)
{
	uint8_t enc[9];
	size_t n, i;

	if (v == 0) {
		aml_byte(b, AML_ZERO_OP);
		return;
	}
	if (v == 1) {
		aml_byte(b, AML_ONE_OP);
		return;
	}
	if (v <= UINT8_MAX) {
		enc[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= UINT16_MAX) {
		enc[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= UINT32_MAX) {
		enc[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		enc[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (i = 0; i < n; i++)
		enc[1 + i] = (uint8_t)(v >> (8 * i));
	aml_bytes(b, enc, n + 1);
}

void aml_string(struct aml_buf *b, const char *s)
{
	size_t i, n = strlen(s);

	/* §20.2.3: AsciiChar is 0x01-0x7F; NUL only as the terminator. */
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] > 0x7f) {
			aml_fail(b, -EINVAL);
			return;
		}
	}
	aml_byte(b, AML_STRING_PREFIX);
	aml_bytes(b, s, n + 1);
}

static bool aml_lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool aml_name_char(char c)
{
	return aml_lead_char(c) || (c >= '0' && c <= '9');
}

/* One NameSeg of len (1-4) characters at s, padded with '_'. */
static int aml_nameseg(const char *s, size_t len, uint8_t seg[AML_NAMESEG_LEN])
{
	size_t i;

	if (len == 0 || len > AML_NAMESEG_LEN || !aml_lead_char(s[0]))
		return -EINVAL;
	for (i = 0; i < AML_NAMESEG_LEN; i++) {
		if (i >= len)
			seg[i] = '_';
		else if (aml_name_char(s[i]))
			seg[i] = (uint8_t)s[i];
		else
			return -EINVAL;
	}
	return 0;
}

void aml_namestring(struct aml_buf *b, const char *path)
{
	uint8_t segs[255][AML_NAMESEG_LEN];
	const char *p = path, *dot;
	size_t nsegs = 0, i;

	if (*p == AML_ROOT_CHAR) {
		aml_byte(b, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == AML_PARENT_PREFIX) {
			aml_byte(b, AML_PARENT_PREFIX);
			p++;
		}
	}
	while (*p) {
		dot = strchr(p, '.');
		if (!dot)
			dot = p + strlen(p);
		if (nsegs == 255 || aml_nameseg(p, (size_t)(dot - p), segs[nsegs])) {
			aml_fail(b, -EINVAL);
			return;
		}
		nsegs++;
		if (!*dot)
			break;
		p = dot + 1;
		if (!*p) {      /* a trailing '.' */
			aml_fail(b, -EINVAL);
			return;
		}
	}
	/* §20.2.2: NullName, NameSeg, DualNamePath or MultiNamePath. */
	if (nsegs == 0) {
		aml_byte(b, 0x00);
		return;
	}
	if (nsegs == 2) {
		aml_byte(b, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(b, AML_MULTI_NAME_PREFIX);
		aml_byte(b, (uint8_t)nsegs);
	}
	for (i = 0; i < nsegs; i++)
		aml_bytes(b, segs[i], AML_NAMESEG_LEN);
}

static int aml_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A compressed EISA id: the three letters as 5-bit values (A = 1) packed
 * big-endian into the first two bytes, the four hex digits (the product
 * number) big-endian in the next two; the bytes read as a little-endian
 * DWORD give the integer ASL's EISAID() produces. */
int aml_eisaid_value(const char *id, uint32_t *out)
{
	uint16_t vendor = 0, product = 0;
	int i, d;

	if (!id || strlen(id) != 7)
		return -EINVAL;
	for (i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
		vendor = (uint16_t)((vendor << 5) | (id[i] - 0x40));
	}
	for (i = 3; i < 7; i++) {
		d = aml_hex_digit(id[i]);
		if (d < 0)
			return -EINVAL;
		product = (uint16_t)((product << 4) | d);
	}
	*out = (uint32_t)(vendor >> 8) | (uint32_t)(vendor & 0xff) << 8 |
	       (uint32_t)(product >> 8) << 16 | (uint32_t)(product & 0xff) << 24;
	return 0;
}

void aml_eisaid(struct aml_buf *b, const char *id)
{
	uint8_t enc[5] = { AML_DWORD_PREFIX };
	uint32_t v;
	int i;

	if (aml_eisaid_value(id, &v)) {
		aml_fail(b, -EINVAL);
		return;
	}
	/* Always a DWORD, as iASL emits it, even when the value is small. */
	for (i = 0; i < 4; i++)
		enc[1 + i] = (uint8_t)(v >> (8 * i));
	aml_bytes(b, enc, sizeof(enc));
}

void aml_name(struct aml_buf *b, const char *path)
{
	aml_byte(b, AML_NAME_OP);
	aml_namestring(b, path);
}

/* §20.2.5.1: DefScope := ScopeOp PkgLength NameString TermList. The
 * mark sits where the PkgLength goes; the name is content. */
size_t aml_scope_begin(struct aml_buf *b, const char *path)
{
	size_t mark;

	aml_byte(b, AML_SCOPE_OP);
	mark = b->len;
	aml_namestring(b, path);
	return mark;
}

/* §20.2.5.2: DefDevice := DeviceOp PkgLength NameString TermList,
 * DeviceOp := ExtOpPrefix 0x82. */
size_t aml_device_begin(struct aml_buf *b, const char *path)
{
	size_t mark;

	aml_byte(b, AML_EXT_OP_PREFIX);
	aml_byte(b, AML_DEVICE_OP);
	mark = b->len;
	aml_namestring(b, path);
	return mark;
}

/* §20.2.5.4: DefPackage := PackageOp PkgLength NumElements
 * PackageElementList; NumElements is a ByteData. */
size_t aml_package_begin(struct aml_buf *b, unsigned nelements)
{
	size_t mark;

	aml_byte(b, AML_PACKAGE_OP);
	mark = b->len;
	if (nelements > UINT8_MAX)
		aml_fail(b, -EINVAL);
	aml_byte(b, (uint8_t)nelements);
	return mark;
}

void aml_end(struct aml_buf *b, size_t mark)
{
	uint8_t pkg[4];
	int n;

	if (b->err)
		return;
	if (mark > b->len) {
		aml_fail(b, -EINVAL);
		return;
	}
	n = aml_pkglength_for(pkg, b->len - mark);
	if (!n) {
		aml_fail(b, -ENOSPC);
		return;
	}
	aml_insert(b, mark, pkg, (size_t)n);
}

/* §20.2.5.4: DefBuffer := BufferOp PkgLength BufferSize ByteList. */
size_t aml_resource_template_begin(struct aml_buf *b)
{
	aml_byte(b, AML_BUFFER_OP);
	return b->len;
}

void aml_resource_template_end(struct aml_buf *b, size_t mark)
{
	static const uint8_t end_tag[2] = { AML_RES_END_TAG, 0x00 };
	uint8_t hdr[4 + 9], size_enc[9];
	struct aml_buf size;
	int n;

	aml_bytes(b, end_tag, sizeof(end_tag));
	if (b->err)
		return;
	if (mark > b->len) {
		aml_fail(b, -EINVAL);
		return;
	}
	/* BufferSize is a TermArg: an integer object ahead of the bytes,
	 * itself inside the PkgLength. */
	aml_init(&size, size_enc, sizeof(size_enc));
	aml_integer(&size, b->len - mark);
	n = aml_pkglength_for(hdr, size.len + (b->len - mark));
	if (!n) {
		aml_fail(b, -ENOSPC);
		return;
	}
	memcpy(hdr + n, size_enc, size.len);
	aml_insert(b, mark, hdr, (size_t)n + size.len);
}

void aml_io(struct aml_buf *b, bool decode16, uint16_t min, uint16_t max,
	    uint8_t align, uint8_t len)
{
	uint8_t d[8] = {
		AML_RES_IO,
		decode16 ? 0x01 : 0x00,     /* bit 0: 16-bit decode */
		(uint8_t)min, (uint8_t)(min >> 8),
		(uint8_t)max, (uint8_t)(max >> 8),
		align,
		len,
	};

	aml_bytes(b, d, sizeof(d));
}

void aml_irq_noflags(struct aml_buf *b, unsigned irq)
{
	uint8_t d[3];

	if (irq > 15) {
		aml_fail(b, -EINVAL);
		return;
	}
	d[0] = AML_RES_IRQ_NOFLAGS;
	d[1] = (uint8_t)(1u << irq);
	d[2] = (uint8_t)((1u << irq) >> 8);
	aml_bytes(b, d, sizeof(d));
}

/* Little-endian field of n bytes at p. */
static void aml_put_le(uint8_t *p, uint64_t v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void aml_memory32_fixed(struct aml_buf *b, bool rw, uint32_t base, uint32_t len)
{
	uint8_t d[12] = { AML_RES_MEMORY32_FIXED, 9, 0 };

	/* §6.4.3.4: byte 3 bit 0 is _RW; then base and length. */
	d[3] = rw ? 0x01 : 0x00;
	aml_put_le(d + 4, base, 4);
	aml_put_le(d + 8, len, 4);
	aml_bytes(b, d, sizeof(d));
}

/* The rules of §6.4.3.5 an ASL compiler enforces too: every value fits
 * the descriptor's width, reserved flag bits are 0, a granularity is a
 * mask of low bits, _MIN does not pass _MAX, and a window fixed at both
 * ends is exactly _LEN long. */
static bool aml_as_valid(const struct aml_address_space *as, unsigned width)
{
	uint64_t limit = width == 8 ? UINT64_MAX : (1ULL << (8 * width)) - 1;
	bool fixed = (as->general_flags & AML_AS_MIN_FIXED) &&
		     (as->general_flags & AML_AS_MAX_FIXED);

	if (as->granularity > limit || as->min > limit || as->max > limit ||
	    as->translation > limit || as->length > limit)
		return false;
	if (as->general_flags & 0xf0)
		return false;
	if (as->granularity & (as->granularity + 1))
		return false;
	if (as->min > as->max)
		return false;
	/* Fixed at both ends: fixed size too; _LEN 0 is illegal there. */
	if (fixed && (!as->length || as->length - 1 != as->max - as->min))
		return false;
	return true;
}

/* §6.4.3.5.1-3: tag, length, resource type, general flags, type specific
 * flags, then _GRA, _MIN, _MAX, _TRA and _LEN of width bytes each. */
static void aml_address_space(struct aml_buf *b, uint8_t tag, unsigned width,
			      const struct aml_address_space *as)
{
	uint8_t d[3 + 3 + 5 * 8];
	size_t len = 3 + 5 * width;

	if (!aml_as_valid(as, width)) {
		aml_fail(b, -EINVAL);
		return;
	}
	d[0] = tag;
	aml_put_le(d + 1, len, 2);
	d[3] = (uint8_t)as->type;
	d[4] = as->general_flags;
	d[5] = as->type_flags;
	aml_put_le(d + 6 + 0 * width, as->granularity, width);
	aml_put_le(d + 6 + 1 * width, as->min, width);
	aml_put_le(d + 6 + 2 * width, as->max, width);
	aml_put_le(d + 6 + 3 * width, as->translation, width);
	aml_put_le(d + 6 + 4 * width, as->length, width);
	aml_bytes(b, d, 3 + len);
}

void aml_word_address_space(struct aml_buf *b, const struct aml_address_space *as)
{
	aml_address_space(b, AML_RES_WORD_AS, 2, as);
}

void aml_dword_address_space(struct aml_buf *b, const struct aml_address_space *as)
{
	aml_address_space(b, AML_RES_DWORD_AS, 4, as);
}

void aml_qword_address_space(struct aml_buf *b, const struct aml_address_space *as)
{
	aml_address_space(b, AML_RES_QWORD_AS, 8, as);
}

/* A window fixed at both ends that the bridge produces: [min, max],
 * length max - min + 1 (0 when that wraps, which aml_as_valid refuses,
 * as it does a length the descriptor is too narrow for). */
static struct aml_address_space aml_window(enum aml_as_type type, uint8_t type_flags,
					   uint64_t min, uint64_t max)
{
	return (struct aml_address_space){
		.type = type,
		.general_flags = AML_AS_MIN_FIXED | AML_AS_MAX_FIXED,
		.type_flags = type_flags,
		.min = min,
		.max = max,
		.length = max - min + 1,
	};
}

void aml_word_bus_number(struct aml_buf *b, uint16_t min, uint16_t max)
{
	struct aml_address_space as = aml_window(AML_AS_BUS_NUMBER, 0, min, max);

	aml_word_address_space(b, &as);
}

void aml_word_io(struct aml_buf *b, uint16_t min, uint16_t max)
{
	struct aml_address_space as = aml_window(AML_AS_IO, AML_IO_ENTIRE_RANGE, min, max);

	aml_word_address_space(b, &as);
}

void aml_dword_memory(struct aml_buf *b, unsigned mem_flags, uint32_t min, uint32_t max)
{
	struct aml_address_space as;

	if (mem_flags & ~0x07u) {
		aml_fail(b, -EINVAL);
		return;
	}
	as = aml_window(AML_AS_MEMORY, (uint8_t)mem_flags, min, max);
	aml_dword_address_space(b, &as);
}

void aml_qword_memory(struct aml_buf *b, unsigned mem_flags, uint64_t min, uint64_t max)
{
	struct aml_address_space as;

	if (mem_flags & ~0x07u) {
		aml_fail(b, -EINVAL);
		return;
	}
	as = aml_window(AML_AS_MEMORY, (uint8_t)mem_flags, min, max);
	aml_qword_address_space(b, &as);
}
