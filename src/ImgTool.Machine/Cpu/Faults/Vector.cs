namespace ImgTool.Machine.Cpu;

/// <summary>Exception vectors (SDM vol. 3, table 6-1).</summary>
internal enum Vector : byte
{
    DE = 0,
    DB = 1,
    NMI = 2,
    BP = 3,
    OF = 4,
    BR = 5,
    UD = 6,
    NM = 7,
    DF = 8,
    TS = 10,
    NP = 11,
    SS = 12,
    GP = 13,
    PF = 14,
    MF = 16,
    AC = 17,
}

/// <summary>What raised an interrupt: the rules for gate DPL checks, the EXT bit and the pushed EIP differ (SDM vol. 3, 6.12).</summary>
internal enum DeliveryKind : byte
{
    /// <summary>An exception raised by an instruction (fault or trap).</summary>
    Exception,

    /// <summary>INT n, INT3, INTO: the gate's DPL is checked against CPL.</summary>
    Software,

    /// <summary>INTR from the interrupt controller: the EXT bit is set in error codes.</summary>
    External,
}

internal static class VectorClass
{
    /// <summary>Contributory exceptions (SDM vol. 3, table 6-4): one during another's delivery is a double fault.</summary>
    public static bool IsContributory(int vector) => vector is (int)Vector.DE or (int)Vector.TS or (int)Vector.NP or (int)Vector.SS or (int)Vector.GP;

    /// <summary>Exceptions that push an error code (SDM vol. 3, 6.13).</summary>
    public static bool HasErrorCode(int vector) => vector is (int)Vector.DF or (int)Vector.TS or (int)Vector.NP or (int)Vector.SS or (int)Vector.GP
        or (int)Vector.PF or (int)Vector.AC;
}
