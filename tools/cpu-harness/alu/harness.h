/*
 * The host-CPU differential harness for the integer instruction set (issue 10, item 5).
 *
 * Built with `gcc -m32` so the process runs in a 32-bit code segment: every instruction is run
 * natively with exactly the bytes the emulator later runs in 32-bit flat protected mode, and
 * the instructions that are invalid in 64-bit mode (DAA DAS AAA AAS AAM AAD) are valid here.
 * Output: one line per vector on stdout (the format is in vector.c).
 */
#ifndef ALU_HARNESS_H
#define ALU_HARNESS_H

#include <stdint.h>

/* Fixed linear addresses, the same in this process and in the emulator's flat address space. */
#define DATA_PAGE_ADDRESS   0x00300000u /* the data page the memory-operand vectors address */
#define MEM_OPERAND_ADDRESS 0x00300800u /* the memory operand itself ([disp32] in the ModRM) */
#define MEM_WINDOW_BYTES    64u         /* bytes around the operand that a vector sets and compares */
#define MEM_WINDOW_ADDRESS  (MEM_OPERAND_ADDRESS - MEM_WINDOW_BYTES / 2u)
#define STACK_TOP_ADDRESS   0x00302000u /* ESP while the instruction runs (a private stack page) */
#define STATE_ADDRESS       0x00303000u /* the register block the native stub loads and stores */
#define DATA_REGION_BYTES   0x4000u     /* data page, stack page, state page, one spare */
#define CODE_PAGE_ADDRESS   0x00400000u /* where the native stub is assembled */

/* EFLAGS status bits (Intel SDM vol. 1, 3.4.3.1); bit 1 is reserved and always 1. */
#define FLAG_CF 0x001u
#define FLAG_PF 0x004u
#define FLAG_AF 0x010u
#define FLAG_ZF 0x040u
#define FLAG_SF 0x080u
#define FLAG_OF 0x800u
#define FLAGS_STATUS (FLAG_CF | FLAG_PF | FLAG_AF | FLAG_ZF | FLAG_SF | FLAG_OF)
#define FLAGS_RESERVED_ONE 0x002u

/* General registers in encoding order (SDM vol. 2, table 2-2). */
enum { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, GPR_COUNT };

#define MAX_INSTRUCTION_BYTES 15
#define NO_COUNT (-1)

typedef struct {
    uint32_t r[GPR_COUNT];
    uint32_t eflags;
} cpu_regs;

/* One vector before it runs: the instruction, its group name, and its inputs. */
typedef struct {
    const char *key;      /* the instruction group the test reports, e.g. "ADD32" or "SHL8 mem" */
    int size_bits;        /* operand size: 8, 16 or 32 */
    int count;            /* shift/rotate count as the instruction sees it (before masking), or NO_COUNT */
    uint8_t bytes[MAX_INSTRUCTION_BYTES];
    int length;
    int uses_memory;      /* the memory window is set from mem and compared */
    cpu_regs in;
    uint8_t mem[MEM_WINDOW_BYTES];
} vector;

/* The exceptions a vector may raise (SDM vol. 3, table 6-1), as Linux reports them: SIGFPE, SIGILL. */
#define NO_FAULT (-1)
#define VECTOR_DE 0
#define VECTOR_UD 6

/* What the host did: either a result or a fault (#DE, #UD) with the registers at the fault. */
typedef struct {
    int fault_vector;         /* NO_FAULT, VECTOR_DE or VECTOR_UD */
    cpu_regs regs;
    uint8_t mem[MEM_WINDOW_BYTES];
} outcome;

/* prng.c: a deterministic generator (splitmix64), seeded from the command line. */
void rng_seed(uint64_t seed);
uint32_t rng_u32(void);
uint32_t rng_below(uint32_t bound);
uint32_t rng_operand(int size_bits); /* a random value biased towards edge cases */
uint32_t rng_status_flags(void);     /* random status flags with bit 1 set */

/* native.c: runs a vector on this CPU. */
void native_init(void);
void native_run(const vector *v, outcome *o);

/* vector.c: output, and the common start of every vector. */
void vector_start(vector *v, const char *key, int size_bits);
void vector_emit_header(void);
void run_and_emit(const vector *v);
long vectors_emitted(void);
const char *group_name(const char *format, ...); /* an interned group name, e.g. "ADD16" */

/* encode.c: instruction bytes. */
void put8(vector *v, uint32_t byte);
void put16(vector *v, uint32_t word);
void put32(vector *v, uint32_t dword);
void put_imm(vector *v, int size_bits, uint32_t value);
void put_operand_size(vector *v, int size_bits); /* 66h for 16-bit operands */
void put_modrm_reg(vector *v, int reg, int rm);  /* mod = 11b */
void put_modrm_mem(vector *v, int reg);          /* [disp32] = MEM_OPERAND_ADDRESS */
void put_modrm_mem_any(vector *v, int reg, unsigned reserved_mask); /* any 32-bit addressing form of it */
int pick_reg(int size_bits);                     /* any register but ESP (AH..BH for 8-bit) */
void set_reg(vector *v, int size_bits, int reg, uint32_t value); /* writes the 8/16/32-bit register */
uint32_t get_reg(const vector *v, int size_bits, int reg);
void maybe_lock(vector *v); /* a LOCK prefix a third of the time (lockable read-modify-write forms) */

/* gen_shift.c: counts for shifts (also used by the memory forms). */
uint32_t pick_count(int size_bits);
uint32_t pick_double_shift_count(int size_bits);

/* gen_muldiv.c: a dividend in EDX:EAX (DX:AX, AX) for a divisor, often one whose quotient fits. */
void set_dividend(vector *v, int size_bits, int is_signed, uint32_t divisor);

/* The generators, one file per kind of instruction; each takes a vector count per group. */
void gen_alu(int per_group);
void gen_shift(int per_group);
void gen_muldiv(int per_group);
void gen_bcd(int per_group);
void gen_bits(int per_group);
void gen_move(int per_group);
void gen_lea(int repeats_per_form);
void gen_memory(int per_group);
void gen_invalid(int per_group);

#endif
