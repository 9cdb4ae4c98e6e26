/*
 * qtest of RAS page retirement (the ras-policy object): pages retired
 * over QMP keep their contents at the same guest-physical address and
 * stay writable; corrected machine checks through a route
 * handler=platform retire a page at the policy's threshold and are not
 * seen by the guest; uncorrected ones are forwarded; the pool's size
 * bounds it; bad input changes nothing; a retirement that skips the
 * copy (x-skip-copy, broken on purpose) is caught by the same check.
 *
 * qtest runs no vCPU: this shows the memory side (tests/boot shows a
 * running guest's).
 *
 * Copyright (c) 2026 qemu-tiers contributors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "tiers-qtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"

#define PAGE        4096
#define BASE        0x200000    /* 2 MiB: plain RAM on pc */
#define CORRECTED   0x9c0000000000009fULL  /* VAL EN MISCV ADDRV, no UC */
#define SRAO        0xbd000000000000c0ULL  /* VAL UC EN MISCV ADDRV S */

static QTestState *ras_start(const char *extra)
{
    return qtest_initf("-machine pc -m 64 -nodefaults -cpu "
                       "qemu64,vendor=GenuineIntel,family=6,model=85 %s",
                       extra);
}

/* A page's worth of a pattern that names the page and a generation. */
static void fill(QTestState *qts, uint64_t addr, uint32_t gen)
{
    uint32_t buf[PAGE / 4];
    unsigned i;

    for (i = 0; i < PAGE / 4; i++) {
        buf[i] = (uint32_t)(addr >> 12) * 0x9e3779b1u ^ (gen << 16) ^ i;
    }
    qtest_memwrite(qts, addr, buf, PAGE);
}

/* The number of words of the page that differ from fill(addr, gen). */
static unsigned bad_words(QTestState *qts, uint64_t addr, uint32_t gen)
{
    uint32_t buf[PAGE / 4];
    unsigned i, bad = 0;

    qtest_memread(qts, addr, buf, PAGE);
    for (i = 0; i < PAGE / 4; i++) {
        bad += buf[i] != ((uint32_t)(addr >> 12) * 0x9e3779b1u ^
                          (gen << 16) ^ i);
    }
    return bad;
}

static int64_t pool_field(QTestState *qts, const char *field)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-ras-pool' }");
    int64_t v = qdict_get_int(qdict_get_qdict(rsp, "return"), field);

    qobject_unref(rsp);
    return v;
}

/* The length of the list that QMP command @cmd returns. */
static int64_t list_len(QTestState *qts, const char *cmd)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': %s }", cmd);
    QListEntry *e;
    int64_t n = 0;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        n++;
    }
    qobject_unref(rsp);
    return n;
}

static int64_t retired_count(QTestState *qts)
{
    return list_len(qts, "query-retired-pages");
}

static void retire(QTestState *qts, uint64_t addr)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'ras-retire-page', "
                           "'arguments': { 'addr': %" PRIu64 " } }", addr);
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_assert(ret);
    g_assert_cmpint(qdict_get_int(ret, "addr"), ==, addr & ~(PAGE - 1ULL));
    g_assert_cmpstr(qdict_get_str(ret, "reason"), ==, "qmp");
    qobject_unref(rsp);
    qobject_unref(qtest_qmp_eventwait_ref(qts, "MEMORY_PAGE_RETIRED"));
}

/* Retired pages read back what they held, at the same address. */
static void test_retire_keeps_contents(void)
{
    QTestState *qts = ras_start("-object ras-policy,id=ras,pool-pages=8");
    unsigned i;

    for (i = 0; i < 8; i++) {
        fill(qts, BASE + i * PAGE, 1);
    }
    for (i = 0; i < 8; i += 2) {
        retire(qts, BASE + i * PAGE + 123);     /* any address in it */
    }
    for (i = 0; i < 8; i++) {
        g_assert_cmpuint(bad_words(qts, BASE + i * PAGE, 1), ==, 0);
    }
    /* Still the guest's page: writes land and read back. */
    for (i = 0; i < 8; i++) {
        fill(qts, BASE + i * PAGE, 2);
    }
    for (i = 0; i < 8; i++) {
        g_assert_cmpuint(bad_words(qts, BASE + i * PAGE, 2), ==, 0);
    }
    g_assert_cmpint(retired_count(qts), ==, 4);
    g_assert_cmpint(pool_field(qts, "used"), ==, 4);
    g_assert_cmpint(pool_field(qts, "free"), ==, 4);
    g_assert_cmpint(pool_field(qts, "size"), ==, 8 * PAGE);
    qtest_quit(qts);
}

/* The check above catches a retirement that loses the contents. */
static void test_broken_retirement_is_caught(void)
{
    QTestState *qts = ras_start("-object ras-policy,id=ras,x-skip-copy=on");

    fill(qts, BASE, 1);
    retire(qts, BASE);
    g_assert_cmpuint(bad_words(qts, BASE, 1), >, 0);
    qtest_quit(qts);
}

static void test_bad_input(void)
{
    QTestState *qts = ras_start("-object ras-policy,id=ras,pool-pages=2");
    g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
    g_autofree char *e5 = NULL;

    fill(qts, BASE, 1);
    /* Not RAM: the BIOS ROM, the LAPIC, beyond the end of RAM. */
    e1 = qmp_error(qts, "{ 'execute': 'ras-retire-page', 'arguments': "
                   "{ 'addr': %" PRIu64 " } }", (uint64_t)0xfffff000);
    g_assert(e1 && strstr(e1, "0xfffff000 is not guest RAM"));
    e2 = qmp_error(qts, "{ 'execute': 'ras-retire-page', 'arguments': "
                   "{ 'addr': %" PRIu64 " } }", (uint64_t)0x10000000);
    g_assert(e2 && strstr(e2, "0x10000000 is not guest RAM"));
    g_assert_cmpint(pool_field(qts, "used"), ==, 0);

    retire(qts, BASE);
    e3 = qmp_error(qts, "{ 'execute': 'ras-retire-page', 'arguments': "
                   "{ 'addr': %" PRIu64 " } }", (uint64_t)BASE + 8);
    g_assert(e3 && strstr(e3, "already retired"));
    retire(qts, BASE + PAGE);
    e4 = qmp_error(qts, "{ 'execute': 'ras-retire-page', 'arguments': "
                   "{ 'addr': %" PRIu64 " } }", (uint64_t)BASE + 2 * PAGE);
    g_assert(e4 && strstr(e4, "pool is full (2 pages, 0 free, 1 asked for)"));
    qobject_unref(qtest_qmp_eventwait_ref(qts, "RAS_POOL_EXHAUSTED"));
    g_assert_cmpint(retired_count(qts), ==, 2);
    g_assert_cmpuint(bad_words(qts, BASE, 1), ==, 0);

    /* A second policy is refused. */
    e5 = qmp_error(qts, "{ 'execute': 'object-add', 'arguments': "
                   "{ 'qom-type': 'ras-policy', 'id': 'ras2' } }");
    g_assert(e5 && strstr(e5, "only one ras-policy"));
    qmp_ok(qts, "{ 'execute': 'query-status' }");
    qtest_quit(qts);
}

/* Shared or file RAM and huge pages are refused, naming the backend. */
static void test_refused_backends(void)
{
    QTestState *qts = ras_start(
        "-object memory-backend-memfd,id=mem0,size=64M,share=on "
        "-machine memory-backend=mem0 -object ras-policy,id=ras");
    g_autofree char *e = NULL;

    e = qmp_error(qts, "{ 'execute': 'ras-retire-page', 'arguments': "
                  "{ 'addr': %" PRIu64 " } }", (uint64_t)BASE);
    g_assert(e && strstr(e, "RAM backend 'mem0'") &&
             strstr(e, "shared or file memory"));
    g_assert_cmpint(pool_field(qts, "used"), ==, 0);
    qtest_quit(qts);
}

static void test_no_policy(void)
{
    QTestState *qts = ras_start("");
    g_autofree char *e = NULL;

    e = qmp_error(qts, "{ 'execute': 'query-ras-pool' }");
    g_assert(e && strstr(e, "no ras-policy object"));
    qtest_quit(qts);
}

static void inject(QTestState *qts, uint64_t status, uint64_t addr)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'inject-mce', 'arguments': "
                             "{ 'cpu-index': 0, 'bank': 9, 'status': %"
                             PRIu64 ", 'mcg-status': 0, 'addr': %" PRIu64
                             " } }", status, addr);
}

/*
 * Corrected errors through handler=platform: counted per page, the
 * page retired at the threshold, none delivered; an uncorrected error is
 * delivered.
 */
static void test_corrected_errors_retire(void)
{
    QTestState *qts = ras_start(
        "-object ras-policy,id=ras,ce-threshold=5 "
        "-object exit-route,id=ras-mce,event=mce,handler=platform");
    QDict *ev;
    unsigned i;

    fill(qts, BASE, 7);
    for (i = 0; i < 4; i++) {
        inject(qts, CORRECTED, BASE + 0x40);
    }
    g_assert_cmpint(retired_count(qts), ==, 0);
    inject(qts, CORRECTED, BASE + 0x80);
    ev = qtest_qmp_eventwait_ref(qts, "MEMORY_PAGE_RETIRED");
    g_assert_cmpint(qdict_get_int(qdict_get_qdict(ev, "data"), "addr"), ==,
                    BASE);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "reason"), ==,
                    "corrected-errors");
    qobject_unref(ev);
    g_assert_cmpuint(bad_words(qts, BASE, 7), ==, 0);
    g_assert_cmpint(tiers_route_stat(qts, "ras-mce", "handled"), ==, 5);
    g_assert_cmpint(tiers_route_stat(qts, "ras-mce", "delivered"), ==, 0);
    /* Another page's errors count on their own. */
    inject(qts, CORRECTED, BASE + PAGE);
    g_assert_cmpint(retired_count(qts), ==, 1);

    inject(qts, SRAO, BASE + 2 * PAGE);
    g_assert_cmpint(tiers_route_stat(qts, "ras-mce", "delivered"), ==, 1);
    g_assert_cmpint(retired_count(qts), ==, 1);
    qtest_quit(qts);
}

static QDict *retire_pages(QTestState *qts, uint64_t addr, uint32_t pages)
{
    return qtest_qmp(qts, "{ 'execute': 'ras-retire-pages', 'arguments': "
                     "{ 'addr': %" PRIu64 ", 'pages': %u } }", addr, pages);
}

/*
 * A batch of 512 pages in one stop of the vCPUs: consecutive pool pages,
 * one pause shared by all, every page's contents kept; bad batches
 * change nothing.
 */
static void test_batch(void)
{
    QTestState *qts = ras_start("-object ras-policy,id=ras,pool-pages=600");
    g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
    g_autofree char *e5 = NULL;
    QDict *rsp;
    QListEntry *e;
    int64_t pause = -1;
    unsigned i = 0;

    for (i = 0; i < 513; i++) {
        fill(qts, BASE + i * PAGE, 3);
    }
    e1 = qmp_error(qts, "{ 'execute': 'ras-retire-pages', 'arguments': "
                   "{ 'addr': %" PRIu64 ", 'pages': 0 } }", (uint64_t)BASE);
    g_assert(e1 && strstr(e1, "pages=0: a batch is 1 to 512 pages"));
    e2 = qmp_error(qts, "{ 'execute': 'ras-retire-pages', 'arguments': "
                   "{ 'addr': %" PRIu64 ", 'pages': 513 } }",
                   (uint64_t)BASE);
    g_assert(e2 && strstr(e2, "pages=513"));
    /* Across the end of RAM (64 MiB). */
    e3 = qmp_error(qts, "{ 'execute': 'ras-retire-pages', 'arguments': "
                   "{ 'addr': %" PRIu64 ", 'pages': 4 } }",
                   (uint64_t)64 * 1024 * 1024 - 2 * PAGE);
    g_assert(e3 && strstr(e3, "0x4000000 is not guest RAM"));
    g_assert_cmpint(pool_field(qts, "used"), ==, 0);

    rsp = retire_pages(qts, BASE, 512);
    i = 0;
    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpint(qdict_get_int(r, "addr"), ==, BASE + i * PAGE);
        g_assert_cmpint(qdict_get_int(r, "pool-index"), ==, i);
        g_assert_false(qdict_get_bool(r, "lost"));
        g_assert_cmpint(qdict_get_int(r, "remap-ns"), <=,
                        qdict_get_int(r, "pause-ns"));
        if (pause < 0) {
            pause = qdict_get_int(r, "pause-ns");
        }
        g_assert_cmpint(qdict_get_int(r, "pause-ns"), ==, pause);
        i++;
    }
    qobject_unref(rsp);
    g_assert_cmpint(i, ==, 512);
    g_assert_cmpint(retired_count(qts), ==, 512);
    for (i = 0; i < 513; i++) {
        g_assert_cmpuint(bad_words(qts, BASE + i * PAGE, 3), ==, 0);
    }
    /* Still writable, and the page after the batch untouched. */
    fill(qts, BASE + 100 * PAGE, 4);
    g_assert_cmpuint(bad_words(qts, BASE + 100 * PAGE, 4), ==, 0);

    /* A batch that overlaps a retired page, one larger than the pool. */
    e4 = qmp_error(qts, "{ 'execute': 'ras-retire-pages', 'arguments': "
                   "{ 'addr': %" PRIu64 ", 'pages': 2 } }",
                   (uint64_t)BASE + 511 * PAGE);
    g_assert(e4 && strstr(e4, "already retired"));
    e5 = qmp_error(qts, "{ 'execute': 'ras-retire-pages', 'arguments': "
                   "{ 'addr': %" PRIu64 ", 'pages': 100 } }",
                   (uint64_t)BASE + 1024 * PAGE);
    g_assert(e5 && strstr(e5, "pool is full (600 pages, 88 free, 100"));
    g_assert_cmpint(pool_field(qts, "used"), ==, 512);
    qmp_ok(qts, "{ 'execute': 'query-status' }");
    qtest_quit(qts);
}

static int64_t poisoned_count(QTestState *qts)
{
    return list_len(qts, "query-poisoned-pages");
}

#define RAS_MIG_ARGS                                                    \
    "-object ras-policy,id=ras,pool-pages=16 "                          \
    "-object exit-route,id=ras-mce,event=mce,handler=platform"

/*
 * Uncorrected errors poison their pages: reads of them return all ones
 * (with a vCPU reading, a machine check: tests/boot), retiring one is
 * refused, their neighbours are untouched.  Migration carries retired
 * pages' contents and the poison: the destination has the same poisoned
 * pages.
 */
static void test_poison_migrates(void)
{
    static const unsigned poisoned[] = { 3, 5, 9 };
    g_autofree char *path = g_strdup_printf("%s/ras-mig-%d",
                                            g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("file:%s", path);
    g_autofree char *e1 = NULL;
    QTestState *src = ras_start(RAS_MIG_ARGS);
    QTestState *dst;
    unsigned i;

    for (i = 0; i < 12; i++) {
        fill(src, BASE + i * PAGE, 5);
    }
    for (i = 0; i < ARRAY_SIZE(poisoned); i++) {
        inject(src, SRAO, BASE + poisoned[i] * PAGE + 0x80);
    }
    g_assert_cmpint(poisoned_count(src), ==, 3);
    g_assert_cmpint(tiers_route_stat(src, "ras-mce", "delivered"), ==, 3);
    g_assert_cmphex(qtest_readl(src, BASE + 3 * PAGE + 8), ==, 0xffffffff);
    e1 = qmp_error(src, "{ 'execute': 'ras-retire-page', 'arguments': "
                   "{ 'addr': %" PRIu64 " } }", (uint64_t)BASE + 5 * PAGE);
    g_assert(e1 && strstr(e1, "is poisoned"));
    qobject_unref(retire_pages(src, BASE + 10 * PAGE, 2));
    retire(src, BASE);
    g_assert_cmpint(retired_count(src), ==, 3);

    tiers_save_state(src, path);
    qtest_quit(src);
    dst = qtest_initf("-machine pc -m 64 -nodefaults -cpu "
                      "qemu64,vendor=GenuineIntel,family=6,model=85 "
                      RAS_MIG_ARGS " -incoming defer");
    qtest_qmp_assert_success(dst, "{ 'execute': 'migrate-incoming', "
                             "'arguments': { 'uri': %s } }", uri);
    for (;;) {
        QDict *q = qtest_qmp(dst, "{ 'execute': 'query-status' }");
        bool done = strcmp(qdict_get_str(qdict_get_qdict(q, "return"),
                                         "status"), "inmigrate") != 0;

        qobject_unref(q);
        if (done) {
            break;
        }
        g_usleep(10000);
    }
    g_assert_cmpint(poisoned_count(dst), ==, 3);
    for (i = 0; i < 12; i++) {
        if (i == 3 || i == 5 || i == 9) {
            g_assert_cmphex(qtest_readl(dst, BASE + i * PAGE), ==,
                            0xffffffff);
        } else {
            g_assert_cmpuint(bad_words(dst, BASE + i * PAGE, 5), ==, 0);
        }
    }
    qtest_quit(dst);
    unlink(path);
}

/* The HMP twins say what QMP says. */
static void test_hmp(void)
{
    QTestState *qts = ras_start(RAS_MIG_ARGS);
    g_autofree char *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
    g_autofree char *r5 = NULL, *r6 = NULL, *r7 = NULL;

    fill(qts, BASE, 9);
    fill(qts, BASE + PAGE, 9);
    r1 = qtest_hmp(qts, "ras_retire_page 0x%x 2", BASE);
    g_assert(strstr(r1, "retired 2 page(s) from 0x200000"));
    r2 = qtest_hmp(qts, "info retired-pages");
    g_assert(strstr(r2, "0x0000000000200000 qmp"));
    g_assert(strstr(r2, "0x0000000000201000 qmp"));
    r3 = qtest_hmp(qts, "info ras-pool");
    g_assert(strstr(r3, "2 pages used, 14 free"));
    r4 = qtest_hmp(qts, "ras_retire_page 0x%x", BASE + 8);
    g_assert(strstr(r4, "already retired"));
    r5 = qtest_hmp(qts, "ras_retire_page 0x%x 0", BASE + 4 * PAGE);
    g_assert(strstr(r5, "pages=0: a batch is 1 to 512 pages"));
    inject(qts, SRAO, BASE + 6 * PAGE);
    r6 = qtest_hmp(qts, "info poisoned-pages");
    g_assert_cmpstr(r6, ==, "0x0000000000206000\r\n");
    g_assert_cmpuint(bad_words(qts, BASE, 9), ==, 0);
    g_assert_cmpuint(bad_words(qts, BASE + PAGE, 9), ==, 0);
    qtest_quit(qts);

    qts = ras_start("");
    r7 = qtest_hmp(qts, "info ras-pool");
    g_assert(strstr(r7, "no ras-policy object"));
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/ras/retire-keeps-contents", test_retire_keeps_contents);
    qtest_add_func("/ras/broken-retirement-is-caught",
                   test_broken_retirement_is_caught);
    qtest_add_func("/ras/bad-input", test_bad_input);
    qtest_add_func("/ras/refused-backends", test_refused_backends);
    qtest_add_func("/ras/no-policy", test_no_policy);
    qtest_add_func("/ras/corrected-errors-retire",
                   test_corrected_errors_retire);
    qtest_add_func("/ras/batch", test_batch);
    qtest_add_func("/ras/poison-migrates", test_poison_migrates);
    qtest_add_func("/ras/hmp", test_hmp);
    return g_test_run();
}
