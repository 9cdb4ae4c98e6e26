/*
 * qemu-tiers bench guest: multiboot entry and AP start-up trampoline.
 *
 * QEMU's -kernel loader enters here in 32-bit protected mode with flat
 * segments (multiboot), EAX = 0x2BADB002, EBX = multiboot info.  We load
 * our own GDT, set up a stack and call bench_main().  Application
 * processors are started by bench.c with INIT-SIPI-SIPI at ap_tramp, which
 * it copies to AP_TRAMP_ADDR below 1 MiB.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define MB_MAGIC        0x1badb002
#define MB_FLAGS        0x00000003      /* page-align modules, want mem info */
#define AP_TRAMP_ADDR   0x8000          /* SIPI vector 0x08 */
#define STACK_SIZE      16384

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    cli
    lgdt gdt_desc
    ljmp $0x08, $1f
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $stacks + STACK_SIZE, %esp
    push %ebx                   /* multiboot info */
    call bench_main
2:  hlt
    jmp 2b

/* 32-bit entry of an AP after the trampoline: stack number in %ecx. */
ap_entry32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $1, %eax
    lock xadd %eax, ap_next_stack
    inc %eax
    imul $STACK_SIZE, %eax
    lea stacks + STACK_SIZE(%eax), %esp
    call ap_main
3:  hlt
    jmp 3b

/*
 * Interrupt entry points for the IRQ test (bench.c, irq=): the timer's
 * vector calls irq_timer() and the rest count as spurious; both return
 * with iret, all registers kept.
 */
    .globl irq_timer_entry, irq_other_entry
irq_timer_entry:
    pushal
    cld
    call irq_timer
    popal
    iret
irq_other_entry:
    pushal
    cld
    call irq_other
    popal
    iret

/* NMI (vector 2) and machine check (vector 18) for platform=1. */
    .globl nmi_entry, mce_entry
nmi_entry:
    pushal
    cld
    call nmi_handler
    popal
    iret
mce_entry:
    pushal
    cld
    call mce_handler
    popal
    iret

/*
 * Real-mode trampoline, copied to AP_TRAMP_ADDR.  CS = AP_TRAMP_ADDR >> 4,
 * IP = 0, so offsets inside it are relative to ap_tramp.
 */
    .code16
    .globl ap_tramp, ap_tramp_end
ap_tramp:
    cli
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (ap_tramp_gdt_desc - ap_tramp)
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $ap_entry32
    .align 4
ap_tramp_gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt
ap_tramp_end:

    .code32
    .data
    .align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: flat 32-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: flat 32-bit data */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long gdt

    .globl ap_next_stack
ap_next_stack:
    .long 0

    .bss
    .align 16
stacks:
    .space STACK_SIZE * 4

    .section .note.GNU-stack, "", @progbits
