using ImgTool.Operations.Common;

namespace ImgTool.Operations.Tests;

public class OrderedGateTests
{
    [Fact]
    public async Task Steps_finish_in_sequence_whatever_order_they_arrive_in()
    {
        var gate = new OrderedGate();
        var finished = new List<int>();
        var tasks = Enumerable.Range(0, 50).Reverse().Select(async i =>
        {
            await Task.Delay(i % 7);
            await gate.WaitTurnAsync(i, CancellationToken.None);
            lock (finished)
            {
                finished.Add(i);
            }

            gate.Advance(i);
        }).ToList();
        await Task.WhenAll(tasks);
        Assert.Equal(Enumerable.Range(0, 50), finished);
    }

    [Fact]
    public void Advancing_out_of_turn_is_a_bug_and_says_so()
    {
        var gate = new OrderedGate();
        Assert.Throws<InvalidOperationException>(() => gate.Advance(3));
    }
}
