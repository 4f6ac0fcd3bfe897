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

    [Fact]
    public async Task A_page_fault_loop_ends_with_the_fault_the_instruction_and_the_address()
    {
        // Protected mode with paging; the #PF handler returns without mapping anything (fixtures/bootsector).
        byte[] code = BootSectors.Assemble("page-fault-loop.asm", _directory);

        JsonElement report = await BootJsonAsync(code);

        Assert.Equal("ExceptionLoop", report.GetProperty("outcome").GetString());
        Assert.Equal("ExceptionLoop", report.GetProperty("end-reason").GetString());
        Assert.Matches(
            @"^page-fault loop: #PF \(14\) at 0008:[0-9A-F]{8} \('mov eax,ds:\[800000h\]', protected mode with paging, CPL 0\) " +
            @"for linear address 0x00800000, error code 0x0000, delivered 20000 times in a row over \d+ instructions: " +
            "the handler returns to the instruction without curing the cause$",
            report.GetProperty("diagnosis").GetString());
    }

    [Fact]
    public async Task A_loop_with_interrupts_off_that_cannot_end_is_named_a_spin_with_its_instruction()
    {
        byte[] code =
        [
            0xFA,       // cli
            0xEB, 0xFE, // jmp $
        ];

        JsonElement report = await BootJsonAsync(code, "--max-instructions", "1000000000");

        Assert.Equal("InterruptsOffSpin", report.GetProperty("outcome").GetString());
        string diagnosis = report.GetProperty("diagnosis").GetString()!;
        Assert.StartsWith("the guest is spinning with interrupts off at 0000:00007C01 ('jmp ", diagnosis, StringComparison.Ordinal);
        Assert.Contains("in a loop through 1 register states", diagnosis, StringComparison.Ordinal);
        Assert.True(report.GetProperty("instructions").GetInt64() < 400_000_000, "the spin should be called after a few virtual seconds");
    }

    /// <summary>The kernel's decompressor runs for seconds with interrupts off: work that makes progress is no spin.</summary>
    [Fact]
    public async Task A_long_loop_with_interrupts_off_whose_registers_keep_changing_is_not_a_spin()
    {
        byte[] code =
        [
            0xFA,             // cli
            0x66, 0x31, 0xC9, // xor ecx, ecx
            0x66, 0x41,       // next: inc ecx
            0xEB, 0xFC,       // jmp next
        ];

        JsonElement report = await BootJsonAsync(code, "--max-instructions", "400000000");

        Assert.Equal("InstructionBudget", report.GetProperty("outcome").GetString());
    }

    [Fact]
    public async Task A_kernel_panic_ends_the_run_at_its_end_line_quoting_the_reason()
    {
        const string Reason = "VFS: Unable to mount root fs on unknown-block(0,0)";
        byte[] code = PrintThen(
            $"[    1.234567] Kernel panic - not syncing: {Reason}\r\n[    1.234600] Call Trace:\r\n" +
            $"[    1.234700] ---[ end Kernel panic - not syncing: {Reason} ]---\r\n",
            [0xEB, 0xFE]); // jmp $ (interrupts on, as panic's loop is not)

        JsonElement report = await BootJsonAsync(code);

        Assert.Equal("KernelPanic", report.GetProperty("outcome").GetString());
        Assert.StartsWith($"the guest kernel panicked: \"Kernel panic - not syncing: {Reason}\"", report.GetProperty("diagnosis").GetString(), StringComparison.Ordinal);
        Assert.True(report.GetProperty("instructions").GetInt64() < 40_000_000, "the run should end at the end line, not after the grace");
    }

    [Fact]
    public async Task A_kernel_panic_without_its_end_line_ends_the_run_a_little_later()
    {
        byte[] code = PrintThen("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n", [0xEB, 0xFE]);

        JsonElement report = await BootJsonAsync(code);

        Assert.Equal("KernelPanic", report.GetProperty("outcome").GetString());
        Assert.StartsWith("the guest kernel panicked: \"Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\"",
            report.GetProperty("diagnosis").GetString(), StringComparison.Ordinal);
    }

    /// <summary>A boot sector that writes a message to COM1 byte by byte, then runs <paramref name="tail"/>.</summary>
    private static byte[] PrintThen(string message, byte[] tail)
    {
        byte[] loop =
        [
            0x31, 0xC0, 0x8E, 0xD8, // xor ax, ax; mov ds, ax
            0xBE, 0, 0,             // mov si, message (patched below)
            0xBA, 0xF8, 0x03,       // mov dx, 0x3F8
            0xAC,                   // next: lodsb
            0x84, 0xC0,             // test al, al
            0x74, 0x03,             // jz done
            0xEE,                   // out dx, al
            0xEB, 0xF8,             // jmp next
        ];
        int messageAddress = 0x7C00 + loop.Length + tail.Length;
        loop[5] = (byte)messageAddress;
        loop[6] = (byte)(messageAddress >> 8);
        byte[] code = [.. loop, .. tail, .. System.Text.Encoding.ASCII.GetBytes(message), 0];
        Assert.True(code.Length <= 510, "the message must fit in the boot sector");
        return code;
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
