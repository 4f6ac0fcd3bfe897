namespace ImgTool.Bench;

internal enum Tool
{
    Imgtool,
    QemuImg,
}

internal static class ToolExtensions
{
    public static string DisplayName(this Tool tool, BenchCase benchCase) => tool == Tool.Imgtool ? "imgtool" : benchCase.PeerName;
}

/// <summary>
/// The files cases refer to. Command lines name them through placeholders: {SRC} the large image,
/// {COPY} an identical sparse copy of it, {SMALL} the small image, {DST} an output file of the tool's
/// own (each tool writes a different one, so one tool's result never becomes the other's input),
/// {WORK} the work folder (for inputs a case prepares, such as the source converted to qcow2),
/// {TOOLS} the folder of the bench's scripts (run-until.sh, make-syslinux-disk.sh), {QEMU_SYSTEM}
/// the qemu-system-i386 binary.
/// </summary>
internal sealed record BenchPaths(string WorkDir, string Source, string Copy, string Small, string ToolsDir, string QemuSystem)
{
    public string Destination(Tool tool) =>
        Path.Combine(WorkDir, tool == Tool.Imgtool ? "dst-imgtool.raw" : "dst-qemu-img.raw");

    public IReadOnlyList<string> Expand(IReadOnlyList<string> args, Tool tool) =>
        args.Select(arg => arg
                .Replace("{SRC}", Source, StringComparison.Ordinal)
                .Replace("{COPY}", Copy, StringComparison.Ordinal)
                .Replace("{SMALL}", Small, StringComparison.Ordinal)
                .Replace("{DST}", Destination(tool), StringComparison.Ordinal)
                .Replace("{WORK}", WorkDir, StringComparison.Ordinal)
                .Replace("{TOOLS}", ToolsDir, StringComparison.Ordinal)
                .Replace("{QEMU_SYSTEM}", QemuSystem, StringComparison.Ordinal))
            .ToArray();
}

internal sealed record BenchContext(BenchPaths Paths, string ImgtoolPath, string QemuImgPath, string BashPath)
{
    public string ToolsDir => Paths.ToolsDir;

    public string ProgramFor(BenchCase benchCase, Tool tool) =>
        tool == Tool.Imgtool ? ImgtoolPath : benchCase.PeerProgram?.Invoke(this) ?? QemuImgPath;
}

/// <summary>
/// One benchmark case: the same operation as an imgtool and a qemu-img command line (program name
/// omitted, placeholders as in <see cref="BenchPaths"/>), plus optional hooks. Hooks run outside the
/// timed region. A case may time another peer than qemu-img (<see cref="PeerProgram"/>); the
/// "qemu" side of the report is then that program.
/// </summary>
internal sealed class BenchCase
{
    /// <summary>Short name for <c>--case</c>.</summary>
    public required string Id { get; init; }

    /// <summary>Name in the table and the JSON.</summary>
    public required string Name { get; init; }

    public required IReadOnlyList<string> ImgtoolArgs { get; init; }

    /// <summary>The peer's arguments: qemu-img's, or <see cref="PeerProgram"/>'s when set.</summary>
    public required IReadOnlyList<string> QemuImgArgs { get; init; }

    /// <summary>The program run as the peer instead of qemu-img (e.g. bash running run-until.sh for qemu-system-i386).</summary>
    public Func<BenchContext, string>? PeerProgram { get; init; }

    /// <summary>The peer's name in messages and notes.</summary>
    public string PeerName { get; init; } = "qemu-img";

    /// <summary>False when the case needs none of the generated images ({SRC}, {COPY}, {SMALL}): they are then not made.</summary>
    public bool UsesTestImages { get; init; } = true;

    /// <summary>Every run, warm-ups included, must exit with this code or the bench stops.</summary>
    public int ExpectedExitCode { get; init; }

    /// <summary>
    /// imgtool's runs may exit with another code without stopping the bench: the case's
    /// <see cref="ReadImgtoolOutput"/> then reports the failure as a problem (a boot the machine cannot finish yet).
    /// </summary>
    public bool ImgtoolMayFail { get; init; }

    /// <summary>Drop stdout unread instead of keeping it for error messages (large outputs such as map).</summary>
    public bool DiscardStdout { get; init; }

    /// <summary>Once before the case's first run, e.g. make an input in another format (untimed).</summary>
    public Action<BenchContext>? Prepare { get; init; }

    /// <summary>Before every run of <see cref="Tool"/>, e.g. delete the output the previous run left.</summary>
    public Action<BenchContext, Tool>? BeforeEachRun { get; init; }

    /// <summary>After all runs: checks the results and returns notes for the report.</summary>
    public Func<BenchContext, IReadOnlyList<CaseNote>>? Verify { get; init; }

    /// <summary>After all runs: reads imgtool's outputs (e.g. a JSON summary) and returns notes for the report.</summary>
    public Func<IReadOnlyList<Measurement>, IReadOnlyList<CaseNote>>? ReadImgtoolOutput { get; init; }

    /// <summary>After <see cref="Verify"/>, e.g. delete large outputs.</summary>
    public Action<BenchContext>? AfterCase { get; init; }

    public IReadOnlyList<string> ArgsFor(Tool tool) => tool == Tool.Imgtool ? ImgtoolArgs : QemuImgArgs;
}

internal static class BenchCases
{
    /// <summary>The cases, in run order. To add one, append it here (see README.md).</summary>
    public static IReadOnlyList<BenchCase> All { get; } =
    [
        new BenchCase
        {
            Id = "convert",
            Name = "convert raw->raw",
            ImgtoolArgs = ["convert", "-f", "raw", "-O", "raw", "{SRC}", "{DST}"],
            QemuImgArgs = ["convert", "-f", "raw", "-O", "raw", "{SRC}", "{DST}"],
            BeforeEachRun = (context, tool) => File.Delete(context.Paths.Destination(tool)),
            Verify = VerifyConvertOutput,
            AfterCase = DeleteDestinations,
        },
        new BenchCase
        {
            Id = "compare",
            Name = "compare",
            ImgtoolArgs = ["compare", "-f", "raw", "-F", "raw", "{SRC}", "{COPY}"],
            QemuImgArgs = ["compare", "-f", "raw", "-F", "raw", "{SRC}", "{COPY}"],
        },
        new BenchCase
        {
            Id = "map",
            Name = "map",
            ImgtoolArgs = ["map", "-f", "raw", "--output", "json", "{SRC}"],
            QemuImgArgs = ["map", "-f", "raw", "--output", "json", "{SRC}"],
            DiscardStdout = true,
        },
        new BenchCase
        {
            Id = "info",
            Name = "info (small)",
            ImgtoolArgs = ["info", "-f", "raw", "{SMALL}"],
            QemuImgArgs = ["info", "-f", "raw", "{SMALL}"],
        },
        ConvertTo("qcow2", "raw->qcow2", "qcow2"),
        ConvertFrom("qcow2-raw", "qcow2->raw", "qcow2"),
        ConvertTo("qcow2-zlib", "raw->qcow2 -c zlib", "qcow2", compress: true),
        ConvertTo("qcow2-zstd", "raw->qcow2 -c zstd", "qcow2", ["-o", "compression_type=zstd"], compress: true),
        .. MeasureBenchCases.All,
        new BenchCase
        {
            Id = "check-qcow2",
            Name = "check qcow2",
            ImgtoolArgs = ["check", "-f", "qcow2", "{WORK}/src.qcow2"],
            QemuImgArgs = ["check", "-f", "qcow2", "{WORK}/src.qcow2"],
            Prepare = context => MakeInput(context, "qcow2", []),
        },
        new BenchCase
        {
            Id = "map-qcow2",
            Name = "map qcow2",
            ImgtoolArgs = ["map", "-f", "qcow2", "--output", "json", "{WORK}/src.qcow2"],
            QemuImgArgs = ["map", "-f", "qcow2", "--output", "json", "{WORK}/src.qcow2"],
            DiscardStdout = true,
            Prepare = context => MakeInput(context, "qcow2", []),
        },
        ConvertTo("vmdk", "raw->vmdk (monolithicSparse)", "vmdk"),
        ConvertTo("vmdk-stream", "raw->vmdk (streamOptimized)", "vmdk", ["-o", "subformat=streamOptimized"]),
        ConvertFrom("vmdk-raw", "vmdk->raw", "vmdk"),
        ConvertTo("qed", "raw->qed", "qed"),
        ConvertFrom("qed-raw", "qed->raw", "qed"),
        ConvertTo("vpc", "raw->vpc", "vpc"),
        ConvertTo("vhdx", "raw->vhdx", "vhdx"),
        ConvertTo("vdi", "raw->vdi", "vdi"),
        ConvertFrom("vdi-raw", "vdi->raw", "vdi"),
        OverlayCases.Commit(),
        OverlayCases.Rebase(),
        BootCase.Create(),
        LinuxBootCase.ToMarker(),
        LinuxBootCase.ToHashes(),
        InspectCases.Inspect(),
        InspectCases.List(),
        InspectCases.Cat(),
    ];

    /// <summary>raw -> FORMAT with the same flags for both tools; the output is compared with the source by qemu-img.</summary>
    private static BenchCase ConvertTo(string id, string name, string format, string[]? options = null, bool compress = false)
    {
        string[] flags = [.. compress ? ["-c"] : Array.Empty<string>(), .. options ?? []];
        string[] args = ["convert", "-f", "raw", "-O", format, .. flags, "{SRC}", "{DST}"];
        return new BenchCase
        {
            Id = id,
            Name = name,
            ImgtoolArgs = args,
            QemuImgArgs = args,
            BeforeEachRun = (context, tool) => File.Delete(context.Paths.Destination(tool)),
            Verify = context => VerifyFormatOutput(context, format),
            AfterCase = DeleteDestinations,
        };
    }

    /// <summary>FORMAT -> raw, from an input qemu-img made once from the source.</summary>
    private static BenchCase ConvertFrom(string id, string name, string format)
    {
        string[] args = ["convert", "-f", format, "-O", "raw", $"{{WORK}}/src.{format}", "{DST}"];
        return new BenchCase
        {
            Id = id,
            Name = name,
            ImgtoolArgs = args,
            QemuImgArgs = args,
            Prepare = context => MakeInput(context, format, []),
            BeforeEachRun = (context, tool) => File.Delete(context.Paths.Destination(tool)),
            Verify = VerifyConvertOutput,
            AfterCase = DeleteDestinations,
        };
    }

    /// <summary>The source converted to FORMAT by qemu-img, once per work folder (untimed).</summary>
    private static void MakeInput(BenchContext context, string format, string[] options)
    {
        string path = Path.Combine(context.Paths.WorkDir, $"src.{format}");
        string marker = path + ".done";
        if (File.Exists(marker) && File.GetLastWriteTimeUtc(marker) >= File.GetLastWriteTimeUtc(context.Paths.Source))
        {
            return;
        }

        ProcessOutput made = Runner.Run(context.QemuImgPath, ["convert", "-f", "raw", "-O", format, .. options, context.Paths.Source, path]);
        if (made.ExitCode != 0)
        {
            throw new BenchException($"could not make the {format} input with qemu-img:{Runner.Indent("stderr", made.Stderr)}");
        }

        File.WriteAllText(marker, format);
    }

    /// <summary>imgtool's output must hold the source's content (qemu-img compare) and pass qemu-img check where it has one.</summary>
    private static IReadOnlyList<CaseNote> VerifyFormatOutput(BenchContext context, string format)
    {
        var notes = new List<CaseNote>();
        string output = context.Paths.Destination(Tool.Imgtool);
        ProcessOutput compare = Runner.Run(context.QemuImgPath, "compare", "-f", "raw", "-F", format, context.Paths.Source, output);
        notes.Add(compare.ExitCode == 0
            ? new CaseNote(false, $"imgtool's {format} has the source's content (qemu-img compare exit 0)")
            : new CaseNote(true, $"imgtool's {format} differs from the source: qemu-img compare exit {compare.ExitCode}" + Runner.Indent("stdout", compare.Stdout)));
        if (format is "qcow2" or "vmdk" or "vhdx")
        {
            ProcessOutput check = Runner.Run(context.QemuImgPath, "check", "-f", format, output);
            notes.Add(new CaseNote(check.ExitCode != 0, $"qemu-img check of imgtool's {format}: exit {check.ExitCode}"));
        }

        notes.Add(new CaseNote(false, $"sizes on disk: imgtool {Report.MiB(Runner.AllocatedBytes(output))} MiB, qemu-img {Report.MiB(Runner.AllocatedBytes(context.Paths.Destination(Tool.QemuImg)))} MiB"));
        return notes;
    }

    /// <summary>
    /// The output must have the source's content (judged by qemu-img, the reference) and must stay
    /// sparse: a converter that writes the holes out as zeros doubles the disk use of a half-empty image.
    /// </summary>
    private static IReadOnlyList<CaseNote> VerifyConvertOutput(BenchContext context)
    {
        var notes = new List<CaseNote>();
        string imgtoolOutput = context.Paths.Destination(Tool.Imgtool);
        string qemuImgOutput = context.Paths.Destination(Tool.QemuImg);
        ProcessOutput compare = Runner.Run(
            context.QemuImgPath, "compare", "-f", "raw", "-F", "raw", context.Paths.Source, imgtoolOutput);
        notes.Add(compare.ExitCode == 0
            ? new CaseNote(false, "imgtool output is identical to the source (qemu-img compare exit 0)")
            : new CaseNote(true,
                $"imgtool output differs from the source: qemu-img compare exit {compare.ExitCode}" +
                Runner.Indent("stdout", compare.Stdout) + Runner.Indent("stderr", compare.Stderr)));

        long sourceBytes = Runner.AllocatedBytes(context.Paths.Source);
        long imgtoolBytes = Runner.AllocatedBytes(imgtoolOutput);
        long qemuImgBytes = Runner.AllocatedBytes(qemuImgOutput);
        long virtualBytes = new FileInfo(context.Paths.Source).Length;
        // Slack for file-system rounding and a converter that allocates a little around data runs.
        long allowedBytes = Math.Max(sourceBytes, qemuImgBytes) + Math.Max(virtualBytes / 100, TestImage.ChunkSizeBytes);
        notes.Add(new CaseNote(
            imgtoolBytes > allowedBytes,
            $"allocated on disk: imgtool output {Report.MiB(imgtoolBytes)} MiB, qemu-img output " +
            $"{Report.MiB(qemuImgBytes)} MiB, source {Report.MiB(sourceBytes)} MiB " +
            $"(virtual size {Report.MiB(virtualBytes)} MiB)" +
            (imgtoolBytes > allowedBytes ? ": imgtool output is not sparse" : "")));
        return notes;
    }

    private static void DeleteDestinations(BenchContext context)
    {
        File.Delete(context.Paths.Destination(Tool.Imgtool));
        File.Delete(context.Paths.Destination(Tool.QemuImg));
    }
}
