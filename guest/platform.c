/* popek built-in guest: boot information (PVH / Multiboot) and CPU
 * discovery (Intel MP table 1.4, ACPI MADT as a fallback).  Ring 3. */
#include "guest.h"

struct bootinfo boot;

static void add_map(u64 addr, u64 size, u32 type)
{
	if (boot.nmap < MAX_MEMMAP && size) {
		boot.map[boot.nmap].addr = addr;
		boot.map[boot.nmap].size = size;
		boot.map[boot.nmap].type = type;
		boot.nmap++;
	}
}

static void copy_cmdline(u64 addr)
{
	if (!addr || addr >= (4ULL << 30))
		return;
	size_t i;
	for (i = 0; i < sizeof(boot.cmdline) - 1; i++) {
		char c = (char)peek8(addr + i);
		if (!c)
			break;
		boot.cmdline[i] = c;
	}
	boot.cmdline[i] = 0;
}

/* struct hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h) */
#define HVM_START_MAGIC 0x336ec578
static void copy_pvh(u64 si)
{
	if (peek32(si) != HVM_START_MAGIC)
		return;
	boot.valid = true;
	u32 version = peek32(si + 4);
	copy_cmdline(peek64(si + 24));
	boot.rsdp = peek64(si + 32);
	if (version >= 1) {
		u64 map = peek64(si + 40);
		u32 n = peek32(si + 48);
		for (u32 i = 0; i < n && map < (4ULL << 30); i++) {
			u64 e = map + 24ULL * i;
			add_map(peek64(e), peek64(e + 8), peek32(e + 16));
		}
	}
}

/* struct multiboot_info (Multiboot 0.6.96 section 3.3) */
static void copy_multiboot(u64 mbi)
{
	boot.valid = true;
	u32 flags = peek32(mbi);
	if (flags & (1u << 2))
		copy_cmdline(peek32(mbi + 16));
	if (flags & (1u << 6)) {
		u64 p = peek32(mbi + 48), end = p + peek32(mbi + 44);
		while (p + 24 <= end) {
			u32 size = peek32(p);
			add_map(peek64(p + 4), peek64(p + 12), peek32(p + 20));
			p += (u64)size + 4;
		}
	} else if (flags & (1u << 0)) {
		add_map(0, (u64)peek32(mbi + 4) << 10, 1);
		add_map(1ULL << 20, (u64)peek32(mbi + 8) << 10, 1);
	}
}

void bootinfo_copy(void)
{
	boot.protocol = (int)boot_type;
	if (boot_type == BOOT_PVH)
		copy_pvh(boot_info_addr);
	else if (boot_type == BOOT_MULTIBOOT)
		copy_multiboot(boot_info_addr);
}

/* ---- CPU discovery ---- */
static u8 checksum(u64 addr, u32 len)
{
	u8 s = 0;
	for (u32 i = 0; i < len; i++)
		s += peek8(addr + i);
	return s;
}

static bool sig_at(u64 addr, const char *sig, int n)
{
	for (int i = 0; i < n; i++)
		if (peek8(addr + i) != (u8)sig[i])
			return false;
	return true;
}

static u64 scan(u64 start, u64 len, const char *sig, int siglen, u32 cklen)
{
	for (u64 a = start; a + 16 <= start + len; a += 16)
		if (sig_at(a, sig, siglen) && checksum(a, cklen) == 0)
			return a;
	return 0;
}

static void add_cpu(struct cpu_list *cl, u32 apic_id)
{
	for (int i = 0; i < cl->nslots; i++)
		if (cl->apic_id[i] == apic_id)
			return;
	cl->n++;
	if (apic_id < 255 && cl->nslots < GUEST_MAX_CPUS)
		cl->apic_id[cl->nslots++] = (u8)apic_id;
}

/* MP spec 1.4 section 4: the floating pointer is in the first KiB of
 * the EBDA, else the last KiB of base memory, else 0xF0000-0xFFFFF. */
static u64 find_mp_floating(void)
{
	u64 ebda = (u64)peek16(0x40e) << 4;
	u64 base_kb = peek16(0x413);
	u64 a = 0;
	if (ebda >= 0x400 && ebda < 0xa0000)
		a = scan(ebda, 1024, "_MP_", 4, 16);
	if (!a)
		a = scan((base_kb >= 1 && base_kb <= 640 ? base_kb : 640) * 1024 - 1024,
			 1024, "_MP_", 4, 16);
	if (!a)
		a = scan(0xf0000, 0x10000, "_MP_", 4, 16);
	return a;
}

static bool parse_mptable(struct cpu_list *cl)
{
	u64 mpf = find_mp_floating();
	if (!mpf)
		return false;
	if (peek8(mpf + 11) != 0) {
		/* Default configuration (feature byte 1): two CPUs, IDs 0 and 1. */
		add_cpu(cl, 0);
		add_cpu(cl, 1);
		return true;
	}
	u64 ct = peek32(mpf + 4);
	if (!ct || ct >= (4ULL << 30) || !sig_at(ct, "PCMP", 4))
		return false;
	u16 len = peek16(ct + 4);
	if (len < 44 || checksum(ct, len) != 0)
		return false;
	u16 count = peek16(ct + 34);
	u64 p = ct + 44, end = ct + len;
	for (u16 i = 0; i < count && p < end; i++) {
		u8 type = peek8(p);
		if (type == 0) {	/* processor */
			if (peek8(p + 3) & 1)	/* EN */
				add_cpu(cl, peek8(p + 1));
			p += 20;
		} else if (type <= 4) {
			p += 8;
		} else {
			break;
		}
	}
	return cl->n > 0;
}

static bool parse_madt(struct cpu_list *cl)
{
	u64 rsdp = boot.rsdp;
	if (rsdp && (rsdp >= (4ULL << 30) || !sig_at(rsdp, "RSD PTR ", 8)))
		rsdp = 0;
	if (!rsdp) {
		u64 ebda = (u64)peek16(0x40e) << 4;
		if (ebda >= 0x400 && ebda < 0xa0000)
			rsdp = scan(ebda, 1024, "RSD PTR ", 8, 20);
	}
	if (!rsdp)
		rsdp = scan(0xe0000, 0x20000, "RSD PTR ", 8, 20);
	if (!rsdp)
		return false;
	u64 sdt;
	int esz;
	if (peek8(rsdp + 15) >= 2 && peek64(rsdp + 24)) {
		sdt = peek64(rsdp + 24);
		esz = 8;
	} else {
		sdt = peek32(rsdp + 16);
		esz = 4;
	}
	if (!sdt || sdt >= (4ULL << 30))
		return false;
	u32 sdt_len = peek32(sdt + 4);
	if (sdt_len < 36 || sdt_len > 0x10000)
		return false;
	for (u32 off = 36; off + (u32)esz <= sdt_len; off += (u32)esz) {
		u64 t = esz == 8 ? peek64(sdt + off) : peek32(sdt + off);
		if (!t || t >= (4ULL << 30) || !sig_at(t, "APIC", 4))
			continue;
		u32 len = peek32(t + 4);
		if (len < 44 || len > 0x10000)
			return false;
		for (u64 p = t + 44; p + 2 <= t + len;) {
			u8 type = peek8(p), elen = peek8(p + 1);
			if (elen < 2)
				break;
			if (type == 0 && (peek32(p + 4) & 1))
				add_cpu(cl, peek8(p + 3));
			else if (type == 9 && (peek32(p + 8) & 1))
				add_cpu(cl, peek32(p + 4));
			p += elen;
		}
		return cl->n > 0;
	}
	return false;
}

void find_cpus(struct cpu_list *cl, u8 bsp_apic_id)
{
	/* The MP table is the reference; the ACPI MADT is used when there is
	 * no MP table, or when it lists more CPUs (SeaBIOS, for one, lists
	 * only the first logical CPU of each package in its MP table). */
	static struct cpu_list madt;
	memset(cl, 0, sizeof(*cl));
	memset(&madt, 0, sizeof(madt));
	bool have_mp = parse_mptable(cl);
	bool have_madt = parse_madt(&madt);
	if (have_madt && (!have_mp || madt.n > cl->n)) {
		*cl = madt;
		cl->source = "acpi";
	} else if (have_mp) {
		cl->source = "mptable";
	} else {
		memset(cl, 0, sizeof(*cl));
		cl->source = "none";
		add_cpu(cl, bsp_apic_id);
	}
	/* The BSP (the CPU running this) is CPU 0; keep the others in order. */
	int bsp = -1;
	for (int i = 0; i < cl->nslots; i++)
		if (cl->apic_id[i] == bsp_apic_id)
			bsp = i;
	if (bsp < 0) {
		/* Not listed: put it first anyway, dropping the last if full. */
		if (cl->nslots == GUEST_MAX_CPUS)
			cl->nslots--;
		memmove(&cl->apic_id[1], &cl->apic_id[0], (size_t)cl->nslots);
		cl->nslots++;
		cl->n++;
	} else {
		memmove(&cl->apic_id[1], &cl->apic_id[0], (size_t)bsp);
	}
	cl->apic_id[0] = bsp_apic_id;
}
