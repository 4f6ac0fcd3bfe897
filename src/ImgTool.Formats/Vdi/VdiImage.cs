using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Block.Info;

namespace ImgTool.Formats.Vdi;

/// <summary>What opening a VDI found, handed to the image.</summary>
internal sealed record VdiOpenState(
    IHostFile File,
    VdiHeader Header,
    uint[] BlockMap,
    long SizeBytes,
    VdiBlockMapScan Scan,
    string? ParentName,
    IImage? Parent);

/// <summary>
/// An opened VDI: a header, a block map, and blocks stored in slots after the map. Static images have every block in
/// its own slot from the start; dynamic images allocate slots at the end of the file as blocks are first written;
/// differencing images (VirtualBox snapshots) do the same, and read the blocks they lack from their parent.
/// </summary>
internal sealed partial class VdiImage : IImage, IBackingChain, ICheckable
{
    private readonly IHostFile _file;
    private readonly uint[] _map;
    private readonly int _blockBytes;
    private readonly int _blockShift;
    private readonly SemaphoreSlim _metadataLock = new(1, 1);
    private readonly IImage? _parent;

    /// <summary>The header as it is now on disk (blocks allocated and the modification UUID change); guarded by the lock.</summary>
    private VdiHeader _header;

    /// <summary>Blocks whose entry names a slot past the block count or data past the end of the file: reading them fails.</summary>
    private HashSet<long> _unreadable;

    /// <summary>Blocks that share their slot with another block: writing them would change both, so it is refused.</summary>
    private HashSet<long> _shared;

    /// <summary>The slot the next allocated block takes: the header's count, unless a (damaged) map already uses it.</summary>
    private long _nextSlot;

    /// <summary>Whether this session has given the image a new modification UUID yet (VirtualBox does so once per
    /// session that writes, which is how a child notices that its parent changed since the snapshot).</summary>
    private bool _modificationRecorded;

    private VdiImage(VdiOpenState state)
    {
        _file = state.File;
        _header = state.Header;
        _map = state.BlockMap;
        _blockBytes = (int)state.Header.BlockBytes;
        _blockShift = System.Numerics.BitOperations.Log2(state.Header.BlockBytes);
        SizeBytes = state.SizeBytes;
        BackingFileName = state.ParentName;
        _parent = state.Parent;
        (_unreadable, _shared) = Problems(state.Scan);
        _nextSlot = Math.Max(state.Header.BlocksAllocated, state.Scan.MaxSlot + 1);
    }

    public VdiHeader Header => _header;

    public bool IsStatic => _header.IsStatic;

    public bool IsDifferencing => _header.IsDifferencing;

    public string FormatName => "vdi";

    public IHostFile HostFile => _file;

    /// <summary>qemu-img shows the block size as cluster-size and nothing format-specific for VDI.</summary>
    public ImageDetails Details => new(ClusterSizeBytes: _blockBytes, Subformat: _header.ImageType switch
    {
        VdiImageType.Static => "static",
        VdiImageType.Differencing => "differencing",
        _ => "dynamic",
    });

    public long SizeBytes { get; }

    public int Alignment => _file.Alignment;

    public bool IsReadOnly => _file.IsReadOnly;

    public string? BackingFileName { get; }

    public string? BackingFormat => BackingFileName is null ? null : "vdi";

    public IBlockDevice? Backing => _parent;

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            long block = position >> _blockShift;
            int inBlock = (int)(position & (_blockBytes - 1));
            uint entry = Volatile.Read(ref _map[block]);
            int length = (int)Math.Min(buffer.Length - done, RunBytes(block, entry, buffer.Length - done + (long)inBlock) - inBlock);
            Memory<byte> part = buffer.Slice(done, length);
            if (VdiBlockMap.IsAllocated(entry))
            {
                await _file.ReadZeroFilledAsync(DataOffset(block, entry) + inBlock, part, cancellationToken).ConfigureAwait(false);
            }
            else if (entry == VdiBlockMap.Free && IsDifferencing)
            {
                await BackingRead.ReadOrZeroAsync(_parent, position, part, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                part.Span.Clear();
            }

            done += length;
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _file.FlushAsync(cancellationToken);

    /// <summary>
    /// As QEMU: an allocated block is data at its place in the file (a static image is also asked about holes in the file,
    /// QEMU's BDRV_BLOCK_RECURSE for static images only); a free block is zero in a base image and unallocated (the
    /// parent's) in a differencing one; a zero block is zero.
    /// </summary>
    public ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        lengthBytes = Math.Max(1, Math.Min(lengthBytes, SizeBytes - offsetBytes));
        long block = offsetBytes >> _blockShift;
        int inBlock = (int)(offsetBytes & (_blockBytes - 1));
        uint entry = Volatile.Read(ref _map[block]);
        long length = Math.Min(lengthBytes, RunBytes(block, entry, lengthBytes + inBlock) - inBlock);
        if (VdiBlockMap.IsAllocated(entry))
        {
            var data = new BlockStatus(BlockStatusKind.Data, length, DataOffset(block, entry) + inBlock);
            return ValueTask.FromResult(IsStatic ? HostHoles.Refine(data, _file) : data);
        }

        BlockStatusKind kind = entry == VdiBlockMap.Free && IsDifferencing ? BlockStatusKind.Unallocated : BlockStatusKind.Zero;
        return ValueTask.FromResult(new BlockStatus(kind, length, Allocated: false));
    }

    public async ValueTask DisposeAsync()
    {
        if (_parent is not null)
        {
            await _parent.DisposeAsync().ConfigureAwait(false);
        }

        _file.Dispose();
        _metadataLock.Dispose();
    }

    private static (HashSet<long> Unreadable, HashSet<long> Shared) Problems(VdiBlockMapScan scan) =>
        ([.. scan.OutOfRange, .. scan.PastEnd], [.. scan.Shared.SelectMany(s => new[] { s.Block, s.First })]);

    /// <summary>
    /// How many bytes from the start of <paramref name="block"/> (at most <paramref name="wantBytes"/>, at least the
    /// block) read the same way: following blocks stored in the next slots, or following blocks with the same marker,
    /// so large requests become one host read and one status extent.
    /// </summary>
    private long RunBytes(long block, uint entry, long wantBytes)
    {
        long run = _blockBytes;
        bool allocated = VdiBlockMap.IsAllocated(entry);
        for (long next = block + 1; run < wantBytes && next < _map.Length; next++)
        {
            uint nextEntry = Volatile.Read(ref _map[next]);
            bool same = allocated
                ? _header.BlockExtraBytes == 0 && nextEntry == entry + (uint)(next - block) && VdiBlockMap.IsAllocated(nextEntry) && !IsUnreadable(next)
                : nextEntry == entry;
            if (!same)
            {
                break;
            }

            run += _blockBytes;
        }

        return run;
    }

    private bool IsUnreadable(long block) => _unreadable.Count > 0 && _unreadable.Contains(block);

    /// <summary>Where the data of an allocated block starts in the file; blocks found damaged on open fail here.</summary>
    private long DataOffset(long block, uint entry)
    {
        if (IsUnreadable(block))
        {
            throw new ImageCorruptException(
                $"block map entry {block} points outside the image (slot {entry}); run 'check -r all'", "block map", _header.BlockMapOffsetBytes + (block * 4), _file.Path);
        }

        return VdiBlockMap.SlotOffset(_header, entry) + _header.BlockExtraBytes;
    }

    private void CheckRange(long offsetBytes, long lengthBytes)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > SizeBytes || lengthBytes > SizeBytes - offsetBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(offsetBytes), $"request [{offsetBytes}, +{lengthBytes}) is outside the disk ({SizeBytes} bytes)");
        }
    }

    private void CheckWritable()
    {
        if (_file.IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", _file.Path);
        }
    }
}
