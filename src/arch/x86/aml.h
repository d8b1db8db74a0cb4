/* A small AML byte-code builder (ACPI 6.5 §20, "ACPI Machine Language
 * Specification"): just what popek's DSDT needs.
 *
 * Everything is appended to a struct aml_buf over caller-owned storage.
 * Errors are sticky: the first one (-ENOSPC when the storage is full,
 * -EINVAL for a bad name, an unbalanced end or a value out of range) is
 * kept, later calls do nothing, and aml_error() reports it once at the end,
 * so a builder needs a single check.
 *
 * Objects that carry a PkgLength (Scope, Device, Package, Buffer) are
 * opened with a *_begin() that returns a mark and closed with aml_end():
 * the PkgLength (1 to 4 bytes) is inserted in front of the content once
 * its size is known, so objects nest freely:
 *
 *	size_t sb = aml_scope_begin(b, "\\_SB_");
 *	size_t dev = aml_device_begin(b, "COM1");
 *	aml_name(b, "_UID");
 *	aml_integer(b, 1);
 *	aml_end(b, dev);
 *	aml_end(b, sb);
 *	if (aml_error(b)) ...
 */
#ifndef POPEK_ARCH_X86_AML_H
#define POPEK_ARCH_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opcodes and prefixes (§20.2). */
#define AML_ZERO_OP          0x00
#define AML_ONE_OP           0x01
#define AML_NAME_OP          0x08
#define AML_BYTE_PREFIX      0x0a
#define AML_WORD_PREFIX      0x0b
#define AML_DWORD_PREFIX     0x0c
#define AML_STRING_PREFIX    0x0d
#define AML_QWORD_PREFIX     0x0e
#define AML_SCOPE_OP         0x10
#define AML_BUFFER_OP        0x11
#define AML_PACKAGE_OP       0x12
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX    0x5b
#define AML_DEVICE_OP        0x82  /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR        '\\'
#define AML_PARENT_PREFIX    '^'
#define AML_ONES_OP          0xff

/* §20.2.4: a PkgLength counts itself; 4 bytes carry at most 28 bits. */
#define AML_PKGLENGTH_MAX    0x0fffffffu

struct aml_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err;        /* 0, or the first error (negative errno) */
};

void aml_init(struct aml_buf *b, uint8_t *storage, size_t cap);
/* 0, or the first error any call on b hit. */
int aml_error(const struct aml_buf *b);

/* Raw bytes (for content the builder has no helper for). */
void aml_byte(struct aml_buf *b, uint8_t v);
void aml_bytes(struct aml_buf *b, const void *p, size_t n);

/* Encodes a PkgLength whose value (including its own bytes) is len into
 * out: returns the byte count 1..4, or 0 when len > AML_PKGLENGTH_MAX. */
int aml_pkglength_encode(uint8_t out[4], uint32_t len);

/* ComputationalData (§20.2.3): ZeroOp, OneOp, or the smallest of
 * BytePrefix, WordPrefix, DWordPrefix, QWordPrefix that holds v. */
void aml_integer(struct aml_buf *b, uint64_t v);
/* String (§20.2.3): printable ASCII 0x01-0x7f, NUL-terminated. */
void aml_string(struct aml_buf *b, const char *s);

/* NameString (§20.2.2) from an ASL-style path: an optional root '\' or
 * any number of '^', then NameSegs separated by '.'. A segment of 1 to 4
 * characters ([A-Z_] then [A-Z0-9_]) is padded with '_' as ASL does, so
 * "\\_SB" and "\\_SB_" are the same name. "" is the NullName. */
void aml_namestring(struct aml_buf *b, const char *path);

/* The 32-bit compressed EISA id of "PNP0501"-style strings (three
 * letters A-Z, four hex digits), as ASL's EISAID() computes it
 * (§19.6, EISAID): 0x0105D041 for "PNP0501". Returns 0 or -EINVAL. */
int aml_eisaid_value(const char *id, uint32_t *out);
/* The id as an integer object (DWordPrefix). */
void aml_eisaid(struct aml_buf *b, const char *id);

/* Name(path, <object>): emits NameOp and the NameString; the caller
 * appends exactly one data object next (integer, string, package...). */
void aml_name(struct aml_buf *b, const char *path);

/* Objects with a PkgLength: each returns a mark for aml_end(). */
size_t aml_scope_begin(struct aml_buf *b, const char *path);
size_t aml_device_begin(struct aml_buf *b, const char *path);
/* nelements: how many data objects the caller appends (at most 255). */
size_t aml_package_begin(struct aml_buf *b, unsigned nelements);
/* Closes the innermost open object: inserts its PkgLength at mark. */
void aml_end(struct aml_buf *b, size_t mark);

/* ResourceTemplate() (§19.6, ResourceTemplate): a Buffer of resource descriptors
 * (§6.4) closed with an End Tag. Append descriptors between begin and
 * aml_resource_template_end(), which adds the End Tag (checksum 0: "the
 * checksum is treated as if it were correct", §6.4.2.9), the BufferSize
 * and the PkgLength. */
size_t aml_resource_template_begin(struct aml_buf *b);
void aml_resource_template_end(struct aml_buf *b, size_t mark);
/* I/O Port Descriptor (§6.4.2.5): IO(Decode16 or Decode10, min, max,
 * alignment, length). */
void aml_io(struct aml_buf *b, bool decode16, uint16_t min, uint16_t max,
	    uint8_t align, uint8_t len);
/* IRQ Descriptor without the information byte (§6.4.2.1): IRQNoFlags()
 * {irq}, an edge-triggered, active-high ISA interrupt; irq 0..15. */
void aml_irq_noflags(struct aml_buf *b, unsigned irq);
/* 32-Bit Fixed Memory Range Descriptor (§6.4.3.4): Memory32Fixed(ReadWrite
 * or ReadOnly, base, length). */
void aml_memory32_fixed(struct aml_buf *b, bool rw, uint32_t base, uint32_t len);

/*
 * Address Space Descriptors (§6.4.3.5): QWord (§6.4.3.5.1), DWord
 * (§6.4.3.5.2) and Word (§6.4.3.5.3), without the optional Resource
 * Source. What a host bridge's _CRS is made of: the bus numbers it
 * decodes and the I/O and memory windows it forwards.
 */
enum aml_as_type {                      /* Resource Type (byte 3) */
	AML_AS_MEMORY = 0,
	AML_AS_IO = 1,
	AML_AS_BUS_NUMBER = 2,
};

/* General Flags (byte 4). Bit 0 clear is
 * ResourceProducer: a bridge's windows are produced for its children. */
#define AML_AS_CONSUMER         (1u << 0)
#define AML_AS_SUB_DECODE       (1u << 1)   /* clear: PosDecode */
#define AML_AS_MIN_FIXED        (1u << 2)   /* _MIF */
#define AML_AS_MAX_FIXED        (1u << 3)   /* _MAF */

/* Type Specific Flags (byte 5, §6.4.3.5.5), memory resources. */
#define AML_MEM_READ_WRITE      (1u << 0)   /* _RW; clear: ReadOnly */
#define AML_MEM_NON_CACHEABLE   (0u << 1)   /* _MEM, bits 2:1 */
#define AML_MEM_CACHEABLE       (1u << 1)
#define AML_MEM_WRITE_COMBINING (2u << 1)
#define AML_MEM_PREFETCHABLE    (3u << 1)
/* I/O resources: _RNG, bits 1:0. */
#define AML_IO_NON_ISA_ONLY     1u
#define AML_IO_ISA_ONLY         2u
#define AML_IO_ENTIRE_RANGE     3u

struct aml_address_space {
	enum aml_as_type type;
	uint8_t general_flags;          /* AML_AS_* */
	uint8_t type_flags;             /* AML_MEM_* / AML_IO_*; 0 for buses */
	uint64_t granularity;           /* _GRA: 0, or 2^n - 1 */
	uint64_t min, max;              /* _MIN, _MAX */
	uint64_t translation;           /* _TRA */
	uint64_t length;                /* _LEN */
};

/* Each field must fit the descriptor's width; with both _MIF and _MAF
 * set and _LEN > 0 (fixed size and location, §6.4.3.5) _LEN must be
 * _MAX - _MIN + 1; _MIN <= _MAX; _GRA must be 0 or 2^n - 1. Otherwise
 * -EINVAL and nothing is written. */
void aml_word_address_space(struct aml_buf *b, const struct aml_address_space *as);
void aml_dword_address_space(struct aml_buf *b, const struct aml_address_space *as);
void aml_qword_address_space(struct aml_buf *b, const struct aml_address_space *as);

/* Fixed windows [min, max] a bridge produces (ResourceProducer, PosDecode,
 * MinFixed, MaxFixed, granularity and translation 0), as ASL's
 * WordBusNumber, WordIO (EntireRange), DWordMemory and QWordMemory
 * write them. mem_flags: AML_MEM_*. */
void aml_word_bus_number(struct aml_buf *b, uint16_t min, uint16_t max);
void aml_word_io(struct aml_buf *b, uint16_t min, uint16_t max);
void aml_dword_memory(struct aml_buf *b, unsigned mem_flags, uint32_t min, uint32_t max);
void aml_qword_memory(struct aml_buf *b, unsigned mem_flags, uint64_t min, uint64_t max);

#endif
