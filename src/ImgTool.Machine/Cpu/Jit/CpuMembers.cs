using System.Reflection;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>The CPU's fields and methods that translated code touches, looked up once by name (nameof keeps them honest).</summary>
internal static class CpuMembers
{
    private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    public static readonly FieldInfo R = Field(nameof(X86Cpu.R));
    public static readonly FieldInfo Eip = Field(nameof(X86Cpu.Eip));
    public static readonly FieldInfo StartEip = Field(nameof(X86Cpu.StartEip));
    public static readonly FieldInfo EndBlock = Field(nameof(X86Cpu.EndBlock));
    public static readonly MethodInfo GetInstructions = typeof(X86Cpu).GetProperty(nameof(X86Cpu.Instructions))!.GetMethod!;
    public static readonly MethodInfo SetInstructions = typeof(X86Cpu).GetProperty(nameof(X86Cpu.Instructions))!.SetMethod!;
    public static readonly MethodInfo GetFaultPending = typeof(X86Cpu).GetProperty(nameof(X86Cpu.FaultPending), Instance)!.GetMethod!;
    public static readonly MethodInfo GetStack32 = typeof(X86Cpu).GetProperty(nameof(X86Cpu.Stack32), Instance)!.GetMethod!;
    public static readonly MethodInfo GetCodeLimitFlat = typeof(X86Cpu).GetProperty(nameof(X86Cpu.CodeLimitFlat), Instance)!.GetMethod!;
    public static readonly MethodInfo LeaveTranslatedBlock = Method(nameof(X86Cpu.LeaveTranslatedBlock));
    public static readonly MethodInfo SetLazy = Method(nameof(X86Cpu.SetLazy));
    public static readonly MethodInfo SetCarryOverflow = Method(nameof(X86Cpu.SetCarryOverflow));
    public static readonly MethodInfo SetLazyIncDec = Method(nameof(X86Cpu.SetLazyIncDec));
    public static readonly MethodInfo Condition = Method(nameof(X86Cpu.Condition));
    public static readonly MethodInfo GetTlbSetOffset = typeof(X86Cpu).GetProperty(nameof(X86Cpu.TlbSetOffset), Instance)!.GetMethod!;
    public static readonly MethodInfo GetFlatSegments = typeof(X86Cpu).GetProperty(nameof(X86Cpu.FlatSegments), Instance)!.GetMethod!;
    public static readonly MethodInfo SegmentBase = Method(nameof(X86Cpu.SegmentBase));
    public static readonly MethodInfo FastReadLimit = Method(nameof(X86Cpu.FastReadLimit));
    public static readonly MethodInfo FastWriteLimit = Method(nameof(X86Cpu.FastWriteLimit));
    public static readonly MethodInfo Read = Method(nameof(X86Cpu.ReadMiss));
    public static readonly MethodInfo Write = Method(nameof(X86Cpu.WriteMiss));

    private static FieldInfo Field(string name) => typeof(X86Cpu).GetField(name, Instance) ?? throw new MissingFieldException(nameof(X86Cpu), name);

    private static MethodInfo Method(string name) => typeof(X86Cpu).GetMethod(name, Instance) ?? throw new MissingMethodException(nameof(X86Cpu), name);
}
