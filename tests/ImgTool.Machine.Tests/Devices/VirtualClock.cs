namespace ImgTool.Machine.Tests.Devices;

/// <summary>The machine's virtual time for a device under test: the test moves it.</summary>
internal sealed class VirtualClock
{
    public long NowNs { get; set; }

    public void Advance(long ns) => NowNs += ns;

    public void AdvanceUs(double us) => NowNs += (long)(us * 1000);
}
