using System.Numerics;
using System.Runtime.CompilerServices;

namespace ImgTool.Machine.Cpu;

/// <summary>What the last flag-setting ALU operation was, so its status flags can be computed when read.</summary>
internal enum FlagOp : byte
{
    /// <summary>The status flags are materialized in the EFLAGS image.</summary>
    None,
    Add,

    /// <summary>ADC with carry in 1 (ADC with carry 0 is Add).</summary>
    AddCarry,
    Sub,

    /// <summary>SBB with borrow in 1.</summary>
    SubBorrow,

    /// <summary>AND, OR, XOR, TEST: CF = OF = 0 (AF undefined; 0 on a P6).</summary>
    Logic,

    /// <summary>INC and DEC: the Add/Sub formulas with 1, and CF kept from before.</summary>
    Inc,
    Dec,

    /// <summary>SHL, SHR, SAR: ZF SF PF from the result, CF and OF as computed (their EFLAGS bits in A), AF 0.</summary>
    Shift,
}

/// <summary>
/// Lazy status flags (the technique of Bochs and QEMU): an arithmetic instruction records its kind, operands,
/// result and width; CF PF AF ZF SF OF are computed only when something reads them (a Jcc reads one or two,
/// PUSHF all). Most results are overwritten before any flag is read, so most instructions never pay for them.
/// </summary>
internal sealed partial class X86Cpu
{
    private uint _eflags = Flags.Reserved1;
    private FlagOp _flagOp;
    private uint _flagA, _flagB, _flagResult;

    /// <summary>Operand width of the recorded operation: its sign bit and value mask.</summary>
    private uint _flagSign, _flagMask;

    /// <summary>CF before an INC or DEC, which leave it unchanged.</summary>
    private bool _flagCarryKept;

    /// <summary>The full EFLAGS image (the status flags computed if they are still lazy).</summary>
    public uint Eflags
    {
        get
        {
            if (_flagOp != FlagOp.None)
            {
                MaterializeFlags();
            }

            return _eflags;
        }

        set
        {
            _eflags = value | Flags.Reserved1;
            _flagOp = FlagOp.None;
        }
    }

    /// <summary>The full EFLAGS image, leaving the lazy record as it is (the lockstep harness must not change what it watches).</summary>
    internal uint EflagsWithoutMaterializing()
    {
        var (op, flags) = (_flagOp, _eflags);
        uint value = Eflags;
        (_flagOp, _eflags) = (op, flags);
        return value;
    }

    /// <summary>EFLAGS bits that are never lazy (IF, DF, TF, IOPL, VM, ...), read without computing the status flags.</summary>
    internal uint SystemFlags => _eflags;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetLazy(FlagOp op, uint a, uint b, uint result, int sizeBytes)
    {
        _flagOp = op;
        _flagA = a;
        _flagB = b;
        _flagMask = SizeMask(sizeBytes);
        _flagResult = result & _flagMask;
        _flagSign = SignBit(sizeBytes);
    }

    /// <summary>INC/DEC: records the operation after keeping the current CF.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetLazyIncDec(bool decrement, uint a, uint result, int sizeBytes)
    {
        _flagCarryKept = CarryFlag;
        SetLazy(decrement ? FlagOp.Dec : FlagOp.Inc, a, 1, result, sizeBytes);
    }

    /// <summary>Writes all six status flags at once (shifts, multiplies, BCD: computed eagerly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetStatusFlags(uint flags)
    {
        _eflags = (_eflags & ~Flags.Arithmetic) | (flags & Flags.Arithmetic);
        _flagOp = FlagOp.None;
    }

    /// <summary>ROL/ROR: CF and OF from their EFLAGS bits, the other status flags kept (materialized first).</summary>
    internal void SetCarryOverflow(uint carryOverflow)
    {
        uint flags = Eflags;
        _eflags = (flags & ~(Flags.CF | Flags.OF)) | (carryOverflow & (Flags.CF | Flags.OF));
    }

    /// <summary>Sets or clears one status flag, keeping the others (materializing them first).</summary>
    internal void SetFlag(uint flag, bool value)
    {
        uint flags = Eflags;
        _eflags = value ? flags | flag : flags & ~flag;
    }

    /// <summary>ZF SF PF from a result, the given CF/AF/OF bits as they are.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void SetResultFlags(uint result, int sizeBytes, uint carryAuxOverflow)
    {
        result &= SizeMask(sizeBytes);
        uint flags = carryAuxOverflow | ParityFlag(result);
        if (result == 0)
        {
            flags |= Flags.ZF;
        }

        if ((result & SignBit(sizeBytes)) != 0)
        {
            flags |= Flags.SF;
        }

        SetStatusFlags(flags);
    }

    private void MaterializeFlags()
    {
        uint flags = 0;
        if (CarryFlag)
        {
            flags |= Flags.CF;
        }

        flags |= ParityFlag(_flagResult);
        if (AuxFlag)
        {
            flags |= Flags.AF;
        }

        if (_flagResult == 0)
        {
            flags |= Flags.ZF;
        }

        if ((_flagResult & _flagSign) != 0)
        {
            flags |= Flags.SF;
        }

        if (OverflowFlag)
        {
            flags |= Flags.OF;
        }

        _eflags = (_eflags & ~Flags.Arithmetic) | flags;
        _flagOp = FlagOp.None;
    }

    internal bool CarryFlag
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _flagOp switch
        {
            FlagOp.None => (_eflags & Flags.CF) != 0,
            FlagOp.Add => _flagResult < (_flagA & _flagMask),
            FlagOp.AddCarry => _flagResult <= (_flagA & _flagMask),
            FlagOp.Sub => (_flagA & _flagMask) < (_flagB & _flagMask),
            FlagOp.SubBorrow => (_flagA & _flagMask) <= (_flagB & _flagMask),
            FlagOp.Logic => false,
            FlagOp.Shift => (_flagA & Flags.CF) != 0,
            _ => _flagCarryKept,
        };
    }

    internal bool ZeroFlag
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _flagOp == FlagOp.None ? (_eflags & Flags.ZF) != 0 : _flagResult == 0;
    }

    internal bool SignFlag
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _flagOp == FlagOp.None ? (_eflags & Flags.SF) != 0 : (_flagResult & _flagSign) != 0;
    }

    internal bool OverflowFlag
    {
        get => _flagOp switch
        {
            FlagOp.None => (_eflags & Flags.OF) != 0,
            FlagOp.Add or FlagOp.AddCarry or FlagOp.Inc => ((_flagA ^ _flagResult) & (_flagB ^ _flagResult) & _flagSign) != 0,
            FlagOp.Sub or FlagOp.SubBorrow or FlagOp.Dec => ((_flagA ^ _flagB) & (_flagA ^ _flagResult) & _flagSign) != 0,
            FlagOp.Shift => (_flagA & Flags.OF) != 0,
            _ => false,
        };
    }

    internal bool ParityEven => _flagOp == FlagOp.None ? (_eflags & Flags.PF) != 0 : ParityFlag(_flagResult) != 0;

    private bool AuxFlag => _flagOp switch
    {
        FlagOp.None => (_eflags & Flags.AF) != 0,
        FlagOp.Logic or FlagOp.Shift => false,
        _ => ((_flagA ^ _flagB ^ _flagResult) & 0x10) != 0,
    };

    /// <summary>The 16 Jcc/SETcc/CMOVcc conditions in encoding order (SDM vol. 2, appendix B.1.4.7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool Condition(int code)
    {
        bool result = (code >> 1) switch
        {
            0 => OverflowFlag,
            1 => CarryFlag,
            2 => ZeroFlag,
            3 => CarryFlag || ZeroFlag,
            4 => SignFlag,
            5 => ParityEven,
            6 => SignFlag != OverflowFlag,
            _ => ZeroFlag || SignFlag != OverflowFlag,
        };
        return result != ((code & 1) != 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint ParityFlag(uint value) => (BitOperations.PopCount(value & 0xFF) & 1) == 0 ? Flags.PF : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint SizeMask(int sizeBytes) => sizeBytes == 4 ? 0xFFFFFFFF : (1u << (sizeBytes * 8)) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint SignBit(int sizeBytes) => 1u << (sizeBytes * 8 - 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int SignExtend(uint value, int sizeBytes) => sizeBytes switch
    {
        1 => (sbyte)value,
        2 => (short)value,
        _ => (int)value,
    };
}
