using ImgTool.Block.Devices;
using ImgTool.Block.Host;

namespace ImgTool.Formats.Qed;

/// <summary>Reads and block status: data clusters from the file, zero clusters as zeros, the rest from the backing file.</summary>
internal sealed partial class QedImage
{
    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        for (int done = 0; done < buffer.Length;)
        {
            long position = offsetBytes + done;
            QedRun run = await FindRunLockedAsync(position, buffer.Length - done, cancellationToken).ConfigureAwait(false);
            Memory<byte> part = buffer.Slice(done, (int)run.LengthBytes);
            switch (run.Kind)
            {
                case QedRunKind.Data:
                    await HostFile.ReadZeroFilledAsync(run.HostOffsetBytes, part, cancellationToken).ConfigureAwait(false);
                    break;
                case QedRunKind.Zero:
                    part.Span.Clear();
                    break;
                default:
                    // The spec: unallocated reads go to the backing file, zeros past its end or without one.
                    await BackingRead.ReadOrZeroAsync(_backing, position, part, cancellationToken).ConfigureAwait(false);
                    break;
            }

            done += part.Length;
        }
    }

    /// <summary>As QEMU's qed block status: data with its file offset, zero clusters as zero, the rest unallocated.</summary>
    public async ValueTask<BlockStatus> GetStatusAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        lengthBytes = Math.Max(1, Math.Min(lengthBytes, SizeBytes - offsetBytes));
        QedRun run = await FindRunLockedAsync(offsetBytes, lengthBytes, cancellationToken).ConfigureAwait(false);
        return run.Kind switch
        {
            QedRunKind.Data => new BlockStatus(BlockStatusKind.Data, run.LengthBytes, run.HostOffsetBytes),
            QedRunKind.Zero => new BlockStatus(BlockStatusKind.Zero, run.LengthBytes),
            _ => new BlockStatus(BlockStatusKind.Unallocated, run.LengthBytes, Allocated: false),
        };
    }

    private async ValueTask<QedRun> FindRunLockedAsync(long guestOffset, long maxLengthBytes, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await FindRunAsync(guestOffset, maxLengthBytes, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }
}
