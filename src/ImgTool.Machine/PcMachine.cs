using System.Buffers.Binary;
using System.Diagnostics;
using ImgTool.Machine.Cpu;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Pci;
using ImgTool.Machine.Tracing;
using ImgTool.Machine.Virtio;

namespace ImgTool.Machine;

/// <summary>What a boot run is given.</summary>
internal sealed record MachineOptions(
    byte[] Firmware, uint RamSizeBytes = 256u << 20, ImgTool.Block.Devices.IBlockDevice? Disk = null, ExecutionTrace? Trace = null,
    VirtioPciMode DiskInterface = VirtioPciMode.Transitional, VirtioBlkOptions? DiskOptions = null)
{
    public const uint MaxRamSizeBytes = 3u << 30;
}

/// <summary>How a run ended.</summary>
internal enum MachineOutcome
{
    /// <summary>The stop condition (expected output) was met.</summary>
    Matched,
    InstructionBudget,
    WallTimeout,
    HaltedInterruptsOff,

    /// <summary>HLT with interrupts on, but the timer is stopped or masked and nothing is pending.</summary>
    HaltedNothingToWake,
    TripleFault,
    Unimplemented,
    ResetRequested,
}

internal sealed record MachineRunResult(MachineOutcome Outcome, string Diagnosis, long Instructions, double VirtualSeconds, double WallSeconds);

/// <summary>
/// An i440FX/PIIX3 PC wired in one place: RAM, the BIOS ROM at the top of 4 GiB with its last
/// 128 KiB aliased at 0xE0000 behind the PAM registers, the PIC pair, PIT, RTC, COM1, port 0x92,
/// the i8042, the debug port 0x402, fw_cfg and the PCI host. Time is virtual: 10 ns per retired
/// instruction plus whatever HLT skipped, so the same image takes the same path every run.
/// </summary>
internal sealed class PcMachine
{
    public const long NsPerInstruction = 10;
    private const int Com1Port = 0x3F8, Com1Irq = 4;
    private const long SliceInstructions = 20_000;

    private readonly X86Cpu _cpu;
    private readonly Pic8259 _pic;
    private readonly Pit8254 _pit;
    private readonly SystemPorts _system;
    private readonly IoBus _io;
    private bool _resetRequested;

    public PcMachine(MachineOptions options)
    {
        if (options.Firmware.Length is 0 or > 16 << 20 || options.Firmware.Length % 0x10000 != 0)
        {
            throw new ArgumentException($"firmware image must be a multiple of 64 KiB up to 16 MiB, not {options.Firmware.Length} bytes");
        }

        if (options.RamSizeBytes is < 2u << 20 or > MachineOptions.MaxRamSizeBytes)
        {
            throw new ArgumentException($"memory size must be between 2 MiB and 3 GiB");
        }

        Memory = new PhysicalMemory(options.RamSizeBytes);
        var code = new DecodeCache(Memory);
        Code = code;
        _io = new IoBus();
        _cpu = new X86Cpu(Memory, code, _io);
        _io.InstructionClock = () => _cpu.Instructions;
        if (options.Trace is { } trace)
        {
            trace.Attach(() => _cpu.Instructions);
            _cpu.Trace = trace;
            _io.Trace = trace;
        }

        var firmware = options.Firmware;
        uint firmwareBytes = (uint)firmware.Length;
        Memory.AddRegion(0u - firmwareBytes, firmwareBytes, new RomRegion(firmware, 0));
        Memory.AddRegion(0xE0000, 0x20000, new RomRegion(firmware, firmware.Length - 0x20000));

        _pic = new Pic8259();
        _cpu.Interrupts = _pic;
        _io.Map(0x20, 2, _pic);
        _io.Map(0xA0, 2, _pic);
        _io.Map(0x4D0, 2, _pic);

        _pit = new Pit8254(() => NowNs, level => _pic.SetIrq(0, level));
        _io.Map(0x40, 4, _pit);
        _io.Map(0x61, 1, _pit);

        _io.Map(0x70, 2, new CmosRtc(() => NowNs, options.RamSizeBytes));

        Serial = new SerialCapture();
        _io.Map(Com1Port, 8, new Uart16550(Com1Port, Serial.Write, level => _pic.SetIrq(Com1Irq, level)));

        _system = new SystemPorts(Memory, () => _resetRequested = true);
        _io.Map(0x60, 1, _system);
        _io.Map(0x64, 1, _system);
        _io.Map(0x92, 1, _system);
        _io.Map(0x80, 1, _system);
        _io.Map(0x402, 1, _system);

        var fwCfg = new FwCfg(options.RamSizeBytes);
        var e820 = new byte[20];
        BinaryPrimitives.WriteUInt64LittleEndian(e820, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(e820.AsSpan(8), options.RamSizeBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(e820.AsSpan(16), 1); // E820_RAM
        fwCfg.AddFile("etc/e820", e820);
        fwCfg.AddFile("etc/sercon-port", [Com1Port & 0xFF, Com1Port >> 8]);
        _io.Map(0x510, 2, fwCfg);

        Pci = new PciHost();
        Pci.Add(0, 0, new I440fxHostBridge(Memory, code.InvalidateAll));
        var isa = new PciFunction(0x8086, 0x7000, 0x060100, 0x00, 0x1AF4, 0x1100);
        isa.Config[PciFunction.HeaderType] = 0x80; // multi-function (IDE and USB would follow)
        for (int pirq = 0; pirq < 4; pirq++)
        {
            isa.Config[0x60 + pirq] = 0x80; // PIRQ routing disabled until the BIOS programs it
        }

        Pci.Add(1, 0, isa);
        _io.Map(0xCF8, 8, Pci);

        if (options.Disk is { } disk)
        {
            // Slot 2 INTA# goes to PIRQ[(slot + pin - 1) mod 4] (the PIIX swizzle SeaBIOS and QEMU use),
            // which the BIOS routes to an ISA IRQ through PIIX3 registers 0x60-0x63 (bit 7 = disabled).
            const int slot = 2;
            int pirqRegister = 0x60 + ((slot + 1 - 1) & 3);
            int routedIrq = -1;
            Disk = new VirtioBlkPci(Memory, _io, disk, options.DiskInterface, options.DiskOptions);
            Disk.InterruptRouting = level =>
            {
                int route = isa.Config[pirqRegister];
                int irq = (route & 0x80) != 0 ? -1 : route & 0x0F;
                if (routedIrq >= 0 && routedIrq != irq)
                {
                    _pic.SetIrq(routedIrq, false);
                }

                routedIrq = irq;
                if (irq >= 0)
                {
                    _pic.SetIrq(irq, level);
                }
            };
            Pci.Add(slot, 0, Disk);
        }
    }

    public PhysicalMemory Memory { get; }

    public VirtioBlkPci? Disk { get; }

    public DecodeCache Code { get; }

    public PciHost Pci { get; }

    public IoBus Io => _io;

    public Pic8259 Pic => _pic;

    public SerialCapture Serial { get; }

    public string DebugLog => _system.DebugLog;

    public long IdleNs { get; private set; }

    public long NowNs => _cpu.Instructions * NsPerInstruction + IdleNs;

    public long Instructions => _cpu.Instructions;

    /// <summary>CS:EIP of the next instruction, for trace headers.</summary>
    public string Location => $"{_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8}";

    /// <summary>
    /// Runs until <paramref name="done"/> says so (checked whenever COM1 output grows), the
    /// instruction budget or wall time is spent, or the guest stops in a way that cannot continue.
    /// </summary>
    public MachineRunResult Run(Func<string, bool> done, long maxInstructions, TimeSpan wallTimeout, CancellationToken cancellationToken = default)
    {
        var wall = Stopwatch.StartNew();
        int checkedLength = -1;
        while (true)
        {
            if (Serial.Length != checkedLength)
            {
                checkedLength = Serial.Length;
                if (done(Serial.ToString()))
                {
                    return Result(MachineOutcome.Matched, "expected output seen", wall);
                }
            }

            if (_cpu.Instructions >= maxInstructions)
            {
                return Result(MachineOutcome.InstructionBudget, $"instruction budget of {maxInstructions} used up {WhereTheGuestIs()}", wall);
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (wall.Elapsed > wallTimeout)
            {
                return Result(MachineOutcome.WallTimeout, $"timed out after {wallTimeout.TotalSeconds:F0} s {WhereTheGuestIs()}", wall);
            }

            long slice = Math.Min(SliceInstructions, maxInstructions - _cpu.Instructions);
            long deadline = _pit.NextDeadlineNs;
            if (deadline != long.MaxValue)
            {
                slice = Math.Clamp((deadline - NowNs) / NsPerInstruction + 1, 1, slice);
            }

            var exit = _cpu.Run(slice);
            _pit.Update();

            // Output written just before the guest stops still counts.
            if (Serial.Length != checkedLength)
            {
                checkedLength = Serial.Length;
                if (done(Serial.ToString()))
                {
                    return Result(MachineOutcome.Matched, "expected output seen", wall);
                }
            }

            if (_resetRequested)
            {
                return Result(MachineOutcome.ResetRequested, $"the guest requested a system reset (next instruction at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8})", wall);
            }

            switch (exit)
            {
                case CpuExit.Halted:
                    // Only an NMI (not emulated) wakes a CPU halted with IF clear, whatever the PIC holds.
                    if ((_cpu.Eflags & X86Cpu.IF) == 0)
                    {
                        return Result(MachineOutcome.HaltedInterruptsOff,
                            $"guest halted with interrupts off at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8}", wall);
                    }

                    // HLT: skip virtual time to the next timer deadline. Devices raise their interrupts
                    // only in answer to the CPU's port writes, so the timer is the only thing that can
                    // wake a halted CPU with nothing pending.
                    long next = _pit.NextDeadlineNs;
                    if (!_pic.Pending && (next == long.MaxValue || _pic.IsMasked(0)))
                    {
                        string why = next == long.MaxValue ? "the timer (PIT channel 0) is not running" : "the timer's IRQ 0 is masked at the PIC";
                        return Result(MachineOutcome.HaltedNothingToWake,
                            $"guest halted at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8} with interrupts on, but {why} and no interrupt is pending: nothing can wake it", wall);
                    }

                    if (next != long.MaxValue && next > NowNs)
                    {
                        IdleNs += next - NowNs;
                    }

                    _pit.Update();
                    break;
                case CpuExit.TripleFault:
                    return Result(MachineOutcome.TripleFault, _cpu.Diagnosis, wall);
                case CpuExit.Unimplemented:
                case CpuExit.Stopped:
                    return Result(MachineOutcome.Unimplemented, _cpu.Diagnosis, wall);
            }
        }
    }

    /// <summary>"at CS:EIP", and whether the CPU was halted there, for a run cut short by a limit.</summary>
    private string WhereTheGuestIs() =>
        $"with the guest at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8}" +
        (_cpu.Halted ? " (halted, waiting for an interrupt)" : "");

    private MachineRunResult Result(MachineOutcome outcome, string diagnosis, Stopwatch wall) =>
        new(outcome, diagnosis, _cpu.Instructions, NowNs / 1e9, wall.Elapsed.TotalSeconds);
}
