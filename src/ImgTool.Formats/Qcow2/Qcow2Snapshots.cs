using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qcow2;

/// <summary>One entry of the snapshot table (docs/interop/qcow2.txt, "Snapshots").</summary>
internal sealed record Qcow2Snapshot(
    long L1TableOffset,
    int L1Size,
    string Id,
    string Name,
    uint DateSeconds,
    uint DateNanoseconds,
    ulong VmClockNanoseconds,
    ulong VmStateSize,
    ulong? DiskSizeBytes,
    ulong? Icount);

/// <summary>Reads the snapshot table, validating every field that sizes a read or a loop.</summary>
internal static class Qcow2Snapshots
{
    // Entry field offsets, each derived from the previous one.
    private const int L1TableOffsetField = 0;
    private const int L1SizeField = L1TableOffsetField + 8;
    private const int IdSizeField = L1SizeField + 4;
    private const int NameSizeField = IdSizeField + 2;
    private const int DateSecondsField = NameSizeField + 2;
    private const int DateNanosecondsField = DateSecondsField + 4;
    private const int VmClockField = DateNanosecondsField + 4;
    private const int VmStateSizeField = VmClockField + 8;
    private const int ExtraDataSizeField = VmStateSizeField + 4;
    private const int FixedLength = ExtraDataSizeField + 4; // 40
    private const int ExtraVmStateSizeLarge = 0;
    private const int ExtraDiskSize = ExtraVmStateSizeLarge + 8;
    private const int ExtraIcount = ExtraDiskSize + 8;

    /// <summary>Returns the snapshots and the table's length in bytes.</summary>
    public static async ValueTask<(IReadOnlyList<Qcow2Snapshot> Snapshots, long TableBytes)> ReadAsync(IHostFile file, Qcow2Header header, CancellationToken cancellationToken)
    {
        if (header.NbSnapshots == 0)
        {
            return ([], 0);
        }

        long available = Math.Min(file.Length - header.SnapshotsOffset, Qcow2Limits.MaxSnapshotTableBytes);
        if (available <= 0)
        {
            throw new ImageFormatException("the snapshot table lies beyond the end of the file", file.Path);
        }

        byte[] raw = new byte[available];
        await file.ReadZeroFilledAsync(header.SnapshotsOffset, raw, cancellationToken).ConfigureAwait(false);
        var snapshots = new List<Qcow2Snapshot>(header.NbSnapshots);
        int position = 0;
        for (int i = 0; i < header.NbSnapshots; i++)
        {
            if (position + FixedLength > raw.Length)
            {
                throw new ImageFormatException($"snapshot table is truncated (entry {i})", file.Path);
            }

            ReadOnlySpan<byte> entry = raw.AsSpan(position);
            long l1Offset = BinaryPrimitives.ReadInt64BigEndian(entry[L1TableOffsetField..]);
            uint l1Size = BinaryPrimitives.ReadUInt32BigEndian(entry[L1SizeField..]);
            int idSize = BinaryPrimitives.ReadUInt16BigEndian(entry[IdSizeField..]);
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(entry[NameSizeField..]);
            uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(entry[ExtraDataSizeField..]);
            if (extraSize > Qcow2Limits.MaxSnapshotExtraDataBytes)
            {
                throw new ImageFormatException($"snapshot {i} has too much extra data ({extraSize} bytes)", file.Path);
            }

            if (l1Size * 8L > Qcow2Limits.MaxL1Bytes || l1Offset <= 0 || (l1Offset & (header.ClusterSize - 1)) != 0)
            {
                throw new ImageFormatException($"snapshot {i} has an invalid L1 table (offset {l1Offset}, {l1Size} entries)", file.Path);
            }

            long length = FixedLength + extraSize + idSize + nameSize;
            if (position + length > raw.Length)
            {
                throw new ImageFormatException($"snapshot table is truncated (entry {i})", file.Path);
            }

            ReadOnlySpan<byte> extra = entry.Slice(FixedLength, (int)extraSize);
            ulong vmState = BinaryPrimitives.ReadUInt32BigEndian(entry[VmStateSizeField..]);
            if (extra.Length >= ExtraVmStateSizeLarge + 8)
            {
                vmState = BinaryPrimitives.ReadUInt64BigEndian(extra[ExtraVmStateSizeLarge..]);
            }

            ulong? diskSize = extra.Length >= ExtraDiskSize + 8 ? BinaryPrimitives.ReadUInt64BigEndian(extra[ExtraDiskSize..]) : null;
            ulong? icount = extra.Length >= ExtraIcount + 8 ? BinaryPrimitives.ReadUInt64BigEndian(extra[ExtraIcount..]) : null;
            int strings = FixedLength + (int)extraSize;
            snapshots.Add(new Qcow2Snapshot(
                l1Offset,
                (int)l1Size,
                Encoding.UTF8.GetString(entry.Slice(strings, idSize)),
                Encoding.UTF8.GetString(entry.Slice(strings + idSize, nameSize)),
                BinaryPrimitives.ReadUInt32BigEndian(entry[DateSecondsField..]),
                BinaryPrimitives.ReadUInt32BigEndian(entry[DateNanosecondsField..]),
                BinaryPrimitives.ReadUInt64BigEndian(entry[VmClockField..]),
                vmState,
                diskSize,
                icount));
            position += (int)((length + 7) & ~7L);
        }

        return (snapshots, position);
    }

    /// <summary>Serializes the table as QEMU writes it: each entry with 24 bytes of extra data
    /// (large VM state size, disk size, icount), padded to 8 bytes.</summary>
    public static byte[] Write(IReadOnlyList<Qcow2Snapshot> snapshots)
    {
        const int extraSize = ExtraIcount + 8;
        var buffer = new List<byte>();
        foreach (Qcow2Snapshot snapshot in snapshots)
        {
            byte[] id = Encoding.UTF8.GetBytes(snapshot.Id);
            byte[] name = Encoding.UTF8.GetBytes(snapshot.Name);
            int length = FixedLength + extraSize + id.Length + name.Length;
            byte[] entry = new byte[(length + 7) & ~7];
            Span<byte> e = entry;
            BinaryPrimitives.WriteInt64BigEndian(e[L1TableOffsetField..], snapshot.L1TableOffset);
            BinaryPrimitives.WriteUInt32BigEndian(e[L1SizeField..], (uint)snapshot.L1Size);
            BinaryPrimitives.WriteUInt16BigEndian(e[IdSizeField..], (ushort)id.Length);
            BinaryPrimitives.WriteUInt16BigEndian(e[NameSizeField..], (ushort)name.Length);
            BinaryPrimitives.WriteUInt32BigEndian(e[DateSecondsField..], snapshot.DateSeconds);
            BinaryPrimitives.WriteUInt32BigEndian(e[DateNanosecondsField..], snapshot.DateNanoseconds);
            BinaryPrimitives.WriteUInt64BigEndian(e[VmClockField..], snapshot.VmClockNanoseconds);
            BinaryPrimitives.WriteUInt32BigEndian(e[VmStateSizeField..], (uint)Math.Min(snapshot.VmStateSize, uint.MaxValue));
            BinaryPrimitives.WriteUInt32BigEndian(e[ExtraDataSizeField..], extraSize);
            Span<byte> extra = e.Slice(FixedLength, extraSize);
            BinaryPrimitives.WriteUInt64BigEndian(extra[ExtraVmStateSizeLarge..], snapshot.VmStateSize);
            BinaryPrimitives.WriteUInt64BigEndian(extra[ExtraDiskSize..], snapshot.DiskSizeBytes ?? 0);
            BinaryPrimitives.WriteUInt64BigEndian(extra[ExtraIcount..], snapshot.Icount ?? ulong.MaxValue);
            id.CopyTo(e[(FixedLength + extraSize)..]);
            name.CopyTo(e[(FixedLength + extraSize + id.Length)..]);
            buffer.AddRange(entry);
        }

        return [.. buffer];
    }
}
