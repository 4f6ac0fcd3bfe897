/*
 * Runs one instruction natively. A stub is assembled on a fixed executable page:
 *
 *   pushad; save ESP; ESP = private stack; load EFLAGS and the seven other registers from the
 *   state block; <the instruction>; store the eight registers; pushfd and store EFLAGS;
 *   restore ESP; popad; ret
 *
 * so the instruction sees exactly the vector's registers and flags, and nothing but the stub's
 * loads and stores surrounds it. A divide error (#DE) arrives as SIGFPE and an invalid opcode (#UD)
 * as SIGILL (Linux's signals for vectors 0 and 6): the handler, on its own stack, takes the
 * registers from the signal context and jumps back.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include "harness.h"

/* The state block at STATE_ADDRESS: inputs, outputs, the caller's ESP. */
#define STATE_IN        (STATE_ADDRESS + 0u)
#define STATE_IN_FLAGS  (STATE_IN + 4u * GPR_COUNT)
#define STATE_OUT       (STATE_IN_FLAGS + 4u)
#define STATE_OUT_FLAGS (STATE_OUT + 4u * GPR_COUNT)
#define STATE_SAVED_ESP (STATE_OUT_FLAGS + 4u)

#define PAGE_BYTES 4096u
#define SIGNAL_STACK_BYTES 65536u

typedef struct {
    uint8_t bytes[512];
    int length;
} stub;

static uint8_t *code_page;
static sigjmp_buf fault_return;
static volatile int fault_vector;
static cpu_regs fault_regs;
static uint32_t fault_eip;
static uint32_t instruction_address;

static void emit(stub *s, const uint8_t *bytes, int count)
{
    memcpy(s->bytes + s->length, bytes, (size_t)count);
    s->length += count;
}

static void emit_op_abs(stub *s, uint8_t opcode, uint8_t modrm, uint32_t address)
{
    uint8_t b[6] = { opcode, modrm, (uint8_t)address, (uint8_t)(address >> 8), (uint8_t)(address >> 16), (uint8_t)(address >> 24) };
    emit(s, b, 6);
}

/* ModRM bytes for "reg, [disp32]": mod 00, r/m 101, reg in bits 3-5. */
static uint8_t modrm_abs(int reg) { return (uint8_t)(0x05 | (reg << 3)); }

static const uint8_t OP_PUSHAD = 0x60, OP_POPAD = 0x61, OP_PUSHFD = 0x9C, OP_POPFD = 0x9D, OP_RET = 0xC3;
static const uint8_t OP_MOV_RM_R = 0x89, OP_MOV_R_RM = 0x8B, OP_MOV_ESP_IMM = 0xBC, OP_GROUP5 = 0xFF, OP_POP_RM = 0x8F;
static const int GROUP5_PUSH = 6;

static void build_stub(stub *s, const vector *v)
{
    s->length = 0;
    emit(s, &OP_PUSHAD, 1);
    emit_op_abs(s, OP_MOV_RM_R, modrm_abs(ESP), STATE_SAVED_ESP);
    uint8_t set_esp[5] = { OP_MOV_ESP_IMM, (uint8_t)STACK_TOP_ADDRESS, (uint8_t)(STACK_TOP_ADDRESS >> 8),
                           (uint8_t)(STACK_TOP_ADDRESS >> 16), (uint8_t)(STACK_TOP_ADDRESS >> 24) };
    emit(s, set_esp, 5);
    emit_op_abs(s, OP_GROUP5, modrm_abs(GROUP5_PUSH), STATE_IN_FLAGS);
    emit(s, &OP_POPFD, 1);
    for (int r = 0; r < GPR_COUNT; r++) {
        if (r != ESP) emit_op_abs(s, OP_MOV_R_RM, modrm_abs(r), STATE_IN + 4u * (uint32_t)r);
    }
    instruction_address = CODE_PAGE_ADDRESS + (uint32_t)s->length;
    emit(s, v->bytes, v->length);
    for (int r = 0; r < GPR_COUNT; r++) emit_op_abs(s, OP_MOV_RM_R, modrm_abs(r), STATE_OUT + 4u * (uint32_t)r);
    emit(s, &OP_PUSHFD, 1);
    emit_op_abs(s, OP_POP_RM, modrm_abs(0), STATE_OUT_FLAGS);
    emit_op_abs(s, OP_MOV_R_RM, modrm_abs(ESP), STATE_SAVED_ESP);
    emit(s, &OP_POPAD, 1);
    emit(s, &OP_RET, 1);
}

static void on_fault(int signal, siginfo_t *info, void *context)
{
    (void)info;
    const mcontext_t *m = &((ucontext_t *)context)->uc_mcontext;
    static const int order[GPR_COUNT] = { REG_EAX, REG_ECX, REG_EDX, REG_EBX, REG_ESP, REG_EBP, REG_ESI, REG_EDI };
    for (int i = 0; i < GPR_COUNT; i++) fault_regs.r[i] = (uint32_t)m->gregs[order[i]];
    fault_regs.eflags = (uint32_t)m->gregs[REG_EFL];
    fault_eip = (uint32_t)m->gregs[REG_EIP];
    fault_vector = signal == SIGFPE ? VECTOR_DE : VECTOR_UD;
    siglongjmp(fault_return, 1);
}

static void *map_fixed(uint32_t address, uint32_t bytes, int protection)
{
    void *p = mmap((void *)(uintptr_t)address, bytes, protection, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)address) {
        fprintf(stderr, "alu-harness: cannot map %u bytes at 0x%08X\n", bytes, address);
        exit(2);
    }
    return p;
}

void native_init(void)
{
    map_fixed(DATA_PAGE_ADDRESS, DATA_REGION_BYTES, PROT_READ | PROT_WRITE);
    code_page = map_fixed(CODE_PAGE_ADDRESS, PAGE_BYTES, PROT_READ | PROT_WRITE | PROT_EXEC);

    static stack_t alternate;
    alternate.ss_sp = malloc(SIGNAL_STACK_BYTES);
    alternate.ss_size = SIGNAL_STACK_BYTES;
    if (alternate.ss_sp == NULL || sigaltstack(&alternate, NULL) != 0) {
        fprintf(stderr, "alu-harness: no signal stack\n");
        exit(2);
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGFPE, &action, NULL) != 0 || sigaction(SIGILL, &action, NULL) != 0) {
        fprintf(stderr, "alu-harness: no SIGFPE/SIGILL handler\n");
        exit(2);
    }
}

void native_run(const vector *v, outcome *o)
{
    static stub s;
    build_stub(&s, v);
    memcpy(code_page, s.bytes, (size_t)s.length);
    uint32_t *in = (uint32_t *)(uintptr_t)STATE_IN;
    memcpy(in, v->in.r, sizeof v->in.r);
    *(uint32_t *)(uintptr_t)STATE_IN_FLAGS = v->in.eflags;
    memcpy((void *)(uintptr_t)MEM_WINDOW_ADDRESS, v->mem, MEM_WINDOW_BYTES);

    fault_vector = NO_FAULT;
    if (sigsetjmp(fault_return, 1) == 0) {
        ((void (*)(void))(uintptr_t)CODE_PAGE_ADDRESS)();
    }

    memset(o, 0, sizeof *o);
    o->fault_vector = fault_vector;
    if (fault_vector != NO_FAULT) {
        /* A fault is restartable (SDM vol. 3, 6.5): the registers must be the inputs, EIP the instruction. */
        if (fault_eip != instruction_address) {
            fprintf(stderr, "alu-harness: %s: fault at 0x%08X, not at the instruction (0x%08X)\n", v->key, fault_eip, instruction_address);
            exit(2);
        }
        o->regs = fault_regs;
    } else {
        memcpy(o->regs.r, (uint32_t *)(uintptr_t)STATE_OUT, sizeof o->regs.r);
        o->regs.eflags = *(uint32_t *)(uintptr_t)STATE_OUT_FLAGS;
    }
    memcpy(o->mem, (void *)(uintptr_t)MEM_WINDOW_ADDRESS, MEM_WINDOW_BYTES);
}
