using ImgTool.Block.Devices;

namespace ImgTool.TestSupport;

/// <summary>Operations applied to a device under test and to the bytes it should then read as (the model).</summary>
public static class ModelOperations
{
    public static async Task WriteAsync(IBlockDevice device, byte[] model, long offset, byte[] data)
    {
        await device.WriteAsync(offset, data);
        data.CopyTo(model, offset);
    }

    public static async Task WriteZeroesAsync(IBlockDevice device, byte[] model, long offset, int length, BlockZeroFlags flags)
    {
        await device.WriteZeroesAsync(offset, length, flags);
        Array.Clear(model, (int)offset, length);
    }

    /// <summary>A discard on an image without a backing file: the whole clusters it covers read as zeros
    /// afterwards (the last, partial cluster of the disk counts as whole), partial ones keep their data.</summary>
    public static async Task DiscardAsync(IBlockDevice device, byte[] model, long offset, int length, long cluster)
    {
        await device.DiscardAsync(offset, length);
        long first = (offset + cluster - 1) / cluster * cluster;
        long end = offset + length == model.Length ? model.Length : (offset + length) / cluster * cluster;
        if (end > first)
        {
            Array.Clear(model, (int)first, (int)(end - first));
        }
    }
}
