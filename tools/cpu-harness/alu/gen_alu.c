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

/* The encodings of each ALU operation (SDM vol. 2, appendix A): */
enum alu_form {
    FORM_RM_R,    /* 00+op*8 / 01: r/m, r */
    FORM_R_RM,    /* 02 / 03: r, r/m */
    FORM_ACC_IMM, /* 04 / 05: AL/AX/EAX, imm */
    FORM_RM_IMM,  /* 80 / 81 /op: r/m, imm */
    FORM_RM_IMM8, /* 83 /op: r/m16/32, imm8 sign-extended (no 8-bit form) */
};

static void alu_vector(int op, int size_bits, enum alu_form form)
{
    vector v;
    vector_start(&v, group_name("%s%d", alu_names[op], size_bits), size_bits);
    put_operand_size(&v, size_bits);
    uint32_t base = (uint32_t)op << 3;
    switch (form) {
    case FORM_RM_R:
    case FORM_R_RM:
        put8(&v, base | (form == FORM_R_RM ? OPCODE_D : 0u) | w_bit(size_bits));
        put_modrm_reg(&v, pick_reg(size_bits), pick_reg(size_bits));
        break;
    case FORM_ACC_IMM:
        put8(&v, base | OPCODE_ACC_IMM | w_bit(size_bits));
        put_imm(&v, size_bits, rng_operand(size_bits));
        break;
    case FORM_RM_IMM:
        put8(&v, OP_GROUP1_IMM | w_bit(size_bits));
        put_modrm_reg(&v, op, pick_reg(size_bits));
        put_imm(&v, size_bits, rng_operand(size_bits));
        break;
    case FORM_RM_IMM8:
        put8(&v, OP_GROUP1_IMM8_SX);
        put_modrm_reg(&v, op, pick_reg(size_bits));
        put8(&v, rng_operand(8));
        break;
    }
    run_and_emit(&v);
}

enum unary { UNARY_TEST, UNARY_INC, UNARY_DEC, UNARY_NOT, UNARY_NEG, UNARY_COUNT };
static const char *const unary_names[UNARY_COUNT] = { "TEST", "INC", "DEC", "NOT", "NEG" };
#define GROUP3_TEST 0
#define GROUP3_NOT 2
#define GROUP3_NEG 3

static void unary_vector(enum unary kind, int size_bits)
{
    vector v;
    vector_start(&v, group_name("%s%d", unary_names[kind], size_bits), size_bits);
    put_operand_size(&v, size_bits);
    int reg = pick_reg(size_bits);
    switch (kind) {
    case UNARY_TEST: { /* 84/85 r/m,r; A8/A9 acc,imm; F6/F7 /0 r/m,imm */
        uint32_t form = rng_below(3);
        if (form == 0) { put8(&v, OP_TEST_RM_R | w_bit(size_bits)); put_modrm_reg(&v, pick_reg(size_bits), reg); }
        else if (form == 1) { put8(&v, OP_TEST_ACC_IMM | w_bit(size_bits)); put_imm(&v, size_bits, rng_operand(size_bits)); }
        else { put8(&v, OP_GROUP3 | w_bit(size_bits)); put_modrm_reg(&v, GROUP3_TEST, reg); put_imm(&v, size_bits, rng_operand(size_bits)); }
        break;
    }
    case UNARY_INC:
    case UNARY_DEC: { /* 40+r / 48+r (16/32-bit), FE/FF /0 /1 */
        int decrement = kind == UNARY_DEC;
        if (size_bits != 8 && rng_below(2)) put8(&v, (decrement ? OP_DEC_R32 : OP_INC_R32) + (uint32_t)reg);
        else { put8(&v, OP_GROUP4 | w_bit(size_bits)); put_modrm_reg(&v, decrement, reg); }
        break;
    }
    default: /* F6/F7 /2 NOT, /3 NEG */
        put8(&v, OP_GROUP3 | w_bit(size_bits));
        put_modrm_reg(&v, kind == UNARY_NOT ? GROUP3_NOT : GROUP3_NEG, reg);
        break;
    }
    run_and_emit(&v);
}

void gen_alu(int per_group)
{
    for (int op = 0; op < 8; op++) {
        for (int s = 0; s < 3; s++) {
            uint32_t forms = sizes[s] == 8 ? FORM_RM_IMM8 : FORM_RM_IMM8 + 1;
            for (int i = 0; i < per_group; i++) alu_vector(op, sizes[s], (enum alu_form)rng_below(forms));
        }
    }
    for (int kind = 0; kind < UNARY_COUNT; kind++) {
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < per_group; i++) unary_vector((enum unary)kind, sizes[s]);
        }
    }
}
