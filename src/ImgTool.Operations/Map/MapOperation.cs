using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats;

namespace ImgTool.Operations.Map;

public sealed record MapOptions(string FileName, string? Format = null, long StartOffsetBytes = 0, long? MaxLengthBytes = null, bool ForceShare = false);

/// <summary>One extent of the map, with qemu-img map's fields.</summary>
/// <param name="Depth">The backing-chain layer that holds the range (0 is the image itself).</param>
/// <param name="Present">Some layer describes the range (false: unallocated down to the bottom).</param>
/// <param name="OffsetBytes">Where the range lives in <paramref name="FileName"/>, when known.</param>
/// <param name="FileName">The file of the layer at <paramref name="Depth"/>.</param>
public sealed record MapEntry(long StartBytes, long LengthBytes, int Depth, bool Present, bool Zero, bool Data, long? OffsetBytes, string FileName);

public sealed record MapResult(IReadOnlyList<MapEntry> Entries);

/// <summary>imgtool map: the allocation of every range of the virtual disk through the backing chain.</summary>
public sealed class MapOperation(ImageOpener opener)
{
    /// <summary>Status is asked for in pieces no larger than this, as qemu-img does (1 GiB).</summary>
    private const long QueryBytes = 1L << 30;

    public async ValueTask<MapResult> RunAsync(MapOptions options, CancellationToken cancellationToken = default)
    {
        await using IImage image = await opener.OpenAsync(
            options.FileName,
            new ImageOpenRequest(options.Format, ForceShare: options.ForceShare),
            cancellationToken).ConfigureAwait(false);

        if (options.StartOffsetBytes < 0 || options.MaxLengthBytes < 0)
        {
            throw new InvalidOptionException("offset and length must not be negative");
        }

        IReadOnlyList<string> layerNames = LayerFileNames(image, options.FileName);
        long end = Math.Min(image.SizeBytes, options.StartOffsetBytes + (options.MaxLengthBytes ?? image.SizeBytes));
        var entries = new List<MapEntry>();
        for (long offset = options.StartOffsetBytes; offset < end;)
        {
            BlockStatus status = await BackingChainStatus.GetAsync(image, offset, Math.Min(QueryBytes, end - offset), cancellationToken).ConfigureAwait(false);
            var entry = new MapEntry(
                offset,
                status.LengthBytes,
                status.Depth,
                Present: status.Kind != BlockStatusKind.Unallocated,
                Zero: status.Kind != BlockStatusKind.Data || status.DataIsHostHole,
                Data: status.Kind == BlockStatusKind.Data,
                status.HostOffsetBytes >= 0 ? status.HostOffsetBytes : null,
                status.HostFileName ?? layerNames[Math.Min(status.Depth, layerNames.Count - 1)]);
            Append(entries, entry);
            offset += status.LengthBytes;
        }

        return new MapResult(entries);
    }

    /// <summary>Merges an entry into the previous one when they continue each other, as qemu-img does.</summary>
    private static void Append(List<MapEntry> entries, MapEntry next)
    {
        if (entries.Count > 0)
        {
            MapEntry last = entries[^1];
            bool contiguous = last.OffsetBytes is null
                ? next.OffsetBytes is null
                : next.OffsetBytes == last.OffsetBytes + last.LengthBytes;
            if (contiguous && last.Depth == next.Depth && last.Present == next.Present && last.Zero == next.Zero
                && last.Data == next.Data && last.FileName == next.FileName)
            {
                entries[^1] = last with { LengthBytes = last.LengthBytes + next.LengthBytes };
                return;
            }
        }

        entries.Add(next);
    }

    private static List<string> LayerFileNames(IImage image, string fileName)
    {
        var names = new List<string> { fileName };
        IBlockDevice current = image;
        while (current is IBackingChain { Backing: { } backing, BackingFileName: { } name })
        {
            fileName = ImageOpener.ResolveBackingPath(fileName, name);
            names.Add(fileName);
            current = backing;
        }

        return names;
    }
}
