using System.Buffers.Binary;
using ImgTool.Block.Devices;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Vhdx;

/// <summary>The VHDX format (Microsoft's VHDX Format Specification v1.00): dynamic, fixed and differencing.</summary>
public sealed class VhdxFormat : FormatDriver
{
    public static VhdxFormat Instance { get; } = new();

    private VhdxFormat()
    {
    }

    public override string Name => "vhdx";

    /// <summary>QEMU 7.2's vhdx create options, in its order and with its descriptions.</summary>
    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs { get; } =
    [
        new("size", ImageOptionKind.Size, "Virtual disk size; max of 64TB."),
        new("log_size", ImageOptionKind.Size, "Log size; min 1MB.", Default: "1048576"),
        new("block_size", ImageOptionKind.Size, "Block Size; min 1MB, max 256MB. 0 means auto-calculate based on image size.", Default: "0"),
        new("subformat", ImageOptionKind.Choice, "VHDX format type, can be either 'dynamic' or 'fixed'. Default is 'dynamic'.", ["dynamic", "fixed"]),
        new("block_state_zero", ImageOptionKind.Bool, "Force use of payload blocks of type 'ZERO'. Non-standard, but default."),
    ];

    /// <summary>A differencing VHDX names its parent in the parent locator.</summary>
    public override bool SupportsBackingFile => true;

    /// <summary>The file identifier starts with "vhdxfile" (spec 2.2.1).</summary>
    public override int Probe(ProbeInput input) =>
        input.Head.Length >= 8 && BinaryPrimitives.ReadUInt64LittleEndian(input.Head) == VhdxLayout.FileSignature ? 100 : 0;

    public override async ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        await VhdxOpen.OpenAsync(file, context, cancellationToken).ConfigureAwait(false);

    public override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default) =>
        VhdxCreate.CreateAsync(file, request, cancellationToken);
}
