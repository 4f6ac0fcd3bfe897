using ImgTool.Machine.Cpu;

namespace ImgTool.Machine.Watchdogs;

/// <summary>
/// A guest spinning with interrupts off: IF stays clear, no interrupt is delivered, and the register state the
/// machine samples between slices (CS:EIP, the general registers, EFLAGS) stops taking new values. With IF
/// clear nothing outside the CPU can change its course except what it reads from ports, and a port whose
/// value moves (a timer, a status bit that clears) moves the registers too; so a loop that only revisits the
/// states it has already been in for this long is waiting for something that cannot come: a spinlock held by
/// nobody, <c>1: jmp 1b</c>, a poll of a status that never changes.
/// </summary>
/// <remarks>
/// Long interrupts-off work is not a spin: the kernel's decompressor runs for 2-3 G instructions with IF clear,
/// but its registers never repeat. Sampling at slice ends (their lengths vary with device deadlines, so the
/// samples fall at different points of a loop) sees every state of a loop of up to thousands of instructions.
/// </remarks>
internal sealed class InterruptsOffSpin
{
    /// <summary>Interrupts off at least this long (2 virtual seconds at 10 ns per instruction) before a spin is called one.</summary>
    public const long MinInterruptsOffInstructions = 200_000_000;

    /// <summary>And no new register state for this long: the loop's states have all been seen.</summary>
    public const long MinNoNewStateInstructions = 100_000_000;

    /// <summary>States kept per interrupts-off stretch; a stretch with more is not a short loop, and starts over.</summary>
    private const int MaxStates = 1 << 16;

    private readonly HashSet<StateKey> _states = [];
    private long _offSince = -1, _lastNewState, _interruptsAtStart;

    /// <summary>The distinct states the loop went through, for the diagnosis.</summary>
    public int LoopStates => _states.Count;

    public long OffSince => _offSince;

    /// <summary>Samples the CPU between slices; true when it has been spinning with interrupts off.</summary>
    public bool Sample(X86Cpu cpu)
    {
        long now = cpu.Instructions;
        if ((cpu.Eflags & Flags.IF) != 0 || cpu.Halted || cpu.HardwareInterrupts != _interruptsAtStart)
        {
            Restart(cpu, -1);
            return false;
        }

        if (_offSince < 0)
        {
            Restart(cpu, now);
        }

        if (_states.Count >= MaxStates)
        {
            Restart(cpu, _offSince);
        }

        if (_states.Add(StateKey.Of(cpu)))
        {
            _lastNewState = now;
            return false;
        }

        return now - _offSince >= MinInterruptsOffInstructions && now - _lastNewState >= MinNoNewStateInstructions;
    }

    private void Restart(X86Cpu cpu, long offSince)
    {
        _states.Clear();
        _offSince = offSince;
        _lastNewState = cpu.Instructions;
        _interruptsAtStart = cpu.HardwareInterrupts;
    }

    private readonly record struct StateKey(uint Eip, ushort Cs, uint Flags, uint Eax, uint Ecx, uint Edx, uint Ebx, uint Esp, uint Ebp, uint Esi, uint Edi)
    {
        public static StateKey Of(X86Cpu cpu)
        {
            uint[] r = cpu.R;
            return new StateKey(cpu.Eip, cpu.S[X86Cpu.CS].Selector, cpu.Eflags, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        }
    }
}
