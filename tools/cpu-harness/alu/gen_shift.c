/*
 * Shifts and rotates (group 2: ROL ROR RCL RCR SHL SHR SAR) by 1, by CL and by imm8, and SHLD/SHRD,
 * with counts 0..31 and counts the CPU masks to 5 bits (SDM vol. 2, SAL/SAR/SHL/SHR: "the count is
 * masked to 5 bits").
 */
#include "harness.h"

#define OP_GROUP2_IMM 0xC0u /* C0/C1 /op ib */
#define OP_GROUP2_ONE 0xD0u /* D0/D1 /op */
#define OP_GROUP2_CL 0xD2u  /* D2/D3 /op */
#define OP_TWO_BYTE 0x0Fu
#define OP_SHLD_IMM 0xA4u
#define OP_SHLD_CL 0xA5u
#define OP_SHRD_IMM 0xACu
#define OP_SHRD_CL 0xADu
#define COUNT_MASK 0x1Fu
#define SHIFT_FORMS 3

/* The reg field of group 2; /6 (an undocumented SHL alias) is not a documented instruction. */
static const int group2_ops[] = { 0, 1, 2, 3, 4, 5, 7 };
static const char *const group2_names[8] = { "ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "", "SAR" };

/* A count: mostly 0..31, some near the operand width, some that only the 5-bit mask brings in range. */
uint32_t pick_count(int size_bits)
{
    uint32_t kind = rng_below(10);
    if (kind < 5) return rng_below(32);
    if (kind < 7) return rng_below(256);
    static const int offsets[] = { -1, 0, 1 };
    if (kind < 9) return (uint32_t)(size_bits + offsets[rng_below(3)]) & 0xFFu;
    return rng_below(4) + (rng_below(2) ? 32u : 0u);
}

static void put_count(vector *v, int form, uint32_t count)
{
    v->count = (int)count;
    if (form == 1) set_reg(v, 8, ECX, count); /* CL */
    else if (form == 2) put8(v, count);
}

static void group2_vector(int op, int size_bits, int form)
{
    vector v;
    vector_start(&v, group_name("%s%d", group2_names[op], size_bits), size_bits);
    put_operand_size(&v, size_bits);
    uint32_t w = size_bits == 8 ? 0u : 1u;
    static const uint32_t opcodes[SHIFT_FORMS] = { OP_GROUP2_ONE, OP_GROUP2_CL, OP_GROUP2_IMM };
    put8(&v, opcodes[form] | w);
    put_modrm_reg(&v, op, pick_reg(size_bits));
    put_count(&v, form, form == 0 ? 1u : pick_count(size_bits));
    run_and_emit(&v);
}

/* SHLD/SHRD: a 16-bit count above 16 leaves result and flags undefined (SDM vol. 2, SHLD), so none is generated. */
uint32_t pick_double_shift_count(int size_bits)
{
    for (;;) {
        uint32_t count = pick_count(size_bits);
        if (size_bits == 32 || (count & COUNT_MASK) <= 16) return count;
    }
}

static void double_shift_vector(int right, int size_bits)
{
    vector v;
    vector_start(&v, group_name("%s%d", right ? "SHRD" : "SHLD", size_bits), size_bits);
    put_operand_size(&v, size_bits);
    int by_cl = (int)rng_below(2);
    put8(&v, OP_TWO_BYTE);
    put8(&v, right ? (by_cl ? OP_SHRD_CL : OP_SHRD_IMM) : (by_cl ? OP_SHLD_CL : OP_SHLD_IMM));
    put_modrm_reg(&v, pick_reg(size_bits), pick_reg(size_bits));
    put_count(&v, by_cl ? 1 : 2, pick_double_shift_count(size_bits));
    run_and_emit(&v);
}

void gen_shift(int per_group)
{
    static const int sizes[3] = { 8, 16, 32 };
    for (unsigned o = 0; o < sizeof group2_ops / sizeof group2_ops[0]; o++) {
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < per_group; i++) group2_vector(group2_ops[o], sizes[s], (int)rng_below(SHIFT_FORMS));
        }
    }
    for (int right = 0; right < 2; right++) {
        for (int s = 1; s < 3; s++) {
            for (int i = 0; i < per_group; i++) double_shift_vector(right, sizes[s]);
        }
    }
}
