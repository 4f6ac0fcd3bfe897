using System.Collections.Frozen;

namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>
/// The instruction groups (as tools/cpu-harness/alu names them) where today's interpreter does not
/// match the host, each with the reason as far as the vectors show it. The test asserts both ways:
/// every group not listed passes every vector, and every listed group still fails at least one, so
/// an entry must be removed once the engine is fixed and the list only shrinks.
/// </summary>
internal static class KnownFailures
{
    public static readonly FrozenDictionary<string, string> ByGroup = new Dictionary<string, string>
    {
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>
    /// What is wrong with a run against a known-failures list: groups off the list that failed
    /// (with their first failing vectors), groups on it that now pass, and names on it that the
    /// harness does not generate. Empty when the run is as the list says.
    /// </summary>
    public static List<string> Problems(IReadOnlyDictionary<string, GroupResult> groups, IReadOnlyDictionary<string, string> knownFailures)
    {
        var problems = new List<string>();
        var unexpected = groups.Where(g => g.Value.Passed != g.Value.Total && !knownFailures.ContainsKey(g.Key)).ToList();
        if (unexpected.Count > 0)
        {
            problems.Add($"{unexpected.Count} instruction groups differ from the host:\n" + string.Join("\n",
                unexpected.Select(g => $"{g.Key}: {g.Value.Passed}/{g.Value.Total}\n  " + string.Join("\n  ", g.Value.Failures))));
        }

        var passingNow = knownFailures.Keys.Where(k => groups.TryGetValue(k, out var g) && g.Passed == g.Total).Order(StringComparer.Ordinal).ToList();
        if (passingNow.Count > 0)
        {
            problems.Add("these groups on the known-failures list now pass; remove them from KnownFailures: " + string.Join(", ", passingNow));
        }

        var unknown = knownFailures.Keys.Where(k => !groups.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
        {
            problems.Add("the known-failures list names groups the harness does not generate: " + string.Join(", ", unknown));
        }

        return problems;
    }
}

/// <summary>The vectors of one instruction group: how many passed, the first failures, and undefined-flag differences.</summary>
internal sealed class GroupResult
{
    public int Total { get; set; }

    public int Passed { get; set; }

    public int UndefinedFlagVectors { get; set; }

    public uint UndefinedFlagsDiffering { get; set; }

    public List<string> Failures { get; } = [];
}
