using System.Globalization;

namespace ImgTool.Machine.Cpu;

/// <summary>Mnemonics of the exception vectors (Intel SDM vol. 3, table 6-1), for diagnoses and traces.</summary>
internal static class ExceptionNames
{
    private static readonly string[] Mnemonics =
    [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "coprocessor overrun", "#TS", "#NP", "#SS", "#GP", "#PF",
    ];

    /// <summary>"#GP (13)"; a vector without a CPU exception is just its number.</summary>
    public static string Describe(int vector) =>
        vector >= 0 && vector < Mnemonics.Length
            ? string.Create(CultureInfo.InvariantCulture, $"{Mnemonics[vector]} ({vector})")
            : string.Create(CultureInfo.InvariantCulture, $"vector {vector}");
}
