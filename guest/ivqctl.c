/*
 * ivqctl: the ivq inter-VM queue device (docs/intervm-queues.rst) from
 * Linux userspace, with no kernel module: through the device's PCI sysfs
 * files.  A static binary in the initramfs of tests/boot/test-linux-ivq.py.
 *
 *     ivqctl id
 *     ivqctl send DEST COUNT MINSIZE MAXSIZE SEED
 *     ivqctl recv SRC COUNT MINSIZE MAXSIZE SEED
 *
 * It finds the first device 1234:11e9 under /sys/bus/pci/devices (or the
 * one named by IVQCTL_DEVICE, e.g. 0000:00:04.0), enables it (writes 1 to
 * "enable"), maps "resource0" (the registers, 32-bit accesses) and
 * "resource2" (the message window) and waits until the device has a peer
 * id from ivq-broker.
 *
 * send: COUNT messages to peer DEST, message i with tag i, a size from
 * MINSIZE to MAXSIZE drawn from SEED and i (msg_size() below: log-uniform
 * by octave; every 1000th message is MAXSIZE, the next MINSIZE), filled
 * with words drawn from SEED and i.  One message per send (SEND_COUNT 1),
 * rung alternately by DB_EXIT and DB_NOEXIT (for the latter, the send is
 * complete when SENDS advances); the record at offset OFF of the send area
 * (default 0; 4064 puts the payload on a page, so that a message of whole
 * pages can go by page flip).  A full queue (QUEUE_FULL) is retried
 * after a millisecond; any other refusal ends the run.
 *
 * recv: expects exactly what "send" with the same COUNT, sizes and SEED
 * sends: each message's size, contents and tag (in order), and that its
 * sender id (stamped by the VMMs, not the sending guest) is SRC.
 * Userspace gets no interrupts: the program polls RX_COUNT (sleeping
 * 200 us when the queue is empty) and leaves INT_MASK at 0, so the device
 * raises none.  It gives up after IDLE_SECS without a message.
 *
 * Each mode ends with one line, and exit status 0 only if all went well:
 *
 *     IVQCTL id=I peers=0xP send_size=S rx_size=R max_msg=M dev=BDF
 *     IVQCTL send dest=D sent=N failed=F queue_full=Q exit=E noexit=X
 *            bytes=B secs=T
 *     IVQCTL recv src=S ok=N bad=M src_bad=K missing=L bytes=B left=Q
 *            secs=T flip=P
 *
 * (one line each; "bad" counts messages with a wrong size, tag, sequence
 * or content; "left": messages still queued at the end).  Exit status 2
 * on bad arguments, 1 on failure.
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IVQ_VENDOR          0x1234
#define IVQ_DEVICE          0x11e9
#define SYSFS_PCI           "/sys/bus/pci/devices"
#define PAGE                4096        /* x86 */

/* BAR0 registers (hw/ivq/ivq-internal.h). */
enum {
    REG_ID          = 0x00,
    REG_PEERS       = 0x04,
    REG_STATUS      = 0x08,
    REG_SEND_DONE   = 0x0c,
    REG_SEND_DEST   = 0x10,
    REG_SEND_LEN    = 0x14,
    REG_SEND_OFF    = 0x18,
    REG_SEND_COUNT  = 0x1c,
    REG_DB_EXIT     = 0x20,
    REG_DB_NOEXIT   = 0x24,
    REG_SENDS       = 0x28,
    REG_RX_HEAD     = 0x2c,
    REG_RX_TAIL     = 0x30,
    REG_RX_POP      = 0x34,
    REG_RX_COUNT    = 0x38,
    REG_INT_STATUS  = 0x3c,
    REG_INT_MASK    = 0x40,
    REG_MAX_MSG     = 0x44,
    REG_SEND_SIZE   = 0x48,
    REG_RX_OFF      = 0x4c,
    REG_RX_SIZE     = 0x50,
    REG_ERRORS      = 0x54,
};

enum {
    ST_OK = 0,
    ST_UNKNOWN_PEER = 1,
    ST_TOO_BIG = 2,
    ST_QUEUE_FULL = 3,
    ST_BAD_VALUE = 4,
    ST_PEER_DOWN = 5,
};

static const char *const status_name[] = {
    "ok", "unknown-peer", "too-big", "queue-full", "bad-value", "peer-down",
};

#define INT_RX              1u
#define NO_PEER             0xffffffffu
#define HDR_SIZE            32
#define REC_ALIGN           32
#define HDR_F_PAD           1u
#define HDR_F_COPY          2u
#define HDR_F_FLIP          4u
#define CONNECT_SECS        120
#define IDLE_SECS           300
#define FULL_SECS           300

/* A record's header (hw/ivq/ivq-proto.h). */
typedef struct MsgHeader {
    uint32_t src;
    uint32_t dst;
    uint32_t len;
    uint32_t tag;
    uint64_t seq;
    uint32_t flags;
    uint32_t reserved;
} MsgHeader;

typedef struct Ivq {
    char dev[256];
    /*
     * volatile: device registers; every read and write must reach the
     * device, once, in program order.
     */
    volatile uint32_t *regs;
    uint8_t *win;               /* BAR2: send area, receive queue */
    size_t win_size;
    uint32_t send_size, rx_off, rx_size, max_msg, id;
} Ivq;

/* Keeps the compiler from moving window accesses across a register one. */
#define barrier() __atomic_signal_fence(__ATOMIC_SEQ_CST)

static uint32_t reg_read(Ivq *q, uint32_t reg)
{
    uint32_t v = q->regs[reg / 4];

    barrier();
    return v;
}

static void reg_write(Ivq *q, uint32_t reg, uint32_t v)
{
    barrier();
    q->regs[reg / 4] = v;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
    struct timespec ts = { .tv_sec = us / 1000000,
                           .tv_nsec = us % 1000000 * 1000 };

    nanosleep(&ts, NULL);
}

/*
 * A number, the whole string: decimal, or hex after "0x"; false if it
 * is not one or does not fit in 64 bits.
 */
static bool parse_u64(const char *p, uint64_t *out)
{
    unsigned base = 10;
    uint64_t v = 0;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (!*p) {
        return false;
    }
    for (; *p; p++) {
        unsigned d;

        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (base == 16 && *p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (base == 16 && *p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            return false;
        }
        if (v > (UINT64_MAX - d) / base) {
            return false;
        }
        v = v * base + d;
    }
    *out = v;
    return true;
}

static bool parse_u32(const char *p, uint32_t *out)
{
    uint64_t v;

    if (!parse_u64(p, &v) || v > UINT32_MAX) {
        return false;
    }
    *out = v;
    return true;
}

/* The first line of a sysfs file, a number; false if there is none. */
static bool sysfs_u64(const char *dev, const char *file, uint64_t *out)
{
    char path[640], buf[128];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "%s/%s/%s", SYSFS_PCI, dev, file);
    f = fopen(path, "r");
    if (!f) {
        return false;
    }
    ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    if (!ok) {
        return false;
    }
    buf[strcspn(buf, "\n ")] = 0;
    return parse_u64(buf, out);
}

static bool is_ivq(const char *dev)
{
    uint64_t vendor, device;

    return sysfs_u64(dev, "vendor", &vendor) && vendor == IVQ_VENDOR &&
           sysfs_u64(dev, "device", &device) && device == IVQ_DEVICE;
}

static bool find_device(char *dev, size_t size)
{
    const char *want = getenv("IVQCTL_DEVICE");
    struct dirent *de;
    DIR *d;
    bool found = false;

    if (want) {
        snprintf(dev, size, "%s", want);
        return is_ivq(dev);
    }
    d = opendir(SYSFS_PCI);
    if (!d) {
        perror("ivqctl: " SYSFS_PCI);
        return false;
    }
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] != '.' && is_ivq(de->d_name)) {
            snprintf(dev, size, "%s", de->d_name);
            found = true;
        }
    }
    closedir(d);
    return found;
}

/* mmap()s @len bytes of the device's sysfs file @file. */
static void *map_resource(const char *dev, const char *file, size_t len)
{
    char path[640];
    void *p;
    int fd;

    snprintf(path, sizeof(path), "%s/%s/%s", SYSFS_PCI, dev, file);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0) {
        perror(path);
        return NULL;
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        perror(path);
        return NULL;
    }
    return p;
}

/*
 * Finds, enables and maps the device; waits (up to CONNECT_SECS) for its
 * peer id.
 */
static bool ivq_open(Ivq *q)
{
    char path[640];
    uint64_t bar0;
    struct stat st;
    uint8_t *regs;
    double t0;
    FILE *f;

    if (!find_device(q->dev, sizeof(q->dev))) {
        fprintf(stderr, "ivqctl: no ivq device (%04x:%04x) in %s\n",
                IVQ_VENDOR, IVQ_DEVICE, SYSFS_PCI);
        return false;
    }
    snprintf(path, sizeof(path), "%s/%s/enable", SYSFS_PCI, q->dev);
    f = fopen(path, "w");
    if (!f || fputs("1\n", f) < 0 || fclose(f)) {
        perror(path);
        return false;
    }
    /*
     * BAR0 is 256 bytes: the kernel maps the page that holds it, so the
     * registers start at its address's offset in that page.
     */
    if (!sysfs_u64(q->dev, "resource", &bar0)) {
        fprintf(stderr, "ivqctl: %s: cannot read its resource file\n",
                q->dev);
        return false;
    }
    regs = map_resource(q->dev, "resource0", PAGE);
    if (!regs) {
        return false;
    }
    q->regs = (uint32_t *)(regs + (bar0 & (PAGE - 1)));
    snprintf(path, sizeof(path), "%s/%s/resource2", SYSFS_PCI, q->dev);
    if (stat(path, &st)) {
        perror(path);
        return false;
    }
    q->win_size = st.st_size;
    q->win = map_resource(q->dev, "resource2", q->win_size);
    if (!q->win) {
        return false;
    }
    q->send_size = reg_read(q, REG_SEND_SIZE);
    q->rx_off = reg_read(q, REG_RX_OFF);
    q->rx_size = reg_read(q, REG_RX_SIZE);
    q->max_msg = reg_read(q, REG_MAX_MSG);
    if (q->send_size < 4096 || q->rx_size < 4096 ||
        (q->rx_size & (q->rx_size - 1)) ||
        q->rx_off < q->send_size ||
        (uint64_t)q->rx_off + q->rx_size > q->win_size) {
        fprintf(stderr, "ivqctl: %s: bad geometry: send_size=%u rx_off=%u "
                "rx_size=%u window=%zu\n", q->dev, q->send_size, q->rx_off,
                q->rx_size, q->win_size);
        return false;
    }
    t0 = now();
    while ((q->id = reg_read(q, REG_ID)) == NO_PEER) {
        if (now() - t0 > CONNECT_SECS) {
            fprintf(stderr, "ivqctl: %s: no peer id from ivq-broker after "
                    "%d s\n", q->dev, CONNECT_SECS);
            return false;
        }
        sleep_us(10000);
    }
    return true;
}

/* splitmix64's finalizer: every seed and index gives other numbers. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static unsigned ilog2(uint32_t v)
{
    return 31 - __builtin_clz(v);
}

/*
 * Message @idx's size: every 1000th is @max, the one after it @min; the
 * others log-uniform by octave: an octave 2^b .. 2^(b+1)-1 chosen
 * uniformly between @min's and @max's, a size uniform in it, clamped to
 * [@min, @max].  (tests/boot/test-linux-ivq.py computes the same.)
 */
static uint32_t msg_size(uint64_t seed, uint32_t idx, uint32_t min,
                         uint32_t max)
{
    uint64_t r = mix(seed * 0x2545f4914f6cdd1dull + idx);
    unsigned lo = ilog2(min), hi = ilog2(max), b;
    uint64_t size;

    if (idx % 1000 == 0) {
        return max;
    }
    if (idx % 1000 == 1 || min == max) {
        return min;
    }
    b = lo == hi ? lo : lo + (unsigned)(r % (hi - lo));
    size = (1ull << b) + ((r >> 32) & ((1ull << b) - 1));
    return size < min ? min : size > max ? max : size;
}

/* The first word of message @idx's contents; word j is key + j * K. */
static uint64_t msg_key(uint64_t seed, uint32_t idx)
{
    return mix(seed ^ ((uint64_t)idx << 32 | 0x6976));
}

#define WORD_STEP 0x9e3779b97f4a7c15ull

static void fill(uint8_t *p, uint32_t len, uint64_t key)
{
    uint64_t *w = (uint64_t *)p, v = key, last;
    uint32_t n = len / 8, j;

    for (j = 0; j < n; j++, v += WORD_STEP) {
        w[j] = v;
    }
    last = v;
    memcpy(p + n * 8, &last, len % 8);
}

/* Whether @p holds what fill() writes. */
static bool check(const uint8_t *p, uint32_t len, uint64_t key)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t v = key, diff = 0, last = 0;
    uint32_t n = len / 8, j;

    for (j = 0; j < n; j++, v += WORD_STEP) {
        diff |= w[j] ^ v;
    }
    memcpy(&last, p + n * 8, len % 8);
    if (len % 8) {
        diff |= (last ^ v) & ((1ull << (len % 8 * 8)) - 1);
    }
    return diff == 0;
}

static int do_id(Ivq *q)
{
    printf("IVQCTL id=%u peers=0x%x send_size=%u rx_size=%u max_msg=%u "
           "dev=%s\n", q->id, reg_read(q, REG_PEERS), q->send_size,
           q->rx_size, q->max_msg, q->dev);
    return 0;
}

typedef struct SendStats {
    uint64_t queue_full;
    uint64_t by_exit, by_noexit;
    uint64_t bytes;
} SendStats;

/*
 * Sends the message in the send area (at @off) to @dest, @len bytes, by
 * DB_NOEXIT if @noexit, else DB_EXIT; a full queue is retried after 1 ms
 * (for up to FULL_SECS).  Returns the final STATUS.
 */
static uint32_t send_one(Ivq *q, uint32_t dest, uint32_t off, uint32_t len,
                         bool noexit, SendStats *st)
{
    double t0 = 0;
    uint32_t status;

    reg_write(q, REG_SEND_OFF, off);
    reg_write(q, REG_SEND_COUNT, 1);
    reg_write(q, REG_SEND_DEST, dest);
    reg_write(q, REG_SEND_LEN, len);
    for (;;) {
        if (noexit) {
            uint32_t before = reg_read(q, REG_SENDS), spins = 0;

            reg_write(q, REG_DB_NOEXIT, 1);
            /* The send runs in QEMU's main loop: let it have the BQL. */
            while (reg_read(q, REG_SENDS) == before) {
                if (++spins > 100) {
                    sleep_us(10);
                }
            }
        } else {
            reg_write(q, REG_DB_EXIT, 1);
        }
        status = reg_read(q, REG_STATUS);
        if (status != ST_QUEUE_FULL) {
            break;
        }
        st->queue_full++;
        if (!t0) {
            t0 = now();
        } else if (now() - t0 > FULL_SECS) {
            break;
        }
        sleep_us(1000);
    }
    if (status == ST_OK && reg_read(q, REG_SEND_DONE) != 1) {
        status = ST_BAD_VALUE;
    }
    if (status == ST_OK) {
        if (noexit) {
            st->by_noexit++;
        } else {
            st->by_exit++;
        }
        st->bytes += len;
    }
    return status;
}

static int do_send(Ivq *q, uint32_t dest, uint32_t count, uint32_t min,
                   uint32_t max, uint64_t seed, uint32_t off)
{
    MsgHeader *h = (MsgHeader *)(q->win + off);
    SendStats st = { 0 };
    uint32_t i, sent = 0, status = ST_OK;
    double t0 = now();

    if (off % REC_ALIGN || off >= q->send_size - HDR_SIZE ||
        max > q->send_size - HDR_SIZE - off) {
        fprintf(stderr, "ivqctl: MAXSIZE %u at offset %u is larger than "
                "the send area takes (%u)\n", max, off, q->send_size);
        return 2;
    }
    while (!(reg_read(q, REG_PEERS) & (1u << dest))) {
        if (now() - t0 > CONNECT_SECS) {
            fprintf(stderr, "ivqctl: peer %u is not up (PEERS 0x%x)\n",
                    dest, reg_read(q, REG_PEERS));
            break;
        }
        sleep_us(10000);
    }
    t0 = now();
    for (i = 0; i < count; i++) {
        uint32_t len = msg_size(seed, i, min, max);

        /* Our header's src and seq are not used: the VMM writes its own. */
        *h = (MsgHeader) { .src = q->id, .dst = dest, .len = len, .tag = i };
        fill(q->win + off + HDR_SIZE, len, msg_key(seed, i));
        status = send_one(q, dest, off, len, i & 1, &st);
        if (status != ST_OK) {
            fprintf(stderr, "ivqctl: message %u (%u bytes) to %u: %s\n", i,
                    len, dest, status < 6 ? status_name[status] : "?");
            break;
        }
        sent++;
    }
    printf("IVQCTL send dest=%u sent=%u failed=%u queue_full=%llu exit=%llu "
           "noexit=%llu bytes=%llu secs=%.2f\n", dest, sent, count - sent,
           (unsigned long long)st.queue_full,
           (unsigned long long)st.by_exit, (unsigned long long)st.by_noexit,
           (unsigned long long)st.bytes, now() - t0);
    return sent == count ? 0 : 1;
}

static int do_recv(Ivq *q, uint32_t src, uint32_t count, uint32_t min,
                   uint32_t max, uint64_t seed)
{
    const uint8_t *rx = q->win + q->rx_off;
    uint32_t mask = q->rx_size - 1, next = 0, bad_pop = 0;
    uint64_t ok = 0, bad = 0, src_bad = 0, bytes = 0, last_seq = 0;
    uint64_t flipped = 0;
    double t0 = now(), idle = t0;

    while (next < count) {
        uint32_t n, head, pos, done = 0;

        reg_write(q, REG_INT_STATUS, INT_RX);
        n = reg_read(q, REG_RX_COUNT);
        if (n == 0) {
            if (now() - idle > IDLE_SECS) {
                fprintf(stderr, "ivqctl: no message for %d s\n", IDLE_SECS);
                break;
            }
            sleep_us(200);
            continue;
        }
        idle = now();
        /* The head moves only when we pop; RX_COUNT's messages are all in. */
        head = reg_read(q, REG_RX_HEAD);
        pos = head & mask;
        while (done < n && next < count) {
            uint32_t rec, at = pos;
            MsgHeader h;
            bool good;

            memcpy(&h, rx + at, sizeof(h));
            rec = (HDR_SIZE + h.len + REC_ALIGN - 1) & ~(REC_ALIGN - 1);
            if (h.len > q->rx_size || at + rec > q->rx_size) {
                fprintf(stderr, "ivqctl: corrupt record at %u: len %u\n",
                        at, h.len);
                bad_pop = 1;
                break;
            }
            pos = (pos + rec) & mask;
            if (h.flags & HDR_F_PAD) {
                continue;
            }
            good = h.tag == next && h.len == msg_size(seed, next, min, max) &&
                   h.seq > last_seq &&
                   (h.flags & (HDR_F_COPY | HDR_F_FLIP)) &&
                   check(rx + at + HDR_SIZE, h.len,
                         msg_key(seed, next));
            if (!good && bad < 10) {
                fprintf(stderr, "ivqctl: message %u: src %u tag %u len %u "
                        "(want %u) seq %llu flags 0x%x: bad\n", next, h.src,
                        h.tag, h.len, msg_size(seed, next, min, max),
                        (unsigned long long)h.seq, h.flags);
            }
            ok += good && h.src == src;
            flipped += !!(h.flags & HDR_F_FLIP);
            bad += !good;
            src_bad += h.src != src;
            bytes += h.len;
            last_seq = h.seq;
            next++;
            done++;
        }
        if (bad_pop) {
            break;
        }
        reg_write(q, REG_RX_POP, done);
        if (reg_read(q, REG_STATUS) != ST_OK) {
            fprintf(stderr, "ivqctl: RX_POP %u refused\n", done);
            bad_pop = 1;
            break;
        }
    }
    printf("IVQCTL recv src=%u ok=%llu bad=%llu src_bad=%llu missing=%u "
           "bytes=%llu left=%u secs=%.2f flip=%llu\n", src,
           (unsigned long long)ok, (unsigned long long)bad,
           (unsigned long long)src_bad, count - next,
           (unsigned long long)bytes, reg_read(q, REG_RX_COUNT), now() - t0,
           (unsigned long long)flipped);
    return ok == count && !bad_pop ? 0 : 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: ivqctl id\n"
            "       ivqctl send DEST COUNT MINSIZE MAXSIZE SEED [OFF]\n"
            "       ivqctl recv SRC COUNT MINSIZE MAXSIZE SEED\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint32_t peer = 0, count = 0, min = 0, max = 0, off = 0;
    uint64_t seed = 0;
    Ivq q = { 0 };
    bool send;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && !strcmp(argv[1], "id")) {
        return ivq_open(&q) ? do_id(&q) : 1;
    }
    if (argc == 8 && !strcmp(argv[1], "send") && parse_u32(argv[7], &off)) {
        argc--;
    }
    if (argc != 7 || (strcmp(argv[1], "send") && strcmp(argv[1], "recv")) ||
        !parse_u32(argv[2], &peer) || !parse_u32(argv[3], &count) ||
        !parse_u32(argv[4], &min) || !parse_u32(argv[5], &max) ||
        !parse_u64(argv[6], &seed) || min == 0 || min > max ||
        peer > 31 || count == 0) {
        return usage();
    }
    send = !strcmp(argv[1], "send");
    if (!ivq_open(&q)) {
        return 1;
    }
    if (max > q.max_msg) {
        fprintf(stderr, "ivqctl: MAXSIZE %u is larger than the device's "
                "MAX_MSG %u\n", max, q.max_msg);
        return 2;
    }
    return send ? do_send(&q, peer, count, min, max, seed, off)
                : do_recv(&q, peer, count, min, max, seed);
}
