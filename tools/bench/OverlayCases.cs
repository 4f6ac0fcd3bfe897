namespace ImgTool.Bench;

/// <summary>
/// commit and rebase on a chain the size of the source image (1 GiB by default): a qcow2 base holding the source's
/// content, and a qcow2 overlay on it with 16 runs of 8 MiB written across the disk. Every run gets fresh copies
/// (untimed), each tool its own, so one tool's result is never the other's input; afterwards qemu-img compares the
/// two tools' results.
/// </summary>
internal static class OverlayCases
{
    private const string Base = "overlay-base.qcow2";
    private const string Top = "overlay-top.qcow2";
    private const string Empty = "overlay-empty.qcow2";

    /// <summary>commit the overlay into its base; the run's base is overlay-base-TOOL.qcow2, its overlay {DST}.</summary>
    public static BenchCase Commit() => new()
    {
        Id = "commit",
        Name = "commit qcow2 chain",
        ImgtoolArgs = ["commit", "-q", "-f", "qcow2", "{DST}"],
        QemuImgArgs = ["commit", "-q", "-f", "qcow2", "{DST}"],
        Prepare = PrepareChain,
        BeforeEachRun = (context, tool) =>
        {
            string runBase = RunBase(context, tool);
            Copy(Path.Combine(context.Paths.WorkDir, Base), runBase);
            Copy(Path.Combine(context.Paths.WorkDir, Top), context.Paths.Destination(tool));
            Qemu(context, "rebase", "-u", "-f", "qcow2", "-b", Path.GetFileName(runBase), "-F", "qcow2", context.Paths.Destination(tool));
        },
        Verify = context =>
        [
            Compared(context, "the bases after commit", RunBase(context, Tool.Imgtool), RunBase(context, Tool.QemuImg)),
            Compared(context, "the overlays after commit", context.Paths.Destination(Tool.Imgtool), context.Paths.Destination(Tool.QemuImg)),
        ],
        AfterCase = context =>
        {
            foreach (Tool tool in new[] { Tool.Imgtool, Tool.QemuImg })
            {
                File.Delete(RunBase(context, tool));
                File.Delete(context.Paths.Destination(tool));
            }
        },
    };

    /// <summary>Safe rebase of the overlay from its base onto an empty image: every range the overlay does not hold
    /// and the base does is copied into it.</summary>
    public static BenchCase Rebase() => new()
    {
        Id = "rebase",
        Name = "rebase qcow2 (safe, onto empty)",
        ImgtoolArgs = ["rebase", "-f", "qcow2", "-b", Empty, "-F", "qcow2", "{DST}"],
        QemuImgArgs = ["rebase", "-f", "qcow2", "-b", Empty, "-F", "qcow2", "{DST}"],
        Prepare = PrepareChain,
        BeforeEachRun = (context, tool) => Copy(Path.Combine(context.Paths.WorkDir, Top), context.Paths.Destination(tool)),
        Verify = context =>
        [
            Compared(context, "the overlays after rebase", context.Paths.Destination(Tool.Imgtool), context.Paths.Destination(Tool.QemuImg)),
            Compared(context, "imgtool's rebased overlay and the original chain", context.Paths.Destination(Tool.Imgtool), Path.Combine(context.Paths.WorkDir, Top)),
        ],
        AfterCase = context =>
        {
            File.Delete(context.Paths.Destination(Tool.Imgtool));
            File.Delete(context.Paths.Destination(Tool.QemuImg));
        },
    };

    private static string RunBase(BenchContext context, Tool tool) =>
        Path.Combine(context.Paths.WorkDir, tool == Tool.Imgtool ? "overlay-base-imgtool.qcow2" : "overlay-base-qemu-img.qcow2");

    /// <summary>The pristine chain, made once per work folder by qemu-img and qemu-io (untimed).</summary>
    private static void PrepareChain(BenchContext context)
    {
        string work = context.Paths.WorkDir;
        string marker = Path.Combine(work, "overlay.done");
        if (File.Exists(marker) && File.GetLastWriteTimeUtc(marker) >= File.GetLastWriteTimeUtc(context.Paths.Source))
        {
            return;
        }

        long size = new FileInfo(context.Paths.Source).Length;
        Qemu(context, "convert", "-f", "raw", "-O", "qcow2", context.Paths.Source, Path.Combine(work, Base));
        File.Delete(Path.Combine(work, Top));
        Qemu(context, "create", "-q", "-f", "qcow2", "-b", Base, "-F", "qcow2", Path.Combine(work, Top));
        File.Delete(Path.Combine(work, Empty));
        Qemu(context, "create", "-q", "-f", "qcow2", Path.Combine(work, Empty), size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        string qemuIo = Path.Combine(Path.GetDirectoryName(context.QemuImgPath) is { Length: > 0 } folder ? folder : "/usr/bin", "qemu-io");
        long stride = size / 16;
        var args = new List<string> { "-f", "qcow2" };
        for (int i = 0; i < 16; i++)
        {
            long length = Math.Min(8L << 20, stride / 2);
            args.AddRange(["-c", $"write -P 0x{0x40 + i:x2} {(i * stride) + (stride / 4)} {length}"]);
        }

        args.Add(Path.Combine(work, Top));
        Check(Runner.Run(qemuIo, args), "qemu-io");
        File.WriteAllText(marker, "overlay");
    }

    private static void Copy(string from, string to)
    {
        File.Delete(to);
        File.Copy(from, to);
    }

    private static void Qemu(BenchContext context, params string[] args) => Check(Runner.Run(context.QemuImgPath, args), "qemu-img " + args[0]);

    private static void Check(ProcessOutput output, string what)
    {
        if (output.ExitCode != 0)
        {
            throw new BenchException($"{what} failed while preparing the overlay chain:{Runner.Indent("stderr", output.Stderr)}");
        }
    }

    private static CaseNote Compared(BenchContext context, string what, string a, string b)
    {
        ProcessOutput compare = Runner.Run(context.QemuImgPath, "compare", a, b);
        return compare.ExitCode == 0
            ? new CaseNote(false, $"{what} are identical (qemu-img compare exit 0)")
            : new CaseNote(true, $"{what} differ: qemu-img compare exit {compare.ExitCode}" + Runner.Indent("stdout", compare.Stdout));
    }
}
