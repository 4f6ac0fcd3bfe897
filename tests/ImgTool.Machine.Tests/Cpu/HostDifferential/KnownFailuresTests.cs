namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>The known-failures bookkeeping: off the list must pass, on the list must still fail.</summary>
public sealed class KnownFailuresTests
{
    private static GroupResult Result(int passed, int total) => new() { Passed = passed, Total = total };

    [Fact]
    public void A_run_as_the_list_says_has_no_problems()
    {
        var groups = new Dictionary<string, GroupResult> { ["ADD8"] = Result(10, 10), ["RCL8"] = Result(3, 10) };
        Assert.Empty(KnownFailures.Problems(groups, new Dictionary<string, string> { ["RCL8"] = "OF wrong" }));
    }

    [Fact]
    public void A_failing_group_off_the_list_a_passing_group_on_it_and_an_unknown_name_are_each_reported()
    {
        var groups = new Dictionary<string, GroupResult> { ["ADD8"] = Result(9, 10), ["RCL8"] = Result(10, 10) };
        var problems = KnownFailures.Problems(groups, new Dictionary<string, string> { ["RCL8"] = "OF wrong", ["NOPE"] = "?" });
        Assert.Equal(3, problems.Count);
        Assert.Contains("ADD8: 9/10", problems[0], StringComparison.Ordinal);
        Assert.Contains("now pass; remove them from KnownFailures: RCL8", problems[1], StringComparison.Ordinal);
        Assert.EndsWith("does not generate: NOPE", problems[2], StringComparison.Ordinal);
    }
}
