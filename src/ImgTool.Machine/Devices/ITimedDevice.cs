namespace ImgTool.Machine.Devices;

/// <summary>
/// A device that raises interrupts on its own as virtual time passes (the PIT, the RTC, the UART's
/// receive timeout). The machine asks for the next deadline to cut its execution slices and to skip
/// a HLT to it, and calls <see cref="Update"/> after each slice; nothing runs on a host timer, so a
/// run is deterministic.
/// </summary>
internal interface ITimedDevice
{
    /// <summary>The virtual time (ns) of the device's next interrupt, or <see cref="long.MaxValue"/> for none.</summary>
    long NextDeadlineNs { get; }

    /// <summary>Brings the device's interrupt outputs up to date with the current virtual time.</summary>
    void Update();
}
