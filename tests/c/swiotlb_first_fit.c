/* A swiotlb slot allocator in C behind the t1virtio-subprocess/1 protocol (docs/oracle.md,
 * "Checking a C or Rust implementation"): first fit over the slots, obeying the legality rules
 * (a free run inside one segment, aligned as asked, inside the DMA boundary window; release frees
 * exactly the allocation).  Standalone: C99, libc only, no JSON library.
 *
 *   cc -std=c99 -O2 -o swiotlb_first_fit swiotlb_first_fit.c
 *
 * Deliberate bugs for the oracle's teeth (compile with one of them):
 *   -DBUG_SEGMENT    runs may cross a segment boundary            -> SWIOTLB-find-rule
 *   -DBUG_DOUBLE     a run's first slot is never marked taken     -> SWIOTLB-find-rule (double allocation)
 *   -DBUG_FREE_SIZE  release frees one slot more than was taken   -> SWIOTLB-release-rule
 *   -DBUG_ALIGN      requests of a page or more are not page aligned -> SWIOTLB-find-align-rule
 *
 * Protocol: one JSON object per line on stdin, one reply per line on stdout.
 *   {"seq":1,"protocol":"t1virtio-subprocess/1","op":"start","header":{...},"geometry":{...},"memory":null}
 *   {"seq":2,"op":"map","args":{"orig_addr":..,"mapping_size":..,"alloc_align_mask":..,...}}
 * replies {"seq":N,"result":{...}} or {"seq":N,"error":"ENOMEM"}; {"op":"stop"} ends the process.
 * The parser below only finds "key": values in the flat objects the oracle sends (keys are unique
 * within a request's args / geometry), which is all this implementation needs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLOTS 65536
#define LINE_MAX_BYTES (1 << 20)
#define U64_MAX_ ((uint64_t)-1)

static uint64_t pool_start, nslabs, segsize, page_size = 4096, slot_size = 2048;
static uint32_t run_len[MAX_SLOTS];  /* at a run's head: its length in slots; 0 elsewhere */
static uint8_t taken[MAX_SLOTS];
static uint64_t head_size[MAX_SLOTS]; /* at a run's head: the size asked for (without the min_align offset) */

/* Pointer just past "key": inside [from, end of string), or NULL. */
static const char *find_key(const char *from, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(from, pat);
    return p ? p + strlen(pat) : NULL;
}

static int get_u64(const char *from, const char *key, uint64_t *out) {
    const char *p = find_key(from, key);
    if (!p || *p < '0' || *p > '9') return 0;
    *out = strtoull(p, NULL, 10);
    return 1;
}

static uint64_t u64_or(const char *from, const char *key, uint64_t dflt) {
    uint64_t v;
    return get_u64(from, key, &v) ? v : dflt;
}

static void reply_error(uint64_t seq, const char *err) {
    printf("{\"seq\":%llu,\"error\":\"%s\"}\n", (unsigned long long)seq, err);
    fflush(stdout);
}

static uint64_t nr_slots(uint64_t bytes) { return (bytes + slot_size - 1) / slot_size; }

static int run_free(uint64_t i, uint64_t n) {
    for (uint64_t k = i; k < i + n; k++)
        if (taken[k]) return 0;
    return 1;
}

/* First fit: the lowest slot i whose run of n slots is free, in one segment, aligned, in the window. */
static int64_t first_fit(uint64_t n, uint64_t orig, uint64_t off, uint64_t total, uint64_t align_mask,
                         uint64_t min_align_mask, uint64_t boundary_mask) {
    uint64_t window = 0;
    if (boundary_mask != U64_MAX_) window = nr_slots(boundary_mask + 1) * slot_size;
    for (uint64_t i = 0; i + n <= nslabs; i++) {
        uint64_t addr = pool_start + i * slot_size;
#ifndef BUG_SEGMENT
        if (i / segsize != (i + n - 1) / segsize) continue;
#endif
        if (orig != 0 && ((addr + off) & min_align_mask) != (orig & min_align_mask)) continue;
        if (addr & align_mask) continue;
        (void)total;
#ifndef BUG_ALIGN
        if (align_mask == 0 && min_align_mask == 0 && total >= page_size && (addr & (page_size - 1))) continue;
#endif
        if (window && (addr & (window - 1)) + n * slot_size > window) continue;
        if (!run_free(i, n)) continue;
        return (int64_t)i;
    }
    return -1;
}

static void take(uint64_t i, uint64_t n, uint64_t size) {
    run_len[i] = (uint32_t)n;
    head_size[i] = size;
#ifdef BUG_DOUBLE
    for (uint64_t k = i + 1; k < i + n; k++) taken[k] = 1;   /* the head slot stays "free" */
#else
    for (uint64_t k = i; k < i + n; k++) taken[k] = 1;
#endif
}

int main(void) {
    static char line[LINE_MAX_BYTES + 2];
    while (fgets(line, sizeof line, stdin)) {
        uint64_t seq = u64_or(line, "seq", 0);
        const char *op = find_key(line, "op");
        if (!op) { fprintf(stderr, "no op in request\n"); return 2; }
        if (!strncmp(op, "\"stop\"", 6)) return 0;
        const char *args = find_key(line, "args");
        if (!strncmp(op, "\"start\"", 7)) {
            const char *g = find_key(line, "geometry");
            if (!strstr(line, "\"component\":\"swiotlb\"") || !g) {
                reply_error(seq, "only the swiotlb component");
                continue;
            }
            pool_start = u64_or(g, "start", 0);
            nslabs = u64_or(g, "nslabs", 0);
            segsize = u64_or(g, "segsize", 128);
            page_size = u64_or(g, "page_size", 4096);
            slot_size = u64_or(g, "slot_size", 2048);
            if (nslabs == 0 || nslabs > MAX_SLOTS || segsize == 0) {
                reply_error(seq, "pool too large for this implementation");
                continue;
            }
            memset(taken, 0, sizeof taken);
            memset(run_len, 0, sizeof run_len);
            printf("{\"seq\":%llu,\"result\":{\"name\":\"swiotlb_first_fit.c\"}}\n", (unsigned long long)seq);
            fflush(stdout);
            continue;
        }
        if (!args) { reply_error(seq, "EINVAL"); continue; }
        uint64_t min_align = u64_or(args, "min_align_mask", 0), boundary = u64_or(args, "boundary_mask", U64_MAX_);
        if (!strncmp(op, "\"map\"", 5)) {
            uint64_t orig = u64_or(args, "orig_addr", 0), msize = u64_or(args, "mapping_size", 0);
            uint64_t asize = u64_or(args, "alloc_size", msize), amask = u64_or(args, "alloc_align_mask", 0);
            uint64_t off = orig & min_align & (slot_size - 1), total = asize + off, n = nr_slots(total);
            if (msize > asize || n == 0 || total < asize) { reply_error(seq, "EINVAL"); continue; }
            if (n > segsize) { reply_error(seq, "ENOMEM"); continue; }
            int64_t i = first_fit(n, orig, off, total, amask, min_align, boundary);
            if (i < 0) { reply_error(seq, "ENOMEM"); continue; }
            take((uint64_t)i, n, asize);
            printf("{\"seq\":%llu,\"result\":{\"tlb_addr\":%llu,\"slot\":%lld}}\n", (unsigned long long)seq,
                   (unsigned long long)(pool_start + (uint64_t)i * slot_size + off), (long long)i);
        } else if (!strncmp(op, "\"alloc\"", 7)) {
            uint64_t size = u64_or(args, "size", 0), n = nr_slots(size);
            if (n == 0) { reply_error(seq, "EINVAL"); continue; }
            if (n > segsize) { reply_error(seq, "ENOMEM"); continue; }
            int64_t i = first_fit(n, 0, 0, size, 0, 0, boundary);
            if (i < 0) { reply_error(seq, "ENOMEM"); continue; }
            take((uint64_t)i, n, size);
            printf("{\"seq\":%llu,\"result\":{\"addr\":%llu,\"slot\":%lld}}\n", (unsigned long long)seq,
                   (unsigned long long)(pool_start + (uint64_t)i * slot_size), (long long)i);
        } else if (!strncmp(op, "\"release\"", 9)) {
            uint64_t tlb = u64_or(args, "tlb_addr", 0), off = tlb & min_align & (slot_size - 1);
            if (tlb < pool_start + off) { reply_error(seq, "EINVAL"); continue; }
            uint64_t i = (tlb - off - pool_start) / slot_size;   /* Linux: (tlb - offset - start) >> IO_TLB_SHIFT */
            if (i >= nslabs || run_len[i] == 0) { reply_error(seq, "EINVAL"); continue; }
            uint64_t n = run_len[i];
            /* the release names the allocation by (tlb_addr, the device's min_align_mask): a mask that
             * does not give back the mapping's offset names another size; refuse it (a caller error) */
            if (nr_slots(head_size[i] + off) != n) { reply_error(seq, "EINVAL"); continue; }
#ifdef BUG_FREE_SIZE
            if (i + n < nslabs) n++;                     /* frees the neighbour's first slot too */
#endif
            for (uint64_t k = i; k < i + n; k++) { taken[k] = 0; run_len[k] = 0; }
            printf("{\"seq\":%llu,\"result\":{\"nslots\":%llu}}\n", (unsigned long long)seq, (unsigned long long)n);
        } else {
            reply_error(seq, "EINVAL");
            continue;
        }
        fflush(stdout);
    }
    return 0;
}
