namespace ImgTool.Machine;

/// <summary>
/// What stopped a boot run, apart from the verdict (<see cref="BootOutcome"/>): a run without expected
/// patterns succeeds when the guest halts for good, and a Linux guest's power-off without ACPI is a halt
/// with interrupts off (kernel/reboot.c falls back to machine_halt when there is no power-off handler).
/// </summary>
public enum BootEndReason
{
    /// <summary>Every expected pattern appeared on COM1.</summary>
    PatternsMatched,

    /// <summary>The firmware printed that no disk is bootable.</summary>
    NoBootableDisk,

    /// <summary>HLT with interrupts off: the guest stopped for good (a power-off on this machine without ACPI).</summary>
    HaltedInterruptsOff,

    /// <summary>HLT with interrupts on, but with the timer stopped or masked and nothing pending.</summary>
    HaltedNothingToWake,
    TripleFault,
    Unimplemented,

    /// <summary>The guest asked for a system reset.</summary>
    ResetRequested,

    /// <summary>The wall-clock limit (--timeout).</summary>
    Timeout,

    /// <summary>The instruction limit (--max-instructions).</summary>
    InstructionBudget,

    /// <summary>The guest's kernel printed "Kernel panic - not syncing".</summary>
    KernelPanic,

    /// <summary>The same exception at the same instruction, delivered over and over (a page-fault loop).</summary>
    ExceptionLoop,

    /// <summary>A loop with interrupts off that keeps revisiting the same register states.</summary>
    InterruptsOffSpin,
}
