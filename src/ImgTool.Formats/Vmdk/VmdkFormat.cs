using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Options;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// VMware's virtual disk format (VMware "Virtual Disk Format 1.1"; QEMU block/vmdk.c): monolithicSparse and
/// streamOptimized single files, monolithicFlat, twoGbMaxExtentSparse/Flat and vmfs/vmfsThin descriptors with
/// extent files next to them, delta disks through parentFileNameHint and CID/parentCID.
/// </summary>
public sealed class VmdkFormat : FormatDriver
{
    public static VmdkFormat Instance { get; } = new();

    private VmdkFormat()
    {
    }

    public override string Name => "vmdk";

    public override bool SupportsBackingFile => true;

    public override IReadOnlyList<ImageOptionSpec> CreateOptionSpecs => VmdkCreate.OptionSpecs;

    /// <summary>Only streamOptimized stores compressed grains; -c with any other subformat is refused, not ignored.</summary>
    public override bool SupportsCompression(ImageOptions options) => options.GetString("subformat") == VmdkCreate.StreamOptimized;

    public override bool AlwaysCompresses(ImageOptions options) => SupportsCompression(options);

    /// <summary>Only streamOptimized VMDKs hold compressed grains; the default subformat, monolithicSparse, does not
    /// (qemu-img then writes it uncompressed without a word).</summary>
    public override string? CompressionHint(ImageOptions options) =>
        $"only -o subformat={VmdkCreate.StreamOptimized} compresses, not {options.GetString("subformat") ?? VmdkCreate.MonolithicSparse}";

    /// <summary>QEMU's vmdk_probe: a sparse header magic, or a descriptor whose first non-comment line is version=1..3.</summary>
    public override int Probe(ProbeInput input)
    {
        ReadOnlySpan<byte> head = input.Head;
        if (head.Length >= 4)
        {
            uint magic = BinaryPrimitives.ReadUInt32BigEndian(head);
            if (magic is VmdkSparseHeader.Magic or VmdkSparseHeader.Vmdk3Magic)
            {
                return 100;
            }
        }

        int p = 0;
        while (p < head.Length)
        {
            if (head[p] == (byte)'#')
            {
                int newline = head[p..].IndexOf((byte)'\n');
                p = newline < 0 ? head.Length : p + newline + 1;
                continue;
            }

            if (head[p] == (byte)' ' || head[p] == (byte)'\r' || head[p] == (byte)'\n')
            {
                while (p < head.Length && head[p] == (byte)' ')
                {
                    p++;
                }

                if (p < head.Length && head[p] == (byte)'\r')
                {
                    p++;
                }

                if (p >= head.Length || head[p] != (byte)'\n')
                {
                    return 0;
                }

                p++;
                continue;
            }

            ReadOnlySpan<byte> rest = head[p..];
            foreach (string version in (ReadOnlySpan<string>)["version=1", "version=2", "version=3"])
            {
                if (rest.StartsWith(Encoding.ASCII.GetBytes(version + "\n")) || rest.StartsWith(Encoding.ASCII.GetBytes(version + "\r\n")))
                {
                    return 100;
                }
            }

            return 0;
        }

        return 0;
    }

    public override ValueTask<IImage> OpenAsync(IHostFile file, ImageOpenContext context, CancellationToken cancellationToken = default) =>
        VmdkOpener.OpenAsync(file, context, cancellationToken);

    public override ValueTask CreateAsync(IHostFile file, ImageCreateRequest request, CancellationToken cancellationToken = default) =>
        VmdkCreate.CreateAsync(file, request, cancellationToken);
}
