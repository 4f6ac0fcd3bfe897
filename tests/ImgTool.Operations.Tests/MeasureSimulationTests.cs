using FsCheck.Xunit;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;
using ImgTool.Operations.Measure;

namespace ImgTool.Operations.Tests;

/// <summary>The in-memory files measure simulates a convert into: they must read back exactly what was written
/// (fill pages kept as marks are a storage trick, never a change of content), and refuse rather than guess once
/// their memory budget is spent.</summary>
public class MeasureSimulationTests
{
    [Property(MaxTest = 60)]
    public bool Simulated_file_reads_back_what_a_plain_memory_file_holds(byte[] operations, int seed)
    {
        var random = new Random(seed);
        var model = new MemoryHostFile();
        var simulated = new SimulatedHostFile("sim", new SimulationBudget(1L << 30));
        foreach (byte operation in operations)
        {
            long offset = random.Next(0, 64 * 1024);
            int length = random.Next(1, 20_000);
            switch (operation % 5)
            {
                case 0 or 1:
                    byte[] data = new byte[length];
                    if (operation % 2 == 0)
                    {
                        data.AsSpan().Fill(SimulatedHostFile.FillByte); // guest data as measure writes it
                    }
                    else
                    {
                        random.NextBytes(data); // metadata
                    }

                    model.WriteAsync(offset, data).AsTask().GetAwaiter().GetResult();
                    simulated.WriteAsync(offset, data).AsTask().GetAwaiter().GetResult();
                    break;
                case 2:
                    model.ZeroRange(offset, length);
                    simulated.ZeroRange(offset, length);
                    break;
                case 3:
                    model.PunchHole(offset, length);
                    simulated.PunchHole(offset, length);
                    break;
                default:
                    model.SetLength(offset);
                    simulated.SetLength(offset);
                    break;
            }
        }

        if (model.Length != simulated.Length)
        {
            return false;
        }

        byte[] expected = new byte[model.Length];
        byte[] actual = new byte[simulated.Length];
        model.ReadAsync(0, expected).AsTask().GetAwaiter().GetResult();
        simulated.ReadAsync(0, actual).AsTask().GetAwaiter().GetResult();
        return expected.AsSpan().SequenceEqual(actual);
    }

    [Fact]
    public async Task Data_pages_cost_no_budget_and_a_page_past_the_budget_is_refused_when_read()
    {
        var budget = new SimulationBudget(SimulatedHostFile.PageSize);
        var file = new SimulatedHostFile("sim", budget);
        byte[] fill = new byte[1 << 20];
        fill.AsSpan().Fill(SimulatedHostFile.FillByte);
        await file.WriteAsync(0, fill);
        byte[] metadata = new byte[SimulatedHostFile.PageSize];
        metadata[0] = 1;
        await file.WriteAsync(2 << 20, metadata);
        await file.WriteAsync(3 << 20, metadata); // over budget: counted, not kept
        Assert.Equal((3 << 20) + SimulatedHostFile.PageSize, file.Length);
        byte[] back = new byte[SimulatedHostFile.PageSize];
        await file.ReadAsync(2 << 20, back);
        Assert.Equal(metadata, back);
        await file.ReadAsync(4096, back);
        Assert.All(back, b => Assert.Equal(SimulatedHostFile.FillByte, b));
        await Assert.ThrowsAsync<UnsupportedFeatureException>(async () => await file.ReadAsync(3 << 20, back));
    }
}
