/*
 * Vector output. One header line, then one line per vector, fields separated by '|':
 *
 *   H|<memory window address>|<window bytes>|<stack top>            (hex, hex, decimal, hex)
 *   V|<group>|<operand bits>|<count or ->|<instruction bytes>|<in>|<in memory>|<out>|<out memory>
 *
 * <in> and <out> are EAX ECX EDX EBX ESP EBP ESI EDI EFLAGS as 8 hex digits each, space separated;
 * EFLAGS holds only the status flags and bit 1 (IF and IOPL are the host process's, not the
 * instruction's). <out> starts with "#DE " when the instruction raised a divide error, "#UD " when
 * it raised an invalid opcode: the registers are then those of the signal context at the fault. The memory fields are the window's
 * bytes in hex, or "-" when the vector has no memory operand.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static long emitted;

#define MAX_GROUPS 1024
#define MAX_GROUP_NAME 32
static char groups[MAX_GROUPS][MAX_GROUP_NAME];
static int group_count;

const char *group_name(const char *format, ...)
{
    char name[MAX_GROUP_NAME];
    va_list args;
    va_start(args, format);
    vsnprintf(name, sizeof name, format, args);
    va_end(args);
    for (int i = 0; i < group_count; i++) {
        if (strcmp(groups[i], name) == 0) return groups[i];
    }
    if (group_count == MAX_GROUPS) {
        fprintf(stderr, "alu-harness: more than %d groups\n", MAX_GROUPS);
        exit(2);
    }
    memcpy(groups[group_count], name, sizeof name);
    return groups[group_count++];
}

void vector_start(vector *v, const char *key, int size_bits)
{
    memset(v, 0, sizeof *v);
    v->key = key;
    v->size_bits = size_bits;
    v->count = NO_COUNT;
    for (int i = 0; i < GPR_COUNT; i++) v->in.r[i] = rng_operand(32);
    v->in.r[ESP] = STACK_TOP_ADDRESS;
    v->in.eflags = rng_status_flags();
    for (unsigned i = 0; i < MEM_WINDOW_BYTES; i++) v->mem[i] = (uint8_t)rng_u32();
}

void vector_emit_header(void)
{
    printf("H|%08X|%u|%08X\n", MEM_WINDOW_ADDRESS, MEM_WINDOW_BYTES, STACK_TOP_ADDRESS);
}

static void emit_regs(const cpu_regs *regs)
{
    for (int i = 0; i < GPR_COUNT; i++) printf("%08X ", regs->r[i]);
    printf("%08X", regs->eflags & (FLAGS_STATUS | FLAGS_RESERVED_ONE));
}

static void emit_memory(int uses_memory, const uint8_t *mem)
{
    if (!uses_memory) {
        putchar('-');
        return;
    }
    for (unsigned i = 0; i < MEM_WINDOW_BYTES; i++) printf("%02X", mem[i]);
}

void run_and_emit(const vector *v)
{
    outcome o;
    native_run(v, &o);
    printf("V|%s|%d|", v->key, v->size_bits);
    if (v->count == NO_COUNT) putchar('-');
    else printf("%d", v->count);
    putchar('|');
    for (int i = 0; i < v->length; i++) printf("%02X", v->bytes[i]);
    putchar('|');
    emit_regs(&v->in);
    putchar('|');
    emit_memory(v->uses_memory, v->mem);
    putchar('|');
    if (o.fault_vector == VECTOR_DE) fputs("#DE ", stdout);
    else if (o.fault_vector == VECTOR_UD) fputs("#UD ", stdout);
    emit_regs(&o.regs);
    putchar('|');
    emit_memory(v->uses_memory, o.mem);
    putchar('\n');
    emitted++;
}

long vectors_emitted(void) { return emitted; }
