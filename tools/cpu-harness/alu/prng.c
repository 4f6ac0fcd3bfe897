/* A deterministic random source: splitmix64 (Steele, Lea, Flood 2014), so a seed fixes every vector. */
#include "harness.h"

static uint64_t state;

void rng_seed(uint64_t seed) { state = seed; }

uint32_t rng_u32(void)
{
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

uint32_t rng_below(uint32_t bound) { return (uint32_t)(((uint64_t)rng_u32() * bound) >> 32); }

/* Values where carries, overflows and sign changes happen, for every operand size. */
static const uint32_t edges[] = {
    0x00000000u, 0x00000001u, 0x00000002u, 0x0000000Fu, 0x00000010u, 0x0000007Fu, 0x00000080u,
    0x00000081u, 0x000000FFu, 0x00000100u, 0x00007FFFu, 0x00008000u, 0x00008001u, 0x0000FFFFu,
    0x00010000u, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 0xFFFFFFFEu, 0xFFFFFFFFu, 0x99999999u,
};

uint32_t rng_operand(int size_bits)
{
    uint32_t pick = rng_below(8);
    uint32_t value;
    if (pick < 2) {
        value = edges[rng_below(sizeof edges / sizeof edges[0])];
        if (size_bits == 8 && rng_below(2)) value = (value & 0xFFu) | (rng_u32() & 0xFFFFFF00u);
    } else if (pick == 2) {
        value = rng_below(0x20); /* small numbers: counts, BCD digits, bit indexes */
    } else {
        value = rng_u32();
    }
    return value;
}

uint32_t rng_status_flags(void) { return (rng_u32() & FLAGS_STATUS) | FLAGS_RESERVED_ONE; }
