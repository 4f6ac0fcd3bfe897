using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Raw;

/// <summary>The raw format: the file is the disk, byte for byte; holes in a sparse file read as zeros.</summary>
public sealed class RawFormat : FormatDriver
{
    public static RawFormat Instance { get; } = new();

    private RawFormat()
    {
    }

    public override string Name => "raw";

    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size"),
        new("preallocation", ImageOptionKind.Choice, "Preallocation mode (allowed values: off, falloc, full)", ["off", "falloc", "full"]),
    ];

    /// <summary>Anything can be raw, so raw scores lowest: it is the answer only when no format claims the file.</summary>
    public override int Probe(ProbeInput input) => 1;

    public override ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IImage>(new RawImage(file));

    public override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default)
    {
        file.SetLength(request.SizeBytes);
        switch (request.Options.GetString("preallocation") ?? "off")
        {
            case "falloc":
                file.Preallocate(0, request.SizeBytes, writeZeros: false);
                break;
            case "full":
                file.Preallocate(0, request.SizeBytes, writeZeros: true);
                break;
        }

        return ValueTask.CompletedTask;
    }
}
