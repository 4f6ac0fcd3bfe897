using System.Globalization;
using ImgTool.Operations.Common;

namespace ImgTool.Cli.Rendering;

/// <summary>
/// Prints progress: on a terminal a live "(12.00/100%)" line as qemu-img does; otherwise one line per
/// whole percent; with --progress=json one JSON object per line on stderr (stdout keeps the result).
/// </summary>
internal sealed class ProgressPrinter : IProgress<ProgressReport>
{
    private readonly TextWriter _human;
    private readonly TextWriter _json;
    private readonly ProgressStyle _style;
    private readonly Lock _lock = new();
    private int _lastPercent = -1;
    private long _lastDoneBytes = -1;
    private string _lastPhase = string.Empty;

    private ProgressPrinter(TextWriter human, TextWriter json, ProgressStyle style)
    {
        _human = human;
        _json = json;
        _style = style;
    }

    private enum ProgressStyle
    {
        Terminal,
        Lines,
        Json,
    }

    /// <summary>The printer for -p / --progress, or null when neither was given.</summary>
    public static ProgressPrinter? Create(CliContext context, bool humanProgress, string? progressOption)
    {
        ProgressStyle? style = progressOption switch
        {
            "json" => ProgressStyle.Json,
            "human" => context.OutputIsTerminal ? ProgressStyle.Terminal : ProgressStyle.Lines,
            _ when humanProgress => context.OutputIsTerminal ? ProgressStyle.Terminal : ProgressStyle.Lines,
            _ => null,
        };
        return style is { } s ? new ProgressPrinter(context.Output, context.Error, s) : null;
    }

    public void Report(ProgressReport value)
    {
        int percent = (int)Math.Floor(value.Percent);
        lock (_lock)
        {
            // Within a phase the figure only grows: operations report the contiguous done part, and a report
            // that arrives late from another thread must not move the line back.
            bool samePhase = value.Phase == _lastPhase;
            if (samePhase && (percent == _lastPercent || value.DoneBytes < _lastDoneBytes))
            {
                return;
            }

            _lastPercent = percent;
            _lastDoneBytes = value.DoneBytes;
            _lastPhase = value.Phase;
            switch (_style)
            {
                case ProgressStyle.Terminal:
                    _human.Write(string.Create(CultureInfo.InvariantCulture, $"    ({value.Percent:0.00}/100%)\r"));
                    break;
                case ProgressStyle.Lines:
                    _human.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    ({value.Percent:0.00}/100%)"));
                    break;
                case ProgressStyle.Json:
                    _json.WriteLine(JsonText.Build(
                        w =>
                        {
                            w.WriteStartObject();
                            w.WriteString("phase", value.Phase);
                            w.WriteNumber("done", value.DoneBytes);
                            w.WriteNumber("total", value.TotalBytes);
                            w.WriteEndObject();
                        },
                        indented: false));
                    break;
            }
        }
    }

    /// <summary>Ends the live line so what follows starts on a fresh one.</summary>
    public void Finish()
    {
        if (_style == ProgressStyle.Terminal)
        {
            _human.WriteLine();
        }
    }
}
