/*
 * x87 differential harness: runs x87 instructions natively on random and targeted operands and prints one line
 * per case, for tests/ImgTool.Machine.Tests/Cpu/X87/X87DifferentialTests.cs to replay through X87Fpu.
 *
 * Every case: FNINIT; FLDCW cw; FLD m80 b; FLD m80 a (so ST0=a, ST1=b); EFLAGS = flags_in; RAX = &mem;
 * the instruction's bytes; EFLAGS/RAX captured; FNSAVE (no-wait, so an unmasked exception never traps).
 *
 * Output line: name bytes cw a b mem_in flags_in | sw tw st0..st7 mem_out flags_out rax
 * (80-bit values as 4 hex digits sign/exponent ':' 16 hex digits significand; memory as 10 bytes hex, low first).
 *
 * Usage: x87harness SEED CASES_PER_OP
 * Built by the test with: gcc -O1 -mno-red-zone -o x87harness x87harness.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state {
    uint16_t cw;
    uint8_t a[10];
    uint8_t b[10];
    uint8_t mem[16];
    uint8_t save[108];
    uint64_t flags_in;
    uint64_t flags_out;
    uint64_t rax;
};

enum mem_kind { NONE, F32, F64, F80, I16, I32, I64, BCD, OUT };
enum profile { GEN, INT, SCALE, PREM, TRIG, EXP2, LOG, LOGP1, CMP };

#define OP(name, bytes, kind, prof) \
    static void run_##name(struct state *s) \
    { \
        __asm__ volatile( \
            "fninit\n\t" \
            "fldcw %[cw]\n\t" \
            "fldt %[b]\n\t" \
            "fldt %[a]\n\t" \
            "pushq %[fin]\n\t" \
            "popfq\n\t" \
            "lea %[mem], %%rax\n\t" \
            ".byte " bytes "\n\t" \
            "pushfq\n\t" \
            "popq %[fout]\n\t" \
            "movq %%rax, %[rax]\n\t" \
            "fnsave %[save]\n\t" \
            : [save] "=m"(s->save), [mem] "+m"(s->mem), [fout] "=&r"(s->flags_out), [rax] "=m"(s->rax) \
            : [cw] "m"(s->cw), [a] "m"(s->a), [b] "m"(s->b), [fin] "r"(s->flags_in) \
            : "rax", "memory", "cc"); \
    }
#include "ops.def"
#undef OP

struct op {
    const char *name;
    const char *bytes;
    enum mem_kind kind;
    enum profile profile;
    void (*run)(struct state *);
};

#define OP(name, bytes, kind, prof) { #name, bytes, kind, prof, run_##name },
static const struct op ops[] = {
#include "ops.def"
};
#undef OP

static uint64_t rng_state;

static uint64_t next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(uint64_t n) { return next() % n; }

static void put80(uint8_t *p, uint16_t se, uint64_t sig)
{
    memcpy(p, &sig, 8);
    memcpy(p + 8, &se, 2);
}

/* Significands that sit on or next to the rounding points of 24, 53 and 64 bits. */
static uint64_t tie_significand(void)
{
    static const int widths[] = { 24, 53, 64, 63, 62 };
    int w = widths[below(5)];
    uint64_t sig = next() | 0x8000000000000000ULL;
    if (w < 64) {
        uint64_t low = (1ULL << (64 - w)) - 1;
        switch (below(5)) {
        case 0: sig &= ~low; sig |= 1ULL << (63 - w); break;           /* exact tie */
        case 1: sig &= ~low; sig |= (1ULL << (63 - w)) + 1; break;     /* just above */
        case 2: sig &= ~low; sig |= (1ULL << (63 - w)) - 1; break;     /* just below */
        case 3: sig |= low; break;                                     /* all ones: carry */
        default: sig &= ~low; break;                                   /* exact */
        }
    } else {
        sig |= below(2) ? 1 : 0xFFFF;
    }
    return sig;
}

/* One 80-bit operand drawn from the classes that matter. */
static void gen80(uint8_t *p, int exp_lo, int exp_hi)
{
    uint16_t sign = below(2) ? 0x8000 : 0;
    uint64_t sig = next() | 0x8000000000000000ULL;
    int exp = exp_lo + (int)below((uint64_t)(exp_hi - exp_lo + 1));
    switch (below(24)) {
    case 0: put80(p, (uint16_t)next(), next()); return;                        /* any bits */
    case 1: put80(p, sign, 0); return;                                         /* zero */
    case 2: put80(p, sign, next() >> (1 + below(63))); return;                 /* denormal */
    case 3: put80(p, sign, sig); return;                                       /* pseudo-denormal */
    case 4: put80(p, sign | 0x7FFF, 0x8000000000000000ULL); return;            /* infinity */
    case 5: put80(p, sign | 0x7FFF, 0xC000000000000000ULL | (next() >> 2 >> below(62))); return; /* QNaN */
    case 6: put80(p, sign | 0x7FFF, 0x8000000000000000ULL | ((next() >> 2) | 1)); return;  /* SNaN */
    case 7: put80(p, sign | (uint16_t)(1 + below(0x7FFE)), next() >> 1); return;           /* unnormal */
    case 8: put80(p, sign | 0x7FFF, next() >> 1); return;                      /* pseudo-NaN/inf */
    case 9: put80(p, sign | (uint16_t)(0x7FFE - below(70)), sig); return;      /* huge */
    case 10: put80(p, sign | (uint16_t)(1 + below(70)), sig); return;          /* tiny */
    case 11: case 12: case 13: put80(p, sign | (uint16_t)exp, tie_significand()); return;
    case 14: put80(p, sign | 0x3FFF, 0x8000000000000000ULL); return;           /* +-1 */
    case 15: put80(p, sign | (uint16_t)(0x3FFF + below(64)), (next() | 0x8000000000000000ULL) & ~(~0ULL >> below(40))); return;
    default: put80(p, sign | (uint16_t)exp, sig); return;
    }
}

static void gen_profile(struct state *s, enum profile profile)
{
    switch (profile) {
    case INT:
        gen80(s->a, 0x3FFF - 4, 0x3FFF + 66);
        gen80(s->b, 0x3FFF - 4, 0x3FFF + 66);
        break;
    case SCALE:
        gen80(s->a, 0x3FFF - 200, 0x3FFF + 200);
        if (below(4)) {
            gen80(s->b, 0x3FFF, 0x3FFF + 15);
        } else {
            gen80(s->b, 0x3FFF - 10, 0x3FFF + 20);
        }
        break;
    case PREM:
        gen80(s->a, 0x3FFF - 10, 0x3FFF + 200);
        gen80(s->b, 0x3FFF - 10, 0x3FFF + 70);
        break;
    case TRIG:
        gen80(s->a, 0x3FFF - 70, 0x3FFF + 64);
        gen80(s->b, 0x3FFF - 10, 0x3FFF + 10);
        break;
    case EXP2:
        gen80(s->a, 0x3FFF - 70, 0x3FFE);
        gen80(s->b, 0x3FFF - 10, 0x3FFF + 10);
        break;
    case LOG:
        gen80(s->a, 0x3FFF - 100, 0x3FFF + 100);
        gen80(s->b, 0x3FFF - 30, 0x3FFF + 30);
        break;
    case LOGP1:
        gen80(s->a, 0x3FFF - 70, 0x3FFD);
        gen80(s->b, 0x3FFF - 30, 0x3FFF + 30);
        break;
    case CMP:
        gen80(s->a, 0x3FFF - 64, 0x3FFF + 64);
        if (below(3) == 0) {
            /* b near a: equal, or one ulp away, or only the sign differs */
            memcpy(s->b, s->a, 10);
            uint64_t sig;
            memcpy(&sig, s->b, 8);
            switch (below(3)) {
            case 0: break;
            case 1: sig += below(2) ? 1 : (uint64_t)-1; memcpy(s->b, &sig, 8); break;
            default: s->b[9] ^= 0x80; break;
            }
        } else {
            gen80(s->b, 0x3FFF - 64, 0x3FFF + 64);
        }
        break;
    default:
        gen80(s->a, 0x3FFF - 80, 0x3FFF + 80);
        gen80(s->b, 0x3FFF - 80, 0x3FFF + 80);
        break;
    }
}

static uint64_t gen_narrow(int exponent_bits, int fraction_bits)
{
    uint64_t max_exp = (1ULL << exponent_bits) - 1;
    uint64_t frac = next() & ((1ULL << fraction_bits) - 1);
    uint64_t sign = below(2);
    uint64_t exp;
    switch (below(10)) {
    case 0: exp = 0; frac = 0; break;
    case 1: exp = 0; break;                                         /* denormal */
    case 2: exp = max_exp; frac = 0; break;                          /* infinity */
    case 3: exp = max_exp; frac |= 1ULL << (fraction_bits - 1); break; /* QNaN */
    case 4: exp = max_exp; frac &= ~(1ULL << (fraction_bits - 1)); frac |= 1; break; /* SNaN */
    case 5: return next() & ((1ULL << (exponent_bits + fraction_bits)) | ((1ULL << (exponent_bits + fraction_bits)) - 1));
    default: exp = (max_exp >> 1) - 40 + below(80); break;
    }
    return (sign << (exponent_bits + fraction_bits)) | (exp << fraction_bits) | frac;
}

static void gen_memory(struct state *s, enum mem_kind kind)
{
    memset(s->mem, 0xCC, sizeof s->mem);
    uint64_t v;
    switch (kind) {
    case F32: v = gen_narrow(8, 23); memcpy(s->mem, &v, 4); break;
    case F64: v = gen_narrow(11, 52); memcpy(s->mem, &v, 8); break;
    case F80: gen80(s->mem, 0x3FFF - 80, 0x3FFF + 80); break;
    case I16: case I32: case I64:
        switch (below(4)) {
        case 0: v = next(); break;
        case 1: v = (uint64_t)((int64_t)(next() % 2001) - 1000); break;
        case 2: v = 1ULL << (kind == I16 ? 15 : kind == I32 ? 31 : 63); break;
        default: v = next() >> below(64); break;
        }
        memcpy(s->mem, &v, kind == I16 ? 2 : kind == I32 ? 4 : 8);
        break;
    case BCD: {
        int digits = (int)below(19);
        for (int i = 0; i < 9; i++) {
            int lo = (2 * i < digits) ? (int)below(10) : 0;
            int hi = (2 * i + 1 < digits) ? (int)below(10) : 0;
            s->mem[i] = (uint8_t)(hi << 4 | lo);
        }
        s->mem[9] = below(2) ? 0x80 : 0;
        break;
    }
    default: break;
    }
}

static uint16_t gen_cw(void)
{
    static const int precisions[] = { 0, 2, 3, 3 };
    uint16_t masks = below(10) < 7 ? 0x3F : (uint16_t)below(64);
    return (uint16_t)(0x0040 | masks | precisions[below(4)] << 8 | below(4) << 10);
}

static void print80(const uint8_t *p)
{
    uint16_t se;
    uint64_t sig;
    memcpy(&sig, p, 8);
    memcpy(&se, p + 8, 2);
    printf(" %04X:%016llX", se, (unsigned long long)sig);
}

static void print_bytes(const uint8_t *p, int n)
{
    putchar(' ');
    for (int i = 0; i < n; i++) printf("%02X", p[i]);
}

int main(int argc, char **argv)
{
    rng_state = argc > 1 ? strtoull(argv[1], 0, 0) : 1;
    if (rng_state == 0) rng_state = 1;
    long cases = argc > 2 ? strtol(argv[2], 0, 0) : 1000;
    static const uint64_t flag_sets[] = { 0x002, 0x003, 0x042, 0x006, 0x047, 0x043, 0x046, 0x007 };
    struct state s;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        for (long c = 0; c < cases; c++) {
            memset(&s, 0, sizeof s);
            s.cw = gen_cw();
            gen_profile(&s, ops[o].profile);
            gen_memory(&s, ops[o].kind);
            s.flags_in = flag_sets[below(8)];
            uint8_t mem_in[10];
            memcpy(mem_in, s.mem, 10);
            ops[o].run(&s);
            printf("%s %s %04X", ops[o].name, ops[o].bytes, s.cw);
            print80(s.a);
            print80(s.b);
            print_bytes(mem_in, 10);
            printf(" %03llX |", (unsigned long long)s.flags_in);
            uint16_t sw, tw;
            memcpy(&sw, s.save + 4, 2);
            memcpy(&tw, s.save + 8, 2);
            printf(" %04X %04X", sw, tw);
            for (int i = 0; i < 8; i++) print80(s.save + 28 + 10 * i);
            print_bytes(s.mem, 10);
            printf(" %03llX %04llX", (unsigned long long)(s.flags_out & 0x8D5), (unsigned long long)(s.rax & 0xFFFF));
            print_bytes(s.save, 28);
            putchar('\n');
        }
    }
    return 0;
}
