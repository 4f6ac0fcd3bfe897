using ImgTool.Block.Devices;

namespace ImgTool.Block.Tests;

public class BackingReadTests
{
    [Fact]
    public async Task Reads_the_backing_device_and_zeros_past_its_end_or_without_one()
    {
        byte[] content = [1, 2, 3, 4, 5, 6, 7, 8];
        var backing = new ArrayDevice(content);

        byte[] straddling = [9, 9, 9, 9, 9, 9];
        await BackingRead.ReadOrZeroAsync(backing, 5, straddling);
        Assert.Equal(new byte[] { 6, 7, 8, 0, 0, 0 }, straddling);

        byte[] beyond = [9, 9];
        await BackingRead.ReadOrZeroAsync(backing, 20, beyond);
        Assert.Equal(new byte[] { 0, 0 }, beyond);

        byte[] none = [9, 9];
        await BackingRead.ReadOrZeroAsync(null, 0, none);
        Assert.Equal(new byte[] { 0, 0 }, none);
    }
}
