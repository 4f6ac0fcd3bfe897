using ImgTool.Machine.Cpu;
using ImgTool.Machine.Cpu.Jit;
using ImgTool.Machine.Memory;

namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>What the emulator left after a vector's instruction and the HLT behind it.</summary>
internal sealed record EmulatorOutcome(
    CpuExit Exit,
    string Diagnosis,
    RegisterState Registers,
    uint Eip,
    byte[]? Memory,
    ExceptionFrame Frame);

/// <summary>The three dwords an exception through a 32-bit gate pushed at the top of the stack (SDM vol. 3, 6.12.1).</summary>
internal readonly record struct ExceptionFrame(uint Eip, uint Cs, uint Eflags);

/// <summary>
/// The emulator's CPU in 32-bit flat protected mode at ring 0 without paging, as the vectors need:
/// a GDT with a flat 32-bit code and data segment, an IDT whose every vector leads to its own HLT
/// (so where the CPU halted names the exception), the instruction at <see cref="CodeAddress"/>
/// followed by HLT, and the harness's data window and stack at the addresses the host used.
/// </summary>
internal sealed class FlatProtectedModeCpu
{
    public const uint CodeAddress = 0x0001_0000;
    public const ushort CodeSelector = 0x08;
    public const ushort DataSelector = 0x10;

    /// <summary>The exception vectors, each with its own handler (SDM vol. 3, table 6-1).</summary>
    public const int VectorCount = 32;

    /// <summary>HLT (SDM vol. 2, HLT): stops the run with CpuExit.Halted and EIP after it.</summary>
    private const byte Hlt = 0xF4;
    private const uint RamBytes = 4 << 20;
    private const uint HandlersAddress = 0x0001_1000; // vector n's handler is the HLT at HandlersAddress + n
    private const uint GdtAddress = 0x0001_2000;
    private const uint IdtAddress = 0x0001_3000;
    private const int DescriptorBytes = 8;
    private const int FrameBytes = 12;

    // Flat 4 GiB segments: limit 0xFFFFF in 4 KiB units (G), 32-bit (D/B), present, DPL 0 (SDM vol. 3, 3.4.5).
    private const ulong FlatCodeDescriptor = 0x00CF_9A00_0000_FFFF; // execute/read
    private const ulong FlatDataDescriptor = 0x00CF_9200_0000_FFFF; // read/write
    private const ushort FlatCodeAttributes = 0x9B | SegmentRegister.AttrBig | AttrGranularity;
    private const ushort FlatDataAttributes = 0x93 | SegmentRegister.AttrBig | AttrGranularity;
    private const ushort AttrGranularity = 0x8000;
    private const uint FlatLimit = 0xFFFF_FFFF;

    /// <summary>A present 32-bit interrupt gate at DPL 0 (SDM vol. 3, figure 6-2): type 1110b in bits 8-11.</summary>
    private const uint InterruptGate32 = 0x8E00;

    // A run is the instruction and the HLT; a little more so that a runaway is seen as one.
    private const long BudgetInstructions = 4;

    private readonly PhysicalMemory _memory;
    private readonly X86Cpu _cpu;
    private readonly HarnessLayout _layout;

    /// <param name="translated">Run each vector's block translated (on its first run) instead of interpreted.</param>
    public FlatProtectedModeCpu(HarnessLayout layout, bool translated = false)
    {
        _layout = layout;
        _memory = new PhysicalMemory(RamBytes);
        _cpu = CreateCpu(_memory, translated ? new JitSettings(true, HotThreshold: 1) : JitSettings.Off);
        WriteTables();
    }

    /// <summary>
    /// The one place that constructs the CPU: the engine's constructor is changing, and only this
    /// method should need to follow it. Everything else uses the test-facing state (R, Eflags, S, Eip, Cr0, Run).
    /// </summary>
    private static X86Cpu CreateCpu(PhysicalMemory memory, JitSettings jit) => new(memory, new NoIo(), jit);

    /// <summary>Instructions the vectors ran inside translated blocks (0 when interpreting).</summary>
    public long InstructionsTranslated => _cpu.JitStatistics?.InstructionsTranslated ?? 0;

    public static uint HandlerAddress(int vector) => HandlersAddress + (uint)vector;

    public EmulatorOutcome Run(HostVector vector)
    {
        for (int i = 0; i < vector.Bytes.Length; i++)
        {
            _memory.Write8(CodeAddress + (uint)i, vector.Bytes[i]);
        }

        _memory.Write8(CodeAddress + (uint)vector.Bytes.Length, Hlt);
        if (vector.InputMemory is { } window)
        {
            _memory.WriteBlock(_layout.MemoryWindowAddress, window);
        }

        uint frameAddress = _layout.StackTopAddress - FrameBytes;
        _memory.WriteBlock(frameAddress, new byte[FrameBytes]);
        EnterFlatProtectedMode();
        Array.Copy(vector.Input.Gpr, _cpu.R, RegisterState.GprCount);
        _cpu.Eflags = vector.Input.Eflags;
        _cpu.Eip = CodeAddress;

        CpuExit exit = _cpu.Run(BudgetInstructions);
        byte[]? memory = null;
        if (vector.InputMemory is not null)
        {
            memory = new byte[_layout.MemoryWindowBytes];
            _memory.ReadBlock(_layout.MemoryWindowAddress, memory);
        }

        var frame = new ExceptionFrame(_memory.Read32(frameAddress), _memory.Read32(frameAddress + 4), _memory.Read32(frameAddress + 8));
        return new EmulatorOutcome(exit, exit == CpuExit.Halted ? "" : _cpu.Diagnosis, new RegisterState((uint[])_cpu.R.Clone(), _cpu.Eflags), _cpu.Eip, memory, frame);
    }

    private void EnterFlatProtectedMode()
    {
        _cpu.Reset();
        _cpu.Cr0 |= ControlBits.Cr0PE;
        _cpu.GdtBase = GdtAddress;
        _cpu.GdtLimit = 3 * DescriptorBytes - 1;
        _cpu.IdtBase = IdtAddress;
        _cpu.IdtLimit = VectorCount * DescriptorBytes - 1;
        for (int segment = 0; segment < _cpu.S.Length; segment++)
        {
            _cpu.S[segment] = new SegmentRegister { Selector = DataSelector, Base = 0, Limit = FlatLimit, Attributes = FlatDataAttributes };
        }

        _cpu.S[X86Cpu.CS] = new SegmentRegister { Selector = CodeSelector, Base = 0, Limit = FlatLimit, Attributes = FlatCodeAttributes };
    }

    private void WriteTables()
    {
        WriteDescriptor(GdtAddress + CodeSelector, FlatCodeDescriptor);
        WriteDescriptor(GdtAddress + DataSelector, FlatDataDescriptor);
        for (int vector = 0; vector < VectorCount; vector++)
        {
            uint handler = HandlerAddress(vector);
            _memory.Write8(handler, Hlt);

            // Gate: offset 15..0 and selector in the low dword; offset 31..16, P, DPL, type in the high dword.
            uint low = ((uint)CodeSelector << 16) | (handler & 0xFFFF);
            uint high = (handler & 0xFFFF_0000) | InterruptGate32;
            WriteDescriptor(IdtAddress + (uint)(vector * DescriptorBytes), ((ulong)high << 32) | low);
        }
    }

    private void WriteDescriptor(uint address, ulong descriptor)
    {
        _memory.Write32(address, (uint)descriptor);
        _memory.Write32(address + 4, (uint)(descriptor >> 32));
    }

    /// <summary>No devices: the vectors do no port I/O.</summary>
    private sealed class NoIo : IIoBus
    {
        public uint In(ushort port, int sizeBytes) => uint.MaxValue;

        public void Out(ushort port, int sizeBytes, uint value)
        {
        }
    }
}
