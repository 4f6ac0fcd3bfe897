using System.Collections.Frozen;
using System.Reflection;
using ImgTool.Machine.Cpu.Decode;
using ImgTool.Machine.Cpu.Handlers;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// The interpreter's handlers by entry point: a <see cref="MicroOp"/> holds a function pointer, the translator
/// wants the method behind it, so that it can emit a direct <c>call</c> (which RyuJIT may inline) instead of
/// an indirect <c>calli</c>. The handler classes are listed explicitly (no assembly scanning); a pointer not
/// found here is still called, indirectly.
/// </summary>
internal static unsafe class HandlerTable
{
    private static readonly Lazy<FrozenDictionary<nint, MethodInfo>> Methods = new(Build);

    /// <summary>The handler method whose entry point is <paramref name="handler"/>, or null.</summary>
    public static MethodInfo? Find(delegate* managed<X86Cpu, ref MicroOp, void> handler) =>
        Methods.Value.GetValueOrDefault((nint)handler);

    public static int Count => Methods.Value.Count;

    public static bool Contains(nint handler) => Methods.Value.ContainsKey(handler);

    private static FrozenDictionary<nint, MethodInfo> Build()
    {
        var methods = new Dictionary<nint, MethodInfo>();
        const BindingFlags Statics = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        MethodInfo[][] classes =
        [
            typeof(AluOps).GetMethods(Statics), typeof(BitOps).GetMethods(Statics), typeof(ControlOps).GetMethods(Statics),
            typeof(FpuOps).GetMethods(Statics), typeof(IoOps).GetMethods(Statics), typeof(MoveOps).GetMethods(Statics),
            typeof(MulDivOps).GetMethods(Statics), typeof(ShiftOps).GetMethods(Statics), typeof(StackOps).GetMethods(Statics),
            typeof(StringOps).GetMethods(Statics), typeof(SystemOps).GetMethods(Statics),
        ];
        foreach (var type in classes)
        {
            foreach (var method in type)
            {
                var parameters = method.GetParameters();
                if (method.ReturnType == typeof(void) && parameters.Length == 2 && parameters[0].ParameterType == typeof(X86Cpu) &&
                    parameters[1].ParameterType == typeof(MicroOp).MakeByRefType() && !method.IsGenericMethodDefinition)
                {
                    // The address C#'s &Method gives (ldftn) is the method's multi-callable entry point, as here.
                    methods[method.MethodHandle.GetFunctionPointer()] = method;
                }
            }
        }

        return methods.ToFrozenDictionary();
    }
}
