namespace ImgTool.Machine.Cpu;

/// <summary>
/// A guest stuck re-raising one exception: the same vector at the same CS:EIP, with the same error code (and,
/// for #PF, the same CR2), delivered many times in a row with no other exception in between. Its handler
/// returns to the instruction without curing the cause (a page the kernel believes mapped, a segment it
/// reloads unchanged), so the run would only end at the timeout; it ends here with the fault named instead.
/// </summary>
/// <remarks>
/// Legitimate repeats stay far below the limit: a fault the handler fixes is retried once and succeeds, the
/// next one is at another address or instruction. A few thousand instructions per handler round trip puts the
/// limit at a few hundred million instructions, a few virtual seconds.
/// </remarks>
internal struct ExceptionLoop
{
    public const int RepeatLimit = 20_000;

    private int _vector;
    private ushort _cs;
    private uint _eip, _errorCode, _cr2;
    private long _firstInstruction;

    public int Repeats { get; private set; }

    public readonly long FirstInstruction => _firstInstruction;

    /// <summary>Records a delivery; true when the same exception has now been delivered <see cref="RepeatLimit"/> times in a row.</summary>
    public bool Record(int vector, ushort cs, uint eip, uint errorCode, uint cr2, long instruction)
    {
        if (Repeats > 0 && vector == _vector && cs == _cs && eip == _eip && errorCode == _errorCode && cr2 == _cr2)
        {
            Repeats++;
            return Repeats >= RepeatLimit;
        }

        (_vector, _cs, _eip, _errorCode, _cr2, _firstInstruction) = (vector, cs, eip, errorCode, cr2, instruction);
        Repeats = 1;
        return false;
    }

    public void Reset() => Repeats = 0;
}
