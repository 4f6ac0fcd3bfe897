/*
 * LEA with every addressing form (SDM vol. 2, tables 2-1, 2-2 and 2-3): 16-bit addressing (67h)
 * and 32-bit addressing with every mod, r/m, and for r/m 100b every SIB scale, index and base;
 * 16- and 32-bit destinations. No memory is read, so any register values will do; ESP is the
 * stub's fixed stack pointer.
 */
#include "harness.h"

#define OP_LEA 0x8Du
#define PREFIX_ADDRESS_SIZE 0x67u
#define RM_SIB 4
#define RM_DISP16 6  /* mod 00 in 16-bit addressing: [disp16] */
#define RM_DISP32 5  /* mod 00 in 32-bit addressing: [disp32]; also SIB base 101b: disp32, no base */
#define MOD_COUNT 3  /* 00, 01 (disp8), 10 (disp16/32); 11 is a register, invalid for LEA */

static void put_displacement(vector *v, int mod, int rm, int address_bits)
{
    int disp_bits = mod == 1 ? 8 : (mod == 2 || (mod == 0 && rm == (address_bits == 16 ? RM_DISP16 : RM_DISP32))) ? address_bits : 0;
    if (disp_bits) put_imm(v, disp_bits, rng_operand(disp_bits));
}

static void lea_vector(int operand_bits, int address_bits, int mod, int rm, int sib)
{
    vector v;
    vector_start(&v, group_name("LEA%d a%d", operand_bits, address_bits), operand_bits);
    put_operand_size(&v, operand_bits);
    if (address_bits == 16) put8(&v, PREFIX_ADDRESS_SIZE);
    put8(&v, OP_LEA);
    put8(&v, (uint32_t)(mod << 6) | (uint32_t)(pick_reg(operand_bits) << 3) | (uint32_t)rm);
    if (address_bits == 32 && rm == RM_SIB) {
        put8(&v, (uint32_t)sib);
        /* A SIB base of 101b with mod 00 means disp32 and no base (table 2-3 note 1). */
        if (mod == 0 && (sib & 7) == RM_DISP32) put32(&v, rng_operand(32));
        else if (mod == 1) put8(&v, rng_operand(8));
        else if (mod == 2) put32(&v, rng_operand(32));
    } else {
        put_displacement(&v, mod, rm, address_bits);
    }
    run_and_emit(&v);
}

void gen_lea(int repeats_per_form)
{
    for (int r = 0; r < repeats_per_form; r++) {
        for (int operand_bits = 16; operand_bits <= 32; operand_bits += 16) {
            for (int mod = 0; mod < MOD_COUNT; mod++) {
                for (int rm = 0; rm < 8; rm++) {
                    lea_vector(operand_bits, 16, mod, rm, 0);
                    if (rm != RM_SIB) lea_vector(operand_bits, 32, mod, rm, 0);
                    else {
                        for (int sib = 0; sib < 256; sib++) lea_vector(operand_bits, 32, mod, rm, sib);
                    }
                }
            }
        }
    }
}
