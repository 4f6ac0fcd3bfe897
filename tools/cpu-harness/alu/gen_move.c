/*
 * Moves and exchanges that read or write flags or widen: CBW CWDE CWD CDQ, SETcc, CMOVcc, LAHF SAHF,
 * MOVZX MOVSX, XADD, CMPXCHG (register forms; the memory forms are in gen_memory.c).
 */
#include "harness.h"

#define OP_TWO_BYTE 0x0Fu
#define OP_CBW 0x98u /* CWDE with 32-bit operands */
#define OP_CWD 0x99u /* CDQ with 32-bit operands */
#define OP_SAHF 0x9Eu
#define OP_LAHF 0x9Fu
#define OP_SETCC 0x90u
#define OP_CMOVCC 0x40u
#define OP_MOVZX_B 0xB6u
#define OP_MOVZX_W 0xB7u
#define OP_MOVSX_B 0xBEu
#define OP_MOVSX_W 0xBFu
#define OP_XADD 0xC0u
#define OP_CMPXCHG 0xB0u
#define CONDITION_COUNT 16

/* Condition codes in encoding order (SDM vol. 2, B.1.4.7). */
static const char *const conditions[CONDITION_COUNT] = {
    "O", "NO", "B", "AE", "E", "NE", "BE", "A", "S", "NS", "P", "NP", "L", "GE", "LE", "G",
};

static void one_byte(const char *key, int size_bits, uint32_t opcode)
{
    vector v;
    vector_start(&v, key, size_bits);
    put_operand_size(&v, size_bits);
    put8(&v, opcode);
    run_and_emit(&v);
}

static void two_byte_rm(const char *key, int size_bits, uint32_t opcode, int source_bits)
{
    vector v;
    vector_start(&v, key, size_bits);
    put_operand_size(&v, size_bits);
    put8(&v, OP_TWO_BYTE);
    put8(&v, opcode);
    put_modrm_reg(&v, pick_reg(size_bits), pick_reg(source_bits));
    run_and_emit(&v);
}

/* XADD and CMPXCHG: r/m, r; CMPXCHG finds the accumulator equal to the destination half the time. */
static void exchange_vector(const char *name, uint32_t opcode, int size_bits)
{
    vector v;
    vector_start(&v, group_name("%s%d", name, size_bits), size_bits);
    put_operand_size(&v, size_bits);
    put8(&v, OP_TWO_BYTE);
    put8(&v, opcode | (size_bits == 8 ? 0u : 1u));
    int destination = pick_reg(size_bits);
    if (opcode == OP_CMPXCHG && rng_below(2)) set_reg(&v, size_bits, EAX, get_reg(&v, size_bits, destination));
    put_modrm_reg(&v, pick_reg(size_bits), destination);
    run_and_emit(&v);
}

void gen_move(int per_group)
{
    for (int i = 0; i < per_group; i++) {
        one_byte("CBW", 16, OP_CBW);
        one_byte("CWDE", 32, OP_CBW);
        one_byte("CWD", 16, OP_CWD);
        one_byte("CDQ", 32, OP_CWD);
        one_byte("LAHF", 8, OP_LAHF);
        one_byte("SAHF", 8, OP_SAHF);
    }
    for (uint32_t cc = 0; cc < CONDITION_COUNT; cc++) {
        for (int i = 0; i < per_group; i++) two_byte_rm(group_name("SET%s", conditions[cc]), 8, OP_SETCC + cc, 8);
        for (int size_bits = 16; size_bits <= 32; size_bits += 16) {
            for (int i = 0; i < per_group; i++) two_byte_rm(group_name("CMOV%s%d", conditions[cc], size_bits), size_bits, OP_CMOVCC + cc, size_bits);
        }
    }
    for (int i = 0; i < per_group; i++) {
        two_byte_rm("MOVZX16 r,rm8", 16, OP_MOVZX_B, 8);
        two_byte_rm("MOVZX32 r,rm8", 32, OP_MOVZX_B, 8);
        two_byte_rm("MOVZX32 r,rm16", 32, OP_MOVZX_W, 16);
        two_byte_rm("MOVSX16 r,rm8", 16, OP_MOVSX_B, 8);
        two_byte_rm("MOVSX32 r,rm8", 32, OP_MOVSX_B, 8);
        two_byte_rm("MOVSX32 r,rm16", 32, OP_MOVSX_W, 16);
    }
    for (int size_bits = 8; size_bits <= 32; size_bits *= 2) {
        for (int i = 0; i < per_group; i++) exchange_vector("XADD", OP_XADD, size_bits);
        for (int i = 0; i < per_group; i++) exchange_vector("CMPXCHG", OP_CMPXCHG, size_bits);
    }
}
