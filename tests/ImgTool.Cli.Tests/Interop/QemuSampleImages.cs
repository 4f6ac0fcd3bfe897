using System.Diagnostics;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// The real-world sample images of QEMU's test suite (fixtures/samples/README.md says where each comes from).
/// tools/fixtures/get-qemu-samples.sh brings them, bzip2-compressed and checksummed, from Debian's qemu source
/// package the first time; a missing sample fails the tests, as a missing qemu-img does.
/// </summary>
public sealed class QemuSampleImages
{
    private const int ChunkBytes = 64 * 1024;

    public QemuSampleImages()
    {
        string root = RepositoryRoot();
        string script = Path.Combine(root, "tools", "fixtures", "get-qemu-samples.sh");
        RunResult result = Tools.Qemu("bash", script).GetAwaiter().GetResult();
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException("tools/fixtures/get-qemu-samples.sh could not bring the samples: " + result);
        }

        Folder = Path.Combine(root, "fixtures", "samples", "qemu-iotests");
    }

    public string Folder { get; }

    /// <summary>
    /// Decompresses a sample into the folder as a sparse file (zero chunks are skipped, as QEMU's iotests get them
    /// from bzip2 on a file system with holes), so that the block status of the host file matches the original's.
    /// </summary>
    public async Task<string> ExtractAsync(string name, string folder)
    {
        string target = Path.Combine(folder, name);
        var start = new ProcessStartInfo("bzip2", ["-dc", Path.Combine(Folder, name + ".bz2")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process process = Process.Start(start)!;
        Task<string> errors = process.StandardError.ReadToEndAsync();
        Stream input = process.StandardOutput.BaseStream;
        byte[] chunk = new byte[ChunkBytes];
        await using (var output = new FileStream(target, FileMode.Create, FileAccess.Write))
        {
            long length = 0;
            int read;
            while ((read = await input.ReadAtLeastAsync(chunk, ChunkBytes, throwOnEndOfStream: false)) > 0)
            {
                if (chunk.AsSpan(0, read).ContainsAnyExcept((byte)0))
                {
                    output.Position = length;
                    await output.WriteAsync(chunk.AsMemory(0, read));
                }

                length += read;
            }

            output.SetLength(length);
        }

        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"bzip2 could not decompress {name}: {await errors}");
        }

        return target;
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ImgTool.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("ImgTool.sln not found above " + AppContext.BaseDirectory);
    }
}
