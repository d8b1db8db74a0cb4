/* popek built-in guest: string helpers, serial console, clock. */
#include "guest.h"

/* ---- string helpers (the compiler may emit calls to these) ---- */
void *memset(void *d, int c, size_t n)
{
	void *r = d;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *r = d;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

void *memmove(void *d, const void *s, size_t n)
{
	if ((uintptr_t)d <= (uintptr_t)s || (uintptr_t)d >= (uintptr_t)s + n)
		return memcpy(d, s, n);
	char *dp = (char *)d + n - 1;
	const char *sp = (const char *)s + n - 1;
	__asm__ volatile("std; rep movsb; cld" : "+D"(dp), "+S"(sp), "+c"(n) : : "memory");
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* ---- COM1 16550A ---- */
#define UART_FIFO_DEPTH 16

bool quiet;
volatile u32 console_lock;

void serial_init(void)
{
	outb(COM1 + 1, 0x00);	/* IER: no interrupts */
	outb(COM1 + 3, 0x80);	/* LCR: DLAB */
	outb(COM1 + 0, 0x01);	/* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);	/* 8N1 */
	outb(COM1 + 2, 0x07);	/* FCR: FIFO on, clear both */
	outb(COM1 + 4, 0x03);	/* MCR: DTR, RTS */
}

static void serial_write(const char *s, size_t n)
{
	while (n) {
		/* Wait for THRE (transmit holding register / FIFO empty), with a
		 * bound so that a missing UART cannot hang us. */
		for (u32 spins = 0; !(inb(COM1 + 5) & 0x20) && spins < 1000000; spins++)
			cpu_relax();
		size_t chunk = n < UART_FIFO_DEPTH ? n : UART_FIFO_DEPTH;
		for (size_t i = 0; i < chunk; i++)
			outb(COM1, (u8)s[i]);
		s += chunk;
		n -= chunk;
	}
}

static void lock_console(void)
{
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
		while (console_lock)
			cpu_relax();
}

static void unlock_console(void)
{
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

/* ---- line builder ---- */
static const char prefix[] = "popek-guest: ";

void line_start(struct line *l)
{
	l->n = 0;
	line_str(l, prefix);
}

void line_char(struct line *l, char c)
{
	if (l->n < (int)sizeof(l->s) - 1)
		l->s[l->n++] = c;
}

void line_strn(struct line *l, const char *s, size_t n)
{
	for (size_t i = 0; i < n && s[i]; i++)
		line_char(l, s[i]);
}

void line_str(struct line *l, const char *s)
{
	while (*s)
		line_char(l, *s++);
}

void line_dec(struct line *l, u64 v)
{
	char buf[24];
	int i = 0;
	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		line_char(l, buf[--i]);
}

void line_hex(struct line *l, u64 v, int digits)
{
	static const char hex[] = "0123456789abcdef";
	if (digits <= 0) {
		digits = 1;
		while (digits < 16 && (v >> (4 * digits)))
			digits++;
	}
	for (int i = digits - 1; i >= 0; i--)
		line_char(l, hex[(v >> (4 * i)) & 0xf]);
}

void line_emit(struct line *l)
{
	l->s[l->n++] = '\n';
	lock_console();
	serial_write(l->s, (size_t)l->n);
	unlock_console();
}

/* ---- clock ---- */
/* Initialised (so not in .bss): clock_to_ns() must never divide by 0. */
static u64 tsc_khz = 2000000;

static u64 pvclock_read(const volatile struct pvclock_vcpu_time_info *p)
{
	u32 version;
	u64 ns;
	do {
		version = p->version;
		barrier();
		u64 delta = rdtsc() - p->tsc_timestamp;
		if (p->tsc_shift >= 0)
			delta <<= p->tsc_shift;
		else
			delta >>= -p->tsc_shift;
		ns = p->system_time + (u64)(((unsigned __int128)delta * p->tsc_to_system_mul) >> 32);
		barrier();
	} while ((version & 1) || version != p->version);
	return ns;
}

void clock_init(void)
{
	u32 r[4];
	u64 khz = 0;
	cpuid(0, 0, r);
	u32 max = r[0];
	if (max >= 0x15) {
		cpuid(0x15, 0, r);
		if (r[0] && r[1] && r[2])
			khz = (u64)r[2] * r[1] / r[0] / 1000;
	}
	if (!khz && max >= 0x16) {
		cpuid(0x16, 0, r);
		khz = (u64)(r[0] & 0xffff) * 1000;
	}
	if (!khz) {
		cpuid(1, 0, r);
		if (r[2] & (1u << 31)) {
			cpuid(0x40000000, 0, r);
			if (r[0] >= 0x40000010 && r[0] < 0x40010000) {
				cpuid(0x40000010, 0, r);
				khz = r[0];
			}
		}
	}
	if (!khz)
		khz = 2000000;	/* a guess; only bounds timeouts */
	tsc_khz = khz;
}

u64 clock_raw(void)
{
	return kvmclock_enabled ? pvclock_read(&pvclock_bsp) : rdtsc();
}

u64 clock_to_ns(u64 raw)
{
	if (kvmclock_enabled)
		return raw;
	return raw / tsc_khz * 1000000 + raw % tsc_khz * 1000000 / tsc_khz;
}

u64 clock_now(void)
{
	return clock_to_ns(clock_raw());
}

void delay_us(u64 us)
{
	u64 end = clock_now() + us * 1000;
	while (clock_now() < end)
		cpu_relax();
}
