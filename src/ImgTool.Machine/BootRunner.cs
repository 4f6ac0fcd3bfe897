using System.Globalization;
using System.Text.RegularExpressions;
using ImgTool.Block.Devices;
using ImgTool.Machine.Bus;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Tracing;

namespace ImgTool.Machine;

/// <summary>What a boot test runs with.</summary>
/// <param name="Firmware">The BIOS image (SeaBIOS's 128 KiB bios.bin).</param>
/// <param name="Expect">Patterns that must all appear on COM1 for success. With none the run goes on until the guest
/// stops, and no ending is a success: a guest that only halted has shown nothing (issue 19 item 11), so imgtool boot
/// without --expect looks for a login prompt (BootOperation.DefaultExpect) instead.</param>
/// <param name="Trace">When set, an execution trace is written there once the run ends (imgtool boot --trace).</param>
/// <param name="GuestWriteCache">The virtio-blk write cache the guest sees (its config's writeback byte, QEMU's cache.writeback).</param>
/// <param name="Translate">Translate hot guest code to .NET IL (null: unless IMGTOOL_JIT=0); ignored where the runtime cannot compile code (NativeAOT).</param>
public sealed record BootSettings(
    byte[] Firmware, uint MemoryBytes, IReadOnlyList<Regex> Expect, long MaxInstructions, TimeSpan Timeout, TraceSettings? Trace = null,
    bool GuestWriteCache = true, bool? Translate = null);

/// <summary>An execution trace: the last <paramref name="InstructionDepth"/> instructions, with port I/O and interrupts.</summary>
public sealed record TraceSettings(TextWriter Writer, int InstructionDepth = TraceSettings.DefaultInstructionDepth)
{
    public const int DefaultInstructionDepth = ExecutionTrace.DefaultInstructionDepth;
    public const int MaxInstructionDepth = ExecutionTrace.MaxInstructionDepth;
}

public enum BootOutcome
{
    Success,
    NoBootableDisk,
    HaltedInterruptsOff,

    /// <summary>HLT with interrupts on, but with the timer stopped or masked and nothing pending.</summary>
    HaltedNothingToWake,
    TripleFault,
    Unimplemented,
    Timeout,
    InstructionBudget,
    ResetRequested,
    KernelPanic,
    ExceptionLoop,
    InterruptsOffSpin,
}

/// <summary>An I/O port without a device that the guest read or wrote: reads return all ones, writes are dropped.</summary>
public sealed record UnemulatedPort(ushort Port, bool Write, long Count)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(Write ? "out" : "in")} {PortNames.Format(Port)} x{Count}");
}

/// <summary>The result of a boot run: outcome, diagnosis, the COM1 transcript and the run's numbers.</summary>
/// <param name="Diagnosis">Why the run ended; for a failure, the cause as far as the machine can tell, never a guess stated as fact.</param>
/// <param name="UnemulatedPorts">Ports without a device that the guest touched, the most recently accessed first (firmware probes many; information, not a cause).</param>
/// <param name="SectorsRead">512-byte sectors the firmware and the guest read from the disk.</param>
/// <param name="SectorsWritten">512-byte sectors they wrote (to the copy-on-write overlay unless the disk is writable).</param>
/// <param name="EndReason">What stopped the run, whatever the verdict.</param>
/// <param name="MissingPatterns">The expected patterns that never appeared on COM1 (empty on success).</param>
public sealed record BootReport(
    BootOutcome Outcome,
    string Diagnosis,
    string Serial,
    long Instructions,
    double VirtualSeconds,
    double WallSeconds,
    long SectorsRead,
    IReadOnlyList<UnemulatedPort> UnemulatedPorts,
    long SectorsWritten,
    BootEndReason EndReason,
    IReadOnlyList<string> MissingPatterns,
    TranslationReport? Translation = null)
{
    public bool Success => Outcome == BootOutcome.Success;

    public double Mips => WallSeconds > 0 ? Instructions / 1e6 / WallSeconds : 0;
}

/// <summary>What the translator did in a run: instructions retired in translated blocks, blocks translated, time spent translating.</summary>
public sealed record TranslationReport(long InstructionsTranslated, long BlocksTranslated, long OpsTranslated, long OpsSpecialised, double CompileSeconds, double CompileCpuSeconds = 0, long Failures = 0);

/// <summary>Boots a disk on the emulated PC and watches COM1 (SeaBIOS mirrors its screen there).</summary>
public static class BootRunner
{
    /// <summary>SeaBIOS's message when no disk has a boot signature; the run stops there.</summary>
    private const string NoBootableDevice = "No bootable device";

    /// <summary>
    /// A run cut short by a limit while the guest was still reading an unemulated port this recently and
    /// this often was most likely polling it: a status register of a device the machine does not have
    /// reads as all ones, which is "busy" for many devices.
    /// </summary>
    internal const long PollingRecentInstructions = 10_000;
    internal const long PollingMinReads = 1_000;

    public static BootReport Run(IBlockDevice disk, BootSettings settings, CancellationToken cancellationToken = default)
    {
        ExecutionTrace? trace = settings.Trace is { } traceSettings ? new ExecutionTrace(traceSettings.InstructionDepth) : null;
        // Counted here rather than in the disk controller, so the report does not depend on its model.
        var countedDisk = new CountingBlockDevice(disk);
        var machine = new PcMachine(new MachineOptions(
            settings.Firmware, settings.MemoryBytes, countedDisk, trace, DiskOptions: new Virtio.VirtioBlkOptions(WriteCache: settings.GuestWriteCache),
            Jit: settings.Translate is { } translate ? new ImgTool.Machine.Cpu.Jit.JitSettings(translate, Background: true) : ImgTool.Machine.Cpu.Jit.JitSettings.FromEnvironment()));
        string traceHeader = "the run ended with an exception in the emulator";
        try
        {
            BootReport report = RunMachine(machine, countedDisk, settings, cancellationToken);
            traceHeader = $"{report.Outcome}: {report.Diagnosis}";
            return report;
        }
        catch (OperationCanceledException)
        {
            traceHeader = "the run was cancelled";
            throw;
        }
        finally
        {
            // Written whatever happened: a trace matters most when the run failed, or the emulator did.
            if (trace is not null)
            {
                trace.WriteTo(settings.Trace!.Writer,
                [
                    "imgtool boot trace",
                    traceHeader,
                    string.Create(CultureInfo.InvariantCulture, $"{machine.Instructions} instructions retired; next instruction at {machine.Location}"),
                ]);
            }
        }
    }

    private static BootReport RunMachine(PcMachine machine, CountingBlockDevice disk, BootSettings settings, CancellationToken cancellationToken)
    {
        bool noDisk = false;
        var result = machine.Run(
            text =>
            {
                if (settings.Expect.Count > 0 && settings.Expect.All(pattern => pattern.IsMatch(text)))
                {
                    return true;
                }

                noDisk = text.Contains(NoBootableDevice, StringComparison.Ordinal);
                return noDisk;
            },
            settings.MaxInstructions,
            settings.Timeout,
            cancellationToken);

        string serial = machine.Serial.ToString();
        var (outcome, diagnosis) = result.Outcome switch
        {
            MachineOutcome.Matched when noDisk => (BootOutcome.NoBootableDisk, "the firmware found no bootable disk"),
            MachineOutcome.Matched => (BootOutcome.Success, "every expected pattern appeared on COM1"),
            MachineOutcome.HaltedInterruptsOff => (BootOutcome.HaltedInterruptsOff, result.Diagnosis),
            MachineOutcome.HaltedNothingToWake => (BootOutcome.HaltedNothingToWake, result.Diagnosis),
            MachineOutcome.TripleFault => (BootOutcome.TripleFault, result.Diagnosis),
            MachineOutcome.Unimplemented => (BootOutcome.Unimplemented, result.Diagnosis),
            MachineOutcome.ResetRequested => (BootOutcome.ResetRequested, result.Diagnosis),
            MachineOutcome.InstructionBudget => (BootOutcome.InstructionBudget, result.Diagnosis),
            MachineOutcome.KernelPanic => (BootOutcome.KernelPanic, result.Diagnosis),
            MachineOutcome.ExceptionLoop => (BootOutcome.ExceptionLoop, result.Diagnosis),
            MachineOutcome.InterruptsOffSpin => (BootOutcome.InterruptsOffSpin, result.Diagnosis),
            _ => (BootOutcome.Timeout, result.Diagnosis),
        };

        BootEndReason endReason = result.Outcome switch
        {
            MachineOutcome.Matched when noDisk => BootEndReason.NoBootableDisk,
            MachineOutcome.Matched => BootEndReason.PatternsMatched,
            MachineOutcome.HaltedInterruptsOff => BootEndReason.HaltedInterruptsOff,
            MachineOutcome.HaltedNothingToWake => BootEndReason.HaltedNothingToWake,
            MachineOutcome.TripleFault => BootEndReason.TripleFault,
            MachineOutcome.Unimplemented => BootEndReason.Unimplemented,
            MachineOutcome.ResetRequested => BootEndReason.ResetRequested,
            MachineOutcome.InstructionBudget => BootEndReason.InstructionBudget,
            MachineOutcome.KernelPanic => BootEndReason.KernelPanic,
            MachineOutcome.ExceptionLoop => BootEndReason.ExceptionLoop,
            MachineOutcome.InterruptsOffSpin => BootEndReason.InterruptsOffSpin,
            _ => BootEndReason.Timeout,
        };

        IReadOnlyList<UnmappedPortAccess> unmapped = machine.Io.UnmappedPorts;
        if (outcome is BootOutcome.Timeout or BootOutcome.InstructionBudget && PolledPort(unmapped, result.Instructions) is { } polled)
        {
            long sinceLastRead = result.Instructions - polled.LastInstruction;
            diagnosis += string.Create(CultureInfo.InvariantCulture,
                $"; the guest was still reading unemulated port {PortNames.Format(polled.Port)}: {polled.Count} reads, the last {sinceLastRead} instructions before the end, each returning all ones; it may be waiting for a device this machine does not emulate");
        }

        string[] missing = outcome == BootOutcome.Success
            ? []
            : settings.Expect.Where(pattern => !pattern.IsMatch(serial)).Select(pattern => pattern.ToString()).ToArray();
        return new BootReport(
            outcome, diagnosis, serial, result.Instructions, result.VirtualSeconds, result.WallSeconds, disk.SectorsRead,
            unmapped.Select(access => new UnemulatedPort(access.Port, access.Write, access.Count)).ToArray(),
            disk.SectorsWritten, endReason, missing,
            machine.Cpu.JitStatistics is { } jit
                ? new TranslationReport(jit.InstructionsTranslated, jit.BlocksTranslated, jit.OpsTranslated, jit.OpsSpecialised, jit.CompileSeconds, jit.CompileCpuSeconds, jit.Failures)
                : null);
    }

    /// <summary>The unemulated port the guest was reading in a loop when the run was cut short, if any.</summary>
    private static UnmappedPortAccess? PolledPort(IReadOnlyList<UnmappedPortAccess> unmapped, long endInstruction) =>
        unmapped
            .Where(access => !access.Write && access.Count >= PollingMinReads && endInstruction - access.LastInstruction <= PollingRecentInstructions)
            .MaxBy(access => access.LastInstruction);
}
