/*
 * alu-harness [SEED [SCALE]]: prints the vectors for seed SEED (default 1) with SCALE times the
 * default number per group (default 1: about 230,000 vectors in all).
 */
#include <stdio.h>
#include <stdlib.h>
#include "harness.h"

#define DEFAULT_SEED 1u
#define PER_GROUP 1000   /* vectors per instruction group and operand size */
#define PER_SHIFT 3000   /* shifts have a count as well as an operand */
#define PER_MEMORY 400   /* per memory-operand group */
#define PER_MOVE 300     /* flag-free moves: few inputs matter */
#define LEA_REPEATS 3    /* passes over every addressing form */
#define PER_INVALID 100  /* #UD forms: the outcome does not depend on the operands */
#define OUTPUT_BUFFER_BYTES (1u << 20)

int main(int argc, char **argv)
{
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : DEFAULT_SEED;
    int scale = argc > 2 ? atoi(argv[2]) : 1;
    if (scale < 1) scale = 1;
    static char buffer[OUTPUT_BUFFER_BYTES];
    setvbuf(stdout, buffer, _IOFBF, sizeof buffer);

    rng_seed(seed);
    native_init();
    vector_emit_header();
    gen_alu(PER_GROUP * scale);
    gen_shift(PER_SHIFT * scale);
    gen_muldiv(PER_GROUP * scale);
    gen_bcd(PER_GROUP * scale);
    gen_bits(PER_GROUP * scale);
    gen_move(PER_MOVE * scale);
    gen_lea(LEA_REPEATS * scale);
    gen_memory(PER_MEMORY * scale);
    gen_invalid(PER_INVALID * scale);
    fflush(stdout);
    fprintf(stderr, "alu-harness: %ld vectors\n", vectors_emitted());
    return 0;
}
