using System.Buffers.Binary;
using System.Diagnostics;
using ImgTool.Machine.Bus;
using ImgTool.Machine.Cpu;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Memory;
using ImgTool.Machine.Pci;
using ImgTool.Machine.Tracing;
using ImgTool.Machine.Virtio;
using ImgTool.Machine.Watchdogs;

namespace ImgTool.Machine;

/// <summary>What a boot run is given.</summary>
internal sealed record MachineOptions(
    byte[] Firmware, uint RamSizeBytes = 256u << 20, ImgTool.Block.Devices.IBlockDevice? Disk = null, ExecutionTrace? Trace = null,
    VirtioPciMode DiskInterface = VirtioPciMode.Transitional, VirtioBlkOptions? DiskOptions = null, ImgTool.Machine.Cpu.Jit.JitSettings? Jit = null)
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

    /// <summary>HLT with IF clear: the end of Linux's halt ("reboot: System halted") and of its power-off without ACPI ("reboot: Power down").</summary>
    HaltedInterruptsOff,

    /// <summary>HLT with interrupts on, but the timer is stopped or masked and nothing is pending.</summary>
    HaltedNothingToWake,
    TripleFault,
    Unimplemented,

    /// <summary>The guest asked for a reset; <see cref="MachineRunResult.Reset"/> says through which path.</summary>
    ResetRequested,

    /// <summary>The guest's kernel printed a panic (<see cref="Watchdogs.KernelPanicWatch"/>).</summary>
    KernelPanic,

    /// <summary>The same exception at the same instruction over and over.</summary>
    ExceptionLoop,

    /// <summary>A loop with interrupts off that cannot end (<see cref="Watchdogs.InterruptsOffSpin"/>).</summary>
    InterruptsOffSpin,
}

/// <param name="Reset">For <see cref="MachineOutcome.ResetRequested"/>, the reset path the guest took.</param>
internal sealed record MachineRunResult(
    MachineOutcome Outcome, string Diagnosis, long Instructions, double VirtualSeconds, double WallSeconds, ResetSource? Reset = null);

/// <summary>
/// An i440FX/PIIX3 PC wired in one place: RAM, the BIOS ROM at the top of 4 GiB with its last
/// 128 KiB aliased at 0xE0000 behind the PAM registers, the PIC pair with the ELCR, PIT and port
/// 0x61, RTC, COM1, the i8042 and port 0x92 (A20, reset), POST port 0x80, APM ports, the debug port
/// 0x402, fw_cfg, the PCI host with the PIIX3 ISA bridge (PIRQ routing) and its reset register 0xCF9.
/// Time is virtual: 10 ns per retired instruction plus whatever HLT skipped (to the next deadline of
/// the PIT, the RTC or the UART), so the same image takes the same path every run.
/// </summary>
internal sealed class PcMachine
{
    public const long NsPerInstruction = 10;
    private const long SliceInstructions = 20_000;
    private const string LinuxPowerOffMessage = "reboot: Power down", LinuxHaltMessage = "reboot: System halted";

    // The PC/AT's ISA map (IBM PC/AT technical reference; PIIX3 datasheet 4.1, "I/O Registers").
    private const ushort PicMasterPort = 0x20, PicSlavePort = 0xA0, ElcrPort = 0x4D0, PitPort = 0x40, PortB = 0x61,
        RtcPort = 0x70, Com1Port = 0x3F8, PortA = 0x92, PostCodePortNumber = 0x80, DebugConsolePort = 0x402,
        PciConfigPort = 0xCF8;
    private const int PicPortCount = 2, PciConfigPortCount = 8, OnePort = 1;
    private const int TimerIrq = 0, KeyboardIrq = 1, Com1Irq = 4, RtcIrq = 8, AuxIrq = 12;
    private const int IsaBridgeSlot = 1, VirtioSlot = 2, IntA = 1;

    private const uint FirmwareAliasBase = 0xE0000, FirmwareAliasBytes = 0x20000;
    private const int E820EntryBytes = 20, E820LengthOffset = 8, E820TypeOffset = 16; // base (u64), length (u64), type (u32)
    private const uint E820Ram = 1;

    private readonly X86Cpu _cpu;
    private readonly Pic8259Pair _pic;
    private readonly Pit8254 _pit;
    private readonly CmosRtc _rtc;
    private readonly Uart16550 _com1;
    private readonly DebugConsole _debugConsole = new();
    private readonly IoBus _io;
    private readonly (ITimedDevice Device, int Irq)[] _timedDevices;
    private ResetSource? _resetRequested;

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
        _io = new IoBus();
        _cpu = new X86Cpu(Memory, _io, options.Jit ?? ImgTool.Machine.Cpu.Jit.JitSettings.FromEnvironment());
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
        Memory.AddRegion(FirmwareAliasBase, FirmwareAliasBytes, new RomRegion(firmware, firmware.Length - (int)FirmwareAliasBytes));

        _pic = new Pic8259Pair();
        _cpu.Interrupts = _pic;
        _io.Map(PicMasterPort, PicPortCount, _pic.Master);
        _io.Map(PicSlavePort, PicPortCount, _pic.Slave);

        _pit = new Pit8254(() => NowNs, level => _pic.SetIrq(TimerIrq, level));
        _io.Map(PitPort, Pit8254.PortCount, _pit);
        _io.Map(PortB, OnePort, new SystemControlPortB(_pit, () => NowNs));

        _rtc = new CmosRtc(() => NowNs, options.RamSizeBytes, level => _pic.SetIrq(RtcIrq, level));
        _io.Map(RtcPort, CmosRtc.PortCount, _rtc);

        Serial = new SerialCapture();
        _com1 = new Uart16550(Serial.Write, level => _pic.SetIrq(Com1Irq, level), () => NowNs);
        _io.Map(Com1Port, Uart16550.PortCount, _com1);
        _timedDevices = [(_pit, TimerIrq), (_rtc, RtcIrq), (_com1, Com1Irq)];

        var a20 = new A20Gate(Memory);
        Keyboard = new I8042(a20, RequestReset, level => _pic.SetIrq(KeyboardIrq, level), level => _pic.SetIrq(AuxIrq, level));
        _io.Map(I8042.DataPort, OnePort, Keyboard.At(I8042.DataPort));
        _io.Map(I8042.CommandPort, OnePort, Keyboard.At(I8042.CommandPort));
        _io.Map(PortA, OnePort, new SystemControlPortA(a20, RequestReset));
        _io.Map(PostCodePortNumber, OnePort, PostCodes);
        _io.Map(DebugConsolePort, OnePort, _debugConsole);
        _io.Map(ApmPorts.FirstPort, ApmPorts.PortCount, new ApmPorts());
        var coprocessorError = new CoprocessorErrorPort(level => _pic.SetIrq(CoprocessorErrorPort.Irq, level));
        _io.Map(CoprocessorErrorPort.Port, OnePort, coprocessorError);
        _cpu.CoprocessorError = coprocessorError.RaiseError;

        var fwCfg = new FwCfg(options.RamSizeBytes);
        var e820 = new byte[E820EntryBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(e820, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(e820.AsSpan(E820LengthOffset), options.RamSizeBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(e820.AsSpan(E820TypeOffset), E820Ram);
        fwCfg.AddFile("etc/e820", e820);
        fwCfg.AddFile("etc/sercon-port", [Com1Port & 0xFF, Com1Port >> 8]);
        _io.Map(FwCfg.SelectorPort, FwCfg.PortCount, fwCfg);

        Pci = new PciHost();
        Pci.Add(0, 0, new I440fxHostBridge(Memory, () => { }));
        Isa = new Piix3IsaBridge(_pic);
        Pci.Add(IsaBridgeSlot, 0, Isa);
        _io.Map(ElcrPort, Elcr.PortCount, Isa.Elcr);
        _io.Map(PciConfigPort, PciConfigPortCount, Pci);
        _io.Map(ResetControlRegister.Port, OnePort, new ResetControlRegister(RequestReset)); // a byte port inside 0xCF8's dword

        if (options.Disk is { } disk)
        {
            Disk = new VirtioBlkPci(Memory, _io, disk, options.DiskInterface, options.DiskOptions)
            {
                InterruptRouting = Isa.IntxLine(VirtioSlot, IntA),
            };
            Pci.Add(VirtioSlot, 0, Disk);
        }
    }

    public PhysicalMemory Memory { get; }

    public VirtioBlkPci? Disk { get; }

    public X86Cpu Cpu => _cpu;

    public PciHost Pci { get; }

    public IoBus Io => _io;

    public Pic8259Pair Pic => _pic;

    public Piix3IsaBridge Isa { get; }

    public I8042 Keyboard { get; }

    public PostCodePort PostCodes { get; } = new();

    public SerialCapture Serial { get; }

    public string DebugLog => _debugConsole.Log;

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
        var panic = new KernelPanicWatch();
        var spin = new InterruptsOffSpin();
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
            long deadline = NextDeadlineNs(wakingOnly: false);
            if (deadline != long.MaxValue)
            {
                slice = Math.Clamp((deadline - NowNs) / NsPerInstruction + 1, 1, slice);
            }

            var exit = _cpu.Run(slice);
            UpdateTimedDevices();

            // Output written just before the guest stops still counts.
            // The transcript is copied out once per slice in which it grew (or, after a panic, to time its grace).
            string? serial = Serial.Length != checkedLength || panic.PanicLine is not null ? Serial.ToString() : null;
            if (Serial.Length != checkedLength)
            {
                checkedLength = Serial.Length;
                if (done(serial!))
                {
                    return Result(MachineOutcome.Matched, "expected output seen", wall);
                }
            }

            if (serial is not null && panic.Observe(serial, _cpu.Instructions))
            {
                return Result(MachineOutcome.KernelPanic,
                    $"the guest kernel panicked: \"{panic.PanicLine}\" (guest at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8} afterwards)", wall);
            }

            if (exit == CpuExit.Budget && spin.Sample(_cpu))
            {
                return Result(MachineOutcome.InterruptsOffSpin, SpinDiagnosis(spin), wall);
            }

            if (_resetRequested is { } reset)
            {
                return Result(MachineOutcome.ResetRequested,
                    $"the guest requested a system reset through {ResetSources.Describe(reset)} (next instruction at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8})",
                    wall, reset);
            }

            switch (exit)
            {
                case CpuExit.Halted:
                    // Only an NMI (not emulated) wakes a CPU halted with IF clear, whatever the PIC holds.
                    if ((_cpu.Eflags & X86Cpu.IF) == 0)
                    {
                        return Result(MachineOutcome.HaltedInterruptsOff, HaltedInterruptsOffDiagnosis(), wall);
                    }

                    // HLT: skip virtual time to the next device deadline whose IRQ can reach the CPU.
                    // Devices otherwise raise their interrupts only in answer to the CPU's port writes,
                    // so with nothing pending and no such deadline nothing can wake the CPU.
                    long next = NextDeadlineNs(wakingOnly: true);
                    if (!_pic.Pending && next == long.MaxValue)
                    {
                        string why = _pit.NextDeadlineNs == long.MaxValue ? "the timer (PIT channel 0) is not running" : "the timer's IRQ 0 is masked at the PIC";
                        return Result(MachineOutcome.HaltedNothingToWake,
                            $"guest halted at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8} with interrupts on, but {why} and no interrupt is pending: nothing can wake it", wall);
                    }

                    if (!_pic.Pending && next > NowNs)
                    {
                        IdleNs += next - NowNs;
                    }

                    UpdateTimedDevices();
                    break;
                case CpuExit.TripleFault:
                    return Result(MachineOutcome.TripleFault, _cpu.Diagnosis, wall);
                case CpuExit.ExceptionLoop:
                    return Result(MachineOutcome.ExceptionLoop, _cpu.Diagnosis, wall);
                case CpuExit.Unimplemented:
                case CpuExit.Stopped:
                    return Result(MachineOutcome.Unimplemented, _cpu.Diagnosis, wall);
            }
        }
    }

    private void RequestReset(ResetSource source) => _resetRequested ??= source;

    /// <summary>The earliest device deadline; with <paramref name="wakingOnly"/>, only of devices whose IRQ is unmasked.</summary>
    private long NextDeadlineNs(bool wakingOnly)
    {
        long next = long.MaxValue;
        foreach (var (device, irq) in _timedDevices)
        {
            if (!wakingOnly || !_pic.IsMasked(irq))
            {
                next = Math.Min(next, device.NextDeadlineNs);
            }
        }

        return next;
    }

    private void UpdateTimedDevices()
    {
        foreach (var (device, _) in _timedDevices)
        {
            device.Update();
        }
    }

    /// <summary>
    /// HLT with IF clear ends a run for good. Linux ends its halt and its power-off without ACPI this way
    /// right after printing "reboot: System halted" or "reboot: Power down" (kernel/reboot.c), which
    /// the diagnosis then names, so a deliberate stop reads differently from a hang.
    /// </summary>
    private string HaltedInterruptsOffDiagnosis()
    {
        string where = $"guest halted with interrupts off at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8}";
        if (Serial.LastLineContains(LinuxPowerOffMessage))
        {
            return $"{where}: the guest powered off (Linux printed \"{LinuxPowerOffMessage}\"; without ACPI its power-off halts)";
        }

        if (Serial.LastLineContains(LinuxHaltMessage))
        {
            return $"{where}: the guest halted (Linux printed \"{LinuxHaltMessage}\")";
        }

        return where;
    }

    private string SpinDiagnosis(InterruptsOffSpin spin)
    {
        long off = _cpu.Instructions - spin.OffSince;
        return $"the guest is spinning with interrupts off at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8} ({_cpu.DescribeInstructionAt(_cpu.Eip)}): " +
            $"IF has been clear for {off} instructions ({off * NsPerInstruction / 1e9:F1} s virtual) in a loop through {spin.LoopStates} register states " +
            "that keeps coming back to them, so nothing can end it";
    }

    /// <summary>"at CS:EIP", and whether the CPU was halted there, for a run cut short by a limit.</summary>
    private string WhereTheGuestIs() =>
        $"with the guest at {_cpu.S[X86Cpu.CS].Selector:X4}:{_cpu.Eip:X8}" +
        (_cpu.Halted ? " (halted, waiting for an interrupt)" : "");

    private MachineRunResult Result(MachineOutcome outcome, string diagnosis, Stopwatch wall, ResetSource? reset = null) =>
        new(outcome, diagnosis, _cpu.Instructions, NowNs / 1e9, wall.Elapsed.TotalSeconds, reset);
}
