using System.Globalization;
using System.Runtime.CompilerServices;
using Iced.Intel;
using ImgTool.Machine.Cpu;
using ImgTool.Machine.Devices;

namespace ImgTool.Machine.Tracing;

/// <summary>What an <see cref="ExecutionTrace"/> event records besides instructions.</summary>
internal enum TraceEventKind : byte
{
    PortIn,
    PortOut,

    /// <summary>An IRQ acknowledged from the PIC and delivered.</summary>
    HardwareInterrupt,

    /// <summary>INT n, INT3, INTO.</summary>
    SoftwareInterrupt,

    /// <summary>A fault raised by an instruction (value: error code, when the exception has one).</summary>
    Exception,

    /// <summary>HLT: the machine skips virtual time to the next timer deadline.</summary>
    Halt,
}

/// <summary>
/// The bounded execution trace of imgtool boot --trace, for diagnosing a boot that goes wrong: the last
/// N instructions (a ring buffer of CS:EIP, mode and the instruction's bytes, disassembled only when
/// written), the port I/O, interrupts, exceptions and halts among and before them (a second ring), and a
/// count of accesses per port over the whole run. Recording costs a copy of 15 bytes per instruction;
/// nothing is recorded, and nothing costs more than a null check, when the trace is off.
/// </summary>
internal sealed class ExecutionTrace
{
    public const int DefaultInstructionDepth = 100_000;
    public const int MaxInstructionDepth = 10_000_000;

    /// <summary>Events kept besides instructions: a SYSLINUX boot makes about 10^5 port accesses, so all of them fit.</summary>
    public const int MaxEvents = 1 << 20;

    private readonly InstructionRecord[] _instructions;
    private long _instructionsRecorded;
    private EventRecord[] _events = new EventRecord[4096];
    private long _eventsRecorded;
    private readonly long[] _portInCounts = new long[65536];
    private readonly long[] _portOutCounts = new long[65536];
    private Func<long> _clock = () => 0;

    public ExecutionTrace(int instructionDepth)
    {
        if (instructionDepth is < 1 or > MaxInstructionDepth)
        {
            throw new ArgumentOutOfRangeException(nameof(instructionDepth), $"trace depth must be 1 to {MaxInstructionDepth}");
        }

        _instructions = new InstructionRecord[instructionDepth];
    }

    /// <summary>The retired-instruction count: events are stamped with it, so they interleave with the instructions.</summary>
    public void Attach(Func<long> clock) => _clock = clock;

    public int InstructionDepth => _instructions.Length;

    /// <summary>A slot for the instruction numbered <paramref name="number"/>; the caller fills its bytes.</summary>
    public Span<byte> Instruction(long number, ushort cs, uint eip, bool code32, int lengthBytes)
    {
        ref InstructionRecord record = ref _instructions[_instructionsRecorded++ % _instructions.Length];
        record.Number = number;
        record.Cs = cs;
        record.Eip = eip;
        record.Code32 = code32;
        record.Length = (byte)Math.Clamp(lengthBytes, 1, InstructionBytes.Capacity);
        return BytesOf(ref record.Bytes, record.Length);
    }

    public void PortIn(ushort port, int sizeBytes, uint value, bool unmapped)
    {
        _portInCounts[port]++;
        Add(TraceEventKind.PortIn, port, sizeBytes, value, unmapped);
    }

    public void PortOut(ushort port, int sizeBytes, uint value, bool unmapped)
    {
        _portOutCounts[port]++;
        Add(TraceEventKind.PortOut, port, sizeBytes, value, unmapped);
    }

    public void Interrupt(TraceEventKind kind, int vector) => Add(kind, (ushort)vector, 0, 0, unmapped: false);

    /// <summary>A fault raised by an instruction; the error code is shown when the exception pushes one.</summary>
    public void Exception(int vector, bool hasErrorCode, uint errorCode) =>
        Add(TraceEventKind.Exception, (ushort)vector, hasErrorCode ? 4 : 0, errorCode, unmapped: false);

    public void Halt() => Add(TraceEventKind.Halt, 0, 0, 0, unmapped: false);

    private void Add(TraceEventKind kind, ushort port, int sizeBytes, uint value, bool unmapped)
    {
        if (_eventsRecorded == _events.Length && _events.Length < MaxEvents)
        {
            // Grow while the ring has never wrapped, so short runs stay small.
            Array.Resize(ref _events, _events.Length * 2);
        }

        _events[_eventsRecorded++ % _events.Length] = new EventRecord
        {
            Number = _clock(),
            Kind = kind,
            Port = port,
            Size = (byte)sizeBytes,
            Value = value,
            Unmapped = unmapped,
        };
    }

    /// <summary>Writes the trace: a header, the events before the instruction window, the window with its events, the port counts.</summary>
    public void WriteTo(TextWriter writer, IEnumerable<string> header)
    {
        foreach (string line in header)
        {
            writer.WriteLine("# " + line);
        }

        long instructionCount = Math.Min(_instructionsRecorded, _instructions.Length);
        long eventCount = Math.Min(_eventsRecorded, _events.Length);
        long firstInstruction = _instructionsRecorded - instructionCount;
        long firstEvent = _eventsRecorded - eventCount;
        long windowStart = instructionCount > 0 ? _instructions[firstInstruction % _instructions.Length].Number : long.MaxValue;

        writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"# the last {instructionCount} instructions traced (depth {_instructions.Length}) and the last {eventCount} of {_eventsRecorded} port accesses, interrupts and halts"));
        writer.WriteLine("# instruction number, CS:EIP, bytes, disassembly; events below the instruction that caused them or before which they came");
        writer.WriteLine("# (events are numbered with the count of instructions retired when they happened)");

        long nextEvent = firstEvent;
        if (nextEvent < _eventsRecorded && Event(nextEvent).Number < windowStart)
        {
            writer.WriteLine("# events before the first traced instruction:");
            while (nextEvent < _eventsRecorded && Event(nextEvent).Number < windowStart)
            {
                WriteEvent(writer, Event(nextEvent++), withNumber: true);
            }

            writer.WriteLine("# instructions:");
        }

        var formatter = new NasmFormatter();
        formatter.Options.FirstOperandCharIndex = 8;
        var output = new StringOutput();
        for (long index = firstInstruction; index < _instructionsRecorded; index++)
        {
            InstructionRecord record = _instructions[index % _instructions.Length];
            // Events stamped before this instruction retired (interrupts delivered before it ran).
            while (nextEvent < _eventsRecorded && Event(nextEvent).Number < record.Number)
            {
                WriteEvent(writer, Event(nextEvent++), withNumber: false);
            }

            ReadOnlySpan<byte> bytes = BytesOf(ref record.Bytes, record.Length);
            Instruction instruction = Decode(bytes, record.Code32, record.Eip);
            formatter.Format(instruction, output);
            string text = instruction.Code == Code.INVALID ? "(invalid)" : output.ToStringAndReset();
            output.Reset();
            int shown = instruction.Code == Code.INVALID ? bytes.Length : Math.Min(instruction.Length, bytes.Length);
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{record.Number,12}  {record.Cs:X4}:{(record.Code32 ? record.Eip.ToString("X8", CultureInfo.InvariantCulture) : record.Eip.ToString("X4", CultureInfo.InvariantCulture)),-8}  {Convert.ToHexString(bytes[..shown]),-20}  {text}"));
            while (nextEvent < _eventsRecorded && Event(nextEvent).Number == record.Number)
            {
                WriteEvent(writer, Event(nextEvent++), withNumber: false);
            }
        }

        while (nextEvent < _eventsRecorded)
        {
            WriteEvent(writer, Event(nextEvent++), withNumber: true);
        }

        writer.WriteLine("# port accesses over the whole run: port, reads, writes");
        for (int port = 0; port < 65536; port++)
        {
            if (_portInCounts[port] != 0 || _portOutCounts[port] != 0)
            {
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"port 0x{port:X4}  in {_portInCounts[port],10}  out {_portOutCounts[port],10}  {PortNames.Describe((ushort)port)}").TrimEnd());
            }
        }
    }

    private EventRecord Event(long sequence) => _events[sequence % _events.Length];

    private static void WriteEvent(TextWriter writer, in EventRecord record, bool withNumber)
    {
        string prefix = withNumber ? record.Number.ToString(CultureInfo.InvariantCulture).PadLeft(12) + "    " : new string(' ', 16);
        string width = "X" + (Math.Max((int)record.Size, 1) * 2).ToString(CultureInfo.InvariantCulture);
        string unmapped = record.Unmapped ? "  (unemulated port)" : "";
        string text = record.Kind switch
        {
            TraceEventKind.PortIn => $"in   port {PortNames.Format(record.Port)} -> 0x{record.Value.ToString(width, CultureInfo.InvariantCulture)}{unmapped}",
            TraceEventKind.PortOut => $"out  port {PortNames.Format(record.Port)} <- 0x{record.Value.ToString(width, CultureInfo.InvariantCulture)}{unmapped}",
            TraceEventKind.HardwareInterrupt => $"irq  vector 0x{record.Port:X2}",
            TraceEventKind.SoftwareInterrupt => $"int  vector 0x{record.Port:X2}",
            TraceEventKind.Exception => $"exception {ExceptionNames.Describe(record.Port)}" + (record.Size != 0 ? $", error code 0x{record.Value:X4}" : ""),
            _ => "hlt  (waiting for an interrupt)",
        };
        writer.WriteLine(prefix + "-- " + text);
    }

    private static Span<byte> BytesOf(ref InstructionBytes bytes, int length) => ((Span<byte>)bytes)[..length];

    [InlineArray(Capacity)]
    private struct InstructionBytes
    {
        public const int Capacity = 15;
        private byte _first;
    }

    private struct InstructionRecord
    {
        public long Number;
        public uint Eip;
        public ushort Cs;
        public bool Code32;
        public byte Length;
        public InstructionBytes Bytes;
    }

    private struct EventRecord
    {
        public long Number;
        public uint Value;
        public ushort Port;
        public TraceEventKind Kind;
        public byte Size;
        public bool Unmapped;
    }

    /// <summary>Decodes a record's bytes as the machine did (same Iced options); a few microseconds a line, only when writing.</summary>
    private static Instruction Decode(ReadOnlySpan<byte> bytes, bool code32, uint ip)
    {
        var decoder = Decoder.Create(code32 ? 32 : 16, new ByteArrayCodeReader(bytes.ToArray()), ip, ImgTool.Machine.Cpu.Decode.BlockCache.Options);
        decoder.Decode(out Instruction instruction);
        return instruction;
    }
}
