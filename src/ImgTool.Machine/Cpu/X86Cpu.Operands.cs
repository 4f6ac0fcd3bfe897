using System.Runtime.CompilerServices;
using Iced.Intel;

namespace ImgTool.Machine.Cpu;

/// <summary>
/// Register and operand access in terms of Iced's operand model. The small helpers here run several
/// times per instruction: they are marked for inlining, which NativeAOT (no profile-guided inlining)
/// otherwise declines across the Iced assembly boundary.
/// </summary>
internal sealed partial class X86Cpu
{
    /// <summary>Iced's GetOpKind without its operand-index switch for the two operands nearly every instruction uses.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static OpKind OpKindOf(in Instruction instruction, int operand) =>
        operand == 0 ? instruction.Op0Kind : operand == 1 ? instruction.Op1Kind : instruction.GetOpKind(operand);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Register OpRegisterOf(in Instruction instruction, int operand) =>
        operand == 0 ? instruction.Op0Register : operand == 1 ? instruction.Op1Register : instruction.GetOpRegister(operand);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadGpr(Register register)
    {
        int r = (int)register;
        if (r >= (int)Register.EAX && r <= (int)Register.EDI)
        {
            return R[r - (int)Register.EAX];
        }

        if (r >= (int)Register.AX && r <= (int)Register.DI)
        {
            return R[r - (int)Register.AX] & 0xFFFF;
        }

        if (r >= (int)Register.AL && r <= (int)Register.BL)
        {
            return R[r - (int)Register.AL] & 0xFF;
        }

        if (r >= (int)Register.AH && r <= (int)Register.BH)
        {
            return (R[r - (int)Register.AH] >> 8) & 0xFF;
        }

        if (r >= (int)Register.ES && r <= (int)Register.GS)
        {
            return S[r - (int)Register.ES].Selector;
        }

        return 0;
    }

    private void WriteGpr(Register register, uint value)
    {
        int r = (int)register;
        if (r >= (int)Register.EAX && r <= (int)Register.EDI)
        {
            R[r - (int)Register.EAX] = value;
        }
        else if (r >= (int)Register.AX && r <= (int)Register.DI)
        {
            ref uint reg = ref R[r - (int)Register.AX];
            reg = (reg & 0xFFFF0000) | (value & 0xFFFF);
        }
        else if (r >= (int)Register.AL && r <= (int)Register.BL)
        {
            ref uint reg = ref R[r - (int)Register.AL];
            reg = (reg & 0xFFFFFF00) | (value & 0xFF);
        }
        else if (r >= (int)Register.AH && r <= (int)Register.BH)
        {
            ref uint reg = ref R[r - (int)Register.AH];
            reg = (reg & 0xFFFF00FF) | ((value & 0xFF) << 8);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RegisterSize(Register register) =>
        register.IsGPR8() ? 1 : register.IsGPR16() || register.IsSegmentRegister() ? 2 : 4;

    private static bool IsMemory(OpKind kind) => kind == OpKind.Memory;

    /// <summary>The operand's size in bytes (register, memory or immediate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int OperandSize(in Instruction instruction, int operand) => OpKindOf(instruction, operand) switch
    {
        OpKind.Register => RegisterSize(OpRegisterOf(instruction, operand)),
        OpKind.Immediate8 or OpKind.Immediate8_2nd => 1,
        OpKind.Immediate16 or OpKind.Immediate8to16 => 2,
        OpKind.Immediate32 or OpKind.Immediate8to32 => 4,
        _ => instruction.MemorySize.GetSize(),
    };

    /// <summary>
    /// Computes the effective address of the explicit memory operand (SDM vol. 2, 2.1.5): 16-bit
    /// addressing wraps at 64 KiB, 32-bit at 4 GiB.
    /// </summary>
    private void ComputeEffectiveAddress(in Instruction instruction)
    {
        var baseRegister = instruction.MemoryBase;
        var indexRegister = instruction.MemoryIndex;
        uint offset = instruction.MemoryDisplacement32;
        bool address16;
        if (baseRegister != Register.None)
        {
            address16 = baseRegister.IsGPR16();
            offset += ReadGpr(baseRegister);
        }
        else
        {
            address16 = indexRegister != Register.None ? indexRegister.IsGPR16() : instruction.MemoryDisplSize == 2;
        }

        if (indexRegister != Register.None)
        {
            offset += ReadGpr(indexRegister) * (uint)instruction.MemoryIndexScale;
        }

        _eaOffset = address16 ? offset & 0xFFFF : offset;
        _eaSegment = instruction.MemorySegment - Register.ES;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint ReadOperand(in Instruction instruction, int operand, int sizeBytes) => OpKindOf(instruction, operand) switch
    {
        OpKind.Register => ReadGpr(OpRegisterOf(instruction, operand)),
        OpKind.Memory => ReadMem(_eaSegment, _eaOffset, sizeBytes),
        OpKind.Immediate8 => instruction.Immediate8,
        OpKind.Immediate8_2nd => instruction.Immediate8_2nd,
        OpKind.Immediate16 => instruction.Immediate16,
        OpKind.Immediate32 => instruction.Immediate32,
        OpKind.Immediate8to16 => (ushort)instruction.Immediate8to16,
        OpKind.Immediate8to32 => (uint)instruction.Immediate8to32,
        _ => 0,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WriteOperand(in Instruction instruction, int operand, int sizeBytes, uint value)
    {
        if (OpKindOf(instruction, operand) == OpKind.Register)
        {
            WriteGpr(OpRegisterOf(instruction, operand), value);
        }
        else
        {
            WriteMem(_eaSegment, _eaOffset, sizeBytes, value);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint SizeMask(int sizeBytes) => sizeBytes switch
    {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFFFFFF,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint SignBit(int sizeBytes) => 1u << (sizeBytes * 8 - 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SignExtend(uint value, int sizeBytes) => sizeBytes switch
    {
        1 => (sbyte)value,
        2 => (short)value,
        _ => (int)value,
    };

    /// <summary>The target of a relative branch: the displacement Iced applied, added to the next EIP.</summary>
    private uint BranchTarget(in Instruction instruction)
    {
        if (instruction.Op0Kind == OpKind.NearBranch16)
        {
            return (ushort)(Eip + (ushort)(instruction.NearBranch16 - (ushort)instruction.NextIP));
        }

        return Eip + (uint)(instruction.NearBranch32 - (uint)instruction.NextIP);
    }

    private bool Condition(ConditionCode condition)
    {
        uint f = Eflags;
        return condition switch
        {
            ConditionCode.o => (f & OF) != 0,
            ConditionCode.no => (f & OF) == 0,
            ConditionCode.b => (f & CF) != 0,
            ConditionCode.ae => (f & CF) == 0,
            ConditionCode.e => (f & ZF) != 0,
            ConditionCode.ne => (f & ZF) == 0,
            ConditionCode.be => (f & (CF | ZF)) != 0,
            ConditionCode.a => (f & (CF | ZF)) == 0,
            ConditionCode.s => (f & SF) != 0,
            ConditionCode.ns => (f & SF) == 0,
            ConditionCode.p => (f & PF) != 0,
            ConditionCode.np => (f & PF) == 0,
            ConditionCode.l => ((f & SF) != 0) != ((f & OF) != 0),
            ConditionCode.ge => ((f & SF) != 0) == ((f & OF) != 0),
            ConditionCode.le => (f & ZF) != 0 || ((f & SF) != 0) != ((f & OF) != 0),
            ConditionCode.g => (f & ZF) == 0 && ((f & SF) != 0) == ((f & OF) != 0),
            _ => true,
        };
    }
}
