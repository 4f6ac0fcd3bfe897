using System.Text;
using ImgTool.Machine.Devices;
using ImgTool.Machine.Tests.Platform;
using Xunit.Abstractions;

namespace ImgTool.Machine.Tests.Devices;

/// <summary>
/// Each way a guest stops the PC ends the run with its own outcome and diagnosis: SeaBIOS boots a
/// hand-assembled boot sector that takes one reboot or power-off path (arch/x86/kernel/reboot.c).
/// </summary>
public sealed class ResetAndPowerOffTests(ITestOutputHelper output)
{
    private const string SeaBiosPath = "/usr/share/seabios/bios.bin";
    private const long MaxInstructions = 100_000_000;

    // The reset source travels as an int: the test class is public, ResetSource internal.
    public static TheoryData<string, byte[], int, string> ResetPaths => new()
    {
        // mov al, 0xFE; out 0x64, al; jmp $   (reboot=kbd, Linux's default without ACPI)
        { "i8042", [0xB0, 0xFE, 0xE6, 0x64, 0xEB, 0xFE], (int)ResetSource.KeyboardController, "i8042" },

        // mov dx, 0xCF9; mov al, 2; out dx, al; mov al, 6; out dx, al; jmp $   (reboot=pci)
        { "cf9", [0xBA, 0xF9, 0x0C, 0xB0, 0x02, 0xEE, 0xB0, 0x06, 0xEE, 0xEB, 0xFE], (int)ResetSource.ResetControlRegister, "0xCF9" },

        // in al, 0x92; or al, 1; out 0x92, al; jmp $
        { "port92", [0xE4, 0x92, 0x0C, 0x01, 0xE6, 0x92, 0xEB, 0xFE], (int)ResetSource.SystemControlPortA, "0x92" },
    };

    [Theory]
    [MemberData(nameof(ResetPaths))]
    public void A_reset_ends_the_run_naming_the_path(string name, byte[] code, int source, string named)
    {
        var result = Boot(code);
        output.WriteLine($"{name}: {result}");
        Assert.Equal(MachineOutcome.ResetRequested, result.Outcome);
        Assert.Equal((ResetSource)source, result.Reset);
        Assert.Contains(named, result.Diagnosis, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("reboot: Power down", "powered off")]
    [InlineData("reboot: System halted", "the guest halted")]
    public void Linux_halt_and_power_off_end_as_a_halt_with_interrupts_off_that_says_which(string message, string expected)
    {
        var result = Boot(PrintThenHalt(message));
        output.WriteLine(result.ToString());
        Assert.Equal(MachineOutcome.HaltedInterruptsOff, result.Outcome);
        Assert.StartsWith("guest halted with interrupts off at ", result.Diagnosis, StringComparison.Ordinal);
        Assert.Contains(expected, result.Diagnosis, StringComparison.Ordinal);
        Assert.Contains(message, result.Diagnosis, StringComparison.Ordinal);
    }

    [Fact]
    public void A_plain_halt_with_interrupts_off_names_no_linux_message()
    {
        var result = Boot([0xFA, 0xF4]); // cli; hlt
        Assert.Equal(MachineOutcome.HaltedInterruptsOff, result.Outcome);
        Assert.Matches("^guest halted with interrupts off at 0000:00007C02$", result.Diagnosis);
    }

    /// <summary>xor ax, ax; mov ds, ax; mov si, message; mov dx, 0x3F8; then out each byte to COM1; cli; hlt.</summary>
    private static byte[] PrintThenHalt(string message)
    {
        const int messageOffset = 20;
        byte[] code =
        [
            0x31, 0xC0, 0x8E, 0xD8,                                       // xor ax, ax; mov ds, ax
            0xBE, (0x7C00 + messageOffset) & 0xFF, (0x7C00 + messageOffset) >> 8, // mov si, message
            0xBA, 0xF8, 0x03,                                             // mov dx, 0x3F8
            0xAC,                                                         // next: lodsb
            0x84, 0xC0,                                                   // test al, al
            0x74, 0x03,                                                   // jz done
            0xEE,                                                         // out dx, al
            0xEB, 0xF8,                                                   // jmp next
            0xFA, 0xF4,                                                   // done: cli; hlt
        ];
        Assert.Equal(messageOffset, code.Length);
        return [.. code, .. Encoding.ASCII.GetBytes(message + "\r\n"), 0];
    }

    private MachineRunResult Boot(byte[] code)
    {
        byte[] image = new byte[1 << 20];
        code.CopyTo(image, 0);
        image[510] = 0x55;
        image[511] = 0xAA;
        var machine = new PcMachine(new MachineOptions(File.ReadAllBytes(SeaBiosPath), 32u << 20, new MemoryDisk(image)));
        var result = machine.Run(_ => false, MaxInstructions, TimeSpan.FromSeconds(120));
        output.WriteLine(machine.Serial.ToString());
        return result;
    }
}
