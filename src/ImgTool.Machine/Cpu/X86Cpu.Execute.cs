using System.Numerics;
using Iced.Intel;

namespace ImgTool.Machine.Cpu;

/// <summary>The interpreter proper: one case per mnemonic, operands through Iced's operand kinds.</summary>
internal sealed partial class X86Cpu
{
    private void Execute(in Instruction i)
    {
        bool hasMemory = i.Op0Kind == OpKind.Memory || i.Op1Kind == OpKind.Memory || (i.OpCount > 2 && i.Op2Kind == OpKind.Memory);
        if (hasMemory)
        {
            ComputeEffectiveAddress(i);
            int accessSize = i.MemorySize.GetSize();
            var mnemonic = i.Mnemonic;
            if (accessSize > 0 && mnemonic is not (Mnemonic.Lea or Mnemonic.Nop or Mnemonic.Invlpg or Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc)
                && !CheckLimit(_eaSegment, _eaOffset, accessSize))
            {
                return;
            }
        }

        switch (i.Mnemonic)
        {
            case Mnemonic.Add: Alu2(i, 0); break;
            case Mnemonic.Or: Alu2(i, 1); break;
            case Mnemonic.Adc: Alu2(i, 2); break;
            case Mnemonic.Sbb: Alu2(i, 3); break;
            case Mnemonic.And: Alu2(i, 4); break;
            case Mnemonic.Sub: Alu2(i, 5); break;
            case Mnemonic.Xor: Alu2(i, 6); break;
            case Mnemonic.Cmp:
                ExecuteCmp(i);
                break;

            case Mnemonic.Test:
                ExecuteTest(i);
                break;

            case Mnemonic.Inc:
            case Mnemonic.Dec:
                ExecuteIncFamily(i);
                break;

            case Mnemonic.Not:
                ExecuteNot(i);
                break;

            case Mnemonic.Neg:
                ExecuteNeg(i);
                break;

            case Mnemonic.Mov: Mov(i); break;
            case Mnemonic.Movzx:
            case Mnemonic.Movsx:
                ExecuteMovzxMovsx(i);
                break;

            case Mnemonic.Lea:
                WriteGpr(i.Op0Register, _eaOffset);
                break;

            case Mnemonic.Xchg:
                ExecuteXchg(i);
                break;

            case Mnemonic.Xadd:
                ExecuteXadd(i);
                break;

            case Mnemonic.Cmpxchg:
                ExecuteCmpxchg(i);
                break;

            case Mnemonic.Cmpxchg8b:
                ExecuteCmpxchg8b(i);
                break;

            case Mnemonic.Bswap:
                WriteGpr(i.Op0Register, BinaryPrimitivesReverse(ReadGpr(i.Op0Register)));
                break;

            case Mnemonic.Cmova: case Mnemonic.Cmovae: case Mnemonic.Cmovb: case Mnemonic.Cmovbe:
            case Mnemonic.Cmove: case Mnemonic.Cmovg: case Mnemonic.Cmovge: case Mnemonic.Cmovl:
            case Mnemonic.Cmovle: case Mnemonic.Cmovne: case Mnemonic.Cmovno: case Mnemonic.Cmovnp:
            case Mnemonic.Cmovns: case Mnemonic.Cmovo: case Mnemonic.Cmovp: case Mnemonic.Cmovs:
                ExecuteCmovaFamily(i);
                break;

            case Mnemonic.Seta: case Mnemonic.Setae: case Mnemonic.Setb: case Mnemonic.Setbe:
            case Mnemonic.Sete: case Mnemonic.Setg: case Mnemonic.Setge: case Mnemonic.Setl:
            case Mnemonic.Setle: case Mnemonic.Setne: case Mnemonic.Setno: case Mnemonic.Setnp:
            case Mnemonic.Setns: case Mnemonic.Seto: case Mnemonic.Setp: case Mnemonic.Sets:
                WriteOperand(i, 0, 1, Condition(i.ConditionCode) ? 1u : 0u);
                break;

            case Mnemonic.Ja: case Mnemonic.Jae: case Mnemonic.Jb: case Mnemonic.Jbe:
            case Mnemonic.Je: case Mnemonic.Jg: case Mnemonic.Jge: case Mnemonic.Jl:
            case Mnemonic.Jle: case Mnemonic.Jne: case Mnemonic.Jno: case Mnemonic.Jnp:
            case Mnemonic.Jns: case Mnemonic.Jo: case Mnemonic.Jp: case Mnemonic.Js:
                if (Condition(i.ConditionCode))
                {
                    Eip = BranchTarget(i);
                }

                break;

            case Mnemonic.Jcxz:
            case Mnemonic.Jecxz:
                if ((i.Mnemonic == Mnemonic.Jcxz ? R[ECX] & 0xFFFF : R[ECX]) == 0)
                {
                    Eip = BranchTarget(i);
                }

                break;

            case Mnemonic.Loop:
            case Mnemonic.Loope:
            case Mnemonic.Loopne:
                Loop(i);
                break;

            case Mnemonic.Jmp: Jump(i); break;
            case Mnemonic.Call: Call(i); break;
            case Mnemonic.Ret: ReturnNear(i); break;
            case Mnemonic.Retf: ReturnFar(i); break;
            case Mnemonic.Iret:
            case Mnemonic.Iretd:
                InterruptReturn(i.Mnemonic == Mnemonic.Iretd ? 4 : 2);
                break;

            case Mnemonic.Int:
                SoftwareInterrupt(i.Immediate8);
                break;
            case Mnemonic.Int3:
                SoftwareInterrupt(Breakpoint);
                break;
            case Mnemonic.Into:
                if ((Eflags & OF) != 0)
                {
                    SoftwareInterrupt(Overflow);
                }

                break;
            case Mnemonic.Int1:
                SoftwareInterrupt(1);
                break;

            case Mnemonic.Push: PushInstruction(i); break;
            case Mnemonic.Pop: PopInstruction(i); break;
            case Mnemonic.Pusha:
            case Mnemonic.Pushad:
                PushAll(i.Mnemonic == Mnemonic.Pushad ? 4 : 2);
                break;
            case Mnemonic.Popa:
            case Mnemonic.Popad:
                PopAll(i.Mnemonic == Mnemonic.Popad ? 4 : 2);
                break;
            case Mnemonic.Pushf:
            case Mnemonic.Pushfd:
                // RF and VM are pushed as 0 (SDM vol. 2, PUSHF).
                Push(Eflags & ~(RF | VM), i.Mnemonic == Mnemonic.Pushfd ? 4 : 2);
                break;
            case Mnemonic.Popf:
            case Mnemonic.Popfd:
                ExecutePopfFamily(i);
                break;

            case Mnemonic.Lahf:
                WriteGpr(Register.AH, (Eflags & 0xD5) | 2);
                break;
            case Mnemonic.Sahf:
                Eflags = (Eflags & ~0xD5u) | ((R[EAX] >> 8) & 0xD5);
                break;

            case Mnemonic.Cbw: WriteGpr(Register.AX, (uint)(sbyte)R[EAX]); break;
            case Mnemonic.Cwde: R[EAX] = (uint)(short)R[EAX]; break;
            case Mnemonic.Cwd: WriteGpr(Register.DX, (R[EAX] & 0x8000) != 0 ? 0xFFFFu : 0); break;
            case Mnemonic.Cdq: R[EDX] = (R[EAX] & 0x80000000) != 0 ? 0xFFFFFFFF : 0; break;

            case Mnemonic.Clc: Eflags &= ~CF; break;
            case Mnemonic.Stc: Eflags |= CF; break;
            case Mnemonic.Cmc: Eflags ^= CF; break;
            case Mnemonic.Cld: Eflags &= ~DF; break;
            case Mnemonic.Std: Eflags |= DF; break;
            case Mnemonic.Cli: Eflags &= ~IF; break;
            case Mnemonic.Sti:
                if ((Eflags & IF) == 0)
                {
                    _interruptShadow = true;
                }

                Eflags |= IF;
                break;

            case Mnemonic.Salc:
                WriteGpr(Register.AL, (Eflags & CF) != 0 ? 0xFFu : 0);
                break;

            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
            case Mnemonic.Shl: case Mnemonic.Shr: case Mnemonic.Sal: case Mnemonic.Sar:
                ExecuteRolFamily(i);
                break;

            case Mnemonic.Shld:
            case Mnemonic.Shrd:
                ExecuteShldFamily(i);
                break;

            case Mnemonic.Bt: case Mnemonic.Bts: case Mnemonic.Btr: case Mnemonic.Btc:
                BitTest(i);
                break;

            case Mnemonic.Bsf:
            case Mnemonic.Bsr:
                ExecuteBsfFamily(i);
                break;

            case Mnemonic.Mul: Multiply(i, signed: false); break;
            case Mnemonic.Imul:
                if (i.OpCount == 1)
                {
                    Multiply(i, signed: true);
                }
                else
                {
                    MultiplyTruncated(i);
                }

                break;
            case Mnemonic.Div: Divide(i, signed: false); break;
            case Mnemonic.Idiv: Divide(i, signed: true); break;

            case Mnemonic.Daa: DecimalAdjust(subtract: false); break;
            case Mnemonic.Das: DecimalAdjust(subtract: true); break;
            case Mnemonic.Aaa: AsciiAdjust(subtract: false); break;
            case Mnemonic.Aas: AsciiAdjust(subtract: true); break;
            case Mnemonic.Aam:
                ExecuteAam(i);
                break;

            case Mnemonic.Aad:
                ExecuteAad(i);
                break;

            case Mnemonic.Xlatb:
                // Iced gives XLAT a memory operand [BX+AL] (or [EBX+AL]), so the address is already computed.
                WriteGpr(Register.AL, ReadMem(_eaSegment, _eaOffset, 1));
                break;

            case Mnemonic.Lds: LoadFarPointer(i, DS); break;
            case Mnemonic.Les: LoadFarPointer(i, ES); break;
            case Mnemonic.Lss: LoadFarPointer(i, SS); break;
            case Mnemonic.Lfs: LoadFarPointer(i, FS); break;
            case Mnemonic.Lgs: LoadFarPointer(i, GS); break;

            case Mnemonic.Enter: Enter(i); break;
            case Mnemonic.Leave:
                ExecuteLeave(i);
                break;

            case Mnemonic.Bound:
                ExecuteBound(i);
                break;

            case Mnemonic.Hlt:
                Halted = true;
                Trace?.Halt();
                break;

            case Mnemonic.Nop:
            case Mnemonic.Pause:
            case Mnemonic.Wait:
            case Mnemonic.Invd:
            case Mnemonic.Wbinvd:
            case Mnemonic.Invlpg:
                break;

            case Mnemonic.Ud0:
            case Mnemonic.Ud1:
            case Mnemonic.Ud2:
                Fault(InvalidOpcode);
                break;

            case Mnemonic.Movsb: case Mnemonic.Movsw: case Mnemonic.Movsd:
            case Mnemonic.Stosb: case Mnemonic.Stosw: case Mnemonic.Stosd:
            case Mnemonic.Lodsb: case Mnemonic.Lodsw: case Mnemonic.Lodsd:
            case Mnemonic.Cmpsb: case Mnemonic.Cmpsw: case Mnemonic.Cmpsd:
            case Mnemonic.Scasb: case Mnemonic.Scasw: case Mnemonic.Scasd:
            case Mnemonic.Insb: case Mnemonic.Insw: case Mnemonic.Insd:
            case Mnemonic.Outsb: case Mnemonic.Outsw: case Mnemonic.Outsd:
                StringInstruction(i);
                break;

            case Mnemonic.In:
                ExecuteIn(i);
                break;

            case Mnemonic.Out:
                ExecuteOut(i);
                break;

            case Mnemonic.Cpuid: Cpuid(); break;
            case Mnemonic.Rdtsc:
                R[EAX] = (uint)Instructions;
                R[EDX] = (uint)((ulong)Instructions >> 32);
                break;
            case Mnemonic.Rdmsr:
                ExecuteRdmsr(i);
                break;

            case Mnemonic.Wrmsr:
                _msrs[R[ECX]] = ((ulong)R[EDX] << 32) | R[EAX];
                break;

            case Mnemonic.Lgdt:
            case Mnemonic.Lidt:
                ExecuteLgdtFamily(i);
                break;

            case Mnemonic.Sgdt:
            case Mnemonic.Sidt:
                ExecuteSgdtFamily(i);
                break;

            case Mnemonic.Lldt:
            case Mnemonic.Ltr:
                LoadSystemSegment(i);
                break;
            case Mnemonic.Sldt:
                WriteOperand(i, 0, OperandSize(i, 0), Ldtr.Selector);
                break;
            case Mnemonic.Str:
                WriteOperand(i, 0, OperandSize(i, 0), Tr.Selector);
                break;
            case Mnemonic.Smsw:
                WriteOperand(i, 0, OperandSize(i, 0), Cr0 & SizeMask(OperandSize(i, 0)));
                break;
            case Mnemonic.Lmsw:
                ExecuteLmsw(i);
                break;

            case Mnemonic.Clts:
                Cr0 &= ~8u;
                break;

            default:
                if (i.Encoding != EncodingKind.Legacy || UsesMediaRegisters(i))
                {
                    // VEX/EVEX/XOP, 3DNow!, MMX and SSE do not exist on a P6 (Pentium Pro): #UD.
                    Fault(InvalidOpcode);
                }
                else
                {
                    Unimplemented(i);
                }

                break;
        }
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

        var memory = i.MemorySize;
        return memory.IsPacked() || memory is MemorySize.Float32 or MemorySize.Float64 && i.Mnemonic.ToString().EndsWith('s');
    }

    private void ExecuteCmp(in Instruction i)
    {
        int size = OperandSize(i, 0);
        Sub(ReadOperand(i, 0, size), ReadOperand(i, 1, size), 0, size);
    }

    private void ExecuteTest(in Instruction i)
    {
        int size = OperandSize(i, 0);
        Logic(ReadOperand(i, 0, size) & ReadOperand(i, 1, size), size);
    }

    private void ExecuteIncFamily(in Instruction i)
    {
        int size = OperandSize(i, 0);
        WriteOperand(i, 0, size, IncDec(ReadOperand(i, 0, size), i.Mnemonic == Mnemonic.Dec, size));
    }

    private void ExecuteNot(in Instruction i)
    {
        int size = OperandSize(i, 0);
        WriteOperand(i, 0, size, ~ReadOperand(i, 0, size));
    }

    private void ExecuteNeg(in Instruction i)
    {
        int size = OperandSize(i, 0);
        WriteOperand(i, 0, size, Sub(0, ReadOperand(i, 0, size), 0, size));
    }

    private void ExecuteMovzxMovsx(in Instruction i)
    {
        int sourceSize = OperandSize(i, 1);
        uint value = ReadOperand(i, 1, sourceSize);
        if (i.Mnemonic == Mnemonic.Movsx)
        {
            value = (uint)SignExtend(value, sourceSize);
        }

        WriteGpr(i.Op0Register, value);
    }

    private void ExecuteXchg(in Instruction i)
    {
        int size = OperandSize(i, 0);
        uint a = ReadOperand(i, 0, size);
        uint b = ReadOperand(i, 1, size);
        WriteOperand(i, 0, size, b);
        WriteOperand(i, 1, size, a);
    }

    private void ExecuteXadd(in Instruction i)
    {
        int size = OperandSize(i, 0);
        uint destination = ReadOperand(i, 0, size);
        uint source = ReadOperand(i, 1, size);
        uint sum = Add(destination, source, 0, size);
        WriteOperand(i, 1, size, destination);
        WriteOperand(i, 0, size, sum);
    }

    private void ExecuteCmpxchg(in Instruction i)
    {
        int size = OperandSize(i, 0);
        uint destination = ReadOperand(i, 0, size);
        uint accumulator = R[EAX] & SizeMask(size);
        Sub(accumulator, destination, 0, size);
        if ((Eflags & ZF) != 0)
        {
            WriteOperand(i, 0, size, ReadOperand(i, 1, size));
        }
        else
        {
            // The destination is written back either way (a locked read-modify-write).
            WriteOperand(i, 0, size, destination);
            WriteGpr(size == 1 ? Register.AL : size == 2 ? Register.AX : Register.EAX, destination);
        }
    }

    private void ExecuteCmpxchg8b(in Instruction i)
    {
        uint low = ReadMem(_eaSegment, _eaOffset, 4);
        uint high = ReadMem(_eaSegment, _eaOffset + 4, 4);
        if (low == R[EAX] && high == R[EDX])
        {
            WriteMem(_eaSegment, _eaOffset, 4, R[EBX]);
            WriteMem(_eaSegment, _eaOffset + 4, 4, R[ECX]);
            Eflags |= ZF;
        }
        else
        {
            WriteMem(_eaSegment, _eaOffset, 4, low);
            WriteMem(_eaSegment, _eaOffset + 4, 4, high);
            R[EAX] = low;
            R[EDX] = high;
            Eflags &= ~ZF;
        }
    }

    private void ExecuteCmovaFamily(in Instruction i)
    {
        int size = OperandSize(i, 0);
        uint value = ReadOperand(i, 1, size);
        if (Condition(i.ConditionCode))
        {
            WriteGpr(i.Op0Register, value);
        }
    }

    private void ExecutePopfFamily(in Instruction i)
    {
        int size = i.Mnemonic == Mnemonic.Popfd ? 4 : 2;
        if (Pop(size, out uint value))
        {
            WriteFlags(value, size);
        }
    }

    private void ExecuteRolFamily(in Instruction i)
    {
        int size = OperandSize(i, 0);
        uint count = i.OpCount > 1 ? ReadOperand(i, 1, 1) & 0xFF : 1;
        int operation = i.Mnemonic switch
        {
            Mnemonic.Rol => 0,
            Mnemonic.Ror => 1,
            Mnemonic.Rcl => 2,
            Mnemonic.Rcr => 3,
            Mnemonic.Shl => 4,
            Mnemonic.Shr => 5,
            Mnemonic.Sal => 6,
            _ => 7,
        };
        WriteOperand(i, 0, size, Shift(operation, ReadOperand(i, 0, size), count, size));
    }

    private void ExecuteShldFamily(in Instruction i)
    {
        int size = OperandSize(i, 0);
        uint count = ReadOperand(i, 2, 1);
        WriteOperand(i, 0, size, DoubleShift(i.Mnemonic == Mnemonic.Shld, ReadOperand(i, 0, size), ReadOperand(i, 1, size), count, size));
    }

    private void ExecuteBsfFamily(in Instruction i)
    {
        int size = OperandSize(i, 0);
        uint source = ReadOperand(i, 1, size) & SizeMask(size);
        if (source == 0)
        {
            // The destination is left unchanged on a P6 (architecturally undefined).
            Eflags |= ZF;
        }
        else
        {
            Eflags &= ~ZF;
            uint index = i.Mnemonic == Mnemonic.Bsf ? (uint)BitOperations.TrailingZeroCount(source) : (uint)(31 - BitOperations.LeadingZeroCount(source));
            WriteGpr(i.Op0Register, index);
        }
    }

    private void ExecuteAam(in Instruction i)
    {
        uint divisor = i.Immediate8;
        if (divisor == 0)
        {
            Fault(DivideError);
            return;
        }

        uint al = R[EAX] & 0xFF;
        WriteGpr(Register.AX, ((al / divisor) << 8) | (al % divisor));
        Logic(R[EAX] & 0xFF, 1);
    }

    private void ExecuteAad(in Instruction i)
    {
        uint al = R[EAX] & 0xFF;
        uint ah = (R[EAX] >> 8) & 0xFF;
        uint result = Add(al, ah * i.Immediate8 & 0xFF, 0, 1);
        WriteGpr(Register.AX, result & 0xFF);
    }

    private void ExecuteLeave(in Instruction i)
    {
        int size = i.Code == Code.Leaved ? 4 : 2;
        uint savedSp = R[ESP];
        SetStackPointer(Stack32 ? R[EBP] : R[EBP] & 0xFFFF);
        if (Pop(size, out uint value))
        {
            WriteGpr(size == 4 ? Register.EBP : Register.BP, value);
        }
        else
        {
            R[ESP] = savedSp;
        }
    }

    private void ExecuteBound(in Instruction i)
    {
        int size = OperandSize(i, 0);
        int index = SignExtend(ReadGpr(i.Op0Register), size);
        int lower = SignExtend(ReadMem(_eaSegment, _eaOffset, size), size);
        int upper = SignExtend(ReadMem(_eaSegment, _eaOffset + (uint)size, size), size);
        if (index < lower || index > upper)
        {
            Fault(BoundRange);
        }
    }

    private void ExecuteIn(in Instruction i)
    {
        int size = OperandSize(i, 0);
        ushort port = (ushort)(i.Op1Kind == OpKind.Register ? R[EDX] : i.Immediate8);
        WriteGpr(i.Op0Register, _io.In(port, size));
    }

    private void ExecuteOut(in Instruction i)
    {
        int size = OperandSize(i, 1);
        ushort port = (ushort)(i.Op0Kind == OpKind.Register ? R[EDX] : i.Immediate8);
        _io.Out(port, size, ReadGpr(i.Op1Register) & SizeMask(size));
    }

    private void ExecuteRdmsr(in Instruction i)
    {
        ulong value = _msrs.GetValueOrDefault(R[ECX]);
        if (R[ECX] == 0x10)
        {
            value = (ulong)Instructions;
        }

        R[EAX] = (uint)value;
        R[EDX] = (uint)(value >> 32);
    }

    private void ExecuteLgdtFamily(in Instruction i)
    {
        uint limit = ReadMem(_eaSegment, _eaOffset, 2);
        uint tableBase = ReadMem(_eaSegment, _eaOffset + 2, 4);
        if (!Code32 || i.CodeSize == CodeSize.Code16 && i.MemorySize != MemorySize.Fword6)
        {
            // With a 16-bit operand size only 24 bits of the base are loaded (SDM vol. 2, LGDT).
            tableBase &= i.MemorySize == MemorySize.Fword6 && Code32 ? 0xFFFFFFFF : 0x00FFFFFF;
        }

        if (i.Mnemonic == Mnemonic.Lgdt)
        {
            GdtBase = tableBase;
            GdtLimit = limit;
        }
        else
        {
            IdtBase = tableBase;
            IdtLimit = limit;
        }
    }

    private void ExecuteSgdtFamily(in Instruction i)
    {
        bool global = i.Mnemonic == Mnemonic.Sgdt;
        WriteMem(_eaSegment, _eaOffset, 2, global ? GdtLimit : IdtLimit);
        WriteMem(_eaSegment, _eaOffset + 2, 4, global ? GdtBase : IdtBase);
    }

    private void ExecuteLmsw(in Instruction i)
    {
        // LMSW sets PE but cannot clear it (SDM vol. 2, LMSW).
        uint value = ReadOperand(i, 0, 2) & 0xF;
        Cr0 = (Cr0 & ~0xEu) | value | (Cr0 & CR0_PE);
    }

    private static uint BinaryPrimitivesReverse(uint value) => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(value);

    private void Alu2(in Instruction i, int operation)
    {
        int size = OperandSize(i, 0);
        uint result = AluOp(operation, ReadOperand(i, 0, size), ReadOperand(i, 1, size), size);
        WriteOperand(i, 0, size, result);
    }

    private void Mov(in Instruction i)
    {
        var kind0 = i.Op0Kind;
        if (kind0 == OpKind.Register)
        {
            var destination = i.Op0Register;
            if (destination.IsSegmentRegister())
            {
                int segment = destination - Register.ES;
                if (segment == CS)
                {
                    Fault(InvalidOpcode);
                    return;
                }

                ushort selector = (ushort)ReadOperand(i, 1, 2);
                if (LoadSegment(segment, selector) && segment == SS)
                {
                    _interruptShadow = true;
                }

                return;
            }

            if (destination.IsCR())
            {
                WriteControlRegister(destination - Register.CR0, ReadGpr(i.Op1Register));
                return;
            }

            if (destination.IsDR())
            {
                Dr[destination - Register.DR0] = ReadGpr(i.Op1Register);
                return;
            }

            var source = i.Op1Kind == OpKind.Register ? i.Op1Register : Register.None;
            if (source.IsCR())
            {
                int index = source - Register.CR0;
                R[destination - Register.EAX] = index switch { 0 => Cr0, 2 => Cr2, 3 => Cr3, 4 => Cr4, _ => 0 };
                return;
            }

            if (source.IsDR())
            {
                R[destination - Register.EAX] = Dr[source - Register.DR0];
                return;
            }

            if (source.IsSegmentRegister())
            {
                // A segment register moved to a 32-bit register is zero-extended on a P6.
                WriteGpr(destination, ReadGpr(source));
                return;
            }
        }

        int size = OperandSize(i, 0);
        if (i.Op1Kind == OpKind.Register && i.Op1Register.IsSegmentRegister())
        {
            size = 2;
        }

        WriteOperand(i, 0, size, ReadOperand(i, 1, size));
    }

    private void WriteControlRegister(int index, uint value)
    {
        switch (index)
        {
            case 0:
                if ((value & CR0_PG) != 0)
                {
                    Stop(CpuExit.Unimplemented, "paging (CR0.PG) is not implemented yet");
                    return;
                }

                // ET is hard-wired to 1 on a P6.
                Cr0 = value | CR0_ET;
                break;
            case 2: Cr2 = value; break;
            case 3: Cr3 = value; break;
            case 4: Cr4 = value; break;
            default: Fault(InvalidOpcode); break;
        }
    }

    private void WriteFlags(uint value, int sizeBytes)
    {
        // At CPL 0 (and in real mode) POPF may change IOPL and IF; VM and RF are not changed by POPF,
        // bit 1 reads as 1 and bits 3, 5 and 15 as 0 (SDM vol. 1, 3.4.3).
        uint writable = CF | PF | AF | ZF | SF | TF | IF | DF | OF | IOPL | NT;
        if (sizeBytes == 4)
        {
            writable |= AC | ID;
        }

        Eflags = ((Eflags & ~writable) | (value & writable)) | 2;
    }

    private void Loop(in Instruction i)
    {
        bool counterCx = i.Code is Code.Loop_rel8_16_CX or Code.Loop_rel8_32_CX or Code.Loope_rel8_16_CX or Code.Loope_rel8_32_CX
            or Code.Loopne_rel8_16_CX or Code.Loopne_rel8_32_CX;
        uint count;
        if (counterCx)
        {
            count = (R[ECX] - 1) & 0xFFFF;
            R[ECX] = (R[ECX] & 0xFFFF0000) | count;
        }
        else
        {
            count = --R[ECX];
        }

        bool taken = count != 0 && i.Mnemonic switch
        {
            Mnemonic.Loope => (Eflags & ZF) != 0,
            Mnemonic.Loopne => (Eflags & ZF) == 0,
            _ => true,
        };
        if (taken)
        {
            Eip = BranchTarget(i);
        }
    }

    private void Jump(in Instruction i)
    {
        switch (i.Op0Kind)
        {
            case OpKind.NearBranch16:
            case OpKind.NearBranch32:
                Eip = BranchTarget(i);
                break;
            case OpKind.FarBranch16:
            case OpKind.FarBranch32:
                FarTransfer(i.FarBranchSelector, i.Op0Kind == OpKind.FarBranch16 ? i.FarBranch16 : i.FarBranch32, call: false, sizeBytes: 0);
                break;
            case OpKind.Register:
                Eip = ReadGpr(i.Op0Register);
                break;
            default:
            {
                var memorySize = i.MemorySize;
                if (memorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32)
                {
                    int offsetSize = memorySize == MemorySize.SegPtr16 ? 2 : 4;
                    uint offset = ReadMem(_eaSegment, _eaOffset, offsetSize);
                    ushort selector = (ushort)ReadMem(_eaSegment, _eaOffset + (uint)offsetSize, 2);
                    FarTransfer(selector, offset, call: false, sizeBytes: 0);
                }
                else
                {
                    Eip = ReadMem(_eaSegment, _eaOffset, memorySize.GetSize());
                }

                break;
            }
        }
    }

    private void Call(in Instruction i)
    {
        switch (i.Op0Kind)
        {
            case OpKind.NearBranch16:
            case OpKind.NearBranch32:
            {
                uint target = BranchTarget(i);
                if (Push(Eip, i.Op0Kind == OpKind.NearBranch16 ? 2 : 4))
                {
                    Eip = target;
                }

                break;
            }

            case OpKind.FarBranch16:
            case OpKind.FarBranch32:
                FarTransfer(i.FarBranchSelector, i.Op0Kind == OpKind.FarBranch16 ? i.FarBranch16 : i.FarBranch32, call: true,
                    sizeBytes: i.Op0Kind == OpKind.FarBranch16 ? 2 : 4);
                break;
            default:
            {
                var memorySize = i.MemorySize;
                if (i.Op0Kind == OpKind.Memory && memorySize is MemorySize.SegPtr16 or MemorySize.SegPtr32)
                {
                    int offsetSize = memorySize == MemorySize.SegPtr16 ? 2 : 4;
                    uint offset = ReadMem(_eaSegment, _eaOffset, offsetSize);
                    ushort selector = (ushort)ReadMem(_eaSegment, _eaOffset + (uint)offsetSize, 2);
                    FarTransfer(selector, offset, call: true, sizeBytes: offsetSize);
                }
                else
                {
                    int size = OperandSize(i, 0);
                    uint target = ReadOperand(i, 0, size);
                    if (Push(Eip, size))
                    {
                        Eip = target;
                    }
                }

                break;
            }
        }
    }

    /// <summary>Far JMP/CALL: real mode loads CS directly, protected mode through a code descriptor.</summary>
    private void FarTransfer(ushort selector, uint offset, bool call, int sizeBytes)
    {
        if (call)
        {
            uint savedEsp = R[ESP];
            if (!Push(S[CS].Selector, sizeBytes) || !Push(Eip, sizeBytes))
            {
                R[ESP] = savedEsp;
                return;
            }

            if (!LoadCodeSegment(selector))
            {
                R[ESP] = savedEsp;
                return;
            }
        }
        else if (!LoadCodeSegment(selector))
        {
            return;
        }

        Eip = offset;
    }

    private bool LoadCodeSegment(ushort selector)
    {
        if (!ProtectedMode || (Eflags & VM) != 0)
        {
            LoadRealSegment(CS, selector);
            return true;
        }

        if ((selector & 0xFFFC) == 0)
        {
            Fault(GeneralProtection, 0);
            return false;
        }

        if (!ReadDescriptor(selector, out var descriptor, out _))
        {
            return false;
        }

        if ((descriptor.Attributes & 0x18) != 0x18)
        {
            Stop(CpuExit.Unimplemented, $"far transfer through system descriptor {selector:X4} (call gates and task switches are not implemented)");
            return false;
        }

        if ((descriptor.Attributes & SegmentRegister.AttrPresent) == 0)
        {
            Fault(SegmentNotPresent, selector & 0xFFFCu);
            return false;
        }

        descriptor.Selector = (ushort)((selector & 0xFFFCu) | (uint)Cpl);
        S[CS] = descriptor;
        return true;
    }

    private void ReturnNear(in Instruction i)
    {
        int size = i.Code is Code.Retnd or Code.Retnd_imm16 ? 4 : 2;
        if (Pop(size, out uint target))
        {
            Eip = target;
            if (i.OpCount > 0)
            {
                DropStack(i.Immediate16);
            }
        }
    }

    private void ReturnFar(in Instruction i)
    {
        int size = i.Code is Code.Retfd or Code.Retfd_imm16 ? 4 : 2;
        if (!PeekStack(0, size, out uint offset) || !PeekStack((uint)size, size, out uint selector))
        {
            return;
        }

        if (ProtectedMode && (selector & 3) > (uint)Cpl)
        {
            Stop(CpuExit.Unimplemented, "far return to an outer privilege level is not implemented");
            return;
        }

        if (!LoadCodeSegment((ushort)selector))
        {
            return;
        }

        DropStack((uint)(2 * size));
        Eip = offset;
        if (i.OpCount > 0)
        {
            DropStack(i.Immediate16);
        }
    }

    private void InterruptReturn(int sizeBytes)
    {
        if (!PeekStack(0, sizeBytes, out uint offset) || !PeekStack((uint)sizeBytes, sizeBytes, out uint selector) ||
            !PeekStack((uint)(2 * sizeBytes), sizeBytes, out uint flags))
        {
            return;
        }

        if (ProtectedMode)
        {
            if ((Eflags & NT) != 0)
            {
                Stop(CpuExit.Unimplemented, "IRET with NT set (task return) is not implemented");
                return;
            }

            if ((selector & 3) > (uint)Cpl || (sizeBytes == 4 && (flags & VM) != 0))
            {
                Stop(CpuExit.Unimplemented, "IRET to an outer privilege level or virtual-8086 mode is not implemented");
                return;
            }
        }

        if (!LoadCodeSegment((ushort)selector))
        {
            return;
        }

        DropStack((uint)(3 * sizeBytes));
        Eip = sizeBytes == 4 ? offset : offset & 0xFFFF;
        if (sizeBytes == 2)
        {
            flags = (Eflags & 0xFFFF0000) | (flags & 0xFFFF);
        }

        uint writable = CF | PF | AF | ZF | SF | TF | IF | DF | OF | IOPL | NT | RF | AC | ID;
        Eflags = ((Eflags & ~writable) | (flags & writable)) | 2;
    }

    private void SoftwareInterrupt(int vector)
    {
        // INT n, INT3 and INTO are traps: the pushed return address is the next instruction.
        Trace?.Interrupt(Tracing.TraceEventKind.SoftwareInterrupt, vector);
        Deliver(vector, isSoftware: true, hasErrorCode: false, errorCode: 0, nested: 0);
        if (_faultVector >= 0)
        {
            // The delivery itself faulted: report the fault at the INT instruction.
            return;
        }
    }

    private void PushInstruction(in Instruction i)
    {
        int size = -i.StackPointerIncrement;
        uint value;
        if (i.Op0Kind == OpKind.Register)
        {
            var register = i.Op0Register;
            value = ReadGpr(register);
            if (register == Register.SP || register == Register.ESP)
            {
                // PUSH SP pushes the value before the push (286 and later).
                value = R[ESP];
            }
        }
        else
        {
            value = ReadOperand(i, 0, i.Op0Kind == OpKind.Memory ? size : OperandSize(i, 0));
            value = (uint)SignExtend(value, OperandSize(i, 0)) & SizeMask(size);
        }

        if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister() && size == 4)
        {
            // A P6 writes only the 16-bit selector into the 32-bit slot (SDM vol. 2, PUSH).
            uint sp = (StackPointer - 4) & (Stack32 ? 0xFFFFFFFF : 0xFFFF);
            if (CheckLimit(SS, sp, 4))
            {
                WriteMem(SS, sp, 2, value);
                SetStackPointer(sp);
            }

            return;
        }

        Push(value, size);
    }

    private void PopInstruction(in Instruction i)
    {
        int size = i.StackPointerIncrement;
        if (!PeekStack(0, size, out uint value))
        {
            return;
        }

        if (i.Op0Kind == OpKind.Register)
        {
            var register = i.Op0Register;
            if (register.IsSegmentRegister())
            {
                int segment = register - Register.ES;
                if (LoadSegment(segment, (ushort)value))
                {
                    DropStack((uint)size);
                    if (segment == SS)
                    {
                        _interruptShadow = true;
                    }
                }

                return;
            }

            DropStack((uint)size);
            WriteGpr(register, value);
            return;
        }

        // With ESP as base the address is computed after the increment (SDM vol. 2, POP).
        DropStack((uint)size);
        if (i.MemoryBase is Register.SP or Register.ESP)
        {
            ComputeEffectiveAddress(i);
        }

        WriteMem(_eaSegment, _eaOffset, size, value);
    }

    private void PushAll(int sizeBytes)
    {
        // Eight pushes, each checked: a 16-bit stack wraps at 64 KiB as on the 286 and later.
        uint originalSp = R[ESP];
        for (int r = 0; r < 8; r++)
        {
            if (!Push(r == ESP ? originalSp : R[r], sizeBytes))
            {
                R[ESP] = originalSp;
                return;
            }
        }
    }

    private void PopAll(int sizeBytes)
    {
        var values = new uint[8];
        for (int r = 7; r >= 0; r--)
        {
            if (!PeekStack((uint)((7 - r) * sizeBytes), sizeBytes, out values[r]))
            {
                return;
            }
        }

        DropStack((uint)(8 * sizeBytes));
        for (int r = 0; r < 8; r++)
        {
            if (r == ESP)
            {
                continue;
            }

            if (sizeBytes == 4)
            {
                R[r] = values[r];
            }
            else
            {
                R[r] = (R[r] & 0xFFFF0000) | (values[r] & 0xFFFF);
            }
        }
    }

    private void Enter(in Instruction i)
    {
        int size = i.Code == Code.Enterd_imm16_imm8 ? 4 : 2;
        uint allocation = i.Immediate16;
        int level = i.Immediate8_2nd & 0x1F;
        uint savedEsp = R[ESP];
        if (!Push(R[EBP], size))
        {
            return;
        }

        uint frame = StackPointer;
        for (int n = 1; n < level; n++)
        {
            uint bp = (Stack32 ? R[EBP] : R[EBP] & 0xFFFF) - (uint)(n * size);
            if (!Stack32)
            {
                bp &= 0xFFFF;
            }

            if (!Push(ReadMem(SS, bp, size), size))
            {
                R[ESP] = savedEsp;
                return;
            }
        }

        if (level > 0 && !Push(frame, size))
        {
            R[ESP] = savedEsp;
            return;
        }

        WriteGpr(size == 4 ? Register.EBP : Register.BP, frame);
        uint sp = StackPointer - allocation;
        SetStackPointer(Stack32 ? sp : sp & 0xFFFF);
    }

    private void LoadFarPointer(in Instruction i, int segment)
    {
        int size = OperandSize(i, 0);
        uint offset = ReadMem(_eaSegment, _eaOffset, size);
        ushort selector = (ushort)ReadMem(_eaSegment, _eaOffset + (uint)size, 2);
        if (LoadSegment(segment, selector))
        {
            WriteGpr(i.Op0Register, offset);
            if (segment == SS)
            {
                _interruptShadow = true;
            }
        }
    }

    private void BitTest(in Instruction i)
    {
        int size = OperandSize(i, 0);
        int bits = size * 8;
        uint bitOffset = ReadOperand(i, 1, OperandSize(i, 1));
        uint value;
        if (i.Op0Kind == OpKind.Memory && i.Op1Kind == OpKind.Register)
        {
            // A register bit offset addresses memory beyond the operand (signed, SDM vol. 2, BT).
            int signed = SignExtend(bitOffset, size);
            _eaOffset += (uint)((signed >> (size == 2 ? 4 : 5)) * size);
            bitOffset = (uint)signed & (uint)(bits - 1);
            if (!CheckLimit(_eaSegment, _eaOffset, size))
            {
                return;
            }
        }
        else
        {
            bitOffset &= (uint)(bits - 1);
            if (i.Op0Kind == OpKind.Memory && !CheckLimit(_eaSegment, _eaOffset, size))
            {
                return;
            }
        }

        value = ReadOperand(i, 0, size);
        uint bit = 1u << (int)bitOffset;
        SetFlag(CF, (value & bit) != 0);
        switch (i.Mnemonic)
        {
            case Mnemonic.Bts: WriteOperand(i, 0, size, value | bit); break;
            case Mnemonic.Btr: WriteOperand(i, 0, size, value & ~bit); break;
            case Mnemonic.Btc: WriteOperand(i, 0, size, value ^ bit); break;
        }
    }

    private void Multiply(in Instruction i, bool signed)
    {
        int size = OperandSize(i, 0);
        uint source = ReadOperand(i, 0, size);
        bool overflow;
        uint low;
        switch (size)
        {
            case 1:
            {
                uint al = R[EAX] & 0xFF;
                uint product = signed ? (uint)((sbyte)al * (sbyte)source) & 0xFFFF : al * (source & 0xFF);
                WriteGpr(Register.AX, product);
                overflow = signed ? (short)product != (sbyte)product : (product & 0xFF00) != 0;
                low = product & 0xFF;
                break;
            }

            case 2:
            {
                uint ax = R[EAX] & 0xFFFF;
                uint product = signed ? (uint)((short)ax * (short)source) : ax * (source & 0xFFFF);
                WriteGpr(Register.AX, product);
                WriteGpr(Register.DX, product >> 16);
                overflow = signed ? (int)product != (short)product : (product & 0xFFFF0000) != 0;
                low = product & 0xFFFF;
                break;
            }

            default:
            {
                ulong product = signed ? (ulong)((long)(int)R[EAX] * (int)source) : (ulong)R[EAX] * source;
                R[EAX] = (uint)product;
                R[EDX] = (uint)(product >> 32);
                overflow = signed ? (long)product != (int)product : (product >> 32) != 0;
                low = (uint)product;
                break;
            }
        }

        // SF, ZF, AF and PF are undefined; a P6 sets SF/ZF/PF from the low half and clears AF.
        SetResultFlags(low, size, overflow ? CF | OF : 0);
    }

    private void MultiplyTruncated(in Instruction i)
    {
        int size = OperandSize(i, 0);
        long a = SignExtend(ReadOperand(i, i.OpCount == 3 ? 1 : 0, size), size);
        long b = SignExtend(ReadOperand(i, i.OpCount == 3 ? 2 : 1, i.OpCount == 3 ? OperandSize(i, 2) : size), i.OpCount == 3 ? OperandSize(i, 2) : size);
        long product = a * b;
        uint result = (uint)product & SizeMask(size);
        bool overflow = product != SignExtend(result, size);
        WriteGpr(i.Op0Register, result);
        SetResultFlags(result, size, overflow ? CF | OF : 0);
    }

    private void Divide(in Instruction i, bool signed)
    {
        int size = OperandSize(i, 0);
        uint divisor = ReadOperand(i, 0, size) & SizeMask(size);
        if (divisor == 0)
        {
            Fault(DivideError);
            return;
        }

        switch (size)
        {
            case 1:
            {
                uint dividend = R[EAX] & 0xFFFF;
                if (signed)
                {
                    int q = (short)dividend / (sbyte)divisor;
                    int r = (short)dividend % (sbyte)divisor;
                    if (q is > 127 or < -128)
                    {
                        Fault(DivideError);
                        return;
                    }

                    WriteGpr(Register.AX, ((uint)(r & 0xFF) << 8) | (uint)(q & 0xFF));
                }
                else
                {
                    uint q = dividend / divisor;
                    if (q > 0xFF)
                    {
                        Fault(DivideError);
                        return;
                    }

                    WriteGpr(Register.AX, ((dividend % divisor) << 8) | q);
                }

                break;
            }

            case 2:
            {
                uint dividend = ((R[EDX] & 0xFFFF) << 16) | (R[EAX] & 0xFFFF);
                if (signed)
                {
                    int q = (int)dividend / (short)divisor;
                    int r = (int)dividend % (short)divisor;
                    if ((int)dividend == int.MinValue && (short)divisor == -1 || q is > 32767 or < -32768)
                    {
                        Fault(DivideError);
                        return;
                    }

                    WriteGpr(Register.AX, (uint)q);
                    WriteGpr(Register.DX, (uint)r);
                }
                else
                {
                    uint q = dividend / divisor;
                    if (q > 0xFFFF)
                    {
                        Fault(DivideError);
                        return;
                    }

                    WriteGpr(Register.AX, q);
                    WriteGpr(Register.DX, dividend % divisor);
                }

                break;
            }

            default:
            {
                ulong dividend = ((ulong)R[EDX] << 32) | R[EAX];
                if (signed)
                {
                    long d = (long)dividend;
                    int s = (int)divisor;
                    if (d == long.MinValue && s == -1)
                    {
                        Fault(DivideError);
                        return;
                    }

                    long q = d / s;
                    if (q is > int.MaxValue or < int.MinValue)
                    {
                        Fault(DivideError);
                        return;
                    }

                    R[EAX] = (uint)q;
                    R[EDX] = (uint)(d % s);
                }
                else
                {
                    ulong q = dividend / divisor;
                    if (q > uint.MaxValue)
                    {
                        Fault(DivideError);
                        return;
                    }

                    R[EAX] = (uint)q;
                    R[EDX] = (uint)(dividend % divisor);
                }

                break;
            }
        }
    }

    private void DecimalAdjust(bool subtract)
    {
        // DAA/DAS pseudo-code (SDM vol. 2).
        uint al = R[EAX] & 0xFF;
        bool carry = (Eflags & CF) != 0;
        uint result = al;
        bool newCarry = false;
        bool auxiliary = false;
        if ((al & 0xF) > 9 || (Eflags & AF) != 0)
        {
            result = subtract ? (al - 6) & 0xFF : (al + 6) & 0xFF;
            newCarry = carry || (subtract ? al < 6 : al + 6 > 0xFF);
            auxiliary = true;
        }

        if (al > 0x99 || carry)
        {
            result = subtract ? (result - 0x60) & 0xFF : (result + 0x60) & 0xFF;
            newCarry = true;
        }

        WriteGpr(Register.AL, result);
        SetResultFlags(result, 1, (newCarry ? CF : 0) | (auxiliary ? AF : 0) | (Eflags & OF));
    }

    private void AsciiAdjust(bool subtract)
    {
        // AAA/AAS pseudo-code (SDM vol. 2): AX adjusted by 0x106 as a word on 286 and later.
        uint ax = R[EAX] & 0xFFFF;
        if ((ax & 0xF) > 9 || (Eflags & AF) != 0)
        {
            ax = subtract ? ax - 6 - 0x100 : ax + 0x106;
            Eflags |= AF | CF;
        }
        else
        {
            Eflags &= ~(AF | CF);
        }

        WriteGpr(Register.AX, ax & 0xFF0F);
    }

    private void LoadSystemSegment(in Instruction i)
    {
        ushort selector = (ushort)ReadOperand(i, 0, 2);
        if (!ProtectedMode)
        {
            Fault(InvalidOpcode);
            return;
        }

        if ((selector & 0xFFFC) == 0)
        {
            if (i.Mnemonic == Mnemonic.Lldt)
            {
                Ldtr = new SegmentRegister { Selector = selector };
            }
            else
            {
                Fault(GeneralProtection, 0);
            }

            return;
        }

        if (!ReadDescriptor(selector, out var descriptor, out _))
        {
            return;
        }

        if (i.Mnemonic == Mnemonic.Lldt)
        {
            Ldtr = descriptor;
        }
        else
        {
            Tr = descriptor;
        }
    }

    private void Cpuid()
    {
        switch (R[EAX])
        {
            case 0:
                // "GenuineIntel" in EBX, EDX, ECX.
                R[EAX] = 1;
                R[EBX] = 0x756E6547;
                R[EDX] = 0x49656E69;
                R[ECX] = 0x6C65746E;
                break;
            case 1:
                // Family 6 model 3 stepping 3; features FPU(0), TSC(4), MSR(5), CX8(8), CMOV(15); no APIC(9).
                R[EAX] = 0x0633;
                R[EBX] = 0;
                R[ECX] = 0;
                R[EDX] = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 8) | (1u << 15);
                break;
            default:
                R[EAX] = R[EBX] = R[ECX] = R[EDX] = 0;
                break;
        }
    }
}
