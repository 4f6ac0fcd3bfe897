using ImgTool.Block.Devices;
using ImgTool.Block.Options;
using ImgTool.Formats;
using ImgTool.Operations.Convert;

namespace ImgTool.Operations.Measure;

/// <summary>
/// Measures a format qemu-img cannot measure by doing what convert does (create with the same options, the same
/// pipeline, the same zero detection) into in-memory files that keep data as marks, then adding up the files'
/// lengths: the figure is what `imgtool convert` produces, not an estimate.
/// </summary>
internal static class ConvertSimulation
{
    /// <summary>Real (non-data) bytes the simulated files may hold in memory together.</summary>
    public const long MemoryBudgetBytes = 512L << 20;

    /// <summary>Files of multi-file images name each other, so the simulated image needs a name: "disk" with the format's
    /// usual extension (a VMDK descriptor file names its extents, so its length depends on that name's length).</summary>
    public static string TargetName(FormatDriver driver) => "disk." + driver.Name switch
    {
        "vpc" => "vhd",
        var name => name,
    };

    public static async ValueTask<long> RunAsync(FormatDriver driver, ImageOptions options, IBlockDevice source, IReadOnlyDictionary<string, byte[]> secrets, string? targetName, CancellationToken cancellationToken)
    {
        var budget = new SimulationBudget(MemoryBudgetBytes);
        var files = new Dictionary<string, SimulatedHostFile>(StringComparer.Ordinal);
        var main = new SimulatedHostFile(targetName ?? TargetName(driver), budget);
        files[main.Path] = main;
        SimulatedHostFile Related(string name) => files.TryGetValue(name, out SimulatedHostFile? file)
            ? file
            : throw new Block.Errors.UnsupportedFeatureException($"measure: the image names a file it did not create: {name}");

        var request = new ImageCreateRequest(source.SizeBytes, options)
        {
            CreateRelatedFile = name => files[name] = new SimulatedHostFile(name, budget),
            OpenRelatedFile = Related,
            Secrets = secrets,
        };
        await driver.CreateAsync(main, request, cancellationToken).ConfigureAwait(false);
        IImage target = await driver.OpenAsync(main, new ImageOpenContext(false, null, (name, _) => Related(name)), cancellationToken).ConfigureAwait(false);
        await using (target.ConfigureAwait(false))
        {
            ICompressedWrites? compressed = driver.AlwaysCompresses(options) ? target as ICompressedWrites : null;
            var pipeline = new ConvertPipeline(source, target, compressed, sparseBytes: 4096, driver.CreatesZeroedImages, parallel: 8, outOfOrder: false, progress: null);
            await pipeline.RunAsync(cancellationToken).ConfigureAwait(false);
            await target.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        return files.Values.Sum(f => f.Length);
    }
}
