using System.Buffers.Binary;
using System.Globalization;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Luks;

/// <summary>LUKS1 and LUKS2 containers: magic "LUKS\xBA\xBE", a big-endian version, the UUID as text at byte 168
/// (both versions), and a label at byte 24 in LUKS2 (cryptsetup's luks1/luks2 on-disk format documents).</summary>
internal sealed class LuksProbe : IFilesystemProbe
{
    private const int VersionField = 6;
    private const int Luks2LabelField = 24;
    private const int UuidField = 168;

    private static ReadOnlySpan<byte> Magic => [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xBA, 0xBE];

    public ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        ReadOnlySpan<byte> h = head.Span;
        if (!h.StartsWith(Magic))
        {
            return ValueTask.FromResult<FilesystemInfo?>(null);
        }

        ushort version = BinaryPrimitives.ReadUInt16BigEndian(h[VersionField..]);
        return ValueTask.FromResult<FilesystemInfo?>(new FilesystemInfo(
            "crypto_LUKS",
            "crypto",
            version == 2 ? Text.NulTerminated(h.Slice(Luks2LabelField, 48)) : null,
            Text.NulTerminated(h.Slice(UuidField, 40)),
            version.ToString(CultureInfo.InvariantCulture)));
    }
}
