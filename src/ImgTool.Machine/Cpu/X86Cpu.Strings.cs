using Iced.Intel;

namespace ImgTool.Machine.Cpu;

/// <summary>MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS with REP/REPE/REPNE (SDM vol. 2, REP).</summary>
internal sealed partial class X86Cpu
{
    private void StringInstruction(in Instruction i)
    {
        var mnemonic = i.Mnemonic;
        int size = i.MemorySize.GetSize();
        if (size == 0)
        {
            size = mnemonic switch
            {
                Mnemonic.Insb or Mnemonic.Outsb => 1,
                Mnemonic.Insw or Mnemonic.Outsw => 2,
                _ => 4,
            };
        }

        bool address16 = i.Op0Kind is OpKind.MemorySegSI or OpKind.MemoryESDI || i.Op1Kind is OpKind.MemorySegSI or OpKind.MemoryESDI;
        uint addressMask = address16 ? 0xFFFFu : 0xFFFFFFFFu;
        int sourceSegment = i.MemorySegment - Register.ES;
        uint step = (Eflags & DF) != 0 ? (uint)-size : (uint)size;
        bool repeat = i.HasRepPrefix || i.HasRepnePrefix;
        bool compare = mnemonic is Mnemonic.Cmpsb or Mnemonic.Cmpsw or Mnemonic.Cmpsd or Mnemonic.Scasb or Mnemonic.Scasw or Mnemonic.Scasd;

        while (true)
        {
            if (repeat && (R[ECX] & addressMask) == 0)
            {
                return;
            }

            uint si = R[ESI] & addressMask;
            uint di = R[EDI] & addressMask;
            switch (mnemonic)
            {
                case Mnemonic.Movsb: case Mnemonic.Movsw: case Mnemonic.Movsd:
                    if (!CheckLimit(sourceSegment, si, size) || !CheckLimit(ES, di, size))
                    {
                        return;
                    }

                    WriteMem(ES, di, size, ReadMem(sourceSegment, si, size));
                    AdvanceIndex(ESI, step, addressMask);
                    AdvanceIndex(EDI, step, addressMask);
                    break;
                case Mnemonic.Stosb: case Mnemonic.Stosw: case Mnemonic.Stosd:
                    if (!CheckLimit(ES, di, size))
                    {
                        return;
                    }

                    WriteMem(ES, di, size, R[EAX] & SizeMask(size));
                    AdvanceIndex(EDI, step, addressMask);
                    break;
                case Mnemonic.Lodsb: case Mnemonic.Lodsw: case Mnemonic.Lodsd:
                    if (!CheckLimit(sourceSegment, si, size))
                    {
                        return;
                    }

                    WriteGpr(size == 1 ? Register.AL : size == 2 ? Register.AX : Register.EAX, ReadMem(sourceSegment, si, size));
                    AdvanceIndex(ESI, step, addressMask);
                    break;
                case Mnemonic.Cmpsb: case Mnemonic.Cmpsw: case Mnemonic.Cmpsd:
                    if (!CheckLimit(sourceSegment, si, size) || !CheckLimit(ES, di, size))
                    {
                        return;
                    }

                    Sub(ReadMem(sourceSegment, si, size), ReadMem(ES, di, size), 0, size);
                    AdvanceIndex(ESI, step, addressMask);
                    AdvanceIndex(EDI, step, addressMask);
                    break;
                case Mnemonic.Scasb: case Mnemonic.Scasw: case Mnemonic.Scasd:
                    if (!CheckLimit(ES, di, size))
                    {
                        return;
                    }

                    Sub(R[EAX] & SizeMask(size), ReadMem(ES, di, size), 0, size);
                    AdvanceIndex(EDI, step, addressMask);
                    break;
                case Mnemonic.Insb: case Mnemonic.Insw: case Mnemonic.Insd:
                    if (!CheckLimit(ES, di, size))
                    {
                        return;
                    }

                    WriteMem(ES, di, size, _io.In((ushort)R[EDX], size));
                    AdvanceIndex(EDI, step, addressMask);
                    break;
                default: // OUTS
                    if (!CheckLimit(sourceSegment, si, size))
                    {
                        return;
                    }

                    _io.Out((ushort)R[EDX], size, ReadMem(sourceSegment, si, size));
                    AdvanceIndex(ESI, step, addressMask);
                    break;
            }

            if (!repeat)
            {
                return;
            }

            R[ECX] = (R[ECX] & ~addressMask) | ((R[ECX] - 1) & addressMask);
            Instructions++;
            if (compare && (i.HasRepePrefix ? (Eflags & ZF) == 0 : (Eflags & ZF) != 0))
            {
                return;
            }
        }
    }

    private void AdvanceIndex(int register, uint step, uint addressMask) =>
        R[register] = (R[register] & ~addressMask) | ((R[register] + step) & addressMask);
}
