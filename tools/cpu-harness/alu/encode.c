/* Instruction encoding (SDM vol. 2, chapter 2): prefixes, ModRM, immediates, little-endian. */
#include "harness.h"

#define PREFIX_OPERAND_SIZE 0x66u
#define MODRM_MOD_REGISTER  0xC0u
#define MODRM_RM_DISP32     0x05u /* mod 00, r/m 101: [disp32] in 32-bit addressing (table 2-2) */
#define MODRM_MOD_DISP8     0x40u /* mod 01: [base + disp8] */
#define MODRM_MOD_DISP32    0x80u /* mod 10: [base + disp32] */
#define MODRM_RM_SIB        0x04u /* r/m 100: a SIB byte follows (table 2-3) */

void put8(vector *v, uint32_t byte) { v->bytes[v->length++] = (uint8_t)byte; }

void put16(vector *v, uint32_t word)
{
    put8(v, word);
    put8(v, word >> 8);
}

void put32(vector *v, uint32_t dword)
{
    put16(v, dword);
    put16(v, dword >> 16);
}

void put_imm(vector *v, int size_bits, uint32_t value)
{
    if (size_bits == 8) put8(v, value);
    else if (size_bits == 16) put16(v, value);
    else put32(v, value);
}

void put_operand_size(vector *v, int size_bits)
{
    if (size_bits == 16) put8(v, PREFIX_OPERAND_SIZE);
}

void put_modrm_reg(vector *v, int reg, int rm) { put8(v, MODRM_MOD_REGISTER | (uint32_t)(reg << 3) | (uint32_t)rm); }

void put_modrm_mem(vector *v, int reg)
{
    put8(v, MODRM_RM_DISP32 | (uint32_t)(reg << 3));
    put32(v, MEM_OPERAND_ADDRESS);
}

/*
 * A memory operand at MEM_OPERAND_ADDRESS through one of the 32-bit addressing forms (SDM vol. 2,
 * tables 2-2 and 2-3): [disp32], [base + disp32], or [base + index * scale + disp8/disp32], with
 * the base and index registers set so the sum (modulo 2^32) is the operand's address. Registers
 * in reserved_mask (bit n for register n) hold other inputs and are not used as base or index.
 */
void put_modrm_mem_any(vector *v, int reg, unsigned reserved_mask)
{
    reserved_mask |= 1u << ESP; /* ESP is the stub's fixed stack pointer: never a base or index here */
    uint32_t form = rng_below(3);
    int base, index;
    do base = (int)rng_below(GPR_COUNT); while (reserved_mask & (1u << base));
    do index = (int)rng_below(GPR_COUNT); while ((reserved_mask & (1u << index)) || index == base);
    if (form == 0) {
        put_modrm_mem(v, reg);
        return;
    }
    uint32_t base_value = rng_u32();
    v->in.r[base] = base_value;
    if (form == 1) {
        put8(v, MODRM_MOD_DISP32 | (uint32_t)(reg << 3) | (uint32_t)base);
        put32(v, MEM_OPERAND_ADDRESS - base_value);
        return;
    }
    uint32_t scale = rng_below(4);
    int disp8 = (int)rng_below(2);
    uint32_t displacement = disp8 ? (uint32_t)(int32_t)(int8_t)rng_u32() : rng_u32();
    /* base + (index << scale) + displacement = operand: the base absorbs the difference */
    uint32_t index_value = rng_u32();
    v->in.r[index] = index_value;
    base_value = MEM_OPERAND_ADDRESS - displacement - (index_value << scale);
    v->in.r[base] = base_value;
    put8(v, (disp8 ? MODRM_MOD_DISP8 : MODRM_MOD_DISP32) | (uint32_t)(reg << 3) | MODRM_RM_SIB);
    put8(v, (scale << 6) | (uint32_t)(index << 3) | (uint32_t)base);
    if (disp8) put8(v, displacement);
    else put32(v, displacement);
}

/* ESP stays the stub's stack pointer; 8-bit encoding 4 is AH, which is fine. */
int pick_reg(int size_bits)
{
    for (;;) {
        int reg = (int)rng_below(GPR_COUNT);
        if (size_bits == 8 || reg != ESP) return reg;
    }
}

/* 8-bit registers 0-3 are AL CL DL BL, 4-7 are AH CH DH BH (the second byte of EAX..EBX). */
void set_reg(vector *v, int size_bits, int reg, uint32_t value)
{
    if (size_bits == 8) {
        int shift = reg >= 4 ? 8 : 0;
        uint32_t *r = &v->in.r[reg & 3];
        *r = (*r & ~(0xFFu << shift)) | ((value & 0xFFu) << shift);
    } else if (size_bits == 16) {
        v->in.r[reg] = (v->in.r[reg] & 0xFFFF0000u) | (value & 0xFFFFu);
    } else {
        v->in.r[reg] = value;
    }
}

uint32_t get_reg(const vector *v, int size_bits, int reg)
{
    if (size_bits == 8) return (v->in.r[reg & 3] >> (reg >= 4 ? 8 : 0)) & 0xFFu;
    if (size_bits == 16) return v->in.r[reg] & 0xFFFFu;
    return v->in.r[reg];
}

/* LOCK is allowed on a read-modify-write of memory (SDM vol. 2, LOCK); Linux uses it everywhere. */
#define PREFIX_LOCK 0xF0u

void maybe_lock(vector *v)
{
    if (rng_below(3) == 0) put8(v, PREFIX_LOCK);
}
