/* ADD OR ADC SBB AND SUB XOR CMP, TEST, INC DEC NEG NOT on registers and immediates (SDM vol. 2). */
#include "harness.h"

static const char *const alu_names[8] = { "ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP" };
static const int sizes[3] = { 8, 16, 32 };

/* Opcode bits 0 and 1 (SDM vol. 2, B.1.4.3): w selects the full size, d the direction. */
#define OPCODE_W 1u
#define OPCODE_D 2u
#define OPCODE_ACC_IMM 4u
#define OP_GROUP1_IMM 0x80u       /* 80 /op ib, 81 /op iw/id */
#define OP_GROUP1_IMM8_SX 0x83u   /* 83 /op ib, sign-extended */
#define OP_TEST_RM_R 0x84u
#define OP_TEST_ACC_IMM 0xA8u
#define OP_GROUP3 0xF6u           /* F6/F7: /0 TEST imm, /2 NOT, /3 NEG */
#define OP_GROUP4 0xFEu           /* FE/FF: /0 INC, /1 DEC */
#define OP_INC_R32 0x40u
#define OP_DEC_R32 0x48u

static uint32_t w_bit(int size_bits) { return size_bits == 8 ? 0u : OPCODE_W; }

static void alu_vector(int op, int size_bits, int form)
{
    vector v;
    vector_start(&v, group_name("%s%d", alu_names[op], size_bits), size_bits);
    put_operand_size(&v, size_bits);
    uint32_t base = (uint32_t)op << 3;
    int imm_bits = size_bits;
    switch (form) {
    case 0: put8(&v, base | w_bit(size_bits)); put_modrm_reg(&v, pick_reg(size_bits), pick_reg(size_bits)); break;
    case 1: put8(&v, base | OPCODE_D | w_bit(size_bits)); put_modrm_reg(&v, pick_reg(size_bits), pick_reg(size_bits)); break;
    case 2: put8(&v, base | OPCODE_ACC_IMM | w_bit(size_bits)); put_imm(&v, size_bits, rng_operand(size_bits)); return run_and_emit(&v);
    case 3: put8(&v, OP_GROUP1_IMM | w_bit(size_bits)); put_modrm_reg(&v, op, pick_reg(size_bits)); break;
    default: put8(&v, OP_GROUP1_IMM8_SX); put_modrm_reg(&v, op, pick_reg(size_bits)); imm_bits = 8; break;
    }
    if (form >= 3) put_imm(&v, imm_bits, rng_operand(imm_bits));
    run_and_emit(&v);
}

static void unary_vector(const char *name, int size_bits)
{
    vector v;
    vector_start(&v, group_name("%s%d", name, size_bits), size_bits);
    put_operand_size(&v, size_bits);
    int reg = pick_reg(size_bits);
    if (name[0] == 'T') { /* TEST: 84/85 r/m,r; A8/A9 acc,imm; F6/F7 /0 r/m,imm */
        uint32_t form = rng_below(3);
        if (form == 0) { put8(&v, OP_TEST_RM_R | w_bit(size_bits)); put_modrm_reg(&v, pick_reg(size_bits), reg); }
        else if (form == 1) { put8(&v, OP_TEST_ACC_IMM | w_bit(size_bits)); put_imm(&v, size_bits, rng_operand(size_bits)); }
        else { put8(&v, OP_GROUP3 | w_bit(size_bits)); put_modrm_reg(&v, 0, reg); put_imm(&v, size_bits, rng_operand(size_bits)); }
    } else if (name[0] == 'I' || name[0] == 'D') {
        int decrement = name[0] == 'D';
        if (size_bits != 8 && rng_below(2)) put8(&v, (decrement ? OP_DEC_R32 : OP_INC_R32) + (uint32_t)reg);
        else { put8(&v, OP_GROUP4 | w_bit(size_bits)); put_modrm_reg(&v, decrement, reg); }
    } else { /* NOT /2, NEG /3 */
        put8(&v, OP_GROUP3 | w_bit(size_bits));
        put_modrm_reg(&v, name[1] == 'O' ? 2 : 3, reg);
    }
    run_and_emit(&v);
}

void gen_alu(int per_group)
{
    static const char *const unary[] = { "TEST", "INC", "DEC", "NOT", "NEG" };
    for (int op = 0; op < 8; op++) {
        for (int s = 0; s < 3; s++) {
            int forms = sizes[s] == 8 ? 4 : 5;
            for (int i = 0; i < per_group; i++) alu_vector(op, sizes[s], (int)rng_below((uint32_t)forms));
        }
    }
    for (unsigned u = 0; u < sizeof unary / sizeof unary[0]; u++) {
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < per_group; i++) unary_vector(unary[u], sizes[s]);
        }
    }
}
