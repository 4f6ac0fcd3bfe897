/* Instruction encoding (SDM vol. 2, chapter 2): prefixes, ModRM, immediates, little-endian. */
#include "harness.h"

#define PREFIX_OPERAND_SIZE 0x66u
#define MODRM_MOD_REGISTER  0xC0u
#define MODRM_RM_DISP32     0x05u /* mod 00, r/m 101: [disp32] in 32-bit addressing (table 2-2) */

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
