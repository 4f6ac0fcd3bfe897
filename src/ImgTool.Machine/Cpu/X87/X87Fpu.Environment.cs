using System.Buffers.Binary;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>
/// The control instructions and the state images: FSTENV/FLDENV (14/28 bytes), FSAVE/FRSTOR (94/108 bytes) in
/// real and protected mode, 16- and 32-bit operand size (SDM vol. 1, 8.1.10, figures 8-9 to 8-12), and
/// FXSAVE/FXRSTOR (512 bytes, SDM vol. 1, 10.5.1, table 10-2).
/// </summary>
internal sealed partial class X87Fpu
{
    public const int Environment16Bytes = 14;
    public const int Environment32Bytes = 28;
    public const int Save16Bytes = Environment16Bytes + RegisterCount * Float80.SizeBytes;
    public const int Save32Bytes = Environment32Bytes + RegisterCount * Float80.SizeBytes;
    public const int FxSaveBytes = 512;
    /// <summary>MXCSR_MASK reported by FXSAVE: every MXCSR bit 0-15 writable (DAZ included).</summary>
    public const uint MxcsrMask = 0xFFFF;

    // 32-bit environment field offsets.
    private const int Env32Control = 0;
    private const int Env32Status = Env32Control + 4;
    private const int Env32Tag = Env32Status + 4;
    private const int Env32InstructionPointer = Env32Tag + 4;
    private const int Env32SelectorOpcode = Env32InstructionPointer + 4;
    private const int Env32DataPointer = Env32SelectorOpcode + 4;
    private const int Env32DataSelector = Env32DataPointer + 4;
    /// <summary>The unused upper halves of the 32-bit image's 16-bit fields are stored as ones.</summary>
    private const uint Env32Reserved = 0xFFFF0000;

    // 16-bit environment field offsets.
    private const int Env16Control = 0;
    private const int Env16Status = Env16Control + 2;
    private const int Env16Tag = Env16Status + 2;
    private const int Env16InstructionPointer = Env16Tag + 2;
    private const int Env16SelectorOpcode = Env16InstructionPointer + 2;
    private const int Env16DataPointer = Env16SelectorOpcode + 2;
    private const int Env16DataSelector = Env16DataPointer + 2;

    /// <summary>In the real-mode images the high pointer bits sit above the 11-bit opcode, at bit 12.</summary>
    private const int RealModeHighShift = 12;
    private const int OpcodeBits = 11;
    private const ushort OpcodeMask = (1 << OpcodeBits) - 1;
    private const int SegmentShift = 4;
    private const uint LowWord = 0xFFFF;

    // FXSAVE field offsets.
    private const int FxControl = 0;
    private const int FxStatus = FxControl + 2;
    private const int FxTag = FxStatus + 2;
    private const int FxOpcode = FxTag + 2;
    private const int FxInstructionPointer = FxOpcode + 2;
    private const int FxInstructionSelector = FxInstructionPointer + 4;
    private const int FxDataPointer = FxInstructionSelector + 4;
    private const int FxDataSelector = FxDataPointer + 4;
    private const int FxMxcsr = FxDataSelector + 4;
    private const int FxMxcsrMask = FxMxcsr + 4;
    private const int FxRegisters = FxMxcsrMask + 4;
    private const int FxRegisterStride = 16;

    private const ushort ControlWritableBits = 0x1F3F;
    /// <summary>Control word bit 6 is reserved and reads as 1.</summary>
    private const ushort ControlReservedOne = 0x0040;
    private const ushort ExceptionMasks = (ushort)X87Exceptions.All;
    private const ushort ClearedByFclex = (ushort)(X87Exceptions.All | X87Exceptions.StackFault) | ErrorSummary | Busy;

    private X87Outcome Init()
    {
        Reset();
        return X87Outcome.Completed;
    }

    private X87Outcome ClearExceptions()
    {
        status &= unchecked((ushort)~ClearedByFclex);
        return X87Outcome.Completed;
    }

    private X87Outcome LoadControlWord(IFpuHost host)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ushort)];
        if (!host.ReadOperand(0, bytes))
        {
            return X87Outcome.MemoryFault;
        }

        SetControl(BinaryPrimitives.ReadUInt16LittleEndian(bytes));
        return X87Outcome.Completed;
    }

    private void SetControl(ushort word)
    {
        control = (ushort)((word & ControlWritableBits) | ControlReservedOne);
        // Unmasking a flag that is already set makes it pending (SDM vol. 1, 8.5: the next waiting instruction faults).
        UpdateErrorSummary();
    }

    private static X87Outcome WriteWord(IFpuHost host, ushort value)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ushort)];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        return host.WriteOperand(0, bytes) ? X87Outcome.Completed : X87Outcome.MemoryFault;
    }

    private X87Outcome StoreStatusWordAx(IFpuHost host)
    {
        host.Ax = StatusWord;
        return X87Outcome.Completed;
    }

    private X87Outcome StoreEnvironment(IFpuHost host, in X87Context context)
    {
        Span<byte> image = stackalloc byte[context.OperandSize32 ? Environment32Bytes : Environment16Bytes];
        WriteEnvironment(image, context);
        if (!host.WriteOperand(0, image))
        {
            return X87Outcome.MemoryFault;
        }

        // FSTENV then masks every exception (SDM vol. 2, FSTENV), so a handler can use the FPU.
        control |= ExceptionMasks;
        return X87Outcome.Completed;
    }

    private X87Outcome LoadEnvironment(IFpuHost host, in X87Context context)
    {
        Span<byte> image = stackalloc byte[context.OperandSize32 ? Environment32Bytes : Environment16Bytes];
        if (!host.ReadOperand(0, image))
        {
            return X87Outcome.MemoryFault;
        }

        ReadEnvironment(image, context);
        return X87Outcome.Completed;
    }

    private X87Outcome Save(IFpuHost host, in X87Context context)
    {
        int environment = context.OperandSize32 ? Environment32Bytes : Environment16Bytes;
        Span<byte> image = stackalloc byte[environment + RegisterCount * Float80.SizeBytes];
        WriteEnvironment(image, context);
        for (int index = 0; index < RegisterCount; index++)
        {
            St(index).Write(image[(environment + index * Float80.SizeBytes)..]);
        }

        if (!host.WriteOperand(0, image))
        {
            return X87Outcome.MemoryFault;
        }

        // FSAVE ends with an FNINIT (SDM vol. 2, FSAVE).
        Reset();
        return X87Outcome.Completed;
    }

    private X87Outcome Restore(IFpuHost host, in X87Context context)
    {
        int environment = context.OperandSize32 ? Environment32Bytes : Environment16Bytes;
        Span<byte> image = stackalloc byte[environment + RegisterCount * Float80.SizeBytes];
        if (!host.ReadOperand(0, image))
        {
            return X87Outcome.MemoryFault;
        }

        ReadEnvironment(image, context);
        for (int index = 0; index < RegisterCount; index++)
        {
            registers[Physical(index)] = Float80.Read(image[(environment + index * Float80.SizeBytes)..]);
        }

        return X87Outcome.Completed;
    }

    private void WriteEnvironment(Span<byte> image, in X87Context context)
    {
        ushort tag = TagWord;
        // Real mode stores 20/32-bit linear pointers: segment * 16 + offset (SDM vol. 1, figures 8-10 and 8-12).
        uint instruction = context.ProtectedMode ? InstructionPointer : ((uint)InstructionSelector << SegmentShift) + InstructionPointer;
        uint data = context.ProtectedMode ? DataPointer : ((uint)DataSelector << SegmentShift) + DataPointer;
        if (context.OperandSize32)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(image[Env32Control..], Env32Reserved | control);
            BinaryPrimitives.WriteUInt32LittleEndian(image[Env32Status..], Env32Reserved | StatusWord);
            BinaryPrimitives.WriteUInt32LittleEndian(image[Env32Tag..], Env32Reserved | tag);
            if (context.ProtectedMode)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32InstructionPointer..], instruction);
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32SelectorOpcode..], InstructionSelector | ((uint)LastOpcode << 16));
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32DataPointer..], data);
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32DataSelector..], Env32Reserved | DataSelector);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32InstructionPointer..], Env32Reserved | (instruction & LowWord));
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32SelectorOpcode..], LastOpcode | ((instruction >> 16) << RealModeHighShift));
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32DataPointer..], Env32Reserved | (data & LowWord));
                BinaryPrimitives.WriteUInt32LittleEndian(image[Env32DataSelector..], (data >> 16) << RealModeHighShift);
            }

            return;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(image[Env16Control..], control);
        BinaryPrimitives.WriteUInt16LittleEndian(image[Env16Status..], StatusWord);
        BinaryPrimitives.WriteUInt16LittleEndian(image[Env16Tag..], tag);
        if (context.ProtectedMode)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16InstructionPointer..], (ushort)instruction);
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16SelectorOpcode..], InstructionSelector);
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16DataPointer..], (ushort)data);
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16DataSelector..], DataSelector);
        }
        else
        {
            const uint HighNibble = 0xF;
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16InstructionPointer..], (ushort)instruction);
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16SelectorOpcode..], (ushort)(LastOpcode | (((instruction >> 16) & HighNibble) << RealModeHighShift)));
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16DataPointer..], (ushort)data);
            BinaryPrimitives.WriteUInt16LittleEndian(image[Env16DataSelector..], (ushort)(((data >> 16) & HighNibble) << RealModeHighShift));
        }
    }

    private void ReadEnvironment(ReadOnlySpan<byte> image, in X87Context context)
    {
        ushort controlWord;
        ushort statusWord;
        ushort tag;
        uint instruction;
        ushort instructionSelector;
        ushort opcode;
        uint data;
        ushort dataSelector;
        if (context.OperandSize32)
        {
            controlWord = BinaryPrimitives.ReadUInt16LittleEndian(image[Env32Control..]);
            statusWord = BinaryPrimitives.ReadUInt16LittleEndian(image[Env32Status..]);
            tag = BinaryPrimitives.ReadUInt16LittleEndian(image[Env32Tag..]);
            uint selectorOpcode = BinaryPrimitives.ReadUInt32LittleEndian(image[Env32SelectorOpcode..]);
            if (context.ProtectedMode)
            {
                instruction = BinaryPrimitives.ReadUInt32LittleEndian(image[Env32InstructionPointer..]);
                instructionSelector = (ushort)selectorOpcode;
                opcode = (ushort)((selectorOpcode >> 16) & OpcodeMask);
                data = BinaryPrimitives.ReadUInt32LittleEndian(image[Env32DataPointer..]);
                dataSelector = BinaryPrimitives.ReadUInt16LittleEndian(image[Env32DataSelector..]);
            }
            else
            {
                instruction = BinaryPrimitives.ReadUInt16LittleEndian(image[Env32InstructionPointer..]) | ((selectorOpcode >> RealModeHighShift) << 16);
                instructionSelector = 0;
                opcode = (ushort)(selectorOpcode & OpcodeMask);
                data = BinaryPrimitives.ReadUInt16LittleEndian(image[Env32DataPointer..])
                    | ((BinaryPrimitives.ReadUInt32LittleEndian(image[Env32DataSelector..]) >> RealModeHighShift) << 16);
                dataSelector = 0;
            }
        }
        else
        {
            controlWord = BinaryPrimitives.ReadUInt16LittleEndian(image[Env16Control..]);
            statusWord = BinaryPrimitives.ReadUInt16LittleEndian(image[Env16Status..]);
            tag = BinaryPrimitives.ReadUInt16LittleEndian(image[Env16Tag..]);
            ushort selectorOpcode = BinaryPrimitives.ReadUInt16LittleEndian(image[Env16SelectorOpcode..]);
            instruction = BinaryPrimitives.ReadUInt16LittleEndian(image[Env16InstructionPointer..]);
            data = BinaryPrimitives.ReadUInt16LittleEndian(image[Env16DataPointer..]);
            if (context.ProtectedMode)
            {
                instructionSelector = selectorOpcode;
                opcode = 0;
                dataSelector = BinaryPrimitives.ReadUInt16LittleEndian(image[Env16DataSelector..]);
            }
            else
            {
                instruction |= (uint)(selectorOpcode >> RealModeHighShift) << 16;
                instructionSelector = 0;
                opcode = (ushort)(selectorOpcode & OpcodeMask);
                data |= (uint)(BinaryPrimitives.ReadUInt16LittleEndian(image[Env16DataSelector..]) >> RealModeHighShift) << 16;
                dataSelector = 0;
            }
        }

        status = (ushort)(statusWord & ~TopMask);
        top = (statusWord & TopMask) >> TopShift;
        // Only "empty or not" is kept; FSTENV recomputes the other tags from the contents (SDM vol. 1, 8.1.7).
        emptyMask = 0;
        for (int physical = 0; physical < RegisterCount; physical++)
        {
            if (((tag >> (physical * TagBits)) & TagEmpty) == TagEmpty)
            {
                emptyMask |= 1 << physical;
            }
        }

        InstructionPointer = instruction;
        InstructionSelector = instructionSelector;
        LastOpcode = opcode;
        DataPointer = data;
        DataSelector = dataSelector;
        SetControl(controlWord);
    }

    private X87Outcome FxSave(IFpuHost host)
    {
        Span<byte> image = stackalloc byte[FxSaveBytes];
        image.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(image[FxControl..], control);
        BinaryPrimitives.WriteUInt16LittleEndian(image[FxStatus..], StatusWord);
        // The abridged tag: one bit per physical register, 1 = not empty (SDM vol. 1, 10.5.1.1).
        image[FxTag] = (byte)~emptyMask;
        BinaryPrimitives.WriteUInt16LittleEndian(image[FxOpcode..], LastOpcode);
        BinaryPrimitives.WriteUInt32LittleEndian(image[FxInstructionPointer..], InstructionPointer);
        BinaryPrimitives.WriteUInt16LittleEndian(image[FxInstructionSelector..], InstructionSelector);
        BinaryPrimitives.WriteUInt32LittleEndian(image[FxDataPointer..], DataPointer);
        BinaryPrimitives.WriteUInt16LittleEndian(image[FxDataSelector..], DataSelector);
        BinaryPrimitives.WriteUInt32LittleEndian(image[FxMxcsr..], Mxcsr);
        BinaryPrimitives.WriteUInt32LittleEndian(image[FxMxcsrMask..], MxcsrMask);
        for (int index = 0; index < RegisterCount; index++)
        {
            St(index).Write(image[(FxRegisters + index * FxRegisterStride)..]);
        }

        return host.WriteOperand(0, image) ? X87Outcome.Completed : X87Outcome.MemoryFault;
    }

    private X87Outcome FxRestore(IFpuHost host)
    {
        Span<byte> image = stackalloc byte[FxSaveBytes];
        if (!host.ReadOperand(0, image))
        {
            return X87Outcome.MemoryFault;
        }

        uint mxcsr = BinaryPrimitives.ReadUInt32LittleEndian(image[FxMxcsr..]);
        if ((mxcsr & ~MxcsrMask) != 0)
        {
            return X87Outcome.GeneralProtection;
        }

        ushort statusWord = BinaryPrimitives.ReadUInt16LittleEndian(image[FxStatus..]);
        status = (ushort)(statusWord & ~TopMask);
        top = (statusWord & TopMask) >> TopShift;
        emptyMask = ~image[FxTag] & ((1 << RegisterCount) - 1);
        LastOpcode = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(image[FxOpcode..]) & OpcodeMask);
        InstructionPointer = BinaryPrimitives.ReadUInt32LittleEndian(image[FxInstructionPointer..]);
        InstructionSelector = BinaryPrimitives.ReadUInt16LittleEndian(image[FxInstructionSelector..]);
        DataPointer = BinaryPrimitives.ReadUInt32LittleEndian(image[FxDataPointer..]);
        DataSelector = BinaryPrimitives.ReadUInt16LittleEndian(image[FxDataSelector..]);
        Mxcsr = mxcsr;
        for (int index = 0; index < RegisterCount; index++)
        {
            registers[Physical(index)] = Float80.Read(image[(FxRegisters + index * FxRegisterStride)..]);
        }

        SetControl(BinaryPrimitives.ReadUInt16LittleEndian(image[FxControl..]));
        return X87Outcome.Completed;
    }
}
