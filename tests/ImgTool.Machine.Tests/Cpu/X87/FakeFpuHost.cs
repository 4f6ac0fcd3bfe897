using ImgTool.Machine.Cpu.X87;

namespace ImgTool.Machine.Tests.Cpu.X87;

/// <summary>An <see cref="IFpuHost"/> over a byte array: the memory operand starts at offset 0; FaultAt makes accesses fail.</summary>
internal sealed class FakeFpuHost : IFpuHost
{
    public byte[] Memory { get; } = new byte[1024];

    /// <summary>When true every access faults (the FPU must then change nothing).</summary>
    public bool Fault { get; set; }

    public int Reads { get; private set; }

    public int Writes { get; private set; }

    public ushort Ax { get; set; }

    public uint Eflags { get; set; }

    public bool ReadOperand(int offsetBytes, Span<byte> destination)
    {
        if (Fault)
        {
            return false;
        }

        Reads++;
        Memory.AsSpan(offsetBytes, destination.Length).CopyTo(destination);
        return true;
    }

    public bool WriteOperand(int offsetBytes, ReadOnlySpan<byte> source)
    {
        if (Fault)
        {
            return false;
        }

        Writes++;
        source.CopyTo(Memory.AsSpan(offsetBytes));
        return true;
    }
}
