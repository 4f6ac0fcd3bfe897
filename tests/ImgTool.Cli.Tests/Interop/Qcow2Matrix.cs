namespace ImgTool.Cli.Tests.Interop;

/// <summary>One qcow2 variant of the interop matrix: the create options, and how deep a backing chain sits below it.</summary>
public sealed record Qcow2Variant(
    string Compat,
    int ClusterSize,
    int RefcountBits,
    bool LazyRefcounts,
    bool ExtendedL2,
    string Compression,
    int BackingDepth,
    string Preallocation,
    string DataFile)
{
    public bool HasDataFile => DataFile != "off";

    /// <summary>Internal snapshots need refcounts above one and no external data file.</summary>
    public bool AllowsSnapshots => RefcountBits > 1 && !HasDataFile;

    /// <summary>Compressed clusters cannot live in an external data file.</summary>
    public bool AllowsCompression => !HasDataFile;

    /// <summary>The -o string both tools take; <paramref name="dataFilePath"/> names the external data file when there is one.</summary>
    public string Options(string dataFilePath)
    {
        var parts = new List<string>
        {
            $"compat={Compat}",
            $"cluster_size={ClusterSize}",
            $"preallocation={Preallocation}",
        };
        if (Compat != "0.10")
        {
            parts.Add($"refcount_bits={RefcountBits}");
            parts.Add($"lazy_refcounts={(LazyRefcounts ? "on" : "off")}");
            parts.Add($"extended_l2={(ExtendedL2 ? "on" : "off")}");
            parts.Add($"compression_type={Compression}");
        }

        if (HasDataFile)
        {
            parts.Add($"data_file={dataFilePath}");
            parts.Add($"data_file_raw={(DataFile == "raw" ? "on" : "off")}");
        }

        return string.Join(',', parts);
    }

    /// <summary>A short label (xunit cuts theory arguments at 50 characters): e.g. "1.1 4k r16 lazy xl2 zstd d1 full df=raw".</summary>
    public override string ToString() =>
        string.Join(' ', new[]
        {
            Compat,
            ClusterSize >= 1024 ? $"{ClusterSize / 1024}k" : $"{ClusterSize}",
            $"r{RefcountBits}",
            LazyRefcounts ? "lazy" : null,
            ExtendedL2 ? "xl2" : null,
            Compression,
            $"d{BackingDepth}",
            Preallocation,
            HasDataFile ? $"df={DataFile}" : null,
        }.Where(p => p is not null));
}

/// <summary>
/// The qcow2 interop matrix as a pairwise covering array: every pair of values of any two dimensions
/// (compat, cluster size, refcount width, lazy refcounts, extended L2, compression type, backing depth,
/// preallocation, data file) appears in at least one variant that qemu-img accepts. The full product is
/// 4,608 variants, about 20 of which cover every pair; a fault that needs two settings together to show
/// is caught, which is what interop faults usually need.
/// </summary>
public static class Qcow2Matrix
{
    private static readonly string[] Compats = ["0.10", "1.1"];
    private static readonly int[] ClusterSizes = [512, 4096, 65536, 2 << 20];
    private static readonly int[] RefcountWidths = [1, 16, 64];
    private static readonly bool[] OffOn = [false, true];
    private static readonly string[] Compressions = ["zlib", "zstd"];
    private static readonly int[] Depths = [0, 1, 3];
    private static readonly string[] Preallocations = ["off", "metadata", "falloc", "full"];
    private static readonly string[] DataFiles = ["off", "on", "raw"];

    public static IReadOnlyList<Qcow2Variant> Pairwise { get; } = Build();

    /// <summary>Theory rows: the index into <see cref="Pairwise"/>, and the variant's text so that each shows by name.</summary>
    public static TheoryData<int, string> Variants
    {
        get
        {
            var rows = new TheoryData<int, string>();
            for (int i = 0; i < Pairwise.Count; i++)
            {
                rows.Add(i, Pairwise[i].ToString());
            }

            return rows;
        }
    }

    /// <summary>What qemu-img refuses to create, so never part of the matrix.</summary>
    public static bool IsValid(Qcow2Variant v) =>
        (v.Compat == "1.1" || (v.RefcountBits == 16 && !v.LazyRefcounts && !v.ExtendedL2 && v.Compression == "zlib" && !v.HasDataFile))
        && (!v.ExtendedL2 || v.ClusterSize >= 16384)
        && (v.BackingDepth == 0 || v.Preallocation == "off" || v.ExtendedL2)
        && (v.BackingDepth == 0 || v.DataFile != "raw");

    private static List<Qcow2Variant> Build()
    {
        List<Qcow2Variant> all =
        [
            .. from compat in Compats
               from cluster in ClusterSizes
               from refcount in RefcountWidths
               from lazy in OffOn
               from extended in OffOn
               from compression in Compressions
               from depth in Depths
               from prealloc in Preallocations
               from dataFile in DataFiles
               let v = new Qcow2Variant(compat, cluster, refcount, lazy, extended, compression, depth, prealloc, dataFile)
               where IsValid(v)
               select v,
        ];

        // Only pairs some valid variant has can be covered.
        var uncovered = new HashSet<(int, string, int, string)>(all.SelectMany(Pairs));
        var chosen = new List<Qcow2Variant>();
        while (uncovered.Count > 0)
        {
            // Greedy: the variant covering most uncovered pairs; ties go to the first, so the matrix is stable.
            Qcow2Variant best = all.MaxBy(v => Pairs(v).Count(uncovered.Contains))!;
            uncovered.ExceptWith(Pairs(best));
            chosen.Add(best);
        }

        return chosen;
    }

    private static IEnumerable<(int, string, int, string)> Pairs(Qcow2Variant v)
    {
        string[] values =
        [
            v.Compat, v.ClusterSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
            v.RefcountBits.ToString(System.Globalization.CultureInfo.InvariantCulture), v.LazyRefcounts.ToString(), v.ExtendedL2.ToString(),
            v.Compression, v.BackingDepth.ToString(System.Globalization.CultureInfo.InvariantCulture), v.Preallocation, v.DataFile,
        ];
        for (int i = 0; i < values.Length; i++)
        {
            for (int j = i + 1; j < values.Length; j++)
            {
                yield return (i, values[i], j, values[j]);
            }
        }
    }
}
