using System.Buffers.Binary;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR in all forms, and the one-operand FCHS/FABS/FSQRT/FRNDINT.</summary>
internal sealed partial class X87Fpu
{
    /// <summary>The memory operand of an arithmetic or compare instruction, widened exactly to extended.</summary>
    private bool TryReadOperand(X87MemoryFormat format, IFpuHost host, out Float80 value, out bool narrowDenormal)
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        narrowDenormal = false;
        value = default;
        int size = format switch
        {
            X87MemoryFormat.Int16 => sizeof(short),
            X87MemoryFormat.Int32 or X87MemoryFormat.Single => sizeof(int),
            _ => sizeof(long),
        };
        if (!host.ReadOperand(0, bytes[..size]))
        {
            return false;
        }

        value = format switch
        {
            X87MemoryFormat.Int16 => FloatEncoding.FromInteger(BinaryPrimitives.ReadInt16LittleEndian(bytes)),
            X87MemoryFormat.Int32 => FloatEncoding.FromInteger(BinaryPrimitives.ReadInt32LittleEndian(bytes)),
            X87MemoryFormat.Int64 => FloatEncoding.FromInteger(BinaryPrimitives.ReadInt64LittleEndian(bytes)),
            X87MemoryFormat.Single => FloatEncoding.FromSingle(BinaryPrimitives.ReadUInt32LittleEndian(bytes), out narrowDenormal),
            _ => FloatEncoding.FromDouble(BinaryPrimitives.ReadUInt64LittleEndian(bytes), out narrowDenormal),
        };
        return true;
    }

    private X87Outcome Arithmetic(in X87Instruction instruction, IFpuHost host)
    {
        Float80 destination;
        Float80 source;
        bool narrowDenormal = false;
        int destinationIndex;
        if (instruction.Operands == X87Operands.Memory)
        {
            if (!TryReadOperand(instruction.Format, host, out source, out narrowDenormal))
            {
                return X87Outcome.MemoryFault;
            }

            destinationIndex = 0;
            if (Empty(0))
            {
                UnderflowInto(0, instruction.Pops);
                return X87Outcome.Completed;
            }

            destination = St(0);
        }
        else
        {
            int other = instruction.StackIndex;
            destinationIndex = instruction.Operands == X87Operands.StiSt0 ? other : 0;
            int sourceIndex = instruction.Operands == X87Operands.StiSt0 ? 0 : other;
            if (Empty(destinationIndex) || Empty(sourceIndex))
            {
                UnderflowInto(destinationIndex, instruction.Pops);
                return X87Outcome.Completed;
            }

            destination = St(destinationIndex);
            source = St(sourceIndex);
        }

        X87Control control = Control;
        X87Result result = instruction.Operation switch
        {
            X87Operation.Add => X87Arithmetic.Add(destination, source, false, control, narrowDenormal),
            X87Operation.Subtract => X87Arithmetic.Add(destination, source, true, control, narrowDenormal),
            X87Operation.SubtractReverse => X87Arithmetic.Add(source, destination, true, control, narrowDenormal),
            X87Operation.Multiply => X87Arithmetic.Multiply(destination, source, control, narrowDenormal),
            X87Operation.Divide => X87Arithmetic.Divide(destination, source, control, narrowDenormal),
            _ => X87Arithmetic.Divide(source, destination, control, narrowDenormal),
        };
        Commit(result, destinationIndex, instruction.Pops);
        return X87Outcome.Completed;
    }

    /// <summary>Stack underflow into a destination: masked, it gets the indefinite and the pops happen.</summary>
    private void UnderflowInto(int destinationIndex, int pops)
    {
        if (!StackUnderflow())
        {
            return;
        }

        SetSt(destinationIndex, Float80.Indefinite);
        for (int count = 0; count < pops; count++)
        {
            Pop();
        }
    }

    private X87Outcome Unary(X87Operation operation)
    {
        if (Empty(0))
        {
            UnderflowInto(0, 0);
            return X87Outcome.Completed;
        }

        Float80 value = St(0);
        X87Control control = Control;
        X87Result result = operation switch
        {
            // FCHS and FABS only touch the sign, even of NaNs and unsupported encodings (SDM vol. 2, FCHS/FABS).
            X87Operation.ChangeSign => new X87Result(value.Negate(), X87Exceptions.None, false, true),
            X87Operation.Absolute => new X87Result(value.Abs(), X87Exceptions.None, false, true),
            X87Operation.SquareRoot => X87Arithmetic.SquareRoot(value, control),
            _ => X87Special.RoundToInteger(value, control),
        };
        Commit(result, 0, 0);
        return X87Outcome.Completed;
    }
}
