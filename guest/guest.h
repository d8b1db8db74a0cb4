/* popek built-in guest: common declarations.  Everything in C runs in
 * ring 3 (CPL 3, IOPL 3, interrupts off); see docs/guest.md. */
#ifndef POPEK_GUEST_H
#define POPEK_GUEST_H

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include "defs.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define NORETURN __attribute__((noreturn))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- instructions usable from ring 3 ---- */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}
static inline void cpuid(u32 leaf, u32 sub, u32 r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
/* Physical (identity-mapped) memory access.  The address goes through an
 * empty asm so that the compiler does not treat low addresses such as the
 * BDA (0x40e) as null-pointer arithmetic. */
static inline uintptr_t phys(u64 addr) { __asm__("" : "+r"(addr)); return (uintptr_t)addr; }
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)phys(addr); }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)phys(addr) = v; }
static inline u8 peek8(u64 addr) { return *(volatile u8 *)phys(addr); }
static inline u16 peek16(u64 addr) { return *(volatile u16 *)phys(addr); }
static inline u32 peek32(u64 addr) { return *(volatile u32 *)phys(addr); }
static inline u64 peek64(u64 addr) { return *(volatile u64 *)phys(addr); }

/* ---- set up by entry.S ---- */
extern u32 boot_type, boot_info_addr, kvmclock_enabled;
extern u64 pdpt[512], pd_high[512];
extern u8 apic_to_slot[256];
extern const char trampoline_start[], trampoline_end[];
extern char __bss_start[], __bss_end[], __image_start[], __image_end[];
struct pvclock_vcpu_time_info {
	u32 version;
	u32 pad0;
	u64 tsc_timestamp;
	u64 system_time;
	u32 tsc_to_system_mul;
	int8_t tsc_shift;
	u8 flags;
	u8 pad[2];
};
extern struct pvclock_vcpu_time_info pvclock_bsp;

void NORETURN cpu_main(unsigned slot);

#define COM1 0x3f8	/* the 16550A the report goes to */

/* ---- lib.c ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

struct line {
	int n;
	char s[4800];
};
void line_start(struct line *l);
void line_str(struct line *l, const char *s);
void line_strn(struct line *l, const char *s, size_t n);
void line_char(struct line *l, char c);
void line_dec(struct line *l, u64 v);
void line_hex(struct line *l, u64 v, int digits);	/* digits 0: as many as needed */
void line_emit(struct line *l);				/* prefix + text + '\n', under the lock */

void serial_init(void);
extern volatile u32 console_lock;
extern bool quiet;

void clock_init(void);
u64 clock_now(void);		/* ns (kvmclock) or ns estimated from the TSC */
u64 clock_raw(void);		/* ns (kvmclock) or TSC ticks */
u64 clock_to_ns(u64 raw);
void delay_us(u64 us);

/* ---- platform.c ---- */
#define MAX_MEMMAP 128
struct memmap_entry {
	u64 addr, size;
	u32 type;
};
struct bootinfo {
	int protocol;
	bool valid;
	char cmdline[4096];
	u64 rsdp;
	int nmap;
	struct memmap_entry map[MAX_MEMMAP];
};
extern struct bootinfo boot;
void bootinfo_copy(void);

struct cpu_list {
	int n;			/* enabled processors found (may exceed GUEST_MAX_CPUS) */
	int nslots;		/* those we track (<= GUEST_MAX_CPUS) */
	const char *source;	/* "mptable", "acpi" or "none" */
	u8 apic_id[GUEST_MAX_CPUS];
};
void find_cpus(struct cpu_list *cl, u8 bsp_apic_id);

#endif
