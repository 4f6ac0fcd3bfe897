using System.Buffers.Binary;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>FLD/FILD/FBLD/FLDxx and FST(P)/FIST(P)/FBSTP in every format (SDM vol. 2; vol. 1, 4.2 and 8.3.3-4).</summary>
internal sealed partial class X87Fpu
{
    private const uint SingleIndefinite = 0xFFC00000;
    private const ulong DoubleIndefinite = 0xFFF8000000000000;
    private const byte IntegerIndefiniteHighByte = 0x80;

    private static int SizeOf(X87MemoryFormat format) => format switch
    {
        X87MemoryFormat.Int16 or X87MemoryFormat.Word => sizeof(short),
        X87MemoryFormat.Int32 or X87MemoryFormat.Single => sizeof(int),
        X87MemoryFormat.Int64 or X87MemoryFormat.Double => sizeof(long),
        _ => Float80.SizeBytes,
    };

    private X87Outcome Load(in X87Instruction instruction, IFpuHost host)
    {
        Float80 value;
        X87Result result;
        if (instruction.Operands == X87Operands.Memory)
        {
            Span<byte> bytes = stackalloc byte[Float80.SizeBytes];
            bytes = bytes[..SizeOf(instruction.Format)];
            if (!host.ReadOperand(0, bytes))
            {
                return X87Outcome.MemoryFault;
            }

            if (!TryPushCheck())
            {
                return X87Outcome.Completed;
            }

            result = instruction.Format switch
            {
                X87MemoryFormat.Extended => new X87Result(Float80.Read(bytes), X87Exceptions.None, false, true),
                X87MemoryFormat.Single => WidenedLoad(FloatEncoding.FromSingle(BinaryPrimitives.ReadUInt32LittleEndian(bytes), out bool d32), d32),
                _ => WidenedLoad(FloatEncoding.FromDouble(BinaryPrimitives.ReadUInt64LittleEndian(bytes), out bool d64), d64),
            };
        }
        else
        {
            bool sourceEmpty = Empty(instruction.StackIndex);
            value = St(instruction.StackIndex);
            if (!TryPushCheck())
            {
                return X87Outcome.Completed;
            }

            if (sourceEmpty)
            {
                if (StackUnderflow())
                {
                    Push(Float80.Indefinite);
                }

                return X87Outcome.Completed;
            }

            result = new X87Result(value, X87Exceptions.None, false, true);
        }

        SetC1(false);
        Raise(result.Exceptions);
        if (result.Store)
        {
            Push(result.Value);
        }

        return X87Outcome.Completed;
    }

    /// <summary>A single/double load: SNaN is IE (quieted when masked), a denormal is DE (SDM vol. 2, FLD).</summary>
    private X87Result WidenedLoad(Float80 value, bool denormal)
    {
        X87Control control = Control;
        if (value.Class == Float80Class.SignalingNaN)
        {
            return control.IsMasked(X87Exceptions.Invalid)
                ? new X87Result(value.Quieted(), X87Exceptions.Invalid, false, true)
                : X87Result.Stopped(X87Exceptions.Invalid);
        }

        if (denormal)
        {
            // A load completes even with DE unmasked (checked on a host x87); the handler sees the flag.
            return new X87Result(value, X87Exceptions.Denormal, false, true);
        }

        return new X87Result(value, X87Exceptions.None, false, true);
    }

    private X87Outcome LoadInteger(in X87Instruction instruction, IFpuHost host)
    {
        Span<byte> bytes = stackalloc byte[sizeof(long)];
        bytes = bytes[..SizeOf(instruction.Format)];
        if (!host.ReadOperand(0, bytes))
        {
            return X87Outcome.MemoryFault;
        }

        long integer = instruction.Format switch
        {
            X87MemoryFormat.Int16 => BinaryPrimitives.ReadInt16LittleEndian(bytes),
            X87MemoryFormat.Int32 => BinaryPrimitives.ReadInt32LittleEndian(bytes),
            _ => BinaryPrimitives.ReadInt64LittleEndian(bytes),
        };
        return PushExact(FloatEncoding.FromInteger(integer));
    }

    private X87Outcome LoadBcd(IFpuHost host)
    {
        Span<byte> bytes = stackalloc byte[Float80.SizeBytes];
        if (!host.ReadOperand(0, bytes))
        {
            return X87Outcome.MemoryFault;
        }

        return PushExact(IntegerConversion.FromBcd(bytes));
    }

    private X87Outcome LoadConstant(X87Constant constant)
    {
        ExactReal exact = X87Constants.Get(constant);
        Float80 value = exact.IsZero
            ? Float80.PositiveZero
            : FloatEncoding.ToExtended(Rounder.Round(exact, FloatFormat.Extended, Control.Rounding));
        return PushExact(value);
    }

    private X87Outcome PushExact(Float80 value)
    {
        if (TryPushCheck())
        {
            SetC1(false);
            Push(value);
        }

        return X87Outcome.Completed;
    }

    private X87Outcome Store(in X87Instruction instruction, IFpuHost host)
    {
        if (instruction.Operands != X87Operands.Memory)
        {
            int index = instruction.StackIndex;
            if (Empty(0))
            {
                UnderflowInto(index, instruction.Pops);
                return X87Outcome.Completed;
            }

            SetC1(false);
            SetSt(index, St(0));
            if (instruction.Pops != 0)
            {
                Pop();
            }

            return X87Outcome.Completed;
        }

        Span<byte> bytes = stackalloc byte[Float80.SizeBytes];
        bytes = bytes[..SizeOf(instruction.Format)];
        X87Result result;
        if (Empty(0))
        {
            result = new X87Result(Float80.Indefinite, X87Exceptions.Invalid | X87Exceptions.StackFault, false,
                Control.IsMasked(X87Exceptions.Invalid));
            EncodeIndefinite(instruction.Format, bytes);
        }
        else
        {
            result = EncodeFloat(St(0), instruction.Format, bytes);
        }

        return FinishStore(result, bytes, host, instruction.Pops);
    }

    /// <summary>Writes the stored bytes (when the result is stored), then records flags and pops; a fault changes nothing.</summary>
    private X87Outcome FinishStore(in X87Result result, ReadOnlySpan<byte> bytes, IFpuHost host, int pops)
    {
        if (result.Store && !host.WriteOperand(0, bytes))
        {
            return X87Outcome.MemoryFault;
        }

        bool stackFault = (result.Exceptions & X87Exceptions.StackFault) != 0;
        SetC1(!stackFault && result.RoundedUp);
        Raise(result.Exceptions);
        if (result.Store)
        {
            for (int count = 0; count < pops; count++)
            {
                Pop();
            }
        }

        return X87Outcome.Completed;
    }

    private static void EncodeIndefinite(X87MemoryFormat format, Span<byte> bytes)
    {
        switch (format)
        {
            case X87MemoryFormat.Single:
                BinaryPrimitives.WriteUInt32LittleEndian(bytes, SingleIndefinite);
                break;
            case X87MemoryFormat.Double:
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, DoubleIndefinite);
                break;
            case X87MemoryFormat.Extended:
                Float80.Indefinite.Write(bytes);
                break;
            case X87MemoryFormat.Bcd:
                IntegerConversion.BcdIndefinite.CopyTo(bytes);
                break;
            default:
                // The integer indefinite: the most negative integer of the width (SDM vol. 1, table 4-2).
                bytes.Clear();
                bytes[^1] = IntegerIndefiniteHighByte;
                break;
        }
    }

    /// <summary>Narrows ST(0) to single, double or extended by RC (PC does not apply to stores, SDM vol. 1, 8.1.5.2).</summary>
    private X87Result EncodeFloat(Float80 value, X87MemoryFormat format, Span<byte> bytes)
    {
        X87Control control = Control;
        if (format == X87MemoryFormat.Extended)
        {
            value.Write(bytes);
            return new X87Result(value, X87Exceptions.None, false, true);
        }

        bool single = format == X87MemoryFormat.Single;
        switch (value.Class)
        {
            case Float80Class.Unsupported:
                EncodeIndefinite(format, bytes);
                return new X87Result(value, X87Exceptions.Invalid, false, control.IsMasked(X87Exceptions.Invalid));
            case Float80Class.QuietNaN:
            case Float80Class.SignalingNaN:
                WriteNarrow(bytes, single, FloatEncoding.NaNToSingle(value), FloatEncoding.NaNToDouble(value));
                bool signaling = value.Class == Float80Class.SignalingNaN;
                return new X87Result(value, signaling ? X87Exceptions.Invalid : X87Exceptions.None, false,
                    !signaling || control.IsMasked(X87Exceptions.Invalid));
            case Float80Class.Infinity:
            case Float80Class.Zero:
                RoundedReal exact = new(value.Sign, 0, value.Class == Float80Class.Zero ? 0 : Float80.IntegerBit,
                    value.Class == Float80Class.Infinity, false, false, false, false);
                WriteNarrow(bytes, single, FloatEncoding.ToSingle(exact), FloatEncoding.ToDouble(exact));
                return new X87Result(value, X87Exceptions.None, false, true);
        }

        FloatFormat target = single ? FloatFormat.Single : FloatFormat.Double;
        RoundedReal rounded = Rounder.Round(ExactReal.FromFloat80(value), target, control.Rounding);
        X87Exceptions flags = X87Exceptions.None;
        if (rounded.Overflowed)
        {
            flags |= X87Exceptions.Overflow | X87Exceptions.Precision;
            if (!control.IsMasked(X87Exceptions.Overflow))
            {
                // Unmasked: memory is left alone (SDM vol. 1, 4.9.1.4).
                return new X87Result(value, X87Exceptions.Overflow, false, false);
            }
        }
        else if (rounded.Tiny && !control.IsMasked(X87Exceptions.Underflow))
        {
            return new X87Result(value, X87Exceptions.Underflow, false, false);
        }
        else if (rounded.MaskedUnderflow)
        {
            flags |= X87Exceptions.Underflow;
        }

        if (rounded.Inexact)
        {
            flags |= X87Exceptions.Precision;
        }

        WriteNarrow(bytes, single, FloatEncoding.ToSingle(rounded), FloatEncoding.ToDouble(rounded));
        return new X87Result(value, flags, rounded.RoundedUp, true);
    }

    private static void WriteNarrow(Span<byte> bytes, bool single, uint singleBits, ulong doubleBits)
    {
        if (single)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, singleBits);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, doubleBits);
        }
    }

    private X87Outcome StoreInteger(in X87Instruction instruction, IFpuHost host)
    {
        Span<byte> bytes = stackalloc byte[sizeof(long)];
        bytes = bytes[..SizeOf(instruction.Format)];
        X87Control control = Control;
        X87Result result;
        if (Empty(0))
        {
            EncodeIndefinite(instruction.Format, bytes);
            result = new X87Result(default, X87Exceptions.Invalid | X87Exceptions.StackFault, false, control.IsMasked(X87Exceptions.Invalid));
        }
        else
        {
            Float80 value = St(0);
            Float80Class kind = value.Class;
            RoundedInteger rounded = kind is Float80Class.Zero or Float80Class.Normal or Float80Class.Denormal
                ? IntegerConversion.RoundToInteger(value, control.Rounding)
                : new RoundedInteger(false, UInt128.Zero, false, false, true);
            if (!IntegerConversion.Fits(rounded, bytes.Length * 8))
            {
                // NaN, infinity, unsupported or out of range: IE, the integer indefinite when masked (SDM vol. 2, FIST).
                EncodeIndefinite(instruction.Format, bytes);
                result = new X87Result(default, X87Exceptions.Invalid, false, control.IsMasked(X87Exceptions.Invalid));
            }
            else
            {
                long integer = IntegerConversion.ToSigned(rounded);
                Span<byte> full = stackalloc byte[sizeof(long)];
                BinaryPrimitives.WriteInt64LittleEndian(full, integer);
                full[..bytes.Length].CopyTo(bytes);
                result = new X87Result(default, rounded.Inexact ? X87Exceptions.Precision : X87Exceptions.None, rounded.RoundedUp, true);
            }
        }

        return FinishStore(result, bytes, host, instruction.Pops);
    }

    private X87Outcome StoreBcd(IFpuHost host)
    {
        Span<byte> bytes = stackalloc byte[Float80.SizeBytes];
        X87Control control = Control;
        X87Result result;
        if (Empty(0))
        {
            EncodeIndefinite(X87MemoryFormat.Bcd, bytes);
            result = new X87Result(default, X87Exceptions.Invalid | X87Exceptions.StackFault, false, control.IsMasked(X87Exceptions.Invalid));
        }
        else
        {
            Float80 value = St(0);
            Float80Class kind = value.Class;
            RoundedInteger rounded = kind is Float80Class.Zero or Float80Class.Normal or Float80Class.Denormal
                ? IntegerConversion.RoundToInteger(value, control.Rounding)
                : new RoundedInteger(false, UInt128.Zero, false, false, true);
            if (rounded.TooLarge || rounded.Magnitude > IntegerConversion.BcdMaximum)
            {
                EncodeIndefinite(X87MemoryFormat.Bcd, bytes);
                result = new X87Result(default, X87Exceptions.Invalid, false, control.IsMasked(X87Exceptions.Invalid));
            }
            else
            {
                IntegerConversion.ToBcd(rounded.Sign, (ulong)rounded.Magnitude, bytes);
                result = new X87Result(default, rounded.Inexact ? X87Exceptions.Precision : X87Exceptions.None, rounded.RoundedUp, true);
            }
        }

        return FinishStore(result, bytes, host, 1);
    }
}
