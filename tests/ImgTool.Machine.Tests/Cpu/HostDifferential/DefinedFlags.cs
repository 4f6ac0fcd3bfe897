using System.Collections.Frozen;
using Iced.Intel;

namespace ImgTool.Machine.Tests.Cpu.HostDifferential;

/// <summary>
/// The status flags each instruction defines, from the "Flags Affected" section of its page in the
/// Intel SDM vol. 2. Only these are compared: a flag the SDM calls undefined is computed one way by
/// this host (an AMD or Intel part of today) and another by a P6, and neither is wrong. A flag the
/// instruction does not affect is defined (it must keep its input value), so it is compared.
/// </summary>
internal static class DefinedFlags
{
    public const uint CF = 1u << 0, PF = 1u << 2, AF = 1u << 4, ZF = 1u << 6, SF = 1u << 7, OF = 1u << 11;

    /// <summary>The six status flags (SDM vol. 1, 3.4.3.1).</summary>
    public const uint Status = CF | PF | AF | ZF | SF | OF;

    /// <summary>Shift and rotate counts are masked to 5 bits with 32-bit and smaller operands (SDM vol. 2, SAL/SAR/SHL/SHR).</summary>
    private const int CountMask = 0x1F;

    /// <summary>
    /// The undefined flags of the instructions whose undefined set does not depend on the operands
    /// (the shifts and rotates, which depend on the count, are in <see cref="ShiftUndefined"/>).
    /// Instructions not listed define every status flag they touch and leave the others unchanged:
    /// ADD ADC SUB SBB CMP NEG INC DEC XADD CMPXCHG CMPXCHG8B NOT SAHF LAHF SETcc CMOVcc CBW CWDE
    /// CWD CDQ MOVZX MOVSX LEA BSWAP.
    /// </summary>
    private static readonly FrozenDictionary<Mnemonic, uint> UndefinedBySdm = new Dictionary<Mnemonic, uint>
    {
        // AND/OR/XOR/TEST: "OF and CF cleared; SF, ZF and PF set according to the result. The state of the AF flag is undefined."
        [Mnemonic.And] = AF,
        [Mnemonic.Or] = AF,
        [Mnemonic.Xor] = AF,
        [Mnemonic.Test] = AF,

        // MUL/IMUL: "The OF and CF flags are set to 0 if the upper half of the result is 0 [MUL; IMUL: the sign
        // extension of the lower half]; otherwise, they are set to 1. The SF, ZF, AF, and PF flags are undefined."
        [Mnemonic.Mul] = SF | ZF | AF | PF,
        [Mnemonic.Imul] = SF | ZF | AF | PF,

        // DIV/IDIV: "The CF, OF, SF, ZF, AF, and PF flags are undefined."
        [Mnemonic.Div] = Status,
        [Mnemonic.Idiv] = Status,

        // DAA/DAS: "The CF and AF flags are set if ... The SF, ZF, and PF flags are set according to the result. The OF flag is undefined."
        [Mnemonic.Daa] = OF,
        [Mnemonic.Das] = OF,

        // AAA/AAS: "The AF and CF flags are set to 1 if there is a decimal carry [borrow]; otherwise, they are
        // set to 0. The OF, SF, ZF, and PF flags are undefined."
        [Mnemonic.Aaa] = OF | SF | ZF | PF,
        [Mnemonic.Aas] = OF | SF | ZF | PF,

        // AAM/AAD: "The SF, ZF, and PF flags are set according to the resulting binary value in the AL register.
        // The OF, AF, and CF flags are undefined."
        [Mnemonic.Aam] = OF | AF | CF,
        [Mnemonic.Aad] = OF | AF | CF,

        // BT/BTS/BTR/BTC: "The CF flag contains the value of the selected bit before it is changed. The ZF flag
        // is unaffected. The OF, SF, AF, and PF flags are undefined."
        [Mnemonic.Bt] = OF | SF | AF | PF,
        [Mnemonic.Bts] = OF | SF | AF | PF,
        [Mnemonic.Btr] = OF | SF | AF | PF,
        [Mnemonic.Btc] = OF | SF | AF | PF,

        // BSF/BSR: "The ZF flag is set to 1 if the source operand is 0; otherwise, the ZF flag is cleared.
        // The CF, OF, SF, AF, and PF flags are undefined."
        [Mnemonic.Bsf] = CF | OF | SF | AF | PF,
        [Mnemonic.Bsr] = CF | OF | SF | AF | PF,
    }.ToFrozenDictionary();

    /// <summary>The status flags to compare for an instruction with this operand size and count.</summary>
    public static uint Compared(Mnemonic mnemonic, int sizeBits, int? count) =>
        Status & ~(ShiftUndefined(mnemonic, sizeBits, count) ?? UndefinedBySdm.GetValueOrDefault(mnemonic));

    /// <summary>
    /// The shifts and rotates, whose undefined flags depend on the masked count (null for other
    /// instructions). A masked count of 0 affects no flag, for all of them.
    /// </summary>
    private static uint? ShiftUndefined(Mnemonic mnemonic, int sizeBits, int? count)
    {
        int masked = (count ?? 0) & CountMask;
        switch (mnemonic)
        {
            case Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr:
                // RCL/RCR/ROL/ROR: "If the masked count is 0, the flags are not affected. If the masked count
                // is 1, then the OF flag is affected, otherwise (masked count is greater than 1) the OF flag
                // is undefined. The CF flag is affected when the masked count is non-zero. The SF, ZF, AF, and
                // PF flags are always unaffected."
                return masked > 1 ? OF : 0;

            case Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar:
                return masked == 0 ? 0 : ShiftByNonZeroUndefined(mnemonic, sizeBits, masked);

            case Mnemonic.Shld or Mnemonic.Shrd:
                // SHLD/SHRD: "If the count is 1 or greater, the CF flag is filled with the last bit shifted
                // out of the destination operand and the SF, ZF, and PF flags are set according to the value
                // of the result. For a 1-bit shift, the OF flag is set if a sign change occurred; otherwise,
                // it is cleared. For shifts greater than 1 bit, the OF flag is undefined. If a shift occurs,
                // the AF flag is undefined. If the count operand is 0, the flags are not affected. If the
                // count is greater than the operand size, the flags are undefined."
                return masked == 0 ? 0 : masked > sizeBits ? Status : AF | (masked > 1 ? OF : 0);

            default:
                return null;
        }
    }

    /// <summary>
    /// SAL/SAR/SHL/SHR: "The CF flag contains the value of the last bit shifted out of the destination
    /// operand; it is undefined for SHL and SHR instructions where the count is greater than or equal
    /// to the size (in bits) of the destination operand. The OF flag is affected only for 1-bit shifts;
    /// otherwise, it is undefined. The SF, ZF, and PF flags are set according to the result. If the
    /// count is 0, the flags are not affected. For a non-zero count, the AF flag is undefined."
    /// </summary>
    private static uint ShiftByNonZeroUndefined(Mnemonic mnemonic, int sizeBits, int maskedCount)
    {
        uint undefined = AF | (maskedCount > 1 ? OF : 0);
        if (mnemonic != Mnemonic.Sar && maskedCount >= sizeBits)
        {
            undefined |= CF;
        }

        return undefined;
    }
}
