namespace ImgTool.Machine.Watchdogs;

/// <summary>
/// Linux's panic on the console. panic() prints "Kernel panic - not syncing: REASON", a stack dump, and
/// "---[ end Kernel panic - not syncing: REASON ]---", then spins for ever with interrupts off (panic=0, the
/// default) or reboots after the panic= delay; either way the boot has failed, and the run ends at the end
/// line, or a little after the first if the end line never comes, with the reason quoted.
/// </summary>
internal sealed class KernelPanicWatch
{
    public const string PanicText = "Kernel panic - not syncing";
    private const string EndText = "---[ end " + PanicText;

    /// <summary>How long after the first line the rest may take to come out (0.5 virtual seconds).</summary>
    public const long GraceInstructions = 50_000_000;

    private int _scanned;
    private long _panicInstruction = -1;

    /// <summary>The panic line, once seen.</summary>
    public string? PanicLine { get; private set; }

    /// <summary>Looks at the console output so far; true once the panic has been printed in full (or its grace ran out).</summary>
    public bool Observe(string serial, long instructions)
    {
        if (PanicLine is null)
        {
            // Only what is new is searched, from a little before it in case the text straddles two looks.
            int from = Math.Max(0, _scanned - PanicText.Length);
            _scanned = serial.Length;
            int at = serial.IndexOf(PanicText, from, StringComparison.Ordinal);
            if (at < 0)
            {
                return false;
            }

            int end = serial.IndexOfAny(['\r', '\n'], at);
            PanicLine = (end < 0 ? serial[at..] : serial[at..end]).Trim();
            _panicInstruction = instructions;
        }
        else if (serial.Length > _scanned)
        {
            // The reason line is only complete at its line end: take it again while it is still being written.
            int at = serial.IndexOf(PanicText, StringComparison.Ordinal);
            int end = serial.IndexOfAny(['\r', '\n'], at);
            if (end >= 0)
            {
                PanicLine = serial[at..end].Trim();
            }

            _scanned = serial.Length;
        }

        return serial.Contains(EndText, StringComparison.Ordinal) || instructions - _panicInstruction >= GraceInstructions;
    }
}
