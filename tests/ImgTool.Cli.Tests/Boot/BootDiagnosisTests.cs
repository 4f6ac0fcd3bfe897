using System.Text.Json;

namespace ImgTool.Cli.Tests.Boot;

/// <summary>
/// Each way a boot can stop, from a boot sector of a few hand-assembled instructions, gives the diagnosis
/// of its real cause; unemulated ports the guest touched are listed beside it, never offered as the cause.
/// </summary>
public sealed class BootDiagnosisTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("imgtool-bootdiag-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_harmless_write_to_an_unemulated_port_is_listed_but_the_diagnosis_is_the_halt()
    {
        byte[] code =
        [
            0xBA, 0x34, 0x12, // mov dx, 0x1234 (no device there)
            0xEE,             // out dx, al
            0xFA,             // cli
            0xF4,             // hlt
        ];

        JsonElement report = await BootJsonAsync(code);

        Assert.Equal("HaltedInterruptsOff", report.GetProperty("outcome").GetString());
        Assert.Equal("guest halted with interrupts off at 0000:00007C06", report.GetProperty("diagnosis").GetString());
        Assert.Contains(report.GetProperty("unemulated-ports").EnumerateArray(), port =>
            port.GetProperty("port").GetString() == "0x1234" && port.GetProperty("direction").GetString() == "out" && port.GetProperty("count").GetInt64() == 1);
    }

    [Fact]
    public async Task The_text_report_lists_unemulated_ports_apart_from_the_diagnosis()
    {
        string image = await WriteImageAsync([0xBA, 0x34, 0x12, 0xEE, 0xFA, 0xF4]);

        var result = await Tools.Imgtool("boot", "-f", "raw", image, "--expect", "never printed", "--timeout", "120s");

        Assert.Equal(1, result.ExitCode);
        string[] lines = result.Out.Split('\n');
        Assert.Equal("boot failed: guest halted with interrupts off at 0000:00007C06", lines[0]);
        Assert.Contains(lines, line => line.StartsWith("unemulated ports touched", StringComparison.Ordinal) && line.Contains("out 0x1234 x1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_guest_polling_an_unemulated_port_until_the_budget_runs_out_is_named_as_probably_waiting_for_it()
    {
        byte[] code =
        [
            0xBA, 0xF7, 0x01, // mov dx, 0x1F7 (primary IDE status; this machine has no IDE)
            0xEC,             // wait: in al, dx
            0xA8, 0x80,       // test al, 0x80 (BSY: all ones reads as busy forever)
            0x75, 0xFB,       // jnz wait
            0xFA, 0xF4,       // cli; hlt (never reached)
        ];

        JsonElement report = await BootJsonAsync(code, "--max-instructions", "30000000");

        Assert.Equal("InstructionBudget", report.GetProperty("outcome").GetString());
        string diagnosis = report.GetProperty("diagnosis").GetString()!;
        Assert.StartsWith("instruction budget of 30000000 used up with the guest at 0000:00007C0", diagnosis, StringComparison.Ordinal);
        Assert.Contains("still reading unemulated port 0x01F7 (primary IDE status/command)", diagnosis, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_budget_run_out_while_not_polling_a_port_does_not_blame_one()
    {
        byte[] code =
        [
            0xBA, 0x34, 0x12, // mov dx, 0x1234
            0xEE,             // out dx, al (harmless: written once)
            0xEB, 0xFE,       // jmp $ (spin)
        ];

        JsonElement report = await BootJsonAsync(code, "--max-instructions", "30000000");

        Assert.Equal("InstructionBudget", report.GetProperty("outcome").GetString());
        Assert.Equal("instruction budget of 30000000 used up with the guest at 0000:00007C04", report.GetProperty("diagnosis").GetString());
    }

    [Fact]
    public async Task A_halt_with_the_timer_masked_ends_at_once_with_nothing_to_wake_it()
    {
        byte[] code =
        [
            0xB0, 0xFF, // mov al, 0xFF
            0xE6, 0x21, // out 0x21, al (mask every IRQ at the master PIC)
            0xFB,       // sti
            0xF4,       // hlt
        ];

        JsonElement report = await BootJsonAsync(code);

        Assert.Equal("HaltedNothingToWake", report.GetProperty("outcome").GetString());
        Assert.Equal(
            "guest halted at 0000:00007C06 with interrupts on, but the timer's IRQ 0 is masked at the PIC and no interrupt is pending: nothing can wake it",
            report.GetProperty("diagnosis").GetString());
    }

    [Fact]
    public async Task A_triple_fault_names_the_instruction_and_each_delivery_that_failed()
    {
        byte[] code =
        [
            0x31, 0xC0,                   // xor ax, ax
            0x8E, 0xD8,                   // mov ds, ax
            0x0F, 0x01, 0x1E, 0x20, 0x7C, // lidt [0x7C20]: limit 0, base 0 (the image's zeros)
            0xCC,                         // int3: vector 3 lies beyond the limit
        ];

        JsonElement report = await BootJsonAsync(code);

        Assert.Equal("TripleFault", report.GetProperty("outcome").GetString());
        // SS:ESP at the end is SeaBIOS's choice; everything before it is fixed by the boot sector.
        Assert.StartsWith(
            "triple fault at 0000:00007C09 ('int 3', real mode): #BP (3) could not be delivered (#GP (13) while delivering it), " +
            "nor the double fault (#GP (13) while delivering it); interrupt table base 0x00000000 limit 0x0000, SS:ESP ",
            report.GetProperty("diagnosis").GetString(), StringComparison.Ordinal);
    }

    private async Task<JsonElement> BootJsonAsync(byte[] code, params string[] extraArgs)
    {
        string image = await WriteImageAsync(code);
        var result = await Tools.Imgtool(["boot", "-f", "raw", image, "--expect", "never printed", "--timeout", "120s", "--output", "json", .. extraArgs]);
        Assert.True(result.ExitCode == 1, result.ToString());
        return JsonDocument.Parse(result.Out).RootElement.Clone();
    }

    /// <summary>A 1 MiB disk whose boot sector is the code, zeros after it, and the 55 AA signature.</summary>
    private async Task<string> WriteImageAsync(byte[] code)
    {
        string image = Path.Combine(_directory, $"sector-{Guid.NewGuid():N}.img");
        var bytes = new byte[1 << 20];
        code.CopyTo(bytes, 0);
        bytes[510] = 0x55;
        bytes[511] = 0xAA;
        await File.WriteAllBytesAsync(image, bytes);
        return image;
    }
}
