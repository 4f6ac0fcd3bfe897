using System.Text.RegularExpressions;
using ImgTool.Block.Devices;

namespace ImgTool.Machine;

/// <summary>What a boot test runs with.</summary>
/// <param name="Firmware">The BIOS image (SeaBIOS's 128 KiB bios.bin).</param>
/// <param name="Expect">Patterns that must all appear on COM1 for success; none means run until the guest stops.</param>
public sealed record BootSettings(byte[] Firmware, uint MemoryBytes, IReadOnlyList<Regex> Expect, long MaxInstructions, TimeSpan Timeout);

public enum BootOutcome
{
    Success,
    NoBootableDisk,
    HaltedInterruptsOff,
    TripleFault,
    Unimplemented,
    Timeout,
    InstructionBudget,
    ResetRequested,
}

/// <summary>The result of a boot run: outcome, diagnosis, the COM1 transcript and the run's numbers.</summary>
public sealed record BootReport(
    BootOutcome Outcome,
    string Diagnosis,
    string Serial,
    long Instructions,
    double VirtualSeconds,
    double WallSeconds,
    long SectorsRead)
{
    public bool Success => Outcome == BootOutcome.Success;

    public double Mips => WallSeconds > 0 ? Instructions / 1e6 / WallSeconds : 0;
}

/// <summary>Boots a disk on the emulated PC and watches COM1 (SeaBIOS mirrors its screen there).</summary>
public static class BootRunner
{
    /// <summary>SeaBIOS's message when no disk has a boot signature; the run stops there.</summary>
    private const string NoBootableDevice = "No bootable device";

    public static BootReport Run(IBlockDevice disk, BootSettings settings, CancellationToken cancellationToken = default)
    {
        var machine = new PcMachine(new MachineOptions(settings.Firmware, settings.MemoryBytes, disk));
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
            MachineOutcome.TripleFault => (BootOutcome.TripleFault, result.Diagnosis),
            MachineOutcome.Unimplemented => (BootOutcome.Unimplemented, result.Diagnosis),
            MachineOutcome.ResetRequested => (BootOutcome.ResetRequested, result.Diagnosis),
            MachineOutcome.InstructionBudget => (BootOutcome.InstructionBudget, result.Diagnosis),
            _ => (BootOutcome.Timeout, result.Diagnosis),
        };

        if (settings.Expect.Count == 0 && outcome is BootOutcome.HaltedInterruptsOff)
        {
            // Without expectations, a guest that stops cleanly is the end of the run, not a failure.
            outcome = BootOutcome.Success;
        }

        if (machine.Io.FirstUnmappedPort is { } port && outcome != BootOutcome.Success)
        {
            diagnosis += $" (first access to an unemulated port: {port})";
        }

        return new BootReport(outcome, diagnosis, serial, result.Instructions, result.VirtualSeconds, result.WallSeconds, machine.Disk?.SectorsRead ?? 0);
    }
}
