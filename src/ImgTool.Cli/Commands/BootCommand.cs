using System.CommandLine;
using System.Globalization;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;
using ImgTool.Cli.Rendering;
using ImgTool.Machine;
using ImgTool.Operations.Boot;

namespace ImgTool.Cli.Commands;

/// <summary>
/// boot IMAGE [-f fmt] [--firmware PATH] [--memory 256M] [--timeout 120s] [--max-instructions N]
/// [--expect REGEX]... [--serial-log FILE] [--trace FILE [--trace-depth N]] [--cache MODE] [--writable]: exit 0 once
/// every pattern appeared on COM1 (without --expect, a login prompt: "login:").
/// </summary>
internal static class BootCommand
{
    public static Command Build(CliContext context)
    {
        var format = CommonOptions.Format();
        var firmware = new Option<string?>("--firmware") { Description = "BIOS image (default: SeaBIOS from Debian's 'seabios' package)", HelpName = "PATH" };
        var memory = new Option<string>("--memory", "-m") { Description = "Guest RAM size", DefaultValueFactory = _ => "256M", HelpName = "size" };
        var timeout = new Option<string>("--timeout") { Description = "Wall-clock limit (e.g. 120s, 5m)", DefaultValueFactory = _ => "120s", HelpName = "time" };
        var maxInstructions = new Option<long>("--max-instructions") { Description = "Instruction budget", DefaultValueFactory = _ => BootOperation.DefaultMaxInstructions, HelpName = "N" };
        var expect = new Option<string[]>("--expect") { Description = $"Regular expression that must appear on COM1 (repeatable; default: '{BootOperation.DefaultExpect}', a login prompt)", HelpName = "REGEX", AllowMultipleArgumentsPerToken = false };
        var serialLog = new Option<string?>("--serial-log") { Description = "Write the COM1 transcript to this file", HelpName = "FILE" };
        var trace = new Option<string?>("--trace")
        {
            Description = "Write an execution trace to FILE when the run ends, whatever the outcome: the last N instructions " +
                "(CS:EIP, bytes, disassembly) with the port I/O, interrupts, exceptions and HLTs among them, up to 1 Mi earlier " +
                "such events, and the count of accesses per port over the whole run",
            HelpName = "FILE",
        };
        var traceDepth = new Option<int>("--trace-depth")
        {
            Description = $"Instructions kept by --trace (1 to {TraceSettings.MaxInstructionDepth})",
            DefaultValueFactory = _ => TraceSettings.DefaultInstructionDepth,
            HelpName = "N",
        };
        var writable = new Option<bool>("--writable") { Description = "Let the guest write to the image (default: a copy-on-write overlay keeps it unchanged)" };
        var cache = CommonOptions.Cache("--cache",
            "Disk cache mode as QEMU's -drive cache=: writeback (default), writethrough, none (O_DIRECT), unsafe (flushes ignored), " +
            "directsync (O_DIRECT, writethrough); writethrough and directsync turn the guest's write cache off");
        var forceShare = CommonOptions.ForceShare();
        var output = CommonOptions.Output();
        var file = new Argument<string>("filename");
        var command = new Command("boot", "Boot an image on the built-in x86 PC and check its serial output")
        {
            format, firmware, memory, timeout, maxInstructions, expect, serialLog, trace, traceDepth, cache, writable, forceShare, output, file,
        };
        command.SetAction(
            context,
            async (parse, cancellationToken) =>
            {
                var options = new BootOptions(
                    parse.GetValue(file)!,
                    parse.GetValue(format),
                    parse.GetValue(firmware),
                    SizeParser.Parse(parse.GetValue(memory)!, "memory size"),
                    ParseTimeout(parse.GetValue(timeout)!),
                    parse.GetValue(maxInstructions),
                    parse.GetValue(expect) ?? [],
                    parse.GetValue(writable),
                    parse.GetValue(forceShare),
                    parse.GetValue(trace),
                    parse.GetValue(traceDepth),
                    CommonOptions.ParseCache(parse.GetValue(cache), CacheMode.Writeback));
                BootReport report = await RunAsync(context, options, cancellationToken).ConfigureAwait(false);
                if (parse.GetValue(serialLog) is { } log)
                {
                    await File.WriteAllTextAsync(log, report.Serial, cancellationToken).ConfigureAwait(false);
                }

                // A failed boot names the disk's layout (issue 16): no bootable partition, no boot code, no table.
                string? layout = report.Success ? null : await ImgTool.Inspect.Inspection.LayoutSummary.DescribeAsync(context.Opener, options.FileName, options.Format, cancellationToken).ConfigureAwait(false);
                if (parse.IsJson(output))
                {
                    await context.Output.WriteLineAsync(Json(report, layout)).ConfigureAwait(false);
                }
                else
                {
                    await context.Output.WriteAsync(Human(report, layout)).ConfigureAwait(false);
                }

                return report.Success ? 0 : 1;
            });
        return command;
    }

    /// <summary>
    /// Boots here or on the machine host (<see cref="MachineHandover"/>). A boot that writes to the image or traces
    /// goes to the host at once. Any other first runs here for <see cref="MachineHandover.PrefixInstructions"/>: a
    /// firmware or bootloader check ends within it and never pays the JIT's start (0.37 s against 0.83 s to
    /// SYSLINUX's banner); a longer one is handed over and started again there, which is safe because the image is
    /// behind a copy-on-write overlay and the run is deterministic, and cheap beside a boot of billions.
    /// </summary>
    private static async Task<BootReport> RunAsync(CliContext context, BootOptions options, CancellationToken cancellationToken)
    {
        var operation = new BootOperation(context.Opener);
        if (MachineHandover.Host() is null)
        {
            return await operation.RunAsync(options, cancellationToken).ConfigureAwait(false);
        }

        if (options.Writable || options.TracePath is not null || options.MaxInstructions <= MachineHandover.PrefixInstructions)
        {
            if (options.Writable || options.TracePath is not null)
            {
                MachineHandover.Exec(context.Output, context.Error);
            }

            return await operation.RunAsync(options, cancellationToken).ConfigureAwait(false);
        }

        BootReport prefix = await operation.RunAsync(options with { MaxInstructions = MachineHandover.PrefixInstructions }, cancellationToken).ConfigureAwait(false);
        if (prefix.EndReason != BootEndReason.InstructionBudget)
        {
            return prefix;
        }

        MachineHandover.Exec(context.Output, context.Error);
        // Exec failed (reported): the whole boot here, on the interpreter.
        return await operation.RunAsync(options, cancellationToken).ConfigureAwait(false);
    }

    internal static TimeSpan ParseTimeout(string text)
    {
        string number = text.TrimEnd('s', 'm', 'h');
        double scale = text.EndsWith('m') ? 60 : text.EndsWith('h') ? 3600 : 1;
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value <= 0 || value * scale > 86400)
        {
            throw new InvalidOptionException($"invalid timeout '{text}': use seconds (120s), minutes (5m) or hours, up to a day");
        }

        return TimeSpan.FromSeconds(value * scale);
    }

    internal static string Human(BootReport report, string? layout = null)
    {
        var text = new System.Text.StringBuilder();
        if (!report.Success)
        {
            text.Append(CultureInfo.InvariantCulture, $"boot failed: {report.Diagnosis}\n");
            if (report.MissingPatterns.Count > 0)
            {
                text.Append("expected on COM1 but not seen: ").AppendJoin(", ", report.MissingPatterns.Select(pattern => $"'{pattern}'")).Append('\n');
            }

            // The layout explains the failure (no bootable partition, no boot code), after what failed.
            if (layout is not null)
            {
                text.Append("disk layout: ").Append(layout).Append('\n');
            }

            // Terminal escape sequences (SeaBIOS's sercon clears the screen) are dropped from the tail.
            string plain = System.Text.RegularExpressions.Regex.Replace(report.Serial, "\u001b(\\[[0-9;?]*[A-Za-z]|c)", "");
            string[] lines = plain.Replace("\r", "", StringComparison.Ordinal).Split('\n');
            var tail = lines.TakeLast(10).Where(l => l.Length > 0).ToList();
            if (tail.Count > 0)
            {
                text.Append("last output on COM1:\n");
                foreach (string line in tail)
                {
                    text.Append("  ").Append(line).Append('\n');
                }
            }

            if (report.UnemulatedPorts.Count > 0)
            {
                // Firmware probes for hardware it may not find, so these are context, not the cause.
                const int Shown = 12;
                text.Append("unemulated ports touched, latest first (reads return all ones, writes are dropped; usually harmless probing): ")
                    .Append(string.Join(", ", report.UnemulatedPorts.Take(Shown)))
                    .Append(report.UnemulatedPorts.Count > Shown ? $", and {report.UnemulatedPorts.Count - Shown} more" : "")
                    .Append('\n');
            }
        }

        text.Append(CultureInfo.InvariantCulture,
            $"{report.Outcome}: {report.Instructions} instructions, {report.Mips:F1} MIPS, {report.VirtualSeconds:F3} s virtual, {report.WallSeconds:F3} s wall, " +
            $"{report.SectorsRead} sectors read, {report.SectorsWritten} written; ended: {EndReasonText(report.EndReason)}\n");
        return text.ToString();
    }

    /// <summary>The reason the run stopped, in the summary line's words.</summary>
    internal static string EndReasonText(BootEndReason reason) => reason switch
    {
        BootEndReason.PatternsMatched => "every expected pattern appeared",
        BootEndReason.NoBootableDisk => "no bootable disk",
        BootEndReason.HaltedInterruptsOff => "the guest halted with interrupts off (power-off)",
        BootEndReason.HaltedNothingToWake => "the guest halted with nothing to wake it",
        BootEndReason.TripleFault => "triple fault",
        BootEndReason.Unimplemented => "unimplemented instruction or feature",
        BootEndReason.ResetRequested => "the guest requested a reset",
        BootEndReason.Timeout => "wall-clock timeout",
        BootEndReason.KernelPanic => "kernel panic",
        BootEndReason.ExceptionLoop => "exception loop",
        BootEndReason.InterruptsOffSpin => "spinning with interrupts off",
        _ => "instruction budget used up",
    };

    private static string Json(BootReport report, string? layout = null) => JsonText.Build(w =>
    {
        w.WriteStartObject();
        w.WriteBoolean("success", report.Success);
        w.WriteString("outcome", report.Outcome.ToString());
        w.WriteString("diagnosis", report.Diagnosis);
        w.WriteOptionalString("disk-layout", layout);
        w.WriteNumber("instructions", report.Instructions);
        w.WriteNumber("mips", Math.Round(report.Mips, 2));
        w.WriteNumber("virtual-seconds", Math.Round(report.VirtualSeconds, 6));
        w.WriteNumber("wall-seconds", Math.Round(report.WallSeconds, 6));
        w.WriteNumber("sectors-read", report.SectorsRead);
        w.WriteNumber("sectors-written", report.SectorsWritten);
        w.WriteString("end-reason", report.EndReason.ToString());
        // Which runtime ran the machine: "jit" (the machine host imgtool boot hands over to) or "aot" (in-process).
        w.WriteString("runtime", System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported ? "jit" : "aot");
        if (report.Translation is { } translation)
        {
            w.WriteNumber("translated-instructions", translation.InstructionsTranslated);
            w.WriteNumber("translated-blocks", translation.BlocksTranslated);
            w.WriteNumber("translated-ops", translation.OpsTranslated);
            w.WriteNumber("specialised-ops", translation.OpsSpecialised);
            w.WriteNumber("translation-seconds", Math.Round(translation.CompileSeconds, 6));
            w.WriteNumber("translation-cpu-seconds", Math.Round(translation.CompileCpuSeconds, 6));
            w.WriteNumber("translation-failures", translation.Failures);
        }

        w.WriteStartArray("missing-patterns");
        foreach (string pattern in report.MissingPatterns)
        {
            w.WriteStringValue(pattern);
        }

        w.WriteEndArray();
        w.WriteStartArray("unemulated-ports");
        foreach (UnemulatedPort port in report.UnemulatedPorts)
        {
            w.WriteStartObject();
            w.WriteString("port", $"0x{port.Port:X4}");
            w.WriteString("direction", port.Write ? "out" : "in");
            w.WriteNumber("count", port.Count);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteString("serial", report.Serial);
        w.WriteEndObject();
    });
}
