using ImgTool.Block.Devices;

namespace ImgTool.Formats.Qed;

/// <summary>`check`: see <see cref="QedConsistencyCheck"/>. Any repair mode fixes what can be fixed, as QEMU's
/// bdrv_qed_co_check does for -r leaks and -r all alike.</summary>
internal sealed partial class QedImage
{
    public async ValueTask<CheckReport> CheckAsync(CheckRepair repair, CancellationToken cancellationToken = default)
    {
        bool fix = repair != CheckRepair.None && !_readOnly;
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await QedConsistencyCheck.RunAsync(this, fix, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }
}
