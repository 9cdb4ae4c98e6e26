/*
 * qemu-tiers bench guest: what boot.S and bench.c share.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BENCH_GUEST_H
#define BENCH_GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

struct multiboot_info {
    u32 flags, mem_lower, mem_upper, boot_device, cmdline;
};

/* boot.S: the real-mode AP trampoline, copied below 1 MiB. */
extern const char ap_tramp[], ap_tramp_end[];

/* boot.S: interrupt entry stubs (save registers, call C, iret). */
extern const char irq_timer_entry[], irq_other_entry[];
extern const char nmi_entry[], mce_entry[];

/* bench.c: entry points called from boot.S. */
void bench_main(struct multiboot_info *mbi);
void ap_main(void);
void irq_timer(void);
void irq_other(void);
void nmi_handler(void);
void mce_handler(void);

#endif
