/*
 * Invalid forms of the integer instructions, which raise #UD before touching anything (SDM vol. 2,
 * LOCK: "#UD if the LOCK prefix is used with an instruction not in the list of lockable
 * read-modify-write instructions, or when the destination operand is not memory"; CMPXCHG8B and
 * LEA: "#UD if the source [destination] operand is a register"; UD2).
 */
#include "harness.h"

#define PREFIX_LOCK 0xF0u
#define OP_TWO_BYTE 0x0Fu
#define OP_GROUP9 0xC7u /* /1 CMPXCHG8B */
#define OP_LEA 0x8Du
#define OP_UD2 0x0Bu
#define OP_CMP_RM_R 0x39u
#define OP_TEST_RM_R 0x85u
#define OP_MOV_R_RM 0x8Bu
#define OP_BT_RM_R 0xA3u
#define OP_XADD 0xC1u
#define OP_GROUP4 0xFEu

static void start(vector *v, const char *key, int uses_memory)
{
    vector_start(v, key, 32);
    v->uses_memory = uses_memory;
    put8(v, PREFIX_LOCK);
}

/* LOCK on a lockable instruction whose destination is a register. */
static void lock_register(void)
{
    vector v;
    start(&v, "#UD LOCK reg", 0);
    uint32_t kind = rng_below(3);
    if (kind == 0) put8(&v, rng_below(6) << 3 | 1u); /* ADD OR ADC SBB AND SUB r/m32, r32 */
    else if (kind == 1) put8(&v, OP_GROUP4 | 1u);     /* INC/DEC r/m32 */
    else { put8(&v, OP_TWO_BYTE); put8(&v, OP_XADD); }
    put_modrm_reg(&v, kind == 1 ? (int)rng_below(2) : pick_reg(32), pick_reg(32));
    run_and_emit(&v);
}

/* LOCK on instructions that only read memory: CMP, TEST, BT, MOV. */
static void lock_read_only(void)
{
    vector v;
    start(&v, "#UD LOCK read-only mem", 1);
    uint32_t kind = rng_below(4);
    if (kind == 3) put8(&v, OP_TWO_BYTE);
    static const uint32_t opcodes[4] = { OP_CMP_RM_R, OP_TEST_RM_R, OP_MOV_R_RM, OP_BT_RM_R };
    put8(&v, opcodes[kind]);
    put_modrm_mem(&v, pick_reg(32));
    run_and_emit(&v);
}

static void register_operand(const char *key, int two_byte, uint32_t opcode, int reg_field)
{
    vector v;
    vector_start(&v, key, 32);
    if (two_byte) put8(&v, OP_TWO_BYTE);
    put8(&v, opcode);
    put_modrm_reg(&v, reg_field < 0 ? pick_reg(32) : reg_field, pick_reg(32));
    run_and_emit(&v);
}

void gen_invalid(int per_group)
{
    for (int i = 0; i < per_group; i++) {
        lock_register();
        lock_read_only();
        register_operand("#UD CMPXCHG8B reg", 1, OP_GROUP9, 1);
        register_operand("#UD LEA reg", 0, OP_LEA, -1);
        vector v;
        vector_start(&v, "#UD UD2", 32);
        put8(&v, OP_TWO_BYTE);
        put8(&v, OP_UD2);
        run_and_emit(&v);
    }
}
