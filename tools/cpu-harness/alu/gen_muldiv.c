/*
 * MUL IMUL DIV IDIV (group 3 /4-/7), IMUL r,r/m (0F AF) and IMUL r,r/m,imm (69, 6B). Dividends are
 * chosen so that results fit, overflow by one, or divide by zero: #DE cases are vectors too
 * (SDM vol. 2, DIV/IDIV: "#DE if the source operand is 0 or the quotient is too large").
 */
#include "harness.h"

#define OP_GROUP3 0xF6u
#define OP_TWO_BYTE 0x0Fu
#define OP_IMUL_R_RM 0xAFu
#define OP_IMUL_IMM 0x69u
#define OP_IMUL_IMM8 0x6Bu
#define GROUP3_MUL 4

static const char *const group3_names[4] = { "MUL", "IMUL", "DIV", "IDIV" };

static int64_t sign_extend(uint64_t value, int bits) { return (int64_t)(value << (64 - bits)) >> (64 - bits); }

/* The accumulator pair for a size: AX for 8-bit (AH:AL), DX:AX, EDX:EAX. */
static void set_pair(vector *v, int size_bits, uint64_t dividend)
{
    if (size_bits == 8) set_reg(v, 16, EAX, (uint32_t)dividend);
    else {
        set_reg(v, size_bits, EAX, (uint32_t)dividend);
        set_reg(v, size_bits, EDX, (uint32_t)(dividend >> size_bits));
    }
}

void set_dividend(vector *v, int size_bits, int is_signed, uint32_t divisor)
{
    uint32_t kind = rng_below(8);
    if (kind == 0) return; /* random: mostly a quotient overflow */
    uint64_t mask = (1ull << size_bits) - 1;
    divisor &= (uint32_t)mask;
    if (divisor == 0) return;
    /* quotient * divisor + remainder, the quotient in range or one past it, the remainder below the divisor */
    if (!is_signed) {
        uint64_t quotient = rng_operand(size_bits) & mask;
        if (kind == 1) quotient = mask + 1; /* just too large */
        uint64_t dividend = quotient * divisor + rng_u32() % divisor;
        set_pair(v, size_bits, dividend);
        return;
    }
    int64_t d = sign_extend(divisor, size_bits);
    int64_t max = (int64_t)(mask >> 1);
    int64_t quotient = sign_extend(rng_operand(size_bits), size_bits);
    if (kind == 1) quotient = rng_below(2) ? max + 1 : -max - 2; /* one past either end */
    else if (kind == 2) quotient = rng_below(2) ? max : -max - 1;
    int64_t magnitude = d < 0 ? -d : d;
    int64_t remainder = (int64_t)(rng_u32() % (uint64_t)magnitude);
    if ((quotient < 0) != (d < 0) && quotient != 0) remainder = -remainder; /* the remainder takes the dividend's sign */
    set_pair(v, size_bits, (uint64_t)(quotient * d + remainder));
}

static void group3_vector(int op, int size_bits)
{
    vector v;
    vector_start(&v, group_name("%s%d", group3_names[op], size_bits), size_bits);
    put_operand_size(&v, size_bits);
    put8(&v, OP_GROUP3 | (size_bits == 8 ? 0u : 1u));
    int reg = pick_reg(size_bits);
    int divide = op >= 2;
    /* A crafted dividend needs a divisor outside the accumulator pair. */
    int in_pair = size_bits == 8 ? (reg == 0 || reg == 4) : (reg == EAX || reg == EDX);
    if (divide && !in_pair) {
        if (rng_below(16) == 0) set_reg(&v, size_bits, reg, 0);
        set_dividend(&v, size_bits, op == 3, get_reg(&v, size_bits, reg));
    }
    put_modrm_reg(&v, GROUP3_MUL + op, reg);
    run_and_emit(&v);
}

static void imul_vector(int size_bits, int form)
{
    vector v;
    vector_start(&v, group_name(form == 0 ? "IMUL%d r,rm" : "IMUL%d r,rm,imm", size_bits), size_bits);
    put_operand_size(&v, size_bits);
    if (form == 0) {
        put8(&v, OP_TWO_BYTE);
        put8(&v, OP_IMUL_R_RM);
    } else {
        put8(&v, form == 1 ? OP_IMUL_IMM : OP_IMUL_IMM8);
    }
    put_modrm_reg(&v, pick_reg(size_bits), pick_reg(size_bits));
    if (form == 1) put_imm(&v, size_bits, rng_operand(size_bits));
    else if (form == 2) put8(&v, rng_operand(8));
    run_and_emit(&v);
}

void gen_muldiv(int per_group)
{
    static const int sizes[3] = { 8, 16, 32 };
    for (int op = 0; op < 4; op++) {
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < per_group; i++) group3_vector(op, sizes[s]);
        }
    }
    for (int s = 1; s < 3; s++) {
        for (int i = 0; i < per_group; i++) imul_vector(sizes[s], 0);
        for (int i = 0; i < per_group; i++) imul_vector(sizes[s], 1 + (int)rng_below(2));
    }
}
