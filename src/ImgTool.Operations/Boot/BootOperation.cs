using System.Text.RegularExpressions;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Formats;
using ImgTool.Machine;

namespace ImgTool.Operations.Boot;

/// <param name="Writable">--writable: let the guest write to the image (by default writes go to a copy-on-write overlay).</param>
/// <param name="TracePath">--trace FILE: write an execution trace there when the run ends.</param>
/// <param name="TraceDepth">--trace-depth N: instructions kept in the trace.</param>
/// <param name="Cache">--cache MODE, QEMU's -drive cache=: the host page cache (O_DIRECT for none and directsync),
/// whether flushes reach the host (not for unsafe), and the guest-visible write cache (<see cref="BootOperation.GuestWriteCache"/>).</param>
public sealed record BootOptions(
    string FileName,
    string? Format = null,
    string? FirmwarePath = null,
    long MemoryBytes = BootOperation.DefaultMemoryBytes,
    TimeSpan? Timeout = null,
    long MaxInstructions = BootOperation.DefaultMaxInstructions,
    IReadOnlyList<string>? Expect = null,
    bool Writable = false,
    bool ForceShare = false,
    string? TracePath = null,
    int TraceDepth = TraceSettings.DefaultInstructionDepth,
    CacheMode Cache = CacheMode.Writeback);

/// <summary>imgtool boot: boot an image on the emulated PC and watch COM1 for expected text.</summary>
public sealed class BootOperation(ImageOpener opener)
{
    public const long DefaultMemoryBytes = 256L << 20;
    public const long DefaultMaxInstructions = 20_000_000_000;
    public const string DefaultFirmwarePath = "/usr/share/seabios/bios.bin";

    /// <summary>
    /// Success without --expect: a login prompt on the serial console, the usual end of a Linux boot
    /// (getty's prompt, "HOSTNAME login: ").
    /// </summary>
    public const string DefaultExpect = "login:";

    public async ValueTask<BootReport> RunAsync(BootOptions options, CancellationToken cancellationToken = default)
    {
        byte[] firmware = LoadFirmware(options.FirmwarePath);
        if (options.MemoryBytes is < 2L << 20 or > 3L << 30)
        {
            throw new InvalidOptionException($"memory size {options.MemoryBytes} is out of range: use 2M to 3G");
        }

        if (options.TraceDepth is < 1 or > TraceSettings.MaxInstructionDepth)
        {
            throw new InvalidOptionException($"trace depth {options.TraceDepth} is out of range: use 1 to {TraceSettings.MaxInstructionDepth}");
        }

        var patterns = new List<Regex>();
        IReadOnlyList<string> expects = options.Expect is { Count: > 0 } given ? given : [DefaultExpect];
        foreach (string expect in expects)
        {
            try
            {
                patterns.Add(new Regex(expect, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)));
            }
            catch (RegexParseException e)
            {
                throw new InvalidOptionException($"invalid --expect pattern '{expect}': {ExpectPatternError.Describe(e)}");
            }
        }

        // Without --writable the image is opened read-only under the overlay: the host cache mode still
        // governs how it is read (O_DIRECT for none/directsync), and the guest still sees the write cache
        // the mode implies, but its writes and flushes end in memory.
        var request = new ImageOpenRequest(options.Format, ReadOnly: !options.Writable, ForceShare: options.ForceShare, Cache: options.Cache);
        await using IImage image = await opener.OpenAsync(options.FileName, request, cancellationToken).ConfigureAwait(false);
        IBlockDevice disk = options.Writable ? image : new CopyOnWriteOverlay(image);
        // Created only once the image has opened: bad input leaves no trace file behind.
        StreamWriter? traceWriter = options.TracePath is { } tracePath ? CreateTraceWriter(tracePath) : null;
        try
        {
            var trace = traceWriter is null ? null : new TraceSettings(traceWriter, options.TraceDepth);
            var settings = new BootSettings(
                firmware, (uint)options.MemoryBytes, patterns, options.MaxInstructions, options.Timeout ?? TimeSpan.FromSeconds(120), trace,
                GuestWriteCache(options.Cache));
            return await Task.Run(() => BootRunner.Run(disk, settings, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (traceWriter is not null)
            {
                await traceWriter.DisposeAsync().ConfigureAwait(false);
            }

            if (!options.Writable)
            {
                await disk.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The write cache the guest's disk reports (QEMU's cache.writeback): on for writeback, none and
    /// unsafe, so the guest flushes when it needs durability; off for writethrough and directsync, so
    /// every write completes only once it is durable.
    /// </summary>
    public static bool GuestWriteCache(CacheMode cache) => cache is CacheMode.Writeback or CacheMode.None or CacheMode.Unsafe;

    private static StreamWriter CreateTraceWriter(string path)
    {
        try
        {
            // A large buffer: a trace is some megabytes of short lines.
            return new StreamWriter(path, append: false, new System.Text.UTF8Encoding(false), bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostIOException($"cannot write the trace: {e.Message}", path, e);
        }
    }

    private static byte[] LoadFirmware(string? path)
    {
        string file = path ?? DefaultFirmwarePath;
        if (!File.Exists(file))
        {
            throw new InvalidOptionException(path is null
                ? $"firmware {file} not found: install Debian's 'seabios' package or give --firmware PATH"
                : $"firmware {file} not found");
        }

        var length = new FileInfo(file).Length;
        if (length is 0 or > 16 << 20 || length % 0x10000 != 0)
        {
            throw new InvalidOptionException($"firmware {file} must be a multiple of 64 KiB up to 16 MiB, not {length} bytes", file);
        }

        return File.ReadAllBytes(file);
    }
}
