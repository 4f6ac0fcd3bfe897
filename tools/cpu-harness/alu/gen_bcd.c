/*
 * The decimal adjusts DAA DAS AAA AAS and AAM/AAD with any base (D4 ib, D5 ib; SDM vol. 2 documents
 * the imm8 form). They are invalid in 64-bit mode, which is why the harness is a 32-bit program.
 * AAM 0 raises #DE.
 */
#include "harness.h"

#define OP_DAA 0x27u
#define OP_DAS 0x2Fu
#define OP_AAA 0x37u
#define OP_AAS 0x3Fu
#define OP_AAM 0xD4u
#define OP_AAD 0xD5u
#define DECIMAL_BASE 10u

static uint32_t pick_base(void)
{
    uint32_t kind = rng_below(8);
    if (kind < 4) return DECIMAL_BASE;
    if (kind == 4) return rng_below(3); /* 0 (#DE for AAM), 1, 2 */
    return rng_u32() & 0xFFu;
}

void gen_bcd(int per_group)
{
    static const char *const names[6] = { "DAA", "DAS", "AAA", "AAS", "AAM", "AAD" };
    static const uint32_t opcodes[6] = { OP_DAA, OP_DAS, OP_AAA, OP_AAS, OP_AAM, OP_AAD };
    for (int k = 0; k < 6; k++) {
        for (int i = 0; i < per_group; i++) {
            vector v;
            vector_start(&v, names[k], 8);
            /* Half the inputs are valid packed or unpacked BCD, where the adjusts are meant to work. */
            if (rng_below(2)) set_reg(&v, 16, EAX, (rng_below(10) << 12) | (rng_below(10) << 8) | (rng_below(10) << 4) | rng_below(10));
            put8(&v, opcodes[k]);
            if (k >= 4) put8(&v, pick_base());
            run_and_emit(&v);
        }
    }
}
