using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ImgTool.Bench;

/// <summary>A finding from a case's verification; a problem makes the bench exit non-zero.</summary>
internal sealed record CaseNote(bool IsProblem, string Text);

/// <summary>The timed runs of one tool in one case.</summary>
internal sealed class ToolStats(IReadOnlyList<Measurement> runs)
{
    public IReadOnlyList<Measurement> Runs { get; } = runs;

    // The median rather than the mean: one run delayed by writeback or a scheduler hiccup should not move it.
    public double MedianMs { get; } = Median(runs.Select(run => run.WallMs));

    public double MinMs { get; } = runs.Min(run => run.WallMs);

    public double MaxMs { get; } = runs.Max(run => run.WallMs);

    // The worst run: memory bounds are about the peak, not the typical run.
    public long PeakRssKiB { get; } = runs.Max(run => run.PeakRssKiB);

    private static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}

/// <param name="QemuImg">The peer's runs: qemu-img, or the case's <see cref="BenchCase.PeerProgram"/>.</param>
internal sealed record CaseResult(BenchCase Case, ToolStats Imgtool, ToolStats QemuImg, IReadOnlyList<CaseNote> Notes)
{
    /// <summary>imgtool's median over the peer's: below 1.0 imgtool is faster.</summary>
    public double Ratio => Imgtool.MedianMs / QemuImg.MedianMs;
}

/// <summary>What was benchmarked, for the JSON header.</summary>
internal sealed record BenchSetup(
    DateTimeOffset StartedUtc,
    string ImgtoolPath,
    string ImgtoolVersion,
    string QemuImgPath,
    string QemuImgVersion,
    long ImageSizeBytes,
    long ImageAllocatedBytes,
    ulong ImageSeed,
    int Runs);

/// <summary>Two renderers of the same results: a Markdown table for people, JSON for scripts.</summary>
internal static class Report
{
    public static string MiB(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture);

    private static string Ms(double milliseconds) => milliseconds.ToString("0.0", CultureInfo.InvariantCulture);

    private static string RatioText(double ratio) => ratio.ToString("0.00", CultureInfo.InvariantCulture);

    public static void PrintTable(TextWriter output, IReadOnlyList<CaseResult> results)
    {
        string[] header =
        [
            // "qemu" is qemu-img, or the case's own peer (qemu-system-i386 for boot).
            "case", "imgtool median (ms)", "qemu median (ms)", "ratio imgtool/qemu",
            "imgtool peak RSS (MiB)", "qemu peak RSS (MiB)",
        ];
        List<string[]> rows = [header];
        rows.AddRange(results.Select(result => new[]
        {
            result.Case.Name,
            Ms(result.Imgtool.MedianMs),
            Ms(result.QemuImg.MedianMs),
            RatioText(result.Ratio),
            MiB(result.Imgtool.PeakRssKiB * 1024),
            MiB(result.QemuImg.PeakRssKiB * 1024),
        }));
        int[] widths = Enumerable.Range(0, header.Length).Select(column => rows.Max(row => row[column].Length)).ToArray();

        for (int rowIndex = 0; rowIndex < rows.Count; rowIndex++)
        {
            var line = new StringBuilder("|");
            for (int column = 0; column < header.Length; column++)
            {
                // The case name reads left to right; numbers line up on the right.
                string cell = column == 0 ? rows[rowIndex][column].PadRight(widths[column]) : rows[rowIndex][column].PadLeft(widths[column]);
                line.Append(' ').Append(cell).Append(" |");
            }

            output.WriteLine(line.ToString());
            if (rowIndex == 0)
            {
                output.WriteLine("|" + string.Concat(widths.Select((width, column) =>
                    (column == 0 ? ":" + new string('-', width + 1) : new string('-', width + 1) + ":") + "|")));
            }
        }

        if (results.Count == 0)
        {
            return;
        }

        CaseResult worst = results.MaxBy(result => result.Ratio)!;
        CaseResult heaviest = results.MaxBy(result => result.Imgtool.PeakRssKiB)!;
        output.WriteLine();
        output.WriteLine(
            $"worst ratio: {RatioText(worst.Ratio)} ({worst.Case.Name}); " +
            $"max imgtool peak RSS: {MiB(heaviest.Imgtool.PeakRssKiB * 1024)} MiB ({heaviest.Case.Name})");

        foreach (CaseResult result in results)
        {
            foreach (CaseNote note in result.Notes)
            {
                output.WriteLine($"{(note.IsProblem ? "PROBLEM" : "note")}: {result.Case.Name}: {note.Text}");
            }
        }
    }

    public static void WriteJson(string path, BenchSetup setup, IReadOnlyList<CaseResult> results)
    {
        using FileStream file = File.Create(path);
        // The default encoder escapes '+' and '>' for HTML embedding; this file is read by scripts and people.
        var jsonOptions = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        using var json = new Utf8JsonWriter(file, jsonOptions);
        json.WriteStartObject();
        json.WriteString("startedUtc", setup.StartedUtc);
        json.WriteStartObject("imgtool");
        json.WriteString("path", setup.ImgtoolPath);
        json.WriteString("version", setup.ImgtoolVersion);
        json.WriteEndObject();
        json.WriteStartObject("qemuImg");
        json.WriteString("path", setup.QemuImgPath);
        json.WriteString("version", setup.QemuImgVersion);
        json.WriteEndObject();
        json.WriteStartObject("image");
        json.WriteNumber("sizeBytes", setup.ImageSizeBytes);
        json.WriteNumber("allocatedBytes", setup.ImageAllocatedBytes);
        json.WriteString("seed", $"0x{setup.ImageSeed:X16}");
        json.WriteEndObject();
        json.WriteNumber("runs", setup.Runs);

        json.WriteStartArray("cases");
        foreach (CaseResult result in results)
        {
            json.WriteStartObject();
            json.WriteString("id", result.Case.Id);
            json.WriteString("name", result.Case.Name);
            json.WriteString("peer", result.Case.PeerName);
            WriteToolStats(json, "imgtool", result.Imgtool);
            WriteToolStats(json, "qemuImg", result.QemuImg);
            json.WriteNumber("ratio", Math.Round(result.Ratio, 4));
            json.WriteStartArray("notes");
            foreach (CaseNote note in result.Notes)
            {
                json.WriteStartObject();
                json.WriteBoolean("problem", note.IsProblem);
                json.WriteString("text", note.Text);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();

        if (results.Count > 0)
        {
            CaseResult worst = results.MaxBy(result => result.Ratio)!;
            json.WriteStartObject("worstRatio");
            json.WriteString("case", worst.Case.Id);
            json.WriteNumber("ratio", Math.Round(worst.Ratio, 4));
            json.WriteEndObject();
            json.WriteNumber("maxImgtoolPeakRssKiB", results.Max(result => result.Imgtool.PeakRssKiB));
        }

        json.WriteEndObject();
    }

    private static void WriteToolStats(Utf8JsonWriter json, string name, ToolStats stats)
    {
        json.WriteStartObject(name);
        json.WriteNumber("medianMs", Math.Round(stats.MedianMs, 3));
        json.WriteNumber("minMs", Math.Round(stats.MinMs, 3));
        json.WriteNumber("maxMs", Math.Round(stats.MaxMs, 3));
        json.WriteNumber("peakRssKiB", stats.PeakRssKiB);
        json.WriteStartArray("samplesMs");
        foreach (Measurement run in stats.Runs)
        {
            json.WriteNumberValue(Math.Round(run.WallMs, 3));
        }

        json.WriteEndArray();
        json.WriteStartArray("peakRssKiBSamples");
        foreach (Measurement run in stats.Runs)
        {
            json.WriteNumberValue(run.PeakRssKiB);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }
}
