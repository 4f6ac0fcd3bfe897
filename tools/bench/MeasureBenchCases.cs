namespace ImgTool.Bench;

/// <summary>
/// `measure` of the large image, as a raw source and converted to qcow2, for a qcow2 target: imgtool against qemu-img,
/// both walking the source's block status. Each case checks afterwards that the two print the same figures.
/// </summary>
internal static class MeasureBenchCases
{
    public static IReadOnlyList<BenchCase> All { get; } =
    [
        Measure("measure-raw", "measure raw->qcow2", "raw", "{SRC}", prepare: null),
        Measure("measure-qcow2", "measure qcow2->qcow2", "qcow2", "{WORK}/measure-src.qcow2", MakeQcow2Source),
    ];

    private static BenchCase Measure(string id, string name, string sourceFormat, string source, Action<BenchContext>? prepare)
    {
        string[] args = ["measure", "-f", sourceFormat, "-O", "qcow2", "--output", "json", source];
        return new BenchCase
        {
            Id = id,
            Name = name,
            ImgtoolArgs = args,
            QemuImgArgs = args,
            Prepare = prepare,
            Verify = context => VerifySameFigures(context, args),
        };
    }

    /// <summary>The large image converted to qcow2 by qemu-img, once (kept while newer than the source).</summary>
    private static void MakeQcow2Source(BenchContext context)
    {
        string path = Path.Combine(context.Paths.WorkDir, "measure-src.qcow2");
        if (File.Exists(path) && File.GetLastWriteTimeUtc(path) >= File.GetLastWriteTimeUtc(context.Paths.Source))
        {
            return;
        }

        ProcessOutput made = Runner.Run(context.QemuImgPath, ["convert", "-f", "raw", "-O", "qcow2", context.Paths.Source, path + ".part"]);
        if (made.ExitCode != 0)
        {
            throw new BenchException($"could not make the qcow2 input with qemu-img:{Runner.Indent("stderr", made.Stderr)}");
        }

        File.Move(path + ".part", path, overwrite: true);
    }

    private static IReadOnlyList<CaseNote> VerifySameFigures(BenchContext context, string[] args)
    {
        IReadOnlyList<string> expanded = context.Paths.Expand(args, Tool.Imgtool);
        ProcessOutput ours = Runner.Run(context.ImgtoolPath, [.. expanded]);
        ProcessOutput theirs = Runner.Run(context.QemuImgPath, [.. expanded]);
        bool same = ours.ExitCode == 0 && theirs.ExitCode == 0 && ours.Stdout == theirs.Stdout;
        string figures = string.Join(' ', ours.Stdout.Split(['\n', ' '], StringSplitOptions.RemoveEmptyEntries));
        return [same
            ? new CaseNote(false, $"imgtool's figures equal qemu-img's: {figures}")
            : new CaseNote(true, $"imgtool and qemu-img differ:{Runner.Indent("imgtool", ours.Stdout + ours.Stderr)}{Runner.Indent("qemu-img", theirs.Stdout + theirs.Stderr)}")];
    }
}
