namespace ImgTool.Block.Devices;

/// <summary>An image whose header names its backing file and can name another one (QEMU's bdrv_change_backing_file,
/// which qcow2 and QED implement): what `rebase` rewrites once the data is in place.</summary>
public interface IBackingFileChange
{
    /// <summary>Stores <paramref name="backingFileName"/> (null: no backing file) and <paramref name="backingFormat"/>
    /// (null: none named) in the header. Only the header changes; the guest data stays as it is.</summary>
    ValueTask ChangeBackingFileAsync(string? backingFileName, string? backingFormat, CancellationToken cancellationToken = default);
}

/// <summary>An image that can drop everything it stores, so every range falls through to its backing file again
/// (QEMU's bdrv_make_empty, which `commit` calls on the overlay once its data is in the base).</summary>
public interface IMakeEmpty
{
    ValueTask MakeEmptyAsync(CancellationToken cancellationToken = default);
}
