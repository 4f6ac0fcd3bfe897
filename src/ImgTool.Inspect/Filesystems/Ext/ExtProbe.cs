using System.Globalization;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Ext;

/// <summary>ext2, ext3 or ext4, told apart by their feature flags as libblkid's ext prober does:
/// ext2 has no journal and only ext2's features, ext3 a journal and only ext3's, anything else is ext4.</summary>
internal sealed class ExtProbe : IFilesystemProbe
{
    // The features ext2 and ext3 drivers understood (libblkid: EXT2/EXT3_FEATURE_INCOMPAT_SUPP).
    private const uint Ext2IncompatSupported = ExtSuperblock.IncompatFiletype | ExtSuperblock.IncompatMetaBg;
    private const uint Ext3IncompatSupported = Ext2IncompatSupported | ExtSuperblock.IncompatRecover;

    public ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        ReadOnlySpan<byte> sb = head.Span.Slice(ExtSuperblock.OffsetBytes, ExtSuperblock.SizeBytes);
        if (!ExtSuperblock.HasMagic(sb))
        {
            return ValueTask.FromResult<FilesystemInfo?>(null);
        }

        ExtSuperblock s = ExtSuperblock.Read(sb);
        bool journal = (s.FeatureCompat & ExtSuperblock.CompatHasJournal) != 0;
        bool ro2 = (s.FeatureRoCompat & ~ExtSuperblock.RoCompatSupportedByExt2) == 0;
        string type =
            (s.FeatureIncompat & ExtSuperblock.IncompatJournalDev) != 0 ? "jbd"
            : !journal && ro2 && (s.FeatureIncompat & ~Ext2IncompatSupported) == 0 ? "ext2"
            : journal && ro2 && (s.FeatureIncompat & ~Ext3IncompatSupported) == 0 ? "ext3"
            : (s.Flags & ExtSuperblock.FlagsTestFilesystem) != 0 ? "ext4dev"
            : "ext4";
        return ValueTask.FromResult<FilesystemInfo?>(new FilesystemInfo(
            type,
            "filesystem",
            s.Label,
            Text.ByteOrderUuid(s.Uuid),
            string.Create(CultureInfo.InvariantCulture, $"{s.RevLevel}.{s.MinorRevLevel}"),
            s.BlockSizeBytes,
            (long)s.BlocksCount * s.BlockSizeBytes));
    }
}
