/*
 * The memory-operand forms, a representative subset: ALU r/m (both directions and immediates),
 * TEST INC DEC NOT NEG, every shift and rotate, SHLD/SHRD, MUL/DIV, XADD, CMPXCHG, CMPXCHG8B,
 * BT* with a register bit offset that addresses bytes outside the operand (SDM vol. 2, BT: the
 * offset is signed and selects a bit anywhere relative to the operand's address), BSF/BSR,
 * SETcc, MOVZX/MOVSX and CMOVcc. The operand is [disp32] = MEM_OPERAND_ADDRESS, in the middle of
 * the compared window, addressed as [disp32], [base + disp32] or [base + index * scale + disp];
 * the read-modify-write forms carry a LOCK prefix a third of the time.
 */
#include "harness.h"

#define OPERAND_OFFSET (MEM_WINDOW_BYTES / 2u)
#define OP_TWO_BYTE 0x0Fu
#define OP_GROUP1_IMM 0x80u
#define OP_GROUP1_IMM8_SX 0x83u
#define OP_TEST_RM_R 0x84u
#define OP_GROUP2_IMM 0xC0u
#define OP_GROUP2_ONE 0xD0u
#define OP_GROUP2_CL 0xD2u
#define OP_GROUP3 0xF6u
#define OP_GROUP4 0xFEu
#define OP_XADD 0xC0u
#define OP_CMPXCHG 0xB0u
#define OP_GROUP9 0xC7u /* /1 CMPXCHG8B m64 */
#define OP_BT_IMM_GROUP 0xBAu
#define OP_BSF 0xBCu
#define OP_SETCC 0x90u
#define OP_CMOVCC 0x40u
#define OP_MOVZX_B 0xB6u
#define OP_MOVSX_B 0xBEu
#define ALU_CMP 7
#define GROUP3_NOT 2
#define GROUP3_NEG 3
#define BIT_OFFSET_RANGE 256u /* bit offsets -256..255 reach the whole window */

static const char *const alu_names[8] = { "ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP" };
static const char *const shift_names[8] = { "ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "", "SAR" };
static const char *const group3_names[8] = { "", "", "NOT", "NEG", "MUL", "IMUL", "DIV", "IDIV" };
static const char *const bt_names[4] = { "BT", "BTS", "BTR", "BTC" };
static const uint32_t bt_opcodes[4] = { 0xA3u, 0xABu, 0xB3u, 0xBBu };

static uint32_t w_bit(int size_bits) { return size_bits == 8 ? 0u : 1u; }

static void start(vector *v, const char *key, int size_bits)
{
    vector_start(v, key, size_bits);
    v->uses_memory = 1;
    put_operand_size(v, size_bits);
}

static uint32_t mem_get(const vector *v, int size_bits)
{
    uint32_t value = 0;
    for (int i = size_bits / 8 - 1; i >= 0; i--) value = (value << 8) | v->mem[OPERAND_OFFSET + (unsigned)i];
    return value;
}

static void mem_set(vector *v, int size_bits, uint32_t value)
{
    for (int i = 0; i < size_bits / 8; i++) v->mem[OPERAND_OFFSET + (unsigned)i] = (uint8_t)(value >> (8 * i));
}

static void alu_mem(int op, int size_bits)
{
    vector v;
    start(&v, group_name("%s%d mem", alu_names[op], size_bits), size_bits);
    uint32_t form = rng_below(size_bits == 8 ? 3 : 4);
    /* form 1 (reg, mem) writes a register, and CMP writes nothing: LOCK would be #UD there */
    if (form != 1 && op != ALU_CMP) maybe_lock(&v);
    if (form < 2) {
        put8(&v, ((uint32_t)op << 3) | (form << 1) | w_bit(size_bits));
        put_modrm_mem_any(&v, pick_reg(size_bits), 0);
    } else {
        put8(&v, form == 2 ? OP_GROUP1_IMM | w_bit(size_bits) : OP_GROUP1_IMM8_SX);
        put_modrm_mem_any(&v, op, 0);
        int imm_bits = form == 2 ? size_bits : 8;
        put_imm(&v, imm_bits, rng_operand(imm_bits));
    }
    run_and_emit(&v);
}

static void unary_mem(const char *name, int size_bits, uint32_t opcode, int reg_field, int imm)
{
    vector v;
    start(&v, group_name("%s%d mem", name, size_bits), size_bits);
    if (opcode == OP_GROUP4) maybe_lock(&v); /* INC, DEC */
    put8(&v, opcode | w_bit(size_bits));
    put_modrm_mem_any(&v, reg_field < 0 ? pick_reg(size_bits) : reg_field, 0);
    if (imm) put_imm(&v, size_bits, rng_operand(size_bits));
    run_and_emit(&v);
}

static void shift_mem(int op, int size_bits)
{
    vector v;
    start(&v, group_name("%s%d mem", shift_names[op], size_bits), size_bits);
    uint32_t form = rng_below(3);
    static const uint32_t opcodes[3] = { OP_GROUP2_ONE, OP_GROUP2_CL, OP_GROUP2_IMM };
    put8(&v, opcodes[form] | w_bit(size_bits));
    put_modrm_mem_any(&v, op, 1u << ECX);
    uint32_t count = form == 0 ? 1u : pick_count(size_bits);
    v.count = (int)count;
    if (form == 1) set_reg(&v, 8, ECX, count);
    else if (form == 2) put8(&v, count);
    run_and_emit(&v);
}

static void double_shift_mem(int right, int size_bits)
{
    vector v;
    start(&v, group_name("%s%d mem", right ? "SHRD" : "SHLD", size_bits), size_bits);
    int by_cl = (int)rng_below(2);
    put8(&v, OP_TWO_BYTE);
    put8(&v, (right ? 0xACu : 0xA4u) + (by_cl ? 1u : 0u));
    put_modrm_mem_any(&v, pick_reg(size_bits), 1u << ECX);
    uint32_t count = pick_double_shift_count(size_bits);
    v.count = (int)count;
    if (by_cl) set_reg(&v, 8, ECX, count);
    else put8(&v, count);
    run_and_emit(&v);
}

static void muldiv_mem(int op, int size_bits)
{
    vector v;
    start(&v, group_name("%s%d mem", group3_names[op], size_bits), size_bits);
    if (op >= 6) set_dividend(&v, size_bits, op == 7, mem_get(&v, size_bits));
    if (op == GROUP3_NOT || op == GROUP3_NEG) maybe_lock(&v);
    put8(&v, OP_GROUP3 | w_bit(size_bits));
    put_modrm_mem_any(&v, op, (1u << EAX) | (1u << EDX));
    run_and_emit(&v);
}

static void exchange_mem(const char *name, uint32_t opcode, int size_bits)
{
    vector v;
    start(&v, group_name("%s%d mem", name, size_bits), size_bits);
    if (opcode == OP_CMPXCHG && rng_below(2)) set_reg(&v, size_bits, EAX, mem_get(&v, size_bits));
    maybe_lock(&v);
    put8(&v, OP_TWO_BYTE);
    put8(&v, opcode | w_bit(size_bits));
    put_modrm_mem_any(&v, pick_reg(size_bits), 1u << EAX);
    run_and_emit(&v);
}

static void cmpxchg8b_mem(void)
{
    vector v;
    start(&v, "CMPXCHG8B mem", 32);
    if (rng_below(2)) {
        v.in.r[EAX] = mem_get(&v, 32);
        v.in.r[EDX] = (uint32_t)v.mem[OPERAND_OFFSET + 4] | ((uint32_t)v.mem[OPERAND_OFFSET + 5] << 8) |
                      ((uint32_t)v.mem[OPERAND_OFFSET + 6] << 16) | ((uint32_t)v.mem[OPERAND_OFFSET + 7] << 24);
    }
    maybe_lock(&v);
    put8(&v, OP_TWO_BYTE);
    put8(&v, OP_GROUP9);
    put_modrm_mem_any(&v, 1, (1u << EAX) | (1u << EDX));
    run_and_emit(&v);
}

static void bt_mem(int op, int size_bits)
{
    vector v;
    start(&v, group_name("%s%d mem", bt_names[op], size_bits), size_bits);
    if (op != 0) maybe_lock(&v); /* BTS BTR BTC; LOCK BT is #UD */
    put8(&v, OP_TWO_BYTE);
    if (rng_below(4) != 0) {
        int reg = pick_reg(size_bits);
        set_reg(&v, size_bits, reg, rng_below(2 * BIT_OFFSET_RANGE) - BIT_OFFSET_RANGE);
        put8(&v, bt_opcodes[op]);
        put_modrm_mem_any(&v, reg, 1u << reg);
    } else {
        put8(&v, OP_BT_IMM_GROUP);
        put_modrm_mem_any(&v, 4 + op, 0);
        put8(&v, rng_u32());
    }
    run_and_emit(&v);
}

static void scan_mem(int reverse, int size_bits)
{
    vector v;
    start(&v, group_name("%s%d mem", reverse ? "BSR" : "BSF", size_bits), size_bits);
    if (rng_below(4) == 0) mem_set(&v, size_bits, 0);
    put8(&v, OP_TWO_BYTE);
    put8(&v, OP_BSF + (uint32_t)reverse);
    put_modrm_mem_any(&v, pick_reg(size_bits), 0);
    run_and_emit(&v);
}

static void two_byte_mem(const char *key, int size_bits, uint32_t opcode)
{
    vector v;
    start(&v, key, size_bits);
    put8(&v, OP_TWO_BYTE);
    put8(&v, opcode);
    put_modrm_mem_any(&v, pick_reg(size_bits), 0);
    run_and_emit(&v);
}

void gen_memory(int per_group)
{
    static const int sizes[3] = { 8, 16, 32 };
    static const int shift_ops[7] = { 0, 1, 2, 3, 4, 5, 7 };
    for (int i = 0; i < per_group; i++) {
        for (int s = 0; s < 3; s++) {
            int size_bits = sizes[s];
            for (int op = 0; op < 8; op++) alu_mem(op, size_bits);
            unary_mem("TEST", size_bits, OP_TEST_RM_R, -1, 0);
            unary_mem("TEST", size_bits, OP_GROUP3, 0, 1);
            unary_mem("INC", size_bits, OP_GROUP4, 0, 0);
            unary_mem("DEC", size_bits, OP_GROUP4, 1, 0);
            for (int op = 2; op < 8; op++) muldiv_mem(op, size_bits);
            for (int k = 0; k < 7; k++) shift_mem(shift_ops[k], size_bits);
            exchange_mem("XADD", OP_XADD, size_bits);
            exchange_mem("CMPXCHG", OP_CMPXCHG, size_bits);
        }
        for (int size_bits = 16; size_bits <= 32; size_bits += 16) {
            double_shift_mem(0, size_bits);
            double_shift_mem(1, size_bits);
            for (int op = 0; op < 4; op++) bt_mem(op, size_bits);
            scan_mem(0, size_bits);
            scan_mem(1, size_bits);
            two_byte_mem(group_name("CMOVcc%d mem", size_bits), size_bits, OP_CMOVCC + rng_below(16));
        }
        cmpxchg8b_mem();
        two_byte_mem("SETcc mem", 8, OP_SETCC + rng_below(16));
        two_byte_mem("MOVZX32 mem", 32, OP_MOVZX_B + rng_below(2));
        two_byte_mem("MOVSX32 mem", 32, OP_MOVSX_B + rng_below(2));
    }
}
