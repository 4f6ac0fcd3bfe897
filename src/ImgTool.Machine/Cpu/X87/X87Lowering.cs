using Iced.Intel;

namespace ImgTool.Machine.Cpu.X87;

/// <summary>Turns an Iced x87 instruction into an <see cref="X87Instruction"/> (once, at decode time).</summary>
internal static class X87Lowering
{
    private const int ModRegister = 3;
    private const int RegisterFormModRm = ModRegister << ModShift;
    private const int ModShift = 6;
    private const int RegShift = 3;
    private const int OpcodeLowBits = 7;
    private const int SibRm = 4;
    private const int Displacement32Rm = 5;
    private const int Displacement16Rm = 6;

    public static bool TryLower(in Instruction instruction, out X87Instruction lowered)
    {
        lowered = default;
        if (!TryDescribe(instruction.Code, out Shape shape))
        {
            return false;
        }

        byte stackIndex = 0;
        X87Operands operands = shape.Operands;
        if (operands == X87Operands.None && shape.Format != X87MemoryFormat.None)
        {
            operands = X87Operands.Memory;
        }

        for (int index = 0; index < instruction.OpCount; index++)
        {
            OpKind kind = instruction.GetOpKind(index);
            if (kind == OpKind.Register)
            {
                Register register = instruction.GetOpRegister(index);
                if (register is >= Register.ST1 and <= Register.ST7)
                {
                    stackIndex = (byte)(register - Register.ST0);
                }
            }
        }

        lowered = new X87Instruction(shape.Operation, operands, shape.Format, stackIndex, shape.Pops, shape.NoWait,
            shape.Selector, Fop(instruction, operands == X87Operands.Memory, stackIndex));
        return true;
    }

    /// <summary>FOP = (first opcode byte &amp; 7) &lt;&lt; 8 | ModR/M (SDM vol. 1, 8.1.8, figure 8-7).</summary>
    private static ushort Fop(in Instruction instruction, bool memory, byte stackIndex)
    {
        OpCodeInfo info = instruction.OpCode;
        uint opcode = info.OpCode;
        if (opcode > byte.MaxValue)
        {
            // Register forms are two-byte opcodes in Iced (D8 C0+i is 0xD8C0): the second byte is the ModR/M.
            int second = (int)(opcode & byte.MaxValue);
            bool addsRegister = instruction.OpCount > 0 && second >= RegisterFormModRm && (second & OpcodeLowBits) == 0;
            return (ushort)((((int)(opcode >> 8) & OpcodeLowBits) << 8) | (second + (addsRegister ? stackIndex : 0)));
        }

        int first = (int)opcode & OpcodeLowBits;
        int reg = info.GroupIndex < 0 ? 0 : info.GroupIndex;
        int modRm;
        if (memory)
        {
            (int mod, int rm) = MemoryModRm(instruction);
            modRm = (mod << ModShift) | (reg << RegShift) | rm;
        }
        else
        {
            int rm = info.RmGroupIndex >= 0 ? info.RmGroupIndex : stackIndex;
            modRm = (ModRegister << ModShift) | (reg << RegShift) | rm;
        }

        return (ushort)((first << 8) | modRm);
    }

    private static (int Mod, int Rm) MemoryModRm(in Instruction instruction)
    {
        Register baseRegister = instruction.MemoryBase;
        Register index = instruction.MemoryIndex;
        int mod = instruction.MemoryDisplSize switch
        {
            0 => 0,
            1 => 1,
            _ => 2,
        };
        bool sixteenBit = baseRegister is >= Register.AX and <= Register.DI || index is >= Register.AX and <= Register.DI;
        if (baseRegister == Register.None && index == Register.None)
        {
            return (0, sixteenBit || instruction.MemoryDisplSize == 2 ? Displacement16Rm : Displacement32Rm);
        }

        if (sixteenBit)
        {
            int rm = (baseRegister, index) switch
            {
                (Register.BX, Register.SI) => 0,
                (Register.BX, Register.DI) => 1,
                (Register.BP, Register.SI) => 2,
                (Register.BP, Register.DI) => 3,
                (Register.None, Register.SI) or (Register.SI, Register.None) => 4,
                (Register.None, Register.DI) or (Register.DI, Register.None) => 5,
                (Register.BP, Register.None) => 6,
                _ => 7,
            };
            return (mod, rm);
        }

        if (index != Register.None || baseRegister is Register.ESP or Register.None)
        {
            return (baseRegister == Register.None ? 0 : mod, SibRm);
        }

        return (mod, baseRegister.GetNumber() & OpcodeLowBits);
    }

    private readonly record struct Shape(X87Operation Operation, X87Operands Operands, X87MemoryFormat Format,
        byte Pops = 0, bool NoWait = false, byte Selector = 0);

    private static bool TryDescribe(Code code, out Shape shape)
    {
        shape = code switch
        {
            Code.Wait => new(X87Operation.Wait, X87Operands.None, X87MemoryFormat.None),
            Code.Fnop or Code.Feni or Code.Fneni or Code.Fdisi or Code.Fndisi or Code.Fsetpm or Code.Fnsetpm
                => new(X87Operation.Nop, X87Operands.None, X87MemoryFormat.None),

            Code.Fld_m32fp => Memory(X87Operation.Load, X87MemoryFormat.Single),
            Code.Fld_m64fp => Memory(X87Operation.Load, X87MemoryFormat.Double),
            Code.Fld_m80fp => Memory(X87Operation.Load, X87MemoryFormat.Extended),
            Code.Fld_sti => new(X87Operation.Load, X87Operands.St0Sti, X87MemoryFormat.None),
            Code.Fild_m16int => Memory(X87Operation.LoadInteger, X87MemoryFormat.Int16),
            Code.Fild_m32int => Memory(X87Operation.LoadInteger, X87MemoryFormat.Int32),
            Code.Fild_m64int => Memory(X87Operation.LoadInteger, X87MemoryFormat.Int64),
            Code.Fbld_m80bcd => Memory(X87Operation.LoadBcd, X87MemoryFormat.Bcd),

            Code.Fld1 => Constant(X87Constant.One),
            Code.Fldl2t => Constant(X87Constant.Log2Ten),
            Code.Fldl2e => Constant(X87Constant.Log2E),
            Code.Fldpi => Constant(X87Constant.Pi),
            Code.Fldlg2 => Constant(X87Constant.Log10Two),
            Code.Fldln2 => Constant(X87Constant.LnTwo),
            Code.Fldz => Constant(X87Constant.Zero),

            Code.Fst_m32fp => Memory(X87Operation.Store, X87MemoryFormat.Single),
            Code.Fst_m64fp => Memory(X87Operation.Store, X87MemoryFormat.Double),
            Code.Fstp_m32fp => Memory(X87Operation.Store, X87MemoryFormat.Single, 1),
            Code.Fstp_m64fp => Memory(X87Operation.Store, X87MemoryFormat.Double, 1),
            Code.Fstp_m80fp => Memory(X87Operation.Store, X87MemoryFormat.Extended, 1),
            Code.Fst_sti => new(X87Operation.Store, X87Operands.StiSt0, X87MemoryFormat.None),
            Code.Fstp_sti or Code.Fstpnce_sti or Code.Fstp_sti_DFD0 or Code.Fstp_sti_DFD8
                => new(X87Operation.Store, X87Operands.StiSt0, X87MemoryFormat.None, 1),
            Code.Fist_m16int => Memory(X87Operation.StoreInteger, X87MemoryFormat.Int16),
            Code.Fist_m32int => Memory(X87Operation.StoreInteger, X87MemoryFormat.Int32),
            Code.Fistp_m16int => Memory(X87Operation.StoreInteger, X87MemoryFormat.Int16, 1),
            Code.Fistp_m32int => Memory(X87Operation.StoreInteger, X87MemoryFormat.Int32, 1),
            Code.Fistp_m64int => Memory(X87Operation.StoreInteger, X87MemoryFormat.Int64, 1),
            Code.Fbstp_m80bcd => Memory(X87Operation.StoreBcd, X87MemoryFormat.Bcd, 1),

            Code.Fadd_m32fp => Memory(X87Operation.Add, X87MemoryFormat.Single),
            Code.Fmul_m32fp => Memory(X87Operation.Multiply, X87MemoryFormat.Single),
            Code.Fsub_m32fp => Memory(X87Operation.Subtract, X87MemoryFormat.Single),
            Code.Fsubr_m32fp => Memory(X87Operation.SubtractReverse, X87MemoryFormat.Single),
            Code.Fdiv_m32fp => Memory(X87Operation.Divide, X87MemoryFormat.Single),
            Code.Fdivr_m32fp => Memory(X87Operation.DivideReverse, X87MemoryFormat.Single),
            Code.Fadd_m64fp => Memory(X87Operation.Add, X87MemoryFormat.Double),
            Code.Fmul_m64fp => Memory(X87Operation.Multiply, X87MemoryFormat.Double),
            Code.Fsub_m64fp => Memory(X87Operation.Subtract, X87MemoryFormat.Double),
            Code.Fsubr_m64fp => Memory(X87Operation.SubtractReverse, X87MemoryFormat.Double),
            Code.Fdiv_m64fp => Memory(X87Operation.Divide, X87MemoryFormat.Double),
            Code.Fdivr_m64fp => Memory(X87Operation.DivideReverse, X87MemoryFormat.Double),
            Code.Fiadd_m16int => Memory(X87Operation.Add, X87MemoryFormat.Int16),
            Code.Fimul_m16int => Memory(X87Operation.Multiply, X87MemoryFormat.Int16),
            Code.Fisub_m16int => Memory(X87Operation.Subtract, X87MemoryFormat.Int16),
            Code.Fisubr_m16int => Memory(X87Operation.SubtractReverse, X87MemoryFormat.Int16),
            Code.Fidiv_m16int => Memory(X87Operation.Divide, X87MemoryFormat.Int16),
            Code.Fidivr_m16int => Memory(X87Operation.DivideReverse, X87MemoryFormat.Int16),
            Code.Fiadd_m32int => Memory(X87Operation.Add, X87MemoryFormat.Int32),
            Code.Fimul_m32int => Memory(X87Operation.Multiply, X87MemoryFormat.Int32),
            Code.Fisub_m32int => Memory(X87Operation.Subtract, X87MemoryFormat.Int32),
            Code.Fisubr_m32int => Memory(X87Operation.SubtractReverse, X87MemoryFormat.Int32),
            Code.Fidiv_m32int => Memory(X87Operation.Divide, X87MemoryFormat.Int32),
            Code.Fidivr_m32int => Memory(X87Operation.DivideReverse, X87MemoryFormat.Int32),

            Code.Fadd_st0_sti => Registers(X87Operation.Add, X87Operands.St0Sti),
            Code.Fmul_st0_sti => Registers(X87Operation.Multiply, X87Operands.St0Sti),
            Code.Fsub_st0_sti => Registers(X87Operation.Subtract, X87Operands.St0Sti),
            Code.Fsubr_st0_sti => Registers(X87Operation.SubtractReverse, X87Operands.St0Sti),
            Code.Fdiv_st0_sti => Registers(X87Operation.Divide, X87Operands.St0Sti),
            Code.Fdivr_st0_sti => Registers(X87Operation.DivideReverse, X87Operands.St0Sti),
            Code.Fadd_sti_st0 => Registers(X87Operation.Add, X87Operands.StiSt0),
            Code.Fmul_sti_st0 => Registers(X87Operation.Multiply, X87Operands.StiSt0),
            Code.Fsub_sti_st0 => Registers(X87Operation.Subtract, X87Operands.StiSt0),
            Code.Fsubr_sti_st0 => Registers(X87Operation.SubtractReverse, X87Operands.StiSt0),
            Code.Fdiv_sti_st0 => Registers(X87Operation.Divide, X87Operands.StiSt0),
            Code.Fdivr_sti_st0 => Registers(X87Operation.DivideReverse, X87Operands.StiSt0),
            Code.Faddp_sti_st0 => Registers(X87Operation.Add, X87Operands.StiSt0, 1),
            Code.Fmulp_sti_st0 => Registers(X87Operation.Multiply, X87Operands.StiSt0, 1),
            Code.Fsubp_sti_st0 => Registers(X87Operation.Subtract, X87Operands.StiSt0, 1),
            Code.Fsubrp_sti_st0 => Registers(X87Operation.SubtractReverse, X87Operands.StiSt0, 1),
            Code.Fdivp_sti_st0 => Registers(X87Operation.Divide, X87Operands.StiSt0, 1),
            Code.Fdivrp_sti_st0 => Registers(X87Operation.DivideReverse, X87Operands.StiSt0, 1),

            Code.Fcom_m32fp => Memory(X87Operation.Compare, X87MemoryFormat.Single),
            Code.Fcom_m64fp => Memory(X87Operation.Compare, X87MemoryFormat.Double),
            Code.Fcomp_m32fp => Memory(X87Operation.Compare, X87MemoryFormat.Single, 1),
            Code.Fcomp_m64fp => Memory(X87Operation.Compare, X87MemoryFormat.Double, 1),
            Code.Ficom_m16int => Memory(X87Operation.Compare, X87MemoryFormat.Int16),
            Code.Ficom_m32int => Memory(X87Operation.Compare, X87MemoryFormat.Int32),
            Code.Ficomp_m16int => Memory(X87Operation.Compare, X87MemoryFormat.Int16, 1),
            Code.Ficomp_m32int => Memory(X87Operation.Compare, X87MemoryFormat.Int32, 1),
            Code.Fcom_st0_sti or Code.Fcom_st0_sti_DCD0 => Registers(X87Operation.Compare, X87Operands.St0Sti),
            Code.Fcomp_st0_sti or Code.Fcomp_st0_sti_DCD8 or Code.Fcomp_st0_sti_DED0 => Registers(X87Operation.Compare, X87Operands.St0Sti, 1),
            Code.Fcompp => new(X87Operation.Compare, X87Operands.St0Sti, X87MemoryFormat.None, 2, Selector: 1),
            Code.Fucom_st0_sti => Registers(X87Operation.UnorderedCompare, X87Operands.St0Sti),
            Code.Fucomp_st0_sti => Registers(X87Operation.UnorderedCompare, X87Operands.St0Sti, 1),
            Code.Fucompp => new(X87Operation.UnorderedCompare, X87Operands.St0Sti, X87MemoryFormat.None, 2, Selector: 1),
            Code.Fcomi_st0_sti => Registers(X87Operation.CompareEflags, X87Operands.St0Sti),
            Code.Fcomip_st0_sti => Registers(X87Operation.CompareEflags, X87Operands.St0Sti, 1),
            Code.Fucomi_st0_sti => Registers(X87Operation.UnorderedCompareEflags, X87Operands.St0Sti),
            Code.Fucomip_st0_sti => Registers(X87Operation.UnorderedCompareEflags, X87Operands.St0Sti, 1),
            Code.Ftst => Simple(X87Operation.Test),
            Code.Fxam => Simple(X87Operation.Examine),

            Code.Fcmovb_st0_sti => Move(X87Condition.Below),
            Code.Fcmove_st0_sti => Move(X87Condition.Equal),
            Code.Fcmovbe_st0_sti => Move(X87Condition.BelowOrEqual),
            Code.Fcmovu_st0_sti => Move(X87Condition.Unordered),
            Code.Fcmovnb_st0_sti => Move(X87Condition.NotBelow),
            Code.Fcmovne_st0_sti => Move(X87Condition.NotEqual),
            Code.Fcmovnbe_st0_sti => Move(X87Condition.NotBelowOrEqual),
            Code.Fcmovnu_st0_sti => Move(X87Condition.NotUnordered),

            Code.Fxch_st0_sti or Code.Fxch_st0_sti_DDC8 or Code.Fxch_st0_sti_DFC8 => Registers(X87Operation.Exchange, X87Operands.St0Sti),
            Code.Fchs => Simple(X87Operation.ChangeSign),
            Code.Fabs => Simple(X87Operation.Absolute),
            Code.Fsqrt => Simple(X87Operation.SquareRoot),
            Code.Fprem => Simple(X87Operation.PartialRemainder),
            Code.Fprem1 => Simple(X87Operation.IeeeRemainder),
            Code.Frndint => Simple(X87Operation.RoundToInteger),
            Code.Fscale => Simple(X87Operation.Scale),
            Code.Fxtract => Simple(X87Operation.Extract),
            Code.F2xm1 => Simple(X87Operation.TwoToXMinusOne),
            Code.Fyl2x => Simple(X87Operation.YLog2X, 1),
            Code.Fyl2xp1 => Simple(X87Operation.YLog2XPlusOne, 1),
            Code.Fptan => Simple(X87Operation.PartialTangent),
            Code.Fpatan => Simple(X87Operation.PartialArcTangent, 1),
            Code.Fsin => Simple(X87Operation.Sine),
            Code.Fcos => Simple(X87Operation.Cosine),
            Code.Fsincos => Simple(X87Operation.SineCosine),
            Code.Fdecstp => Simple(X87Operation.DecrementTop),
            Code.Fincstp => Simple(X87Operation.IncrementTop),
            Code.Ffree_sti => Registers(X87Operation.Free, X87Operands.St0Sti),
            Code.Ffreep_sti => Registers(X87Operation.Free, X87Operands.St0Sti, 1),

            Code.Finit => Simple(X87Operation.Init),
            Code.Fninit => NoWait(X87Operation.Init),
            Code.Fclex => Simple(X87Operation.ClearExceptions),
            Code.Fnclex => NoWait(X87Operation.ClearExceptions),
            Code.Fldcw_m2byte => Memory(X87Operation.LoadControlWord, X87MemoryFormat.Word),
            Code.Fstcw_m2byte => Memory(X87Operation.StoreControlWord, X87MemoryFormat.Word),
            Code.Fnstcw_m2byte => NoWaitMemory(X87Operation.StoreControlWord, X87MemoryFormat.Word),
            Code.Fstsw_m2byte => Memory(X87Operation.StoreStatusWord, X87MemoryFormat.Word),
            Code.Fnstsw_m2byte => NoWaitMemory(X87Operation.StoreStatusWord, X87MemoryFormat.Word),
            Code.Fstsw_AX => Simple(X87Operation.StoreStatusWordAx),
            Code.Fnstsw_AX => NoWait(X87Operation.StoreStatusWordAx),
            Code.Fstenv_m14byte or Code.Fstenv_m28byte => Memory(X87Operation.StoreEnvironment, X87MemoryFormat.Environment),
            Code.Fnstenv_m14byte or Code.Fnstenv_m28byte => NoWaitMemory(X87Operation.StoreEnvironment, X87MemoryFormat.Environment),
            Code.Fldenv_m14byte or Code.Fldenv_m28byte => Memory(X87Operation.LoadEnvironment, X87MemoryFormat.Environment),
            Code.Fsave_m94byte or Code.Fsave_m108byte => Memory(X87Operation.Save, X87MemoryFormat.State),
            Code.Fnsave_m94byte or Code.Fnsave_m108byte => NoWaitMemory(X87Operation.Save, X87MemoryFormat.State),
            Code.Frstor_m94byte or Code.Frstor_m108byte => Memory(X87Operation.Restore, X87MemoryFormat.State),
            // FXSAVE/FXRSTOR do not check for pending x87 exceptions (SDM vol. 2, FXSAVE: "non-waiting").
            Code.Fxsave_m512byte => NoWaitMemory(X87Operation.FxSave, X87MemoryFormat.FxState),
            Code.Fxrstor_m512byte => NoWaitMemory(X87Operation.FxRestore, X87MemoryFormat.FxState),
            _ => default,
        };
        return shape.Operation != X87Operation.Wait || code == Code.Wait;
    }

    private static Shape Memory(X87Operation operation, X87MemoryFormat format, byte pops = 0) =>
        new(operation, X87Operands.Memory, format, pops);

    private static Shape NoWaitMemory(X87Operation operation, X87MemoryFormat format) =>
        new(operation, X87Operands.Memory, format, NoWait: true);

    private static Shape Registers(X87Operation operation, X87Operands operands, byte pops = 0) =>
        new(operation, operands, X87MemoryFormat.None, pops);

    private static Shape Simple(X87Operation operation, byte pops = 0) =>
        new(operation, X87Operands.None, X87MemoryFormat.None, pops);

    private static Shape NoWait(X87Operation operation) =>
        new(operation, X87Operands.None, X87MemoryFormat.None, NoWait: true);

    private static Shape Constant(X87Constant constant) =>
        new(X87Operation.LoadConstant, X87Operands.None, X87MemoryFormat.None, Selector: (byte)constant);

    private static Shape Move(X87Condition condition) =>
        new(X87Operation.ConditionalMove, X87Operands.St0Sti, X87MemoryFormat.None, Selector: (byte)condition);
}
