using System.Buffers.Binary;
using ImgTool.Inspect.Disk;

namespace ImgTool.Inspect.Filesystems.Swap;

/// <summary>Linux swap: "SWAPSPACE2" in the last ten bytes of the first page (whatever the page size),
/// the version-1 header with UUID and label at byte 1024.</summary>
internal sealed class SwapProbe : IFilesystemProbe
{
    private const int HeaderOffset = 1024;
    private const int LastPageField = HeaderOffset + 4;
    private const int UuidField = HeaderOffset + 12;
    private const int LabelField = HeaderOffset + 28;
    private static readonly int[] PageSizes = [4096, 8192, 16384, 65536];

    public ValueTask<FilesystemInfo?> ProbeAsync(ReadOnlyMemory<byte> head, DiskView volume, CancellationToken cancellationToken)
    {
        ReadOnlySpan<byte> data = head.Span;
        foreach (int page in PageSizes)
        {
            ReadOnlySpan<byte> magic = data.Slice(page - 10, 10);
            if (magic.SequenceEqual("SWAPSPACE2"u8))
            {
                uint lastPage = BinaryPrimitives.ReadUInt32LittleEndian(data[LastPageField..]);
                return ValueTask.FromResult<FilesystemInfo?>(new FilesystemInfo(
                    "swap",
                    "other",
                    Text.NulTerminated(data.Slice(LabelField, 16)),
                    Text.ByteOrderUuid(data.Slice(UuidField, 16)),
                    "1",
                    SizeBytes: ((long)lastPage + 1) * page));
            }

            if (magic.SequenceEqual("SWAP-SPACE"u8))
            {
                return ValueTask.FromResult<FilesystemInfo?>(new FilesystemInfo("swap", "other", Version: "0"));
            }
        }

        return ValueTask.FromResult<FilesystemInfo?>(null);
    }
}
