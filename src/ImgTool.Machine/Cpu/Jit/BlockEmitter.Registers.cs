using System.Reflection.Emit;

namespace ImgTool.Machine.Cpu.Jit;

/// <summary>
/// Guest registers cached in IL locals (which RyuJIT keeps in host registers where it can). The state of each
/// is known at translation time because a block is straight-line code: not loaded, loaded (equal to R[n]), or
/// dirty (newer than R[n]). Handlers see R, so dirty registers are written back before a handler call and at
/// every exit; after a handler call every register is reloaded on its next use.
/// </summary>
internal sealed partial class BlockEmitter
{
    private readonly LocalBuilder?[] _registers;
    private int _loaded;
    private int _dirty;

    private int DirtyMask => _dirty;

    private LocalBuilder RegisterLocal(int register) => _registers[register] ??= _il.DeclareLocal(typeof(uint));

    /// <summary>Pushes the 32-bit register (loading it into its local on first use).</summary>
    private void EmitLoad32(int register)
    {
        var local = RegisterLocal(register);
        if ((_loaded & (1 << register)) == 0)
        {
            EmitRegisterAddress(register);
            _il.Emit(OpCodes.Ldind_U4);
            _il.Emit(OpCodes.Stloc, local);
            _loaded |= 1 << register;
        }

        _il.Emit(OpCodes.Ldloc, local);
    }

    /// <summary>Pops a 32-bit value into the register.</summary>
    private void EmitStore32(int register)
    {
        _il.Emit(OpCodes.Stloc, RegisterLocal(register));
        _loaded |= 1 << register;
        _dirty |= 1 << register;
    }

    /// <summary>Pushes a register of sizeBytes as ReadRegister reads it (AH..BH are 4-7 for byte registers).</summary>
    private void EmitLoad(int register, int sizeBytes)
    {
        if (sizeBytes == 4)
        {
            EmitLoad32(register);
        }
        else if (sizeBytes == 2)
        {
            EmitLoad32(register);
            EmitAnd(0xFFFF);
        }
        else if (register < 4)
        {
            EmitLoad32(register);
            EmitAnd(0xFF);
        }
        else
        {
            EmitLoad32(register - 4);
            _il.Emit(OpCodes.Ldc_I4_8);
            _il.Emit(OpCodes.Shr_Un);
            EmitAnd(0xFF);
        }
    }

    /// <summary>Pops a value into a register of sizeBytes as WriteRegister writes it (the other bits kept).</summary>
    private void EmitStore(int register, int sizeBytes)
    {
        if (sizeBytes == 4)
        {
            EmitStore32(register);
            return;
        }

        var value = Temp();
        _il.Emit(OpCodes.Stloc, value);
        int target = sizeBytes == 1 && register >= 4 ? register - 4 : register;
        (uint keep, uint mask, int shift) = sizeBytes == 2 ? (0xFFFF0000u, 0xFFFFu, 0) : register < 4 ? (0xFFFFFF00u, 0xFFu, 0) : (0xFFFF00FFu, 0xFFu, 8);
        EmitLoad32(target);
        EmitAnd(keep);
        _il.Emit(OpCodes.Ldloc, value);
        EmitAnd(mask);
        if (shift != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, shift);
            _il.Emit(OpCodes.Shl);
        }

        _il.Emit(OpCodes.Or);
        EmitStore32(target);
        ReleaseTemp(value);
    }

    private void EmitRegisterAddress(int register)
    {
        _il.Emit(OpCodes.Ldloc, _registerBase);
        if (register != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, register * sizeof(uint));
            _il.Emit(OpCodes.Add);
        }
    }

    /// <summary>Writes dirty registers back to R; with forget, every register is reloaded on its next use.</summary>
    private void FlushRegisters(bool forget)
    {
        FlushMask(_dirty);
        _dirty = 0;
        if (forget)
        {
            _loaded = 0;
        }
    }

    private void FlushMask(int dirty)
    {
        for (int register = 0; register < 8; register++)
        {
            if ((dirty & (1 << register)) != 0)
            {
                EmitRegisterAddress(register);
                _il.Emit(OpCodes.Ldloc, _registers[register]!);
                _il.Emit(OpCodes.Stind_I4);
            }
        }
    }

    private void EmitAnd(uint mask)
    {
        _il.Emit(OpCodes.Ldc_I4, unchecked((int)mask));
        _il.Emit(OpCodes.And);
    }

    private readonly Stack<LocalBuilder> _freeTemps = new();

    /// <summary>A scratch uint local (returned with <see cref="ReleaseTemp"/>; fewer locals, less work for RyuJIT).</summary>
    private LocalBuilder Temp() => _freeTemps.Count > 0 ? _freeTemps.Pop() : _il.DeclareLocal(typeof(uint));

    private void ReleaseTemp(LocalBuilder local)
    {
        if (_heldTemps.Contains(local))
        {
            _releasedWhileHeld.Add(local); // a pending flag write still reads it (BlockEmitter.Flags.cs)
        }
        else
        {
            _freeTemps.Push(local);
        }
    }

    private readonly Stack<LocalBuilder> _freePointerTemps = new();

    /// <summary>A scratch native-int local (a host address), returned with <see cref="ReleasePointerTemp"/>.</summary>
    private LocalBuilder PointerTemp() => _freePointerTemps.Count > 0 ? _freePointerTemps.Pop() : _il.DeclareLocal(typeof(nint));

    private void ReleasePointerTemp(LocalBuilder local) => _freePointerTemps.Push(local);
}
