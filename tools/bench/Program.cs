using System.Globalization;
using System.Runtime.Versioning;

// The bench drives GNU time, cp and stat, and reads st_blocks: it is a Linux tool, like qemu-img's iotests.
[assembly: SupportedOSPlatform("linux")]

namespace ImgTool.Bench;

/// <summary>A failure the bench reports as one message (a tool failed, a file is missing), not a stack trace.</summary>
internal sealed class BenchException(string message) : Exception(message);

internal sealed record BenchOptions(
    string? ImgtoolPath,
    string QemuImgPath,
    string QemuSystemPath,
    string? WorkDir,
    long ImageSizeBytes,
    int Runs,
    string? JsonPath,
    IReadOnlyList<string> CaseIds,
    bool ListCases,
    bool Help);

internal static class Program
{
    private const long DefaultImageSizeBytes = 1L << 30;
    private const long SmallImageSizeBytes = 16L << 20;
    private const int DefaultRuns = 5;

    // Fixed seeds: every machine generates the same bytes, so timings compare across machines and commits.
    private const ulong ImageSeed = 0x1D15C0DE_B0A7CAFE;
    private const ulong SmallImageSeed = 0x5EED_0000_0000_0016;

    private const string GnuTimePath = "/usr/bin/time";

    private const string Usage = """
        usage: tools/bench/run.sh [options]
          --imgtool PATH    imgtool binary (default: out/bin/imgtool under the repository root)
          --qemu-img PATH   qemu-img binary (default: qemu-img on PATH)
          --qemu-system PATH  qemu-system-i386 binary for the boot case (default: qemu-system-i386 on PATH)
          --work DIR        work folder for the test images (default: bench-work/ under the repository root)
          --size SIZE       size of the large test image, a multiple of 1M (default: 1G; e.g. 64M for a smoke run)
          --runs N          timed runs per tool and case, after one warm-up each (default: 5)
          --case ID         run only this case (repeatable); --list shows the ids
          --json FILE       also write the results as JSON
          --list            list the cases and exit
          -h, --help        show this help
        """;

    public static int Main(string[] args)
    {
        try
        {
            BenchOptions options = ParseOptions(args);
            if (options.Help)
            {
                Console.Out.WriteLine(Usage);
                return 0;
            }

            if (options.ListCases)
            {
                foreach (BenchCase benchCase in BenchCases.All)
                {
                    Console.Out.WriteLine($"{benchCase.Id,-12} {benchCase.Name}");
                }

                return 0;
            }

            return Run(options);
        }
        catch (BenchException exception)
        {
            Console.Error.WriteLine($"bench: {exception.Message}");
            return 1;
        }
        catch (UsageException exception)
        {
            Console.Error.WriteLine($"bench: {exception.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }

    private static int Run(BenchOptions options)
    {
        DateTimeOffset startedUtc = DateTimeOffset.UtcNow;
        IReadOnlyList<BenchCase> cases = SelectCases(options.CaseIds);
        string? repositoryRoot = FindRepositoryRoot();
        string imgtoolPath = options.ImgtoolPath is not null
            ? Path.GetFullPath(options.ImgtoolPath)
            : Path.Combine(RequireRoot(repositoryRoot, "--imgtool"), "out", "bin", "imgtool");
        string workDir = options.WorkDir is not null
            ? Path.GetFullPath(options.WorkDir)
            : Path.Combine(RequireRoot(repositoryRoot, "--work"), "bench-work");
        string qemuImgPath = ResolveProgram(options.QemuImgPath, "qemu-utils");
        RequireExecutable(imgtoolPath, "imgtool (build it with tools/build.sh)");
        RequireExecutable(qemuImgPath, "qemu-img (tools/bench/run.sh installs qemu-utils)");
        RequireExecutable(GnuTimePath, "GNU time (tools/bench/run.sh installs it)");
        // qemu-system-i386 only matters to the boot case: a bench of the other cases runs without it.
        bool bootSelected = cases.Any(benchCase => benchCase.PeerName == BootCase.QemuSystemName);
        string qemuSystemPath = bootSelected ? ResolveProgram(options.QemuSystemPath, "qemu-system-x86") : options.QemuSystemPath;
        Directory.CreateDirectory(workDir);

        // The bench's scripts are copied next to its binary (see ImgTool.Bench.csproj).
        string toolsDir = AppContext.BaseDirectory;
        var paths = cases.Any(benchCase => benchCase.UsesTestImages)
            ? PrepareImages(workDir, options.ImageSizeBytes, toolsDir, qemuSystemPath)
            : ImagePaths(workDir, options.ImageSizeBytes, toolsDir, qemuSystemPath);
        var context = new BenchContext(paths, imgtoolPath, qemuImgPath, ResolveProgram("bash", "bash"));
        var setup = new BenchSetup(
            startedUtc,
            imgtoolPath,
            FirstLine(Runner.RunChecked(imgtoolPath, "--version")),
            qemuImgPath,
            FirstLine(Runner.RunChecked(qemuImgPath, "--version")),
            options.ImageSizeBytes,
            File.Exists(paths.Source) ? Runner.AllocatedBytes(paths.Source) : 0,
            ImageSeed,
            options.Runs);
        string imageText = File.Exists(paths.Source)
            ? $"image {Report.MiB(setup.ImageSizeBytes)} MiB ({Report.MiB(setup.ImageAllocatedBytes)} MiB allocated)"
            : "no generated images";
        Console.Error.WriteLine($"bench: {setup.ImgtoolVersion} vs {setup.QemuImgVersion}; {imageText}, timed runs per tool: {options.Runs}");
        if (bootSelected)
        {
            Console.Error.WriteLine($"bench: boot case peer: {FirstLine(Runner.RunChecked(qemuSystemPath, "--version"))}");
        }

        var runner = new Runner(GnuTimePath, workDir, Console.Error);
        var results = new List<CaseResult>(cases.Count);
        foreach (BenchCase benchCase in cases)
        {
            results.Add(runner.RunCase(benchCase, context, options.Runs));
        }

        Console.Out.WriteLine();
        Report.PrintTable(Console.Out, results);
        if (options.JsonPath is not null)
        {
            Report.WriteJson(Path.GetFullPath(options.JsonPath), setup, results);
        }

        return results.Any(result => result.Notes.Any(note => note.IsProblem)) ? 1 : 0;
    }

    /// <summary>Where the test images are (or would be) for this size.</summary>
    private static BenchPaths ImagePaths(string workDir, long imageSizeBytes, string toolsDir, string qemuSystemPath)
    {
        // The size is in the names so that a smoke run does not throw away the cached 1 GiB image.
        string sizeLabel = $"{imageSizeBytes >> 20}M";
        return new BenchPaths(
            workDir,
            Path.Combine(workDir, $"src-{sizeLabel}.raw"),
            Path.Combine(workDir, $"src-{sizeLabel}.copy.raw"),
            Path.Combine(workDir, $"small-{SmallImageSizeBytes >> 20}M.raw"),
            toolsDir,
            qemuSystemPath);
    }

    private static BenchPaths PrepareImages(string workDir, long imageSizeBytes, string toolsDir, string qemuSystemPath)
    {
        BenchPaths paths = ImagePaths(workDir, imageSizeBytes, toolsDir, qemuSystemPath);
        (string source, string copy, string small) = (paths.Source, paths.Copy, paths.Small);

        Console.Error.WriteLine($"bench: preparing test images in {workDir}");
        bool regenerated = TestImage.Ensure(source, imageSizeBytes, ImageSeed);
        TestImage.Ensure(small, SmallImageSizeBytes, SmallImageSeed);
        if (regenerated || !TestImage.IsCurrent(copy, imageSizeBytes, ImageSeed))
        {
            File.Delete(TestImage.MarkerPath(copy));
            string temporaryCopy = copy + ".tmp";
            File.Delete(temporaryCopy);
            // cp keeps the holes, so compare reads the same layout from both sides.
            Runner.RunChecked("cp", "--sparse=always", source, temporaryCopy);
            File.Move(temporaryCopy, copy, overwrite: true);
            TestImage.WriteMarker(copy, imageSizeBytes, ImageSeed);
        }

        return paths;
    }

    private static IReadOnlyList<BenchCase> SelectCases(IReadOnlyList<string> caseIds)
    {
        if (caseIds.Count == 0)
        {
            return BenchCases.All;
        }

        foreach (string id in caseIds)
        {
            if (!BenchCases.All.Any(benchCase => Matches(benchCase, id)))
            {
                throw new UsageException(
                    $"unknown case '{id}'; cases: {string.Join(", ", BenchCases.All.Select(benchCase => benchCase.Id))}");
            }
        }

        // Keep the declared order whatever the order on the command line.
        return BenchCases.All.Where(benchCase => caseIds.Any(id => Matches(benchCase, id))).ToArray();
    }

    private static bool Matches(BenchCase benchCase, string id) =>
        string.Equals(benchCase.Id, id, StringComparison.OrdinalIgnoreCase)
        || string.Equals(benchCase.Name, id, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The folder holding ImgTool.sln, looked for above the current directory first and then above the
    /// bench's own binary, so that run.sh works from anywhere inside or outside the repository.
    /// </summary>
    private static string? FindRepositoryRoot()
    {
        foreach (string start in (string[])[Directory.GetCurrentDirectory(), AppContext.BaseDirectory])
        {
            for (DirectoryInfo? directory = new(start); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
                {
                    return directory.FullName;
                }
            }
        }

        return null;
    }

    private static string RequireRoot(string? repositoryRoot, string option) =>
        repositoryRoot ?? throw new BenchException(
            $"cannot find the repository root (a folder with ImgTool.sln) above the current directory; pass {option}");

    /// <summary>A bare name is looked up on PATH, as a shell would; anything with a slash is a path.</summary>
    private static string ResolveProgram(string program, string debianPackage)
    {
        if (program.Contains('/', StringComparison.Ordinal))
        {
            return Path.GetFullPath(program);
        }

        string[] directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries);
        return directories.Select(directory => Path.Combine(directory, program)).FirstOrDefault(File.Exists)
            ?? throw new BenchException($"{program} not found on PATH (tools/bench/run.sh installs Debian's '{debianPackage}')");
    }

    private static void RequireExecutable(string path, string what)
    {
        if (!File.Exists(path))
        {
            throw new BenchException($"{what}: {path} does not exist");
        }

        if ((File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
        {
            throw new BenchException($"{what}: {path} is not executable");
        }
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    private static BenchOptions ParseOptions(string[] args)
    {
        string? imgtool = null;
        string qemuImg = "qemu-img";
        string qemuSystem = "qemu-system-i386";
        string? work = null;
        long sizeBytes = DefaultImageSizeBytes;
        int runs = DefaultRuns;
        string? json = null;
        var caseIds = new List<string>();
        bool list = false;
        bool help = false;

        for (int index = 0; index < args.Length; index++)
        {
            string arg = args[index];
            string? inlineValue = null;
            int equals = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                inlineValue = arg[(equals + 1)..];
                arg = arg[..equals];
            }

            string Value() =>
                inlineValue ?? (++index < args.Length ? args[index] : throw new UsageException($"{arg} needs a value"));

            switch (arg)
            {
                case "--imgtool":
                    imgtool = Value();
                    break;
                case "--qemu-img":
                    qemuImg = Value();
                    break;
                case "--qemu-system":
                    qemuSystem = Value();
                    break;
                case "--work":
                    work = Value();
                    break;
                case "--size":
                    sizeBytes = ParseSize(Value());
                    break;
                case "--runs":
                    string runsText = Value();
                    if (!int.TryParse(runsText, NumberStyles.None, CultureInfo.InvariantCulture, out runs) || runs < 1)
                    {
                        throw new UsageException($"--runs: '{runsText}' is not a positive whole number");
                    }

                    break;
                case "--json":
                    json = Value();
                    break;
                case "--case":
                    caseIds.Add(Value());
                    break;
                case "--list":
                    list = true;
                    break;
                case "-h":
                case "--help":
                    help = true;
                    break;
                default:
                    throw new UsageException($"unknown argument '{args[index]}'");
            }
        }

        return new BenchOptions(imgtool, qemuImg, qemuSystem, work, sizeBytes, runs, json, caseIds, list, help);
    }

    /// <summary>qemu-img style sizes: a number with an optional binary suffix K, M, G or T (KiB, MiB... also accepted).</summary>
    private static long ParseSize(string text)
    {
        string trimmed = text.Trim();
        string upper = trimmed.ToUpperInvariant();
        foreach (string unitTail in (string[])["IB", "B"])
        {
            if (upper.Length > 1 && upper.EndsWith(unitTail, StringComparison.Ordinal) && "KMGT".Contains(upper[^(unitTail.Length + 1)], StringComparison.Ordinal))
            {
                upper = upper[..^unitTail.Length];
                break;
            }
        }

        int shift = upper.Length == 0 ? 0 : upper[^1] switch
        {
            'K' => 10,
            'M' => 20,
            'G' => 30,
            'T' => 40,
            _ => 0,
        };
        string digits = shift == 0 ? upper : upper[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long number)
            || number <= 0 || number > (long.MaxValue >> shift))
        {
            throw new UsageException($"--size: '{text}' is not a size (e.g. 1G, 64M)");
        }

        long sizeBytes = number << shift;
        if (sizeBytes % TestImage.ChunkSizeBytes != 0)
        {
            throw new UsageException($"--size: {text} is not a multiple of 1M, the generator's chunk size");
        }

        return sizeBytes;
    }
}

internal sealed class UsageException(string message) : Exception(message);
