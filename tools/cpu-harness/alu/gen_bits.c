/*
 * BT BTS BTR BTC with a register bit offset (0F A3/AB/B3/BB) and with imm8 (0F BA /4-/7),
 * BSF BSR (0F BC/BD) including zero sources, and BSWAP (0F C8+r). A register operand takes the
 * bit offset modulo its width (SDM vol. 2, BT); the memory forms are in gen_memory.c.
 */
#include "harness.h"

#define OP_TWO_BYTE 0x0Fu
#define OP_BT_IMM_GROUP 0xBAu
#define OP_BSF 0xBCu
#define OP_BSR 0xBDu
#define OP_BSWAP 0xC8u
#define BT_GROUP_BASE 4

static const char *const bt_names[4] = { "BT", "BTS", "BTR", "BTC" };
static const uint32_t bt_opcodes[4] = { 0xA3u, 0xABu, 0xB3u, 0xBBu };

static void bt_vector(int op, int size_bits)
{
    vector v;
    vector_start(&v, group_name("%s%d", bt_names[op], size_bits), size_bits);
    put_operand_size(&v, size_bits);
    put8(&v, OP_TWO_BYTE);
    if (rng_below(2)) {
        put8(&v, bt_opcodes[op]);
        put_modrm_reg(&v, pick_reg(size_bits), pick_reg(size_bits));
    } else {
        put8(&v, OP_BT_IMM_GROUP);
        put_modrm_reg(&v, BT_GROUP_BASE + op, pick_reg(size_bits));
        put8(&v, rng_u32());
    }
    run_and_emit(&v);
}

/* A source in the operand's width: zero (ZF set, destination unchanged), one bit, or any value. */
static uint32_t pick_scan_source(int size_bits)
{
    uint32_t width_mask = size_bits == 16 ? 0xFFFFu : 0xFFFFFFFFu;
    uint32_t kind = rng_below(4);
    if (kind == 0) return 0;
    if (kind == 1) return 1u << rng_below((uint32_t)size_bits);
    return rng_operand(size_bits) & width_mask;
}

static void scan_vector(int reverse, int size_bits)
{
    vector v;
    vector_start(&v, group_name("%s%d", reverse ? "BSR" : "BSF", size_bits), size_bits);
    put_operand_size(&v, size_bits);
    put8(&v, OP_TWO_BYTE);
    put8(&v, reverse ? OP_BSR : OP_BSF);
    int source = pick_reg(size_bits);
    set_reg(&v, size_bits, source, pick_scan_source(size_bits));
    put_modrm_reg(&v, pick_reg(size_bits), source);
    run_and_emit(&v);
}

void gen_bits(int per_group)
{
    for (int op = 0; op < 4; op++) {
        for (int size_bits = 16; size_bits <= 32; size_bits += 16) {
            for (int i = 0; i < per_group; i++) bt_vector(op, size_bits);
        }
    }
    for (int reverse = 0; reverse < 2; reverse++) {
        for (int size_bits = 16; size_bits <= 32; size_bits += 16) {
            for (int i = 0; i < per_group; i++) scan_vector(reverse, size_bits);
        }
    }
    /* BSWAP of a 16-bit register is undefined (SDM vol. 2, BSWAP): only the 32-bit form. */
    for (int i = 0; i < per_group; i++) {
        vector v;
        vector_start(&v, "BSWAP32", 32);
        put8(&v, OP_TWO_BYTE);
        put8(&v, OP_BSWAP + (uint32_t)pick_reg(32));
        run_and_emit(&v);
    }
}
