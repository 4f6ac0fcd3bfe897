namespace ImgTool.Bench;

internal enum Tool
{
    Imgtool,
    QemuImg,
}

internal static class ToolExtensions
{
    public static string DisplayName(this Tool tool) => tool == Tool.Imgtool ? "imgtool" : "qemu-img";
}

/// <summary>
/// The files cases refer to. Command lines name them through placeholders: {SRC} the large image,
/// {COPY} an identical sparse copy of it, {SMALL} the small image, {DST} an output file of the tool's
/// own (each tool writes a different one, so one tool's result never becomes the other's input).
/// </summary>
internal sealed record BenchPaths(string WorkDir, string Source, string Copy, string Small)
{
    public string Destination(Tool tool) =>
        Path.Combine(WorkDir, tool == Tool.Imgtool ? "dst-imgtool.raw" : "dst-qemu-img.raw");

    public IReadOnlyList<string> Expand(IReadOnlyList<string> args, Tool tool) =>
        args.Select(arg => arg
                .Replace("{SRC}", Source, StringComparison.Ordinal)
                .Replace("{COPY}", Copy, StringComparison.Ordinal)
                .Replace("{SMALL}", Small, StringComparison.Ordinal)
                .Replace("{DST}", Destination(tool), StringComparison.Ordinal))
            .ToArray();
}

internal sealed record BenchContext(BenchPaths Paths, string ImgtoolPath, string QemuImgPath)
{
    public string ProgramFor(Tool tool) => tool == Tool.Imgtool ? ImgtoolPath : QemuImgPath;
}

/// <summary>
/// One benchmark case: the same operation as an imgtool and a qemu-img command line (program name
/// omitted, placeholders as in <see cref="BenchPaths"/>), plus optional hooks. Hooks run outside the
/// timed region.
/// </summary>
internal sealed class BenchCase
{
    /// <summary>Short name for <c>--case</c>.</summary>
    public required string Id { get; init; }

    /// <summary>Name in the table and the JSON.</summary>
    public required string Name { get; init; }

    public required IReadOnlyList<string> ImgtoolArgs { get; init; }

    public required IReadOnlyList<string> QemuImgArgs { get; init; }

    /// <summary>Every run, warm-ups included, must exit with this code or the bench stops.</summary>
    public int ExpectedExitCode { get; init; }

    /// <summary>Drop stdout unread instead of keeping it for error messages (large outputs such as map).</summary>
    public bool DiscardStdout { get; init; }

    /// <summary>Before every run of <see cref="Tool"/>, e.g. delete the output the previous run left.</summary>
    public Action<BenchContext, Tool>? BeforeEachRun { get; init; }

    /// <summary>After all runs: checks the results and returns notes for the report.</summary>
    public Func<BenchContext, IReadOnlyList<CaseNote>>? Verify { get; init; }

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
    ];

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
