/*
 * qemu-tiers bench guest: times port accesses in a tight loop.
 *
 * A freestanding 32-bit multiboot kernel.  For each workload it runs
 * `rounds` rounds of `n` operations and prints the median TSC cycles per
 * operation on COM1:
 *
 *   BENCH workload=pic_imr cpus=2 n=200000 cycles=83.4 min=80.1
 *
 * With smp=2 (or more) the application processors run the same operation
 * in a loop for as long as the bootstrap processor measures, so every
 * measured access contends with the others; with ap=NAME they run
 * workload NAME instead, so that the measured device contends only with
 * another device's accesses.  Options come from the multiboot command
 * line (-append): n=, rounds=, smp=, only=, ap=, irq=, waitcheck=,
 * gatecheck=, straddle=, platform=, memcheck=, memprobe=, smccheck=, ivq=,
 * ivqdb=, ivqdest=, ivqack=, ivqecho=, ivmsgcopy=, ivmsgwait=, ivshmem=,
 * ivshmemdest=, ivshmemecho=.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "bench.h"

#define COM1            0x3f8
#define LAPIC_BASE      0xfee00000u
#define LAPIC_SVR       0xf0
#define LAPIC_ICR_LO    0x300
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_ICR_HI    0x310
#define ICR_ALL_BUT_SELF 0x000c0000u
#define ICR_INIT        0x00004500u
#define ICR_STARTUP     0x00004600u
#define AP_TRAMP_ADDR   0x8000
#define MAX_CPUS        4
#define DEBUG_EXIT_PORT 0xf4

static inline void outb(u16 port, u8 v)
{
    asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
    u8 v;
    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outw(u16 port, u16 v)
{
    asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline u16 inw(u16 port)
{
    u16 v;
    asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline u32 inl(u16 port)
{
    u32 v;
    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline u64 rdtsc(void)
{
    u32 lo, hi;
    asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
    return ((u64)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
    asm volatile("pause" : : : "memory");
}

static inline void mmio_write32(u32 addr, u32 v)
{
    *(volatile u32 *)addr = v;      /* device register: every store counts */
}

/* Shared between the BSP and the APs; no libc, so GCC's atomic builtins. */
static inline u64 rdmsr(u32 msr)
{
    u32 lo, hi;

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((u64)hi << 32) | lo;
}

static inline void wrmsr(u32 msr, u64 v)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}

static inline u32 mmio_read32(u32 addr)
{
    u32 v;

    asm volatile("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
    return v;
}

static inline u32 shared_load(const u32 *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void shared_store(u32 *p, u32 v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* ---- output ---------------------------------------------------------- */

static void putc_serial(char c)
{
    while (!(inb(COM1 + 5) & 0x20)) {
        cpu_relax();
    }
    outb(COM1, c);
}

static void puts_serial(const char *s)
{
    while (*s) {
        putc_serial(*s++);
    }
}

/* 64-by-32 division without libgcc (the guest links no runtime). */
static u64 udiv64(u64 n, u32 d, u32 *rem)
{
    u64 q = 0, r = 0;
    int i;

    for (i = 63; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= 1ull << i;
        }
    }
    if (rem) {
        *rem = (u32)r;
    }
    return q;
}

static void put_u64(u64 v)
{
    char buf[24];
    int i = 0;
    u32 r;

    do {
        v = udiv64(v, 10, &r);
        buf[i++] = '0' + r;
    } while (v);
    while (i) {
        putc_serial(buf[--i]);
    }
}

static void put_hex_digits(u32 v)
{
    int i;

    for (i = 28; i >= 0; i -= 4) {
        putc_serial("0123456789abcdef"[(v >> i) & 15]);
    }
}

static void put_hex(u32 v)
{
    puts_serial("0x");
    put_hex_digits(v);
}

/* Prints tenths as "x.y". */
static void put_tenths(u64 tenths)
{
    u32 r;

    put_u64(udiv64(tenths, 10, &r));
    putc_serial('.');
    putc_serial('0' + r);
}

/* ---- command line ------------------------------------------------------ */

static const char *cmdline = "";

static int streq_n(const char *a, const char *b, int n)
{
    while (n--) {
        if (*a != *b) {
            return 0;
        }
        if (!*a) {
            return 1;
        }
        a++;
        b++;
    }
    return 1;
}

static int str_len(const char *s)
{
    int len = 0;

    while (s[len]) {
        len++;
    }
    return len;
}

/* Finds "key=" as a word in the command line; returns the value or 0. */
static const char *opt(const char *key)
{
    const char *p = cmdline;
    int len = str_len(key);

    while (*p) {
        if ((p == cmdline || p[-1] == ' ') && streq_n(p, key, len) &&
            p[len] == '=') {
            return p + len + 1;
        }
        p++;
    }
    return 0;
}

static u32 opt_u32(const char *key, u32 dflt)
{
    const char *v = opt(key);
    u32 n = 0;

    if (!v || *v < '0' || *v > '9') {
        return dflt;
    }
    while (*v >= '0' && *v <= '9') {
        n = n * 10 + (*v++ - '0');
    }
    return n;
}

/* Is `name` listed in only=a,b,c (or is there no only=)? */
static int selected(const char *name, int by_default)
{
    const char *v = opt("only");
    int len = str_len(name);

    if (!v) {
        return by_default;
    }
    while (*v && *v != ' ') {
        if (streq_n(v, name, len) && (v[len] == ',' || v[len] == ' ' ||
                                      !v[len])) {
            return 1;
        }
        while (*v && *v != ',' && *v != ' ') {
            v++;
        }
        if (*v == ',') {
            v++;
        }
    }
    return 0;
}

/* ---- ACPI: find the PM timer port in the FADT ------------------------- */

static int sig_is(const void *p, const char *sig, int n)
{
    return streq_n((const char *)p, sig, n);
}

static u32 find_pm_timer_port(void)
{
    u32 a, rsdt = 0, i, len;

    for (a = 0xe0000; a < 0x100000; a += 16) {
        if (sig_is((void *)a, "RSD PTR ", 8)) {
            rsdt = *(u32 *)(a + 16);
            break;
        }
    }
    if (!rsdt || !sig_is((void *)rsdt, "RSDT", 4)) {
        return 0;
    }
    len = *(u32 *)(rsdt + 4);
    for (i = 36; i + 4 <= len; i += 4) {
        u32 t = *(u32 *)(rsdt + i);

        if (sig_is((void *)t, "FACP", 4)) {
            return *(u32 *)(t + 76);        /* PM_TMR_BLK */
        }
    }
    return 0;
}

/* ---- workloads --------------------------------------------------------- */

static u32 pm_timer_port;

/* Keeps a value the benchmark reads from being optimised away. */
static inline void consume(u32 v)
{
    asm volatile("" : : "r"(v));
}

static void loop_pit_latch_read(u32 n)
{
    while (n--) {
        outb(0x43, 0x00);               /* counter latch, channel 0 */
        consume(inb(0x40));
        consume(inb(0x40));
    }
}

/*
 * Channel 0's live count, low then high byte (the access mode the BIOS
 * programmed): two accesses that each read the clock.
 */
static void loop_pit_count_read(u32 n)
{
    while (n--) {
        consume(inb(0x40));
        consume(inb(0x40));
    }
}

static void loop_pic_imr(u32 n)
{
    while (n--) {
        consume(inb(0x21));
    }
}

static void loop_elcr(u32 n)
{
    while (n--) {
        consume(inb(0x4d0));
    }
}

static void loop_i8042_status(u32 n)
{
    while (n--) {
        consume(inb(0x64));
    }
}

static void loop_port61(u32 n)
{
    while (n--) {
        consume(inb(0x61));
    }
}

static void loop_pm_timer(u32 n)
{
    while (n--) {
        consume(inl(pm_timer_port));
    }
}

static void loop_port80_write(u32 n)
{
    while (n--) {
        outb(0x80, 0);
    }
}

static void loop_unassigned(u32 n)
{
    while (n--) {
        consume(inb(0x1234));
    }
}

/* A write nothing answers: what an "ignore" route can absorb. */
static void loop_unassigned_write(u32 n)
{
    while (n--) {
        outb(0x1236, 0);
    }
}

/*
 * The same ports 16 bits wide, for tests of routes by access size (the
 * write to 0x1236 runs past a route that ends there).
 */
static void loop_unassigned16(u32 n)
{
    while (n--) {
        consume(inw(0x1234));
    }
}

static void loop_unassigned16_write(u32 n)
{
    while (n--) {
        outw(0x1236, 0);
    }
}

/*
 * A write of the APM control port: an SMI (firmware set APMC_EN on
 * PIIX4 and ICH9), which SeaBIOS's SMM handler ignores for this command;
 * a platform event for the exit router.
 */
static void loop_apm_smi(u32 n)
{
    while (n--) {
        outb(0xb2, 0x5a);
    }
}

/* MMIO: the HPET's capabilities register (device state, no clock). */
#define HPET_BASE 0xfed00000u

static void loop_hpet_cap(u32 n)
{
    while (n--) {
        consume(mmio_read32(HPET_BASE));
    }
}

/*
 * No access at all: what the loop itself costs per iteration (a
 * decrement and a branch; under TCG one chained translation block).
 */
static void loop_empty(u32 n)
{
    while (n--) {
        asm volatile("");
    }
}

/*
 * Each workload is its own tight loop over @n operations, so an access
 * costs what the access costs plus a decrement and a branch.  (Calling
 * each operation through a pointer added two indirect jumps, which TCG
 * resolves through its TB lookup helper: under TCG, a loop that called
 * an empty operation that way took 34 cycles an iteration; loop_empty
 * takes 2.8.)
 */
struct workload {
    const char *name;
    void (*loop)(u32 n);
    int only_by_name;       /* run only when only= names it */
};

static const struct workload workloads[] = {
    { "pit_latch_read", loop_pit_latch_read, 0 },
    { "pit_count_read", loop_pit_count_read, 0 },
    { "pic_imr", loop_pic_imr, 0 },
    { "elcr", loop_elcr, 0 },
    { "i8042_status", loop_i8042_status, 0 },
    { "port61", loop_port61, 0 },
    { "pm_timer", loop_pm_timer, 0 },
    { "port80_write", loop_port80_write, 0 },
    { "unassigned", loop_unassigned, 0 },
    { "unassigned_write", loop_unassigned_write, 0 },
    /* By name only: for tests (test-router-guest.sh). */
    { "unassigned16", loop_unassigned16, 1 },
    { "unassigned16_write", loop_unassigned16_write, 1 },
    /*
     * By name only: its cost is the firmware's SMM handler, and with 2
     * vCPUs SeaBIOS's handler is slow on pc (10^5-10^6 cycles an SMI,
     * both builds) and never returns on q35 (broadcast SMI, both builds).
     */
    { "apm_smi", loop_apm_smi, 1 },
    { "hpet_cap", loop_hpet_cap, 0 },
    { "empty", loop_empty, 0 },
};
#define N_WORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* ---- SMP: APs repeat the current op while the BSP measures ------------ */

static u32 ap_alive;        /* APs that reached ap_main */
static u32 ap_gen;          /* bumped by the BSP to start a workload */
static u32 ap_stop;         /* set by the BSP when its measurement ends */
static u32 ap_running;      /* APs inside a workload loop */
static u32 ap_workload;     /* index into workloads[], or AP_JOB_WAIT */

#define AP_JOB_WAIT 0xffffffffu
#define AP_JOB_PLATFORM 0xfffffffeu
#define AP_JOB_MEMCHECK 0xfffffffdu
static void wait_check_ap(u32 me);
static void platform_ap(u32 me);
static void memcheck_cpu(u32 me);

/* Operations an AP runs between two looks at ap_stop. */
#define AP_CHUNK 64

void ap_main(void)
{
    u32 seen = 0, me = __atomic_add_fetch(&ap_alive, 1, __ATOMIC_SEQ_CST);

    for (;;) {
        void (*loop)(u32 n);

        while (shared_load(&ap_gen) == seen) {
            cpu_relax();
        }
        seen = shared_load(&ap_gen);
        if (shared_load(&ap_workload) == AP_JOB_WAIT) {
            wait_check_ap(me);
            continue;
        }
        if (shared_load(&ap_workload) == AP_JOB_PLATFORM) {
            platform_ap(me);            /* does not return */
        }
        if (shared_load(&ap_workload) == AP_JOB_MEMCHECK) {
            memcheck_cpu(me);           /* does not return */
        }
        loop = workloads[shared_load(&ap_workload)].loop;
        __atomic_fetch_add(&ap_running, 1, __ATOMIC_SEQ_CST);
        while (!shared_load(&ap_stop)) {
            loop(AP_CHUNK);
        }
        __atomic_fetch_sub(&ap_running, 1, __ATOMIC_SEQ_CST);
    }
}

static void spin(u32 loops)
{
    while (loops--) {
        cpu_relax();
    }
}

static u32 start_aps(u32 want)
{
    u8 *dst = (u8 *)AP_TRAMP_ADDR;
    const char *src = ap_tramp;
    int tries;

    while (src < ap_tramp_end) {
        *dst++ = *src++;
    }
    mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);
    mmio_write32(LAPIC_BASE + LAPIC_ICR_HI, 0);
    mmio_write32(LAPIC_BASE + LAPIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_INIT);
    spin(100000);
    for (tries = 0; tries < 2 && shared_load(&ap_alive) < want; tries++) {
        mmio_write32(LAPIC_BASE + LAPIC_ICR_LO, ICR_ALL_BUT_SELF |
                     ICR_STARTUP | (AP_TRAMP_ADDR >> 12));
        spin(1000000);
    }
    for (tries = 0; tries < 1000 && shared_load(&ap_alive) < want; tries++) {
        spin(100000);
    }
    return shared_load(&ap_alive);
}

/* ---- measurement ------------------------------------------------------- */

static void sort_u64(u64 *v, u32 n)
{
    u32 i, j;

    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            u64 t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
}

/* The workload named by ap=NAME, or -1 (the APs run the BSP's). */
static int ap_workload_option(void)
{
    const char *v = opt("ap");
    u32 i;
    int len;

    if (!v) {
        return -1;
    }
    for (i = 0; i < N_WORKLOADS; i++) {
        len = str_len(workloads[i].name);
        if (streq_n(v, workloads[i].name, len) &&
            (v[len] == ' ' || !v[len])) {
            return i;
        }
    }
    puts_serial("BENCH-ERROR unknown ap= workload\n");
    return -1;
}

static void run_workload(u32 index, u32 n, u32 rounds, u32 aps, int ap_index)
{
    const struct workload *w = &workloads[index];
    u64 tenths[32];
    u32 r;

    if (aps) {
        shared_store(&ap_workload, ap_index < 0 ? index : (u32)ap_index);
        shared_store(&ap_stop, 0);
        shared_store(&ap_gen, shared_load(&ap_gen) + 1);
        while (shared_load(&ap_running) < aps) {
            cpu_relax();
        }
    }
    w->loop(n / 10 + 1);                     /* warm-up */
    for (r = 0; r < rounds; r++) {
        u64 t0 = rdtsc(), t1;

        w->loop(n);
        t1 = rdtsc();
        tenths[r] = udiv64((t1 - t0) * 10, n, 0);
    }
    if (aps) {
        shared_store(&ap_stop, 1);
        while (shared_load(&ap_running)) {
            cpu_relax();
        }
    }
    sort_u64(tenths, rounds);
    puts_serial("BENCH workload=");
    puts_serial(w->name);
    puts_serial(" cpus=");
    put_u64(aps + 1);
    puts_serial(" n=");
    put_u64(n);
    if (aps && ap_index >= 0) {
        puts_serial(" ap=");
        puts_serial(workloads[ap_index].name);
    }
    puts_serial(" cycles=");
    put_tenths(tenths[rounds / 2]);
    puts_serial(" min=");
    put_tenths(tenths[0]);
    puts_serial("\n");
}

/* ---- handler-wait check ------------------------------------------------- */

/*
 * waitcheck=1, for tests/boot/test-external-guest.py: how long each vCPU
 * waits on one external handler that hangs.  The BSP reads port
 * WAIT_PORT_SLOW once; once that read is in flight (and 2 ms more), each
 * AP reads port WAIT_PORT_FAST WAIT_READS times.  Every read is timed
 * with the TSC, calibrated against the ACPI PM timer, and each CPU
 * reports its slowest read and the value it got:
 *
 *   BENCH-WAIT cpu=0 reads=1 max_us=3000410 value=0xff
 *   BENCH-WAIT cpu=1 reads=8 max_us=201234 value=0xff
 */
#define WAIT_PORT_SLOW  0x84
#define WAIT_PORT_FAST  0x85
#define WAIT_READS      8
#define PM_TIMER_HZ     3579545u

static u32 wait_go;                     /* the BSP's read is starting */
static u32 wait_done;                   /* APs finished */
static u64 wait_max_cycles[MAX_CPUS];
static u32 wait_value[MAX_CPUS];
static u32 wait_cycles_per_us;

static u32 pm_ticks_since(u32 t0)
{
    return (inl(pm_timer_port) - t0) & 0xffffff;
}

/*
 * A PM-timer reading and the TSC at that moment: the tightest of 16
 * TSC-inl-TSC sandwiches, so that a vCPU descheduled next to the inl
 * (4 vCPUs on 2 host CPUs) does not skew it.
 */
static void pm_tsc_pair(u32 *t, u64 *c)
{
    u64 best = ~0ull;
    int i;

    for (i = 0; i < 16; i++) {
        u64 c0 = rdtsc(), c1;
        u32 pm = inl(pm_timer_port);

        c1 = rdtsc();
        if (c1 - c0 < best) {
            best = c1 - c0;
            *t = pm;
            *c = c0 + (c1 - c0) / 2;
        }
    }
}

/*
 * TSC cycles per microsecond, measured over 100000 PM-timer ticks
 * (28 ms).  A single read at each end was once off by 26 % on a loaded
 * host (external-guest's waits all came out 0.74x).
 */
static u32 tsc_per_us(void)
{
    u32 t0, t1, dt;
    u64 c0, c1;

    pm_tsc_pair(&t0, &c0);
    while (pm_ticks_since(t0) < 100000) {
        cpu_relax();
    }
    pm_tsc_pair(&t1, &c1);
    dt = (t1 - t0) & 0xffffff;
    return udiv64(udiv64((c1 - c0) * (PM_TIMER_HZ / 1000), dt, 0), 1000, 0);
}

static void wait_read(u32 cpu, u16 port)
{
    u64 t0 = rdtsc(), dt;

    wait_value[cpu] = inb(port);
    dt = rdtsc() - t0;
    if (dt > wait_max_cycles[cpu]) {
        wait_max_cycles[cpu] = dt;
    }
}

static void wait_check_ap(u32 me)
{
    u32 t0, i;

    while (!shared_load(&wait_go)) {
        cpu_relax();
    }
    /* Let the BSP's request reach the handler first. */
    t0 = inl(pm_timer_port);
    while (pm_ticks_since(t0) < PM_TIMER_HZ / 500) {
        cpu_relax();
    }
    for (i = 0; i < WAIT_READS; i++) {
        wait_read(me, WAIT_PORT_FAST);
    }
    __atomic_fetch_add(&wait_done, 1, __ATOMIC_SEQ_CST);
}

static void wait_check(u32 aps)
{
    u32 cpu;

    if (!pm_timer_port) {
        puts_serial("BENCH-ERROR waitcheck needs the ACPI PM timer\n");
        return;
    }
    wait_cycles_per_us = tsc_per_us();
    shared_store(&ap_workload, AP_JOB_WAIT);
    shared_store(&ap_gen, shared_load(&ap_gen) + 1);
    shared_store(&wait_go, 1);
    wait_read(0, WAIT_PORT_SLOW);
    while (shared_load(&wait_done) < aps) {
        cpu_relax();
    }
    for (cpu = 0; cpu <= aps; cpu++) {
        puts_serial("BENCH-WAIT cpu=");
        put_u64(cpu);
        puts_serial(" reads=");
        put_u64(cpu ? WAIT_READS : 1);
        puts_serial(" max_us=");
        put_u64(udiv64(wait_max_cycles[cpu], wait_cycles_per_us, 0));
        puts_serial(" value=");
        put_hex(wait_value[cpu]);
        puts_serial("\n");
    }
}

/* ---- functional checks for tests/boot/test-tier-kvm.sh ------------------ */

/* The index of the workload called @name in workloads[]. */
static u32 workload_index(const char *name)
{
    int len = str_len(name);
    u32 i;

    for (i = 0; i < N_WORKLOADS; i++) {
        if (str_len(workloads[i].name) == len &&
            streq_n(workloads[i].name, name, len)) {
            return i;
        }
    }
    return 0;
}

/*
 * gatecheck=N: the BSP toggles PIT channel 2's gate (port 0x61 bit 0)
 * N times and reads it back after each write, while the APs read port
 * 0x61 in a loop.  Every read-back must see the gate just written:
 *
 *   BENCH-GATE writes=100000 mismatches=0
 */
static void gate_check(u32 n, u32 aps)
{
    u32 i, bad = 0;

    if (aps) {
        shared_store(&ap_workload, workload_index("port61"));
        shared_store(&ap_stop, 0);
        shared_store(&ap_gen, shared_load(&ap_gen) + 1);
        while (shared_load(&ap_running) < aps) {
            cpu_relax();
        }
    }
    for (i = 0; i < n; i++) {
        outb(0x61, i & 1);          /* gate = i & 1, speaker data off */
        bad += (inb(0x61) & 1) != (i & 1);
    }
    if (aps) {
        shared_store(&ap_stop, 1);
        while (shared_load(&ap_running)) {
            cpu_relax();
        }
    }
    puts_serial("BENCH-GATE writes=");
    put_u64(n);
    puts_serial(" mismatches=");
    put_u64(bad);
    puts_serial("\n");
}

/*
 * straddle=1: one word write at port 0x81 covers the DMA page registers
 * 0x81 and 0x82; read both back.  A route limited to port 0x81 does not
 * match the word, so the device must see it on every accelerator:
 *
 *   BENCH-STRADDLE p81=0x0000005a p82=0x000000a5
 */
static void straddle_check(void)
{
    outb(0x81, 0);
    outb(0x82, 0);
    asm volatile("outw %0, %1" : : "a"((u16)0xa55a), "Nd"((u16)0x81));
    puts_serial("BENCH-STRADDLE p81=");
    put_hex(inb(0x81));
    puts_serial(" p82=");
    put_hex(inb(0x82));
    puts_serial("\n");
}

/* ---- IRQ test: PIT IRQ0 through the i8259 -------------------------------- */

/*
 * irq=N: program the PIC pair (vectors 0x20/0x28, only IRQ0 unmasked)
 * and PIT channel 0 as a 1 kHz rate generator, take N timer interrupts
 * (each handler sends a non-specific EOI to the master, OCW2 0x20), and
 * report them with the TSC cycles they took:
 *
 *   BENCH-IRQ ticks=200 spurious=0 cycles_per_tick=2300000
 *
 * This is the path that makes the PIC drive its INT line: EOIs and IMR
 * writes served by the kernel tier, IRQ0 edges raised under the BQL.
 */
#define IRQ_VECTOR_BASE 0x20
#define PIT_HZ          1193182u

struct idt_gate {
    u16 off_lo, sel;
    u8 zero, type;
    u16 off_hi;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(8)));
static volatile u32 irq_ticks, irq_spurious;  /* written by the handlers */

void irq_timer(void)
{
    irq_ticks++;
    outb(0x20, 0x20);               /* OCW2: non-specific EOI */
}

void irq_other(void)
{
    irq_spurious++;
}

static void idt_set(int vec, const char *entry)
{
    u32 off = (u32)entry;

    idt[vec] = (struct idt_gate) {
        .off_lo = off & 0xffff, .sel = 0x08, .type = 0x8e,
        .off_hi = off >> 16,
    };
}

static void irq_test(u32 want)
{
    struct { u16 limit; u32 base; } __attribute__((packed)) idtr = {
        sizeof(idt) - 1, (u32)idt,
    };
    u32 count = PIT_HZ / 1000;
    u64 t0, t1;
    int v;

    for (v = 0; v < 256; v++) {
        idt_set(v, irq_other_entry);
    }
    idt_set(IRQ_VECTOR_BASE, irq_timer_entry);
    asm volatile("lidt %0" : : "m"(idtr));
    /* ICW1 (edge, cascade, ICW4), ICW2 (vector base), ICW3, ICW4 (8086) */
    outb(0x20, 0x11);
    outb(0x21, IRQ_VECTOR_BASE);
    outb(0x21, 0x04);
    outb(0x21, 0x01);
    outb(0xa0, 0x11);
    outb(0xa1, IRQ_VECTOR_BASE + 8);
    outb(0xa1, 0x02);
    outb(0xa1, 0x01);
    outb(0xa1, 0xff);               /* OCW1: slave all masked */
    outb(0x21, 0xfe);               /* OCW1: master IRQ0 only */
    /* Virtual wire: the PIC's INTR reaches the CPU through LINT0. */
    mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);
    mmio_write32(LAPIC_BASE + LAPIC_LVT_LINT0, 0x700);     /* ExtINT */
    outb(0x43, 0x34);               /* channel 0, LSB/MSB, mode 2 */
    outb(0x40, count & 0xff);
    outb(0x40, count >> 8);
    asm volatile("sti");
    while (irq_ticks < 1) {
        asm volatile("hlt");
    }
    t0 = rdtsc();
    irq_ticks = 0;
    while (irq_ticks < want) {
        asm volatile("hlt");
    }
    t1 = rdtsc();
    asm volatile("cli");
    outb(0x21, 0xff);
    puts_serial("BENCH-IRQ ticks=");
    put_u64(irq_ticks);
    puts_serial(" spurious=");
    put_u64(irq_spurious);
    puts_serial(" cycles_per_tick=");
    put_u64(udiv64(t1 - t0, want, 0));
    puts_serial("\n");
}

/* ---- platform events: NMIs and machine checks per vCPU ----------------- */

/*
 * platform=1, for tests/boot/test-platform-guest.sh: every vCPU takes
 * NMIs (vector 2) and machine checks (vector 18, with CR4.MCE set and
 * MCG_CTL and every MCi_CTL all-ones, so that uncorrected errors are
 * reported) and counts them; each also copies its bank 9 status, where
 * QEMU logs the errors it injects, and the BSP prints what changed:
 *
 *   BENCH-PLATFORM ready cpus=2
 *   BENCH-PLATFORM cpu=1 nmi=1 mce=0 bank9=0x0000000000000000 mc=0x...
 *
 * (bank9: the bank as last polled; mc: the bank as the last #MC handler
 * found it, before it cleared it.)
 *
 * A machine check's handler clears MCG_STATUS.MCIP and the bank, so that
 * the next one is taken rather than a shutdown.
 */
#define MSR_MCG_CAP     0x179
#define MSR_MCG_STATUS  0x17a
#define MSR_MCG_CTL     0x17b
#define MSR_MC_CTL(i)   (0x400 + 4 * (i))
#define MSR_MC_STATUS(i) (0x401 + 4 * (i))
#define CR4_MCE         (1u << 6)

/* volatile: written by the NMI and #MC handlers, read by the main loop. */
static volatile u32 plat_nmi[MAX_CPUS], plat_mce[MAX_CPUS];
static volatile u64 plat_bank9[MAX_CPUS];     /* polled */
static volatile u64 plat_mc_status[MAX_CPUS]; /* as the #MC handler saw it */

static u32 this_cpu(void)
{
    return mmio_read32(LAPIC_BASE + 0x20) >> 24;    /* APIC ID */
}

void nmi_handler(void)
{
    u32 c = this_cpu();

    if (c < MAX_CPUS) {
        plat_nmi[c]++;
    }
}

void mce_handler(void)
{
    u32 c = this_cpu();

    if (c < MAX_CPUS) {
        plat_mc_status[c] = rdmsr(MSR_MC_STATUS(9));
        plat_mce[c]++;
    }
    wrmsr(MSR_MC_STATUS(9), 0);
    wrmsr(MSR_MCG_STATUS, 0);
}

/* This vCPU: the IDT, CR4.MCE, every bank reporting. */
static void platform_cpu_init(void)
{
    struct { u16 limit; u32 base; } __attribute__((packed)) idtr = {
        sizeof(idt) - 1, (u32)idt,
    };
    u64 cap = rdmsr(MSR_MCG_CAP);
    u32 cr4, b;

    asm volatile("lidt %0" : : "m"(idtr));
    /*
     * QEMU sends an NMI to a vCPU through its LAPIC's LINT1, as the
     * chipset wires it: unmask LINT1 as an NMI (SeaBIOS does it on the
     * BSP only).
     */
    mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);
    mmio_write32(LAPIC_BASE + LAPIC_LVT_LINT1, 0x400);
    if (cap & (1 << 8)) {                       /* MCG_CTL_P */
        wrmsr(MSR_MCG_CTL, ~0ull);
    }
    for (b = 0; b < (cap & 0xff); b++) {
        wrmsr(MSR_MC_CTL(b), ~0ull);
        wrmsr(MSR_MC_STATUS(b), 0);
    }
    asm volatile("mov %%cr4, %0" : "=r"(cr4));
    asm volatile("mov %0, %%cr4" : : "r"(cr4 | CR4_MCE));
}

/* An AP's part: take events, keep its bank 9 status in sight. */
static void platform_ap(u32 me)
{
    platform_cpu_init();
    __atomic_fetch_add(&ap_running, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        if (me < MAX_CPUS) {
            plat_bank9[me] = rdmsr(MSR_MC_STATUS(9));
        }
        cpu_relax();
    }
}

static void platform_print(u32 cpu)
{
    puts_serial("BENCH-PLATFORM cpu=");
    put_u64(cpu);
    puts_serial(" nmi=");
    put_u64(plat_nmi[cpu]);
    puts_serial(" mce=");
    put_u64(plat_mce[cpu]);
    puts_serial(" bank9=");
    put_hex(plat_bank9[cpu] >> 32);
    put_hex_digits((u32)plat_bank9[cpu]);
    puts_serial(" mc=");
    put_hex(plat_mc_status[cpu] >> 32);
    put_hex_digits((u32)plat_mc_status[cpu]);
    puts_serial("\n");
}

static void platform_events(u32 aps)
{
    u32 seen_nmi[MAX_CPUS] = { 0 }, seen_mce[MAX_CPUS] = { 0 }, c, v;
    u64 seen_bank9[MAX_CPUS] = { 0 };

    for (v = 0; v < 256; v++) {
        idt_set(v, irq_other_entry);
    }
    idt_set(2, nmi_entry);
    idt_set(18, mce_entry);
    platform_cpu_init();
    shared_store(&ap_workload, AP_JOB_PLATFORM);
    shared_store(&ap_gen, shared_load(&ap_gen) + 1);
    while (shared_load(&ap_running) < aps) {
        cpu_relax();
    }
    puts_serial("BENCH-PLATFORM ready cpus=");
    put_u64(aps + 1);
    puts_serial("\n");
    for (;;) {
        plat_bank9[0] = rdmsr(MSR_MC_STATUS(9));
        for (c = 0; c <= aps && c < MAX_CPUS; c++) {
            if (plat_nmi[c] != seen_nmi[c] || plat_mce[c] != seen_mce[c] ||
                plat_bank9[c] != seen_bank9[c]) {
                seen_nmi[c] = plat_nmi[c];
                seen_mce[c] = plat_mce[c];
                seen_bank9[c] = plat_bank9[c];
                platform_print(c);
            }
        }
        spin(10000);
    }
}

/* ---- memcheck: patterns checked and rewritten while pages are retired -- */

/*
 * memcheck=PAGES, for tests/boot/test-ras-guest.py: PAGES pages from
 * MEMCHECK_BASE up, vCPU c owning those whose index is c modulo the
 * vCPUs.  Each vCPU, over and over, checks each of its pages against
 * the pattern it wrote last (the page's number and a generation in every
 * word) and writes the next generation.  The host retires pages under
 * it; a word that differs is a byte lost.  #MC and NMI handlers count
 * what arrives (platform=), and every MEMCHECK_REPORT passes of vCPU 0
 * a line gives the totals:
 *
 *   BENCH-MEMCHECK pass=P passes=A bad=B mce=M
 *
 * P: vCPU 0's passes, A: the smallest pass count of any vCPU, B: words
 * that differed, M: machine checks taken.
 *
 * memprobe=N adds N probe pages after the checked ones, never written:
 * before each report vCPU 0 reads one of them, in turn.  A page the host
 * poisoned raises a machine check on that read (counted in M); one read
 * per report keeps the #MCs (broadcast to every vCPU) far apart.
 */
#define MEMCHECK_BASE       0x1000000u      /* 16 MiB */
#define MEMCHECK_MAX_PAGES  65536u
#define MEMCHECK_REPORT     4

static u32 memcheck_pages, memcheck_cpus, memcheck_probes;
static u16 memcheck_gen[MEMCHECK_MAX_PAGES];
/* volatile: each vCPU writes its own, vCPU 0 reads them all. */
static volatile u32 memcheck_pass[MAX_CPUS], memcheck_bad[MAX_CPUS];

static inline u32 memcheck_word(u32 page, u32 gen, u32 i)
{
    return page * 0x9e3779b1u ^ (gen << 16) ^ i;
}

static void memcheck_cpu(u32 me)
{
    u32 p, i;

    platform_cpu_init();
    __atomic_fetch_add(&ap_running, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        for (p = me; p < memcheck_pages; p += memcheck_cpus) {
            /* volatile: every word is read and written, in order. */
            volatile u32 *w = (volatile u32 *)(MEMCHECK_BASE + p * 4096u);
            u32 gen = memcheck_gen[p], bad = 0;

            for (i = 0; i < 1024; i++) {
                bad += w[i] != memcheck_word(p, gen, i);
            }
            if (bad) {
                memcheck_bad[me] += bad;
            }
            gen = (gen + 1) & 0xffff;
            for (i = 0; i < 1024; i++) {
                w[i] = memcheck_word(p, gen, i);
            }
            memcheck_gen[p] = gen;
        }
        memcheck_pass[me]++;
        if (me == 0 && memcheck_pass[0] % MEMCHECK_REPORT == 0) {
            u32 bad = 0, mce = 0, least = memcheck_pass[0], c;

            if (memcheck_probes) {
                u32 k = memcheck_pass[0] / MEMCHECK_REPORT % memcheck_probes;

                /* volatile: the read itself is the probe. */
                (void)*(volatile u32 *)(MEMCHECK_BASE +
                                        (memcheck_pages + k) * 4096u);
            }

            for (c = 0; c < memcheck_cpus; c++) {
                bad += memcheck_bad[c];
                mce += plat_mce[c];
                if (memcheck_pass[c] < least) {
                    least = memcheck_pass[c];
                }
            }
            puts_serial("BENCH-MEMCHECK pass=");
            put_u64(memcheck_pass[0]);
            puts_serial(" passes=");
            put_u64(least);
            puts_serial(" bad=");
            put_u64(bad);
            puts_serial(" mce=");
            put_u64(mce);
            puts_serial("\n");
        }
    }
}

static void memcheck(u32 pages, u32 probes, u32 aps)
{
    u32 p, i, v;

    if (pages > MEMCHECK_MAX_PAGES) {
        pages = MEMCHECK_MAX_PAGES;
    }
    memcheck_pages = pages;
    memcheck_probes = pages + probes <= MEMCHECK_MAX_PAGES ? probes : 0;
    memcheck_cpus = aps + 1 < MAX_CPUS ? aps + 1 : MAX_CPUS;
    for (v = 0; v < 256; v++) {
        idt_set(v, irq_other_entry);
    }
    idt_set(2, nmi_entry);
    idt_set(18, mce_entry);
    for (p = 0; p < pages; p++) {
        /* volatile: the first pattern, before any check reads it. */
        volatile u32 *w = (volatile u32 *)(MEMCHECK_BASE + p * 4096u);

        for (i = 0; i < 1024; i++) {
            w[i] = memcheck_word(p, 0, i);
        }
    }
    shared_store(&ap_workload, AP_JOB_MEMCHECK);
    shared_store(&ap_gen, shared_load(&ap_gen) + 1);
    puts_serial("BENCH-MEMCHECK ready pages=");
    put_u64(pages);
    puts_serial(" cpus=");
    put_u64(memcheck_cpus);
    puts_serial("\n");
    memcheck_cpu(0);
}

/* ---- smccheck: code rewritten in pages that are retired ----------------- */

/*
 * smccheck=PAGES, for tests/boot/test-ras-guest.py: PAGES pages from
 * MEMCHECK_BASE up each hold a function "mov eax, imm32; ret".  Over
 * and over, vCPU 0 writes a new immediate into each page's function and
 * calls it: a CPU (and TCG, which translated the old one) must run the
 * new instruction.  The host retires the pages meanwhile; a call that
 * returns the old immediate ran stale code.  Every SMCCHECK_REPORT
 * passes:
 *
 *   BENCH-SMCCHECK pass=P stale=S
 */
#define SMCCHECK_REPORT     64

static void smccheck(u32 pages)
{
    u32 pass = 0, stale = 0, gen = 0, p;

    if (pages > MEMCHECK_MAX_PAGES) {
        pages = MEMCHECK_MAX_PAGES;
    }
    puts_serial("BENCH-SMCCHECK ready pages=");
    put_u64(pages);
    puts_serial("\n");
    for (;;) {
        gen++;
        for (p = 0; p < pages; p++) {
            /* volatile: the code bytes are data to this loop. */
            volatile u8 *code = (volatile u8 *)(MEMCHECK_BASE + p * 4096u);
            u32 (*fn)(void) = (u32 (*)(void))(MEMCHECK_BASE + p * 4096u);
            u32 want = gen * 0x10000u + p;

            code[0] = 0xb8;                         /* mov eax, imm32 */
            code[1] = want;
            code[2] = want >> 8;
            code[3] = want >> 16;
            code[4] = want >> 24;
            code[5] = 0xc3;                         /* ret */
            if (fn() != want) {
                stale++;
            }
        }
        if (++pass % SMCCHECK_REPORT == 0) {
            puts_serial("BENCH-SMCCHECK pass=");
            put_u64(pass);
            puts_serial(" stale=");
            put_u64(stale);
            puts_serial("\n");
        }
    }
}

/* ---- inter-VM messages: ivq and ivshmem, one message at a time ---------- */

/*
 * ivq=SIZE [ivqdb=exit|noexit] [ivqdest=ID], for bench/ivq.py: the
 * guest finds the qemu-tiers ivq device (PCI 1234:11e9) by scanning
 * bus 0's configuration space, and sends n messages of SIZE bytes per
 * round (rounds=) to its own peer id (or ID), one at a time: copy the
 * payload from private memory into the send area, ring a doorbell
 * (DB_EXIT or DB_NOEXIT), wait for the MSI-X interrupt that INT_RX
 * sends, clear INT_RX, check the record at the queue's head (header
 * length, first and last payload word), pop it.
 *
 * ivshmem=SIZE: the same with QEMU's ivshmem-doorbell (PCI 1af4:1110,
 * connected to an ivshmem server, one vector): copy the payload into
 * the shared memory (BAR2) after a 64-byte descriptor (length,
 * sequence), ring the Doorbell register with the device's own
 * IVPosition, wait for the MSI-X interrupt, check the descriptor and the
 * payload's first and last words.
 *
 * Each round's TSC cycles per message; the median and fastest round:
 *
 *   BENCH workload=ivq_exit cpus=1 n=200 cycles=9120.3 min=8807.1 size=64 bad=0
 *
 * ivmsgcopy=0: the payload is built in the window instead (only its
 * first and last words written), for the transport's cost alone.
 *
 * Between two VMs (bench/ivq.py --pair): ivqecho=1 (or ivshmemecho=ID)
 * makes a guest the echo side, forever: on each message it checks it
 * (first and last words against the sequence number in the first) and
 * answers with a 4-byte ack carrying that number (ivq: a message to the
 * sender, whose id the VMM stamped; ivshmem: a ring of peer ID's
 * doorbell).  The other guest sends with ivqdest=ID (ivshmemdest=ID)
 * and ivqack=1: it waits for the ack instead of its own message, so a
 * round trip is SIZE bytes one way and 4 back.  ivmsgwait=hlt: both
 * wait for their interrupts in HLT (two VMs share two host CPUs).
 *
 * (workload ivq_exit, ivq_noexit or ivshmem; bad: messages whose length
 * or words differed.)  The guest runs without paging: a 64-bit BAR2
 * that the firmware put above 4 GiB is moved below (BENCH-IVMSG says
 * where it was).
 */
#define IVMSG_VECTOR    0x41
#define IVMSG_SRC       0x1000000u      /* 16 MiB: the private payload */
#define IVMSG_MAX_SIZE  (8u << 20)
#define IVMSG_TIMEOUT   (4ull << 30)    /* TSC cycles: ~1.5 s */
#define LAPIC_EOI       0xb0

#define IVQ_VENDOR_DEVICE       0x11e91234u
#define IVSHMEM_VENDOR_DEVICE   0x11101af4u

/* ivq BAR0 registers (docs/intervm-queues.rst) */
#define IVQ_ID          0x00
#define IVQ_SEND_DEST   0x10
#define IVQ_SEND_LEN    0x14
#define IVQ_SEND_OFF    0x18
#define IVQ_SEND_COUNT  0x1c
#define IVQ_DB_EXIT     0x20
#define IVQ_DB_NOEXIT   0x24
#define IVQ_RX_HEAD     0x2c
#define IVQ_RX_POP      0x34
#define IVQ_RX_COUNT    0x38
#define IVQ_INT_STATUS  0x3c
#define IVQ_INT_MASK    0x40
#define IVQ_MAX_MSG     0x44
#define IVQ_SEND_SIZE   0x48
#define IVQ_RX_OFF      0x4c
#define IVQ_RX_SIZE     0x50
#define IVQ_INT_RX      1u
#define IVQ_HDR_PAD     1u
#define IVQ_HDR         32u             /* record header bytes */

/* ivshmem BAR0 registers (docs/specs/ivshmem-spec.rst) */
#define IVSHMEM_IVPOSITION  0x08
#define IVSHMEM_DOORBELL    0x0c
#define IVSHMEM_DESC        64u         /* our descriptor before the payload */

/* Interrupts taken on IVMSG_VECTOR; the entry below counts them. */
volatile u32 ivmsg_irqs;
extern const char ivmsg_irq_entry[];
asm(".text\n"
    ".globl ivmsg_irq_entry\n"
    "ivmsg_irq_entry:\n"
    "    lock incl ivmsg_irqs\n"
    "    movl $0, 0xfee000b0\n"         /* LAPIC EOI */
    "    iret\n");

static inline void outl(u16 port, u32 v)
{
    asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static u32 pci_read(u32 bdf, u32 off)
{
    outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
    return inl(0xcfc);
}

static void pci_write(u32 bdf, u32 off, u32 v)
{
    outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
    outl(0xcfc, v);
}

/* Bus 0's device with this vendor/device id, as bus << 8 | devfn; or -1. */
static int pci_find(u32 vendor_device)
{
    u32 devfn;

    for (devfn = 0; devfn < 256; devfn++) {
        if (pci_read(devfn, 0) == vendor_device) {
            return devfn;
        }
    }
    return -1;
}

/* A memory BAR's address; 0 if it is not below 4 GiB. */
static u32 pci_bar32(u32 bdf, int bar)
{
    u32 lo = pci_read(bdf, 0x10 + 4 * bar);

    if ((lo & 6) == 4 && pci_read(bdf, 0x14 + 4 * bar)) {
        return 0;                       /* a 64-bit BAR above 4 GiB */
    }
    return lo & ~0xfu;
}

/*
 * A 64-bit BAR that the firmware placed above 4 GiB, moved into the PCI
 * hole below (at IVMSG_LOW_BAR, aligned for BARs up to 1 GiB; nothing
 * else of this guest lives there): the guest runs without paging.
 * Returns whether it moved.
 */
#define IVMSG_LOW_BAR   0xc0000000u

static int pci_bar_below_4g(u32 bdf, int bar)
{
    u32 off = 0x10 + 4 * bar, cmd;

    if ((pci_read(bdf, off) & 6) != 4 || !pci_read(bdf, off + 4)) {
        return 0;
    }
    cmd = pci_read(bdf, 4);
    pci_write(bdf, 4, cmd & ~2u);
    pci_write(bdf, off, IVMSG_LOW_BAR);
    pci_write(bdf, off + 4, 0);
    pci_write(bdf, 4, cmd);
    return 1;
}

/* A memory BAR's size (decoding off while it is probed). */
static u32 pci_bar_size(u32 bdf, int bar)
{
    u32 off = 0x10 + 4 * bar, cmd = pci_read(bdf, 4), lo, size;

    pci_write(bdf, 4, cmd & ~2u);
    lo = pci_read(bdf, off);
    pci_write(bdf, off, 0xffffffffu);
    size = ~(pci_read(bdf, off) & ~0xfu) + 1;
    pci_write(bdf, off, lo);
    pci_write(bdf, 4, cmd);
    return size;
}

/*
 * Memory decoding and bus mastering on (MSI-X messages are DMA writes),
 * MSI-X vector 0 to this CPU's IVMSG_VECTOR, MSI-X enabled.  0 if the
 * device has no MSI-X or its table is not below 4 GiB.
 */
static int ivmsg_msix_setup(u32 bdf)
{
    u32 cap = pci_read(bdf, 0x34) & 0xfc, ctl, table;

    pci_write(bdf, 4, pci_read(bdf, 4) | 6);
    while (cap && (pci_read(bdf, cap) & 0xff) != 0x11) {
        cap = (pci_read(bdf, cap) >> 8) & 0xfc;
    }
    if (!cap) {
        return 0;
    }
    table = pci_read(bdf, cap + 4);
    if (!pci_bar32(bdf, table & 7)) {
        return 0;
    }
    table = pci_bar32(bdf, table & 7) + (table & ~7u);
    mmio_write32(table + 0, LAPIC_BASE);         /* to APIC id 0 */
    mmio_write32(table + 4, 0);
    mmio_write32(table + 8, IVMSG_VECTOR);       /* fixed, edge */
    mmio_write32(table + 12, 0);                 /* unmasked */
    ctl = pci_read(bdf, cap);
    pci_write(bdf, cap, (ctl | 0x80000000u) & ~0x40000000u);
    return 1;
}

/* The IDT with ivmsg_irq_entry at IVMSG_VECTOR, the PICs masked, sti. */
static void ivmsg_irq_setup(void)
{
    struct { u16 limit; u32 base; } __attribute__((packed)) idtr = {
        sizeof(idt) - 1, (u32)idt,
    };
    int v;

    for (v = 0; v < 256; v++) {
        idt_set(v, irq_other_entry);
    }
    idt_set(IVMSG_VECTOR, ivmsg_irq_entry);
    asm volatile("lidt %0" : : "m"(idtr));
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);
    asm volatile("sti");
}

/*
 * ivmsgwait=hlt: wait for interrupts in HLT instead of spinning, so that
 * a waiting vCPU gives its host CPU to the other VM (bench/ivq.py
 * --pair: two VMs on two host CPUs).  STI's one-instruction shadow makes
 * "sti; hlt" atomic: an interrupt that arrives after the check wakes
 * the HLT instead of being taken before it.
 */
static int ivmsg_halt;

static void ivmsg_sleep(u32 seen)
{
    asm volatile("cli");
    while (ivmsg_irqs == seen) {
        asm volatile("sti; hlt; cli");
    }
    asm volatile("sti");
}

/* Waits for the interrupt after @seen; 0 on timeout. */
static int ivmsg_wait(u32 seen)
{
    u64 t0 = rdtsc();

    if (ivmsg_halt) {
        ivmsg_sleep(seen);
        return 1;
    }
    while (ivmsg_irqs == seen) {
        if (rdtsc() - t0 > IVMSG_TIMEOUT) {
            return 0;
        }
        cpu_relax();
    }
    return 1;
}

/* The echo sides' wait: no timeout. */
static void ivmsg_wait_forever(u32 seen)
{
    if (ivmsg_halt) {
        ivmsg_sleep(seen);
        return;
    }
    while (ivmsg_irqs == seen) {
        cpu_relax();
    }
}

static void ivmsg_copy(u32 dst, u32 src, u32 bytes)
{
    u32 n = (bytes + 3) / 4;

    asm volatile("cld; rep movsl" : "+D"(dst), "+S"(src), "+c"(n)
                 : : "memory");
}

/* The payload: a pattern, and message @seq's number in its ends. */
static void ivmsg_stamp(u32 size, u32 seq)
{
    volatile u32 *w = (volatile u32 *)IVMSG_SRC;

    w[0] = seq;
    w[(size - 1) / 4] = seq;
}

/*
 * Message @seq into the window at @dst: copied from private memory, or
 * with ivmsgcopy=0 built in place (only its first and last words
 * written: the transport's cost without the guest's copy).
 */
static void ivmsg_fill(u32 dst, u32 size, u32 seq, int copy)
{
    volatile u32 *w = (volatile u32 *)dst;

    if (copy) {
        ivmsg_stamp(size, seq);
        ivmsg_copy(dst, IVMSG_SRC, size);
    } else {
        w[0] = seq;
        w[(size - 1) / 4] = seq;
    }
}

static int ivmsg_payload_ok(u32 addr, u32 size, u32 seq)
{
    volatile u32 *w = (volatile u32 *)addr;

    return w[0] == seq && w[(size - 1) / 4] == seq;
}

static void ivmsg_report(const char *name, u64 *tenths, u32 rounds, u32 n,
                         u32 size, u32 bad)
{
    sort_u64(tenths, rounds);
    puts_serial("BENCH workload=");
    puts_serial(name);
    puts_serial(" cpus=1 n=");
    put_u64(n);
    puts_serial(" cycles=");
    put_tenths(tenths[rounds / 2]);
    puts_serial(" min=");
    put_tenths(tenths[0]);
    puts_serial(" size=");
    put_u64(size);
    puts_serial(" bad=");
    put_u64(bad);
    puts_serial("\n");
}

static int ivmsg_prepare(u32 size, u32 vendor_device, int *bdf)
{
    u32 i;

    if (size < 4 || size > IVMSG_MAX_SIZE) {
        puts_serial("BENCH-ERROR ivmsg: size out of range\n");
        return 0;
    }
    *bdf = pci_find(vendor_device);
    if (*bdf < 0) {
        puts_serial("BENCH-ERROR ivmsg: device not found\n");
        return 0;
    }
    puts_serial("BENCH-IVMSG bar2=");
    put_hex(pci_read(*bdf, 0x14 + 4 * 2));
    put_hex_digits(pci_read(*bdf, 0x10 + 4 * 2));
    if (pci_bar_below_4g(*bdf, 2)) {
        puts_serial(" moved to ");
        put_hex(pci_bar32(*bdf, 2));
    }
    puts_serial("\n");
    if (!pci_bar32(*bdf, 0) || !pci_bar32(*bdf, 2)) {
        puts_serial("BENCH-ERROR ivmsg: BAR0 or BAR2 not below 4 GiB\n");
        return 0;
    }
    if (!ivmsg_msix_setup(*bdf)) {
        puts_serial("BENCH-ERROR ivmsg: no usable MSI-X\n");
        return 0;
    }
    for (i = 0; i < (size + 3) / 4; i++) {
        ((volatile u32 *)IVMSG_SRC)[i] = i * 0x9e3779b1u;
    }
    ivmsg_halt = opt("ivmsgwait") && streq_n(opt("ivmsgwait"), "hlt", 3);
    ivmsg_irq_setup();
    return 1;
}

/*
 * The first record at *@head that is not a pad: pads fill the ring's
 * end (a record never wraps) and, before a flipped record, up to the
 * page where its payload starts.  *@head moves past them.
 */
static volatile u32 *ivq_skip_pads(u32 ring, u32 rx_size, u32 *head)
{
    /* volatile: written by the VMM. */
    volatile u32 *hdr = (volatile u32 *)(ring + (*head & (rx_size - 1)));

    while (hdr[6] & IVQ_HDR_PAD) {
        *head += IVQ_HDR + hdr[2];
        hdr = (volatile u32 *)(ring + (*head & (rx_size - 1)));
    }
    return hdr;
}

/*
 * ivqecho=1: each record at the queue's head is checked and answered
 * with a 4-byte ack to its sender (the header's src, which the VMM
 * wrote), then popped.  Reports every 1000 messages; never returns.
 */
static void ivq_echo(u32 regs, u32 win, u32 rx_off, u32 rx_size, u32 head,
                     u32 db_reg)
{
    u32 msgs = 0, bad = 0;
    /* volatile: the window is the device's memory, read by QEMU. */
    volatile u32 *ack = (volatile u32 *)(win + IVQ_HDR);

    puts_serial("BENCH-IVQ-ECHO ready\n");
    mmio_write32(regs + IVQ_SEND_LEN, 4);
    for (;;) {
        volatile u32 *hdr;          /* volatile: written by a peer's QEMU */
        u32 seq, seen = ivmsg_irqs;

        /* INT_RX cleared before the queue is looked at: no lost wake-up. */
        mmio_write32(regs + IVQ_INT_STATUS, IVQ_INT_RX);
        if (!mmio_read32(regs + IVQ_RX_COUNT)) {
            ivmsg_wait_forever(seen);
            continue;
        }
        hdr = ivq_skip_pads(win + rx_off, rx_size, &head);
        seq = hdr[IVQ_HDR / 4];
        bad += !hdr[2] || !ivmsg_payload_ok((u32)hdr + IVQ_HDR, hdr[2], seq);
        ack[0] = seq;
        mmio_write32(regs + IVQ_SEND_DEST, hdr[0]);
        head += (IVQ_HDR + hdr[2] + 31) & ~31u;
        mmio_write32(regs + IVQ_RX_POP, 1);
        mmio_write32(regs + db_reg, 1);
        if (++msgs % 1000 == 0) {
            puts_serial("BENCH-IVQ-ECHO msgs=");
            put_u64(msgs);
            puts_serial(" bad=");
            put_u64(bad);
            puts_serial("\n");
        }
    }
}

static void ivq_bench(u32 size, u32 n, u32 rounds)
{
    const char *db = opt("ivqdb");
    int noexit = db && streq_n(db, "noexit", 6), bdf;
    int copy = opt_u32("ivmsgcopy", 1), echo = opt_u32("ivqecho", 0);
    u32 want = opt_u32("ivqack", 0) ? 4 : size;
    u32 regs, win, rx_off, rx_size, head, id, dest, r, i, seq = 0, bad = 0;
    u32 db_reg = noexit ? IVQ_DB_NOEXIT : IVQ_DB_EXIT;
    /* ivqoff=4064: the payload on a page of the send area, so it can flip */
    u32 off = opt_u32("ivqoff", 0) & ~31u;
    u64 tenths[32], t0 = 0;

    if (!ivmsg_prepare(size, IVQ_VENDOR_DEVICE, &bdf)) {
        return;
    }
    regs = pci_bar32(bdf, 0);
    win = pci_bar32(bdf, 2);
    t0 = rdtsc();
    while ((id = mmio_read32(regs + IVQ_ID)) == 0xffffffffu) {
        if (rdtsc() - t0 > IVMSG_TIMEOUT) {
            puts_serial("BENCH-ERROR ivq: not connected to the broker\n");
            return;
        }
        cpu_relax();
    }
    if (size > mmio_read32(regs + IVQ_MAX_MSG) ||
        off + IVQ_HDR + size > mmio_read32(regs + IVQ_SEND_SIZE)) {
        puts_serial("BENCH-ERROR ivq: size above MAX_MSG\n");
        return;
    }
    dest = opt_u32("ivqdest", id);
    rx_off = mmio_read32(regs + IVQ_RX_OFF);
    rx_size = mmio_read32(regs + IVQ_RX_SIZE);
    mmio_write32(regs + IVQ_SEND_DEST, dest);
    mmio_write32(regs + IVQ_SEND_LEN, size);
    mmio_write32(regs + IVQ_SEND_OFF, off);
    mmio_write32(regs + IVQ_SEND_COUNT, 1);
    mmio_write32(regs + IVQ_INT_STATUS, 7);
    mmio_write32(regs + IVQ_INT_MASK, IVQ_INT_RX);
    head = mmio_read32(regs + IVQ_RX_HEAD);
    if (echo) {
        ivq_echo(regs, win, rx_off, rx_size, head, db_reg);
        return;
    }
    for (r = 0; r <= rounds; r++) {     /* round 0: warm-up */
        u64 start = rdtsc();

        for (i = 0; i < n; i++) {
            u32 seen = ivmsg_irqs;
            volatile u32 *hdr;

            ivmsg_fill(win + off + IVQ_HDR, size, ++seq, copy);
            mmio_write32(regs + db_reg, 1);
            if (!ivmsg_wait(seen)) {
                puts_serial("BENCH-ERROR ivq: no INT_RX\n");
                return;
            }
            mmio_write32(regs + IVQ_INT_STATUS, IVQ_INT_RX);
            hdr = ivq_skip_pads(win + rx_off, rx_size, &head);
            bad += hdr[2] != want ||
                   !ivmsg_payload_ok((u32)hdr + IVQ_HDR, want, seq);
            head += (IVQ_HDR + want + 31) & ~31u;
            mmio_write32(regs + IVQ_RX_POP, 1);
        }
        if (r) {
            tenths[r - 1] = udiv64((rdtsc() - start) * 10, n, 0);
        }
    }
    ivmsg_report(noexit ? "ivq_noexit" : "ivq_exit", tenths, rounds, n, size,
                 bad);
}

/*
 * ivshmemecho=PEER: on each interrupt, the descriptor and the payload's
 * ends are checked and peer PEER's doorbell rung (vector 0).  Never
 * returns.
 */
static void ivshmem_echo(u32 regs, u32 shm, u32 peer)
{
    /* volatile: the shared memory, written by the other VM. */
    volatile u32 *desc = (volatile u32 *)shm;
    u32 seen = ivmsg_irqs, msgs = 0, bad = 0;

    puts_serial("BENCH-IVSHMEM-ECHO ready\n");
    for (;;) {
        ivmsg_wait_forever(seen);
        seen = ivmsg_irqs;
        bad += !desc[0] ||
               !ivmsg_payload_ok(shm + IVSHMEM_DESC, desc[0], desc[1]);
        mmio_write32(regs + IVSHMEM_DOORBELL, peer << 16);
        if (++msgs % 1000 == 0) {
            puts_serial("BENCH-IVSHMEM-ECHO msgs=");
            put_u64(msgs);
            puts_serial(" bad=");
            put_u64(bad);
            puts_serial("\n");
        }
    }
}

static void ivshmem_bench(u32 size, u32 n, u32 rounds)
{
    u32 regs, shm, pos, dest, r, i, seq = 0, bad = 0;
    u64 tenths[32], t0;
    volatile u32 *desc;
    int bdf, copy = opt_u32("ivmsgcopy", 1);
    u32 echo = opt_u32("ivshmemecho", 0xffffffffu);

    if (!ivmsg_prepare(size, IVSHMEM_VENDOR_DEVICE, &bdf)) {
        return;
    }
    regs = pci_bar32(bdf, 0);
    shm = pci_bar32(bdf, 2);
    if (size + IVSHMEM_DESC > pci_bar_size(bdf, 2)) {
        puts_serial("BENCH-ERROR ivshmem: shared memory too small\n");
        return;
    }
    t0 = rdtsc();
    while ((pos = mmio_read32(regs + IVSHMEM_IVPOSITION)) == 0xffffffffu) {
        if (rdtsc() - t0 > IVMSG_TIMEOUT) {
            puts_serial("BENCH-ERROR ivshmem: no IVPosition\n");
            return;
        }
        cpu_relax();
    }
    desc = (volatile u32 *)shm;
    if (echo != 0xffffffffu) {
        ivshmem_echo(regs, shm, echo);
        return;
    }
    dest = opt_u32("ivshmemdest", pos);
    for (r = 0; r <= rounds; r++) {     /* round 0: warm-up */
        u64 start = rdtsc();

        for (i = 0; i < n; i++) {
            u32 seen = ivmsg_irqs;

            ivmsg_fill(shm + IVSHMEM_DESC, size, ++seq, copy);
            desc[0] = size;
            desc[1] = seq;
            mmio_write32(regs + IVSHMEM_DOORBELL, dest << 16);   /* vector 0 */
            if (!ivmsg_wait(seen)) {
                puts_serial("BENCH-ERROR ivshmem: no interrupt\n");
                return;
            }
            bad += desc[0] != size || desc[1] != seq ||
                   !ivmsg_payload_ok(shm + IVSHMEM_DESC, size, seq);
        }
        if (r) {
            tenths[r - 1] = udiv64((rdtsc() - start) * 10, n, 0);
        }
    }
    ivmsg_report("ivshmem", tenths, rounds, n, size, bad);
}

void bench_main(struct multiboot_info *mbi)
{
    u32 n, rounds, smp, aps = 0, i;
    int ap_index;

    if (mbi->flags & (1 << 2)) {
        cmdline = (const char *)mbi->cmdline;
    }
    n = opt_u32("n", 100000);
    rounds = opt_u32("rounds", 5);
    smp = opt_u32("smp", 1);
    ap_index = ap_workload_option();
    if (rounds < 1 || rounds > 32) {
        rounds = 5;
    }
    if (smp > MAX_CPUS) {
        smp = MAX_CPUS;
    }

    pm_timer_port = find_pm_timer_port();
    puts_serial("BENCH-START cmdline=\"");
    puts_serial(cmdline);
    puts_serial("\" pm_timer=");
    put_hex(pm_timer_port);
    /* What one read of each probe returns: routes can change these. */
    puts_serial(" hpet_cap=");
    put_hex(mmio_read32(HPET_BASE));
    puts_serial(" port80=");
    put_hex(inb(0x80));
    puts_serial(" apicbase=");
    put_hex((u32)rdmsr(0x1b));      /* IA32_APIC_BASE */
    puts_serial("\n");

    if (smp > 1) {
        aps = start_aps(smp - 1);
        if (aps != smp - 1) {
            puts_serial("BENCH-ERROR only ");
            put_u64(aps + 1);
            puts_serial(" cpus came up\n");
        }
    }
    if (opt_u32("irq", 0)) {
        irq_test(opt_u32("irq", 0));
    }
    if (opt_u32("waitcheck", 0)) {
        wait_check(aps);
    }
    if (opt_u32("gatecheck", 0)) {
        gate_check(opt_u32("gatecheck", 0), aps);
    }
    if (opt_u32("straddle", 0)) {
        straddle_check();
    }
    if (opt_u32("platform", 0)) {
        platform_events(aps);       /* does not return */
    }
    if (opt_u32("memcheck", 0)) {
        memcheck(opt_u32("memcheck", 0), opt_u32("memprobe", 0), aps);     /* does not return */
    }
    if (opt_u32("smccheck", 0)) {
        smccheck(opt_u32("smccheck", 0));       /* does not return */
    }
    if (opt_u32("ivq", 0)) {
        ivq_bench(opt_u32("ivq", 0), n ? n : 1, rounds);
    }
    if (opt_u32("ivshmem", 0)) {
        ivshmem_bench(opt_u32("ivshmem", 0), n ? n : 1, rounds);
    }
    for (i = 0; i < N_WORKLOADS; i++) {
        if (!selected(workloads[i].name, !workloads[i].only_by_name)) {
            continue;
        }
        if (workloads[i].loop == loop_pm_timer && !pm_timer_port) {
            puts_serial("BENCH-ERROR no ACPI PM timer found\n");
            continue;
        }
        run_workload(i, n, rounds, aps, ap_index);
    }
    puts_serial("BENCH-DONE\n");
    outb(DEBUG_EXIT_PORT, 0);       /* isa-debug-exit, when present */
    for (;;) {
        asm volatile("cli; hlt");
    }
}
