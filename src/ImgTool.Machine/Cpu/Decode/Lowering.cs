using Iced.Intel;
using ImgTool.Machine.Cpu.Handlers;

namespace ImgTool.Machine.Cpu.Decode;

/// <summary>
/// Lowers an Iced instruction to a <see cref="MicroOp"/>: picks the handler for its operation and operand form
/// (register, memory, immediate) and resolves every operand, once, at decode time. Returns true when the
/// instruction ends its block: control transfers, and instructions that change what the following code means
/// (mode, paging, interrupt state, I/O that may raise an interrupt).
/// </summary>
internal static unsafe class Lowering
{
    public static bool Lower(in Instruction i, ref MicroOp op, bool code32, List<X87.X87Instruction> x87Table)
    {
        op = default;
        op.Length = (byte)i.Length;
        op.Base = op.Index = X86Cpu.NoRegister;
        op.Address32 = code32;
        op.Segment = X86Cpu.DS;
        if (i.Code == Code.INVALID)
        {
            op.Handler = &SystemOps.InvalidOpcode;
            return true;
        }

        if (HasMemory(in i))
        {
            LowerMemory(in i, ref op);
        }

        if (i.HasLockPrefix && !Lockable(in i))
        {
            // LOCK on an instruction that cannot be locked, or with a register destination, is #UD (SDM vol. 2, LOCK).
            op.Handler = &SystemOps.InvalidOpcode;
            return true;
        }

        switch (i.Mnemonic)
        {
            case Mnemonic.Add: return Alu(in i, ref op, 0);
            case Mnemonic.Or: return Alu(in i, ref op, 1);
            case Mnemonic.Adc: return Alu(in i, ref op, 2);
            case Mnemonic.Sbb: return Alu(in i, ref op, 3);
            case Mnemonic.And: return Alu(in i, ref op, 4);
            case Mnemonic.Sub: return Alu(in i, ref op, 5);
            case Mnemonic.Xor: return Alu(in i, ref op, 6);
            case Mnemonic.Cmp: return Alu(in i, ref op, 7);
            case Mnemonic.Test:
                return Form(in i, ref op, &AluOps.TestRR, null, &AluOps.TestMR, &AluOps.TestRI, &AluOps.TestMI);
            case Mnemonic.Inc:
                op.Kind = 0;
                return Unary(in i, ref op, &AluOps.IncDecR, &AluOps.IncDecM);
            case Mnemonic.Dec:
                op.Kind = 1;
                return Unary(in i, ref op, &AluOps.IncDecR, &AluOps.IncDecM);
            case Mnemonic.Neg: return Unary(in i, ref op, &AluOps.NegR, &AluOps.NegM);
            case Mnemonic.Not: return Unary(in i, ref op, &AluOps.NotR, &AluOps.NotM);

            case Mnemonic.Mov: return Mov(in i, ref op);
            case Mnemonic.Movzx:
            case Mnemonic.Movsx:
                op.Destination = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                op.Kind = (byte)(i.Mnemonic == Mnemonic.Movsx ? 1 : 0);
                if (i.Op1Kind == OpKind.Register)
                {
                    op.Source = Gpr(i.Op1Register);
                    op.Size2 = (byte)RegisterSize(i.Op1Register);
                    op.Handler = &MoveOps.ExtendR;
                }
                else
                {
                    op.Size2 = (byte)i.MemorySize.GetSize();
                    op.Handler = &MoveOps.ExtendM;
                }

                return false;
            case Mnemonic.Lea:
                op.Destination = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                op.Handler = &MoveOps.Lea;
                return false;
            case Mnemonic.Xchg:
                if (i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register)
                {
                    op.Destination = Gpr(i.Op0Register);
                    op.Source = Gpr(i.Op1Register);
                    op.Size = (byte)RegisterSize(i.Op0Register);
                    op.Handler = &MoveOps.XchgRR;
                }
                else
                {
                    var register = i.Op0Kind == OpKind.Register ? i.Op0Register : i.Op1Register;
                    op.Source = Gpr(register);
                    op.Size = (byte)RegisterSize(register);
                    op.Handler = &MoveOps.XchgMR;
                }

                return false;
            case Mnemonic.Xadd:
                return Form(in i, ref op, &SystemOps.XaddRR, null, &SystemOps.XaddMR, null, null);
            case Mnemonic.Cmpxchg:
                return Form(in i, ref op, &SystemOps.CmpxchgRR, null, &SystemOps.CmpxchgMR, null, null);
            case Mnemonic.Cmpxchg8b:
                op.Handler = &SystemOps.Cmpxchg8b;
                return false;
            case Mnemonic.Bswap:
                op.Destination = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                op.Handler = &MoveOps.Bswap;
                return false;

            case Mnemonic.Cmova: case Mnemonic.Cmovae: case Mnemonic.Cmovb: case Mnemonic.Cmovbe:
            case Mnemonic.Cmove: case Mnemonic.Cmovg: case Mnemonic.Cmovge: case Mnemonic.Cmovl:
            case Mnemonic.Cmovle: case Mnemonic.Cmovne: case Mnemonic.Cmovno: case Mnemonic.Cmovnp:
            case Mnemonic.Cmovns: case Mnemonic.Cmovo: case Mnemonic.Cmovp: case Mnemonic.Cmovs:
                op.Kind = ConditionNumber(i.ConditionCode);
                return Form(in i, ref op, &MoveOps.CmovRR, &MoveOps.CmovRM, null, null, null);

            case Mnemonic.Seta: case Mnemonic.Setae: case Mnemonic.Setb: case Mnemonic.Setbe:
            case Mnemonic.Sete: case Mnemonic.Setg: case Mnemonic.Setge: case Mnemonic.Setl:
            case Mnemonic.Setle: case Mnemonic.Setne: case Mnemonic.Setno: case Mnemonic.Setnp:
            case Mnemonic.Setns: case Mnemonic.Seto: case Mnemonic.Setp: case Mnemonic.Sets:
                op.Kind = ConditionNumber(i.ConditionCode);
                op.Size = 1;
                return Unary(in i, ref op, &MoveOps.SetccR, &MoveOps.SetccM);

            case Mnemonic.Ja: case Mnemonic.Jae: case Mnemonic.Jb: case Mnemonic.Jbe:
            case Mnemonic.Je: case Mnemonic.Jg: case Mnemonic.Jge: case Mnemonic.Jl:
            case Mnemonic.Jle: case Mnemonic.Jne: case Mnemonic.Jno: case Mnemonic.Jnp:
            case Mnemonic.Jns: case Mnemonic.Jo: case Mnemonic.Jp: case Mnemonic.Js:
                op.Kind = ConditionNumber(i.ConditionCode);
                Relative(in i, ref op);
                op.Handler = &ControlOps.Jcc;
                return true;
            case Mnemonic.Jcxz:
            case Mnemonic.Jecxz:
                op.Size2 = (byte)(i.Mnemonic == Mnemonic.Jcxz ? 2 : 4);
                Relative(in i, ref op);
                op.Handler = &ControlOps.Jcxz;
                return true;
            case Mnemonic.Loop:
            case Mnemonic.Loope:
            case Mnemonic.Loopne:
                op.Kind = (byte)(i.Mnemonic == Mnemonic.Loop ? 0 : i.Mnemonic == Mnemonic.Loope ? 1 : 2);
                op.Size2 = (byte)(i.Code is Code.Loop_rel8_16_CX or Code.Loop_rel8_32_CX or Code.Loope_rel8_16_CX or Code.Loope_rel8_32_CX
                    or Code.Loopne_rel8_16_CX or Code.Loopne_rel8_32_CX ? 2 : 4);
                Relative(in i, ref op);
                op.Handler = &ControlOps.Loop;
                return true;
            case Mnemonic.Jmp: return Jump(in i, ref op);
            case Mnemonic.Call: return Call(in i, ref op);
            case Mnemonic.Ret:
                op.Size = (byte)(i.Code is Code.Retnd or Code.Retnd_imm16 ? 4 : 2);
                op.Immediate2 = i.OpCount > 0 ? i.Immediate16 : (ushort)0;
                op.Handler = &ControlOps.RetNear;
                return true;
            case Mnemonic.Retf:
                op.Size = (byte)(i.Code is Code.Retfd or Code.Retfd_imm16 ? 4 : 2);
                op.Immediate2 = i.OpCount > 0 ? i.Immediate16 : (ushort)0;
                op.Handler = &ControlOps.RetFar;
                return true;
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
                op.Size = (byte)(i.Mnemonic == Mnemonic.Iretd ? 4 : 2);
                op.Handler = &ControlOps.Iret;
                return true;
            case Mnemonic.Int:
                op.Immediate = i.Immediate8;
                op.Handler = &ControlOps.Int;
                return true;
            case Mnemonic.Int3:
                op.Immediate = (uint)Vector.BP;
                op.Handler = &ControlOps.Int;
                return true;
            case Mnemonic.Int1:
                op.Immediate = (uint)Vector.DB;
                op.Handler = &ControlOps.Int;
                return true;
            case Mnemonic.Into:
                op.Handler = &ControlOps.Into;
                return true;
            case Mnemonic.Hlt:
                op.Handler = &ControlOps.Hlt;
                return true;
            case Mnemonic.Bound:
                op.Destination = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                op.Handler = &ControlOps.Bound;
                return false;
            case Mnemonic.Enter:
                op.Size = (byte)(i.Code == Code.Enterd_imm16_imm8 ? 4 : 2);
                op.Immediate = i.Immediate16;
                op.Immediate2 = i.Immediate8_2nd;
                op.Handler = &ControlOps.Enter;
                return false;
            case Mnemonic.Leave:
                op.Size = (byte)(i.Code == Code.Leaved ? 4 : 2);
                op.Handler = &ControlOps.Leave;
                return false;

            case Mnemonic.Push: return Push(in i, ref op);
            case Mnemonic.Pop: return Pop(in i, ref op);
            case Mnemonic.Pusha:
            case Mnemonic.Pushad:
                op.Size = (byte)(i.Mnemonic == Mnemonic.Pushad ? 4 : 2);
                op.Handler = &StackOps.Pusha;
                return false;
            case Mnemonic.Popa:
            case Mnemonic.Popad:
                op.Size = (byte)(i.Mnemonic == Mnemonic.Popad ? 4 : 2);
                op.Handler = &StackOps.Popa;
                return false;
            case Mnemonic.Pushf:
            case Mnemonic.Pushfd:
                op.Size = (byte)(i.Mnemonic == Mnemonic.Pushfd ? 4 : 2);
                op.Handler = &StackOps.Pushf;
                return false;
            case Mnemonic.Popf:
            case Mnemonic.Popfd:
                op.Size = (byte)(i.Mnemonic == Mnemonic.Popfd ? 4 : 2);
                op.Handler = &StackOps.Popf;
                return true;

            case Mnemonic.Lahf: op.Handler = &MoveOps.Lahf; return false;
            case Mnemonic.Sahf: op.Handler = &MoveOps.Sahf; return false;
            case Mnemonic.Cbw: op.Size = 2; op.Handler = &MoveOps.ConvertAccumulator; return false;
            case Mnemonic.Cwde: op.Size = 4; op.Handler = &MoveOps.ConvertAccumulator; return false;
            case Mnemonic.Cwd: op.Size = 2; op.Handler = &MoveOps.ConvertToDx; return false;
            case Mnemonic.Cdq: op.Size = 4; op.Handler = &MoveOps.ConvertToDx; return false;
            case Mnemonic.Clc: op.Kind = 0; op.Handler = &MoveOps.FlagOp; return false;
            case Mnemonic.Stc: op.Kind = 1; op.Handler = &MoveOps.FlagOp; return false;
            case Mnemonic.Cmc: op.Kind = 2; op.Handler = &MoveOps.FlagOp; return false;
            case Mnemonic.Cld: op.Kind = 3; op.Handler = &MoveOps.FlagOp; return false;
            case Mnemonic.Std: op.Kind = 4; op.Handler = &MoveOps.FlagOp; return false;
            case Mnemonic.Cli: op.Handler = &MoveOps.Cli; return false;
            case Mnemonic.Sti: op.Handler = &MoveOps.Sti; return true;
            case Mnemonic.Salc: op.Handler = &MoveOps.Salc; return false;
            case Mnemonic.Xlatb: op.Handler = &MoveOps.Xlat; return false;
            case Mnemonic.Lds: return FarPointer(in i, ref op, X86Cpu.DS);
            case Mnemonic.Les: return FarPointer(in i, ref op, X86Cpu.ES);
            case Mnemonic.Lss: return FarPointer(in i, ref op, X86Cpu.SS);
            case Mnemonic.Lfs: return FarPointer(in i, ref op, X86Cpu.FS);
            case Mnemonic.Lgs: return FarPointer(in i, ref op, X86Cpu.GS);

            case Mnemonic.Rol: return Shift(in i, ref op, 0);
            case Mnemonic.Ror: return Shift(in i, ref op, 1);
            case Mnemonic.Rcl: return Shift(in i, ref op, 2);
            case Mnemonic.Rcr: return Shift(in i, ref op, 3);
            case Mnemonic.Shl: return Shift(in i, ref op, 4);
            case Mnemonic.Shr: return Shift(in i, ref op, 5);
            case Mnemonic.Sal: return Shift(in i, ref op, 6);
            case Mnemonic.Sar: return Shift(in i, ref op, 7);
            case Mnemonic.Shld:
            case Mnemonic.Shrd:
                op.Kind = (byte)(i.Mnemonic == Mnemonic.Shld ? 0 : 1);
                op.Size = (byte)OperandSize(in i, 0);
                op.Source = Gpr(i.Op1Register);
                op.Size2 = (byte)(i.Op2Kind == OpKind.Register ? 1 : 2);
                op.Immediate = (uint)(i.Op2Kind == OpKind.Register ? 0 : i.Immediate8);
                if (i.Op0Kind == OpKind.Register)
                {
                    op.Destination = Gpr(i.Op0Register);
                    op.Handler = &ShiftOps.DoubleShiftR;
                }
                else
                {
                    op.Handler = &ShiftOps.DoubleShiftM;
                }

                return false;

            case Mnemonic.Bt: return BitTest(in i, ref op, 0);
            case Mnemonic.Bts: return BitTest(in i, ref op, 1);
            case Mnemonic.Btr: return BitTest(in i, ref op, 2);
            case Mnemonic.Btc: return BitTest(in i, ref op, 3);
            case Mnemonic.Bsf:
            case Mnemonic.Bsr:
                op.Kind = (byte)(i.Mnemonic == Mnemonic.Bsf ? 0 : 1);
                return Form(in i, ref op, &BitOps.ScanRR, &BitOps.ScanRM, null, null, null);

            case Mnemonic.Mul:
                op.Kind = 0;
                return Unary(in i, ref op, &MulDivOps.MultiplyR, &MulDivOps.MultiplyM);
            case Mnemonic.Imul:
                if (i.OpCount == 1)
                {
                    op.Kind = 1;
                    return Unary(in i, ref op, &MulDivOps.MultiplyR, &MulDivOps.MultiplyM);
                }

                op.Destination = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                if (i.OpCount == 3)
                {
                    op.Immediate = Immediate(in i, 2);
                    op.Kind = 1;
                    if (i.Op1Kind == OpKind.Register)
                    {
                        op.Source = Gpr(i.Op1Register);
                        op.Handler = &MulDivOps.MultiplyTruncatedR;
                    }
                    else
                    {
                        op.Handler = &MulDivOps.MultiplyTruncatedM;
                    }
                }
                else if (i.Op1Kind == OpKind.Register)
                {
                    op.Source = Gpr(i.Op1Register);
                    op.Handler = &MulDivOps.MultiplyTruncatedR;
                }
                else
                {
                    op.Handler = &MulDivOps.MultiplyTruncatedM;
                }

                return false;
            case Mnemonic.Div:
                op.Kind = 0;
                return Unary(in i, ref op, &MulDivOps.DivideR, &MulDivOps.DivideM);
            case Mnemonic.Idiv:
                op.Kind = 1;
                return Unary(in i, ref op, &MulDivOps.DivideR, &MulDivOps.DivideM);
            case Mnemonic.Daa: op.Kind = 0; op.Handler = &MulDivOps.DecimalAdjust; return false;
            case Mnemonic.Das: op.Kind = 1; op.Handler = &MulDivOps.DecimalAdjust; return false;
            case Mnemonic.Aaa: op.Kind = 0; op.Handler = &MulDivOps.AsciiAdjust; return false;
            case Mnemonic.Aas: op.Kind = 1; op.Handler = &MulDivOps.AsciiAdjust; return false;
            case Mnemonic.Aam: op.Immediate = i.Immediate8; op.Handler = &MulDivOps.Aam; return false;
            case Mnemonic.Aad: op.Immediate = i.Immediate8; op.Handler = &MulDivOps.Aad; return false;

            case Mnemonic.Movsb: case Mnemonic.Movsw: case Mnemonic.Movsd: return String(in i, ref op, &StringOps.Movs, io: false);
            case Mnemonic.Stosb: case Mnemonic.Stosw: case Mnemonic.Stosd: return String(in i, ref op, &StringOps.Stos, io: false);
            case Mnemonic.Lodsb: case Mnemonic.Lodsw: case Mnemonic.Lodsd: return String(in i, ref op, &StringOps.Lods, io: false);
            case Mnemonic.Cmpsb: case Mnemonic.Cmpsw: case Mnemonic.Cmpsd: return String(in i, ref op, &StringOps.Cmps, io: false);
            case Mnemonic.Scasb: case Mnemonic.Scasw: case Mnemonic.Scasd: return String(in i, ref op, &StringOps.Scas, io: false);
            case Mnemonic.Insb: case Mnemonic.Insw: case Mnemonic.Insd: return String(in i, ref op, &StringOps.Ins, io: true);
            case Mnemonic.Outsb: case Mnemonic.Outsw: case Mnemonic.Outsd: return String(in i, ref op, &StringOps.Outs, io: true);

            case Mnemonic.In:
                op.Size = (byte)RegisterSize(i.Op0Register);
                op.Kind = (byte)(i.Op1Kind == OpKind.Register ? 1 : 0);
                op.Immediate = (uint)(op.Kind == 0 ? i.Immediate8 : 0);
                op.Handler = &IoOps.In;
                return true;
            case Mnemonic.Out:
                op.Size = (byte)RegisterSize(i.Op1Register);
                op.Kind = (byte)(i.Op0Kind == OpKind.Register ? 1 : 0);
                op.Immediate = (uint)(op.Kind == 0 ? i.Immediate8 : 0);
                op.Handler = &IoOps.Out;
                return true;

            case Mnemonic.Nop:
            case Mnemonic.Pause:
                op.Handler = &SystemOps.Nop;
                return false;
            case Mnemonic.Ud0:
            case Mnemonic.Ud1:
            case Mnemonic.Ud2:
                op.Handler = &SystemOps.InvalidOpcode;
                return true;
            case Mnemonic.Cpuid: op.Handler = &SystemOps.Cpuid; return false;
            case Mnemonic.Rdtsc: op.Handler = &SystemOps.Rdtsc; return false;
            case Mnemonic.Rdmsr: op.Handler = &SystemOps.Rdmsr; return false;
            case Mnemonic.Wrmsr: op.Handler = &SystemOps.Wrmsr; return true;
            case Mnemonic.Invd:
            case Mnemonic.Wbinvd:
                op.Handler = &SystemOps.Privileged;
                return false;
            case Mnemonic.Invlpg: op.Handler = &SystemOps.Invlpg; return true;
            case Mnemonic.Lgdt: op.Kind = 0; op.Size = (byte)(i.Code == Code.Lgdt_m1632_16 ? 2 : 4); op.Handler = &SystemOps.LoadTable; return true;
            case Mnemonic.Lidt: op.Kind = 1; op.Size = (byte)(i.Code == Code.Lidt_m1632_16 ? 2 : 4); op.Handler = &SystemOps.LoadTable; return true;
            case Mnemonic.Sgdt: op.Kind = 0; op.Handler = &SystemOps.StoreTable; return false;
            case Mnemonic.Sidt: op.Kind = 1; op.Handler = &SystemOps.StoreTable; return false;
            case Mnemonic.Lldt: op.Kind = 0; return SystemSelector(in i, ref op, &SystemOps.LoadSystemSegment);
            case Mnemonic.Ltr: op.Kind = 1; return SystemSelector(in i, ref op, &SystemOps.LoadSystemSegment);
            case Mnemonic.Sldt: op.Kind = 0; return StoreSelector(in i, ref op);
            case Mnemonic.Str: op.Kind = 1; return StoreSelector(in i, ref op);
            case Mnemonic.Smsw: op.Kind = 2; return StoreSelector(in i, ref op);
            case Mnemonic.Lmsw: return SystemSelector(in i, ref op, &SystemOps.Lmsw);
            case Mnemonic.Clts: op.Handler = &SystemOps.Clts; return true;
            case Mnemonic.Lar:
            case Mnemonic.Lsl:
                op.Kind = (byte)(i.Mnemonic == Mnemonic.Lar ? 0 : 1);
                op.Destination = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                if (i.Op1Kind == OpKind.Register)
                {
                    op.Source = Gpr(i.Op1Register);
                    op.Size2 = 1;
                }

                op.Handler = &SystemOps.LoadAccessRights;
                return false;
            case Mnemonic.Verr:
            case Mnemonic.Verw:
                op.Kind = (byte)(i.Mnemonic == Mnemonic.Verr ? 0 : 1);
                return SystemSelector(in i, ref op, &SystemOps.Verify);
            case Mnemonic.Arpl:
                return Form(in i, ref op, &SystemOps.ArplRR, null, &SystemOps.ArplMR, null, null);
            case Mnemonic.Sysenter:
            case Mnemonic.Sysexit:
                // SEP is not advertised by CPUID: #UD, as on a Pentium Pro (SDM vol. 2, SYSENTER).
                op.Handler = &SystemOps.InvalidOpcode;
                return true;
        }

        if (i.Encoding != EncodingKind.Legacy || UsesMediaRegisters(in i))
        {
            // VEX/EVEX/XOP, 3DNow!, MMX and SSE do not exist on this CPU: #UD.
            op.Handler = &SystemOps.InvalidOpcode;
            return true;
        }

        if (FpuOps.TryLower(in i, ref op, x87Table))
        {
            return false;
        }

        op.Handler = &SystemOps.Unimplemented;
        return true;
    }

    private static bool HasMemory(in Instruction i)
    {
        for (int n = 0; n < i.OpCount; n++)
        {
            if (i.GetOpKind(n) == OpKind.Memory)
            {
                return true;
            }
        }

        return false;
    }

    private static void LowerMemory(in Instruction i, ref MicroOp op)
    {
        var baseRegister = i.MemoryBase;
        var indexRegister = i.MemoryIndex;
        bool address16;
        if (baseRegister != Register.None)
        {
            address16 = baseRegister.IsGPR16();
        }
        else
        {
            address16 = indexRegister != Register.None ? indexRegister.IsGPR16() : i.MemoryDisplSize == 2;
        }

        op.Address32 = !address16;
        op.Base = baseRegister == Register.None ? (byte)X86Cpu.NoRegister : Gpr(baseRegister);
        op.Index = indexRegister == Register.None ? (byte)X86Cpu.NoRegister : Gpr(indexRegister);
        op.Scale = (byte)(i.MemoryIndexScale switch { 2 => 1, 4 => 2, 8 => 3, _ => 0 });
        op.Displacement = address16 ? (ushort)i.MemoryDisplacement32 : i.MemoryDisplacement32;
        op.Segment = (byte)(i.MemorySegment - Register.ES);
    }

    private static bool Lockable(in Instruction i)
    {
        if (i.Op0Kind != OpKind.Memory)
        {
            return false;
        }

        return i.Mnemonic is Mnemonic.Add or Mnemonic.Adc or Mnemonic.And or Mnemonic.Btc or Mnemonic.Btr or Mnemonic.Bts or Mnemonic.Cmpxchg
            or Mnemonic.Cmpxchg8b or Mnemonic.Dec or Mnemonic.Inc or Mnemonic.Neg or Mnemonic.Not or Mnemonic.Or or Mnemonic.Sbb or Mnemonic.Sub
            or Mnemonic.Xor or Mnemonic.Xadd or Mnemonic.Xchg;
    }

    /// <summary>0-7 for EAX..EDI (and their 16-bit halves); 0-7 in encoding order (AL..BL, AH..BH) for 8-bit registers.</summary>
    internal static byte Gpr(Register register)
    {
        if (register.IsGPR32())
        {
            return (byte)(register - Register.EAX);
        }

        if (register.IsGPR16())
        {
            return (byte)(register - Register.AX);
        }

        if (register.IsGPR8())
        {
            return (byte)(register - Register.AL);
        }

        if (register.IsSegmentRegister())
        {
            return (byte)(register - Register.ES);
        }

        if (register.IsCR())
        {
            return (byte)(register - Register.CR0);
        }

        if (register.IsDR())
        {
            return (byte)(register - Register.DR0);
        }

        return X86Cpu.NoRegister;
    }

    private static int RegisterSize(Register register) =>
        register.IsGPR8() ? 1 : register.IsGPR16() || register.IsSegmentRegister() ? 2 : 4;

    private static int OperandSize(in Instruction i, int operand) => i.GetOpKind(operand) switch
    {
        OpKind.Register => RegisterSize(i.GetOpRegister(operand)),
        OpKind.Immediate8 or OpKind.Immediate8_2nd => 1,
        OpKind.Immediate16 or OpKind.Immediate8to16 => 2,
        OpKind.Immediate32 or OpKind.Immediate8to32 => 4,
        _ => i.MemorySize.GetSize(),
    };

    private static uint Immediate(in Instruction i, int operand) => i.GetOpKind(operand) switch
    {
        OpKind.Immediate8 => i.Immediate8,
        OpKind.Immediate8_2nd => i.Immediate8_2nd,
        OpKind.Immediate16 => i.Immediate16,
        OpKind.Immediate32 => i.Immediate32,
        OpKind.Immediate8to16 => (ushort)i.Immediate8to16,
        OpKind.Immediate8to32 => (uint)i.Immediate8to32,
        _ => 0,
    };

    private static bool IsImmediate(OpKind kind) =>
        kind is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32 or OpKind.Immediate8to16 or OpKind.Immediate8to32;

    private static byte ConditionNumber(ConditionCode condition) => condition switch
    {
        ConditionCode.o => 0,
        ConditionCode.no => 1,
        ConditionCode.b => 2,
        ConditionCode.ae => 3,
        ConditionCode.e => 4,
        ConditionCode.ne => 5,
        ConditionCode.be => 6,
        ConditionCode.a => 7,
        ConditionCode.s => 8,
        ConditionCode.ns => 9,
        ConditionCode.p => 10,
        ConditionCode.np => 11,
        ConditionCode.l => 12,
        ConditionCode.ge => 13,
        ConditionCode.le => 14,
        _ => 15,
    };

    /// <summary>
    /// Two-operand forms: register-register, register-memory (destination register), memory-register,
    /// register-immediate, memory-immediate. The destination is operand 0.
    /// </summary>
    private static bool Form(in Instruction i, ref MicroOp op,
        delegate*<X86Cpu, ref MicroOp, void> rr, delegate*<X86Cpu, ref MicroOp, void> rm, delegate*<X86Cpu, ref MicroOp, void> mr,
        delegate*<X86Cpu, ref MicroOp, void> ri, delegate*<X86Cpu, ref MicroOp, void> mi)
    {
        op.Size = (byte)OperandSize(in i, 0);
        var kind0 = i.Op0Kind;
        var kind1 = i.Op1Kind;
        delegate*<X86Cpu, ref MicroOp, void> handler;
        if (kind0 == OpKind.Register && kind1 == OpKind.Register)
        {
            op.Destination = Gpr(i.Op0Register);
            op.Source = Gpr(i.Op1Register);
            handler = rr;
        }
        else if (kind0 == OpKind.Register && kind1 == OpKind.Memory)
        {
            op.Destination = Gpr(i.Op0Register);
            handler = rm;
        }
        else if (kind0 == OpKind.Memory && kind1 == OpKind.Register)
        {
            op.Source = Gpr(i.Op1Register);
            handler = mr;
        }
        else if (kind0 == OpKind.Register && IsImmediate(kind1))
        {
            op.Destination = Gpr(i.Op0Register);
            op.Immediate = Immediate(in i, 1) & X86Cpu.SizeMask(op.Size);
            handler = ri;
        }
        else if (kind0 == OpKind.Memory && IsImmediate(kind1))
        {
            op.Immediate = Immediate(in i, 1) & X86Cpu.SizeMask(op.Size);
            handler = mi;
        }
        else
        {
            handler = null;
        }

        if (handler is null)
        {
            op.Handler = &SystemOps.Unimplemented;
            return true;
        }

        op.Handler = handler;
        return false;
    }

    private static bool Alu(in Instruction i, ref MicroOp op, int operation)
    {
        op.Kind = (byte)operation;
        return Form(in i, ref op, &AluOps.RR, &AluOps.RM, &AluOps.MR, &AluOps.RI, &AluOps.MI);
    }

    private static bool Unary(in Instruction i, ref MicroOp op, delegate*<X86Cpu, ref MicroOp, void> r, delegate*<X86Cpu, ref MicroOp, void> m)
    {
        if (op.Size == 0)
        {
            op.Size = (byte)OperandSize(in i, 0);
        }

        if (i.Op0Kind == OpKind.Register)
        {
            op.Destination = Gpr(i.Op0Register);
            op.Handler = r;
        }
        else
        {
            op.Handler = m;
        }

        return false;
    }

    private static void Relative(in Instruction i, ref MicroOp op)
    {
        if (i.Op0Kind == OpKind.NearBranch16)
        {
            op.Immediate = (ushort)(i.NearBranch16 - (ushort)i.NextIP);
            op.Size = 2;
        }
        else
        {
            op.Immediate = i.NearBranch32 - (uint)i.NextIP;
            op.Size = 4;
        }
    }

    private static bool Mov(in Instruction i, ref MicroOp op)
    {
        if (i.Op0Kind == OpKind.Register)
        {
            var destination = i.Op0Register;
            if (destination.IsSegmentRegister())
            {
                op.Destination = Gpr(destination);
                if (op.Destination == X86Cpu.CS)
                {
                    op.Handler = &SystemOps.InvalidOpcode;
                    return true;
                }

                if (i.Op1Kind == OpKind.Register)
                {
                    op.Source = Gpr(i.Op1Register);
                    op.Handler = &MoveOps.MovSregR;
                }
                else
                {
                    op.Handler = &MoveOps.MovSregM;
                }

                return op.Destination == X86Cpu.SS;
            }

            if (destination.IsCR() || destination.IsDR())
            {
                op.Destination = Gpr(destination);
                op.Source = Gpr(i.Op1Register);
                op.Kind = (byte)(destination.IsCR() ? 0 : 1);
                op.Handler = &SystemOps.MovToControl;
                return true;
            }

            if (i.Op1Kind == OpKind.Register)
            {
                var source = i.Op1Register;
                if (source.IsCR() || source.IsDR())
                {
                    op.Destination = Gpr(destination);
                    op.Source = Gpr(source);
                    op.Kind = (byte)(source.IsCR() ? 0 : 1);
                    op.Handler = &SystemOps.MovFromControl;
                    return false;
                }

                if (source.IsSegmentRegister())
                {
                    op.Destination = Gpr(destination);
                    op.Source = Gpr(source);
                    op.Size = (byte)RegisterSize(destination);
                    op.Handler = &MoveOps.MovRSreg;
                    return false;
                }
            }
        }
        else if (i.Op1Kind == OpKind.Register && i.Op1Register.IsSegmentRegister())
        {
            op.Source = Gpr(i.Op1Register);
            op.Handler = &MoveOps.MovMSreg;
            return false;
        }

        return Form(in i, ref op, &MoveOps.MovRR, &MoveOps.MovRM, &MoveOps.MovMR, &MoveOps.MovRI, &MoveOps.MovMI);
    }

    private static bool Jump(in Instruction i, ref MicroOp op)
    {
        switch (i.Op0Kind)
        {
            case OpKind.NearBranch16:
            case OpKind.NearBranch32:
                Relative(in i, ref op);
                op.Handler = &ControlOps.JmpRel;
                return true;
            case OpKind.FarBranch16:
            case OpKind.FarBranch32:
                op.Immediate = i.Op0Kind == OpKind.FarBranch16 ? i.FarBranch16 : i.FarBranch32;
                op.Immediate2 = i.FarBranchSelector;
                op.Size = (byte)(i.Op0Kind == OpKind.FarBranch16 ? 2 : 4);
                op.Handler = &ControlOps.JmpFar;
                return true;
            case OpKind.Register:
                op.Source = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                op.Handler = &ControlOps.JmpR;
                return true;
            default:
                if (i.MemorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32)
                {
                    op.Size = (byte)(i.MemorySize == MemorySize.SegPtr16 ? 2 : 4);
                    op.Handler = &ControlOps.JmpFarM;
                }
                else
                {
                    op.Size = (byte)i.MemorySize.GetSize();
                    op.Handler = &ControlOps.JmpM;
                }

                return true;
        }
    }

    private static bool Call(in Instruction i, ref MicroOp op)
    {
        switch (i.Op0Kind)
        {
            case OpKind.NearBranch16:
            case OpKind.NearBranch32:
                Relative(in i, ref op);
                op.Handler = &ControlOps.CallRel;
                return true;
            case OpKind.FarBranch16:
            case OpKind.FarBranch32:
                op.Immediate = i.Op0Kind == OpKind.FarBranch16 ? i.FarBranch16 : i.FarBranch32;
                op.Immediate2 = i.FarBranchSelector;
                op.Size = (byte)(i.Op0Kind == OpKind.FarBranch16 ? 2 : 4);
                op.Handler = &ControlOps.CallFar;
                return true;
            case OpKind.Register:
                op.Source = Gpr(i.Op0Register);
                op.Size = (byte)RegisterSize(i.Op0Register);
                op.Handler = &ControlOps.CallR;
                return true;
            default:
                if (i.MemorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32)
                {
                    op.Size = (byte)(i.MemorySize == MemorySize.SegPtr16 ? 2 : 4);
                    op.Handler = &ControlOps.CallFarM;
                }
                else
                {
                    op.Size = (byte)i.MemorySize.GetSize();
                    op.Handler = &ControlOps.CallM;
                }

                return true;
        }
    }

    private static bool Push(in Instruction i, ref MicroOp op)
    {
        op.Size = (byte)(-i.StackPointerIncrement);
        switch (i.Op0Kind)
        {
            case OpKind.Register when i.Op0Register.IsSegmentRegister():
                op.Source = Gpr(i.Op0Register);
                op.Handler = &StackOps.PushSreg;
                return false;
            case OpKind.Register:
                op.Source = Gpr(i.Op0Register);
                op.Handler = &StackOps.PushR;
                return false;
            case OpKind.Memory:
                op.Handler = &StackOps.PushM;
                return false;
            default:
                op.Immediate = (uint)X86Cpu.SignExtend(Immediate(in i, 0), OperandSize(in i, 0)) & X86Cpu.SizeMask(op.Size);
                op.Handler = &StackOps.PushI;
                return false;
        }
    }

    private static bool Pop(in Instruction i, ref MicroOp op)
    {
        op.Size = (byte)i.StackPointerIncrement;
        if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister())
        {
            op.Destination = Gpr(i.Op0Register);
            op.Handler = &StackOps.PopSreg;
            return op.Destination == X86Cpu.SS;
        }

        if (i.Op0Kind == OpKind.Register)
        {
            op.Destination = Gpr(i.Op0Register);
            op.Handler = &StackOps.PopR;
            return false;
        }

        // With ESP as base the address is computed after the increment (SDM vol. 2, POP).
        op.Kind = (byte)(i.MemoryBase is Register.SP or Register.ESP ? 1 : 0);
        op.Handler = &StackOps.PopM;
        return false;
    }

    private static bool FarPointer(in Instruction i, ref MicroOp op, int segment)
    {
        op.Destination = Gpr(i.Op0Register);
        op.Size = (byte)RegisterSize(i.Op0Register);
        op.Kind = (byte)segment;
        op.Handler = &MoveOps.LoadFarPointer;
        return segment == X86Cpu.SS;
    }

    private static bool Shift(in Instruction i, ref MicroOp op, int operation)
    {
        op.Kind = (byte)operation;
        op.Size = (byte)OperandSize(in i, 0);
        if (i.OpCount < 2)
        {
            op.Size2 = 0;
            op.Immediate = 1;
        }
        else if (i.Op1Kind == OpKind.Register)
        {
            op.Size2 = 1;
        }
        else
        {
            op.Size2 = 2;
            op.Immediate = i.Immediate8;
        }

        return Unary(in i, ref op, &ShiftOps.ShiftR, &ShiftOps.ShiftM);
    }

    private static bool BitTest(in Instruction i, ref MicroOp op, int operation)
    {
        op.Kind = (byte)operation;
        op.Size = (byte)OperandSize(in i, 0);
        if (i.Op1Kind == OpKind.Register)
        {
            op.Source = Gpr(i.Op1Register);
            op.Size2 = 1;
        }
        else
        {
            op.Immediate = i.Immediate8;
        }

        return Unary(in i, ref op, &BitOps.BitTestR, &BitOps.BitTestM);
    }

    private static bool String(in Instruction i, ref MicroOp op, delegate*<X86Cpu, ref MicroOp, void> handler, bool io)
    {
        int size = i.MemorySize.GetSize();
        if (size == 0)
        {
            size = i.Mnemonic switch
            {
                Mnemonic.Insb or Mnemonic.Outsb => 1,
                Mnemonic.Insw or Mnemonic.Outsw => 2,
                _ => 4,
            };
        }

        op.Size = (byte)size;
        op.Address32 = !(i.Op0Kind is OpKind.MemorySegSI or OpKind.MemoryESDI || i.Op1Kind is OpKind.MemorySegSI or OpKind.MemoryESDI);
        op.Segment = (byte)(i.MemorySegment - Register.ES);
        op.Repeat = (byte)(i.HasRepnePrefix ? 2 : i.HasRepPrefix || i.HasRepePrefix ? 1 : 0);
        op.Handler = handler;
        return op.Repeat != 0 || io;
    }

    private static bool SystemSelector(in Instruction i, ref MicroOp op, delegate*<X86Cpu, ref MicroOp, void> handler)
    {
        op.Size = 2;
        if (i.Op0Kind == OpKind.Register)
        {
            op.Source = Gpr(i.Op0Register);
            op.Size2 = 1;
        }

        op.Handler = handler;
        return true;
    }

    private static bool StoreSelector(in Instruction i, ref MicroOp op)
    {
        op.Size = (byte)OperandSize(in i, 0);
        if (i.Op0Kind == OpKind.Register)
        {
            op.Destination = Gpr(i.Op0Register);
            op.Size2 = 1;
        }

        op.Handler = &SystemOps.StoreSystemRegister;
        return false;
    }

    private static bool UsesMediaRegisters(in Instruction i)
    {
        for (int n = 0; n < i.OpCount; n++)
        {
            if (i.GetOpKind(n) == OpKind.Register && (i.GetOpRegister(n).IsMM() || i.GetOpRegister(n).IsXMM() || i.GetOpRegister(n).IsYMM()))
            {
                return true;
            }
        }

        return i.MemorySize.IsPacked() || (i.MemorySize is MemorySize.Float32 or MemorySize.Float64 && i.Mnemonic.ToString().EndsWith('s') && !i.Mnemonic.ToString().StartsWith('F'));
    }
}
