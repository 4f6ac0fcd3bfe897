using System.Text.RegularExpressions;
using ImgTool.Formats;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests;

/// <summary>
/// `create -f FMT -o help` lists only what works (issue 19, item 8): every option of every writable format, with
/// every value it lists (or, for free-form values, a sample of each kind), creates an image that opens again.
/// An option listed without a sample here fails the test, so a new option cannot be listed untested.
/// </summary>
public sealed partial class CreateOptionHelpTests : IDisposable
{
    private const string Secret = "secret,id=sec0,data=password";
    private const string Luks = "key-secret=sec0,iter-time=10";
    private const string QcowLuks = "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Values for options whose help names no allowed values ("{dir}": the test's folder).</summary>
    private static readonly Dictionary<string, string[]> Samples = new()
    {
        ["*:size"] = ["1M", "1048576"],
        ["qcow2:backing_file"] = ["{dir}/base.qcow2"],
        ["qcow2:backing_fmt"] = ["qcow2"],
        ["qcow2:cluster_size"] = ["512", "64k", "2M"],
        ["qcow2:compat"] = ["0.10", "v2", "1.1", "v3"],
        ["qcow2:data_file"] = ["{dir}/out.data"],
        ["qcow2:encrypt.key-secret"] = ["sec0"],
        ["qcow2:encrypt.iter-time"] = ["10"],
        ["qcow2:refcount_bits"] = ["1", "2", "4", "8", "16", "32", "64"],
        ["qed:backing_file"] = ["{dir}/base.qcow2"],
        ["qed:backing_fmt"] = ["qcow2"],
        ["qed:cluster_size"] = ["4k", "64k", "1M"],
        ["qed:table_size"] = ["1", "4", "16"],
        ["vmdk:backing_file"] = ["{dir}/base.vmdk"],
        ["vmdk:backing_fmt"] = ["vmdk"],
        ["vmdk:hwversion"] = ["4", "6", "undefined"],
        ["vmdk:toolsversion"] = ["0", "2147483647"],
        ["vhdx:block_size"] = ["0", "1M", "8M", "256M"],
        ["vhdx:log_size"] = ["1M", "8M"],
        ["luks:key-secret"] = ["sec0"],
        ["luks:iter-time"] = ["10"],
    };

    /// <summary>Options that only work together with others, as qemu-img requires them too.</summary>
    private static readonly Dictionary<string, string> Companions = new()
    {
        ["qcow2:backing_file"] = "backing_fmt=qcow2",
        ["qcow2:backing_fmt"] = "backing_file={dir}/base.qcow2",
        ["qcow2:data_file_raw"] = "data_file={dir}/out.data",
        ["qcow2:encrypt.*"] = QcowLuks,
        ["qed:backing_file"] = "backing_fmt=qcow2",
        ["qed:backing_fmt"] = "backing_file={dir}/base.qcow2",
        ["vmdk:backing_file"] = "backing_fmt=vmdk",
        ["vmdk:backing_fmt"] = "backing_file={dir}/base.vmdk",
        ["luks:*"] = Luks,
        ["qcow2:encrypt.ivgen-hash-alg"] = QcowLuks + ",encrypt.ivgen-alg=essiv",
        ["luks:ivgen-hash-alg"] = Luks + ",ivgen-alg=essiv",
    };

    public static TheoryData<string> WritableFormats()
    {
        var data = new TheoryData<string>();
        foreach (FormatDriver driver in FormatRegistry.Default.Drivers.Where(d => !d.IsReadOnlyFormat))
        {
            data.Add(driver.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(WritableFormats))]
    public async Task Every_listed_option_and_value_works(string format)
    {
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "qcow2", _dir.File("base.qcow2"), "1M")).ExitCode);
        Assert.Equal(0, (await QemuImg("create", "-q", "-f", "vmdk", _dir.File("base.vmdk"), "1M")).ExitCode);
        RunResult help = await Imgtool("create", "-f", format, "-o", "help");
        Assert.True(help.ExitCode == 0, help.ToString());
        var failures = new List<string>();
        foreach (Match option in OptionLine().Matches(help.Out))
        {
            string name = option.Groups["name"].Value;
            foreach (string value in ValuesOf(format, name, option.Groups["kind"].Value, option.Groups["allowed"]))
            {
                string options = $"{name}={value}";
                string? companion = Companions.GetValueOrDefault($"{format}:{name}")
                    ?? Companions.GetValueOrDefault($"{format}:{name.Split('.')[0]}.*")
                    ?? Companions.GetValueOrDefault($"{format}:*");
                options = (companion is null ? options : $"{companion},{options}").Replace("{dir}", _dir.Path, StringComparison.Ordinal);
                string image = _dir.File("out.img");
                RunResult create = await Imgtool("create", "--object", Secret, "-f", format, "-o", options, image, "1M");
                RunResult info = create.ExitCode == 0 ? await Imgtool("info", "--object", Secret, "-f", format, image) : create;
                if (create.ExitCode != 0 || info.ExitCode != 0)
                {
                    failures.Add($"-f {format} -o {options}: {(create.ExitCode != 0 ? create.Err : info.Err).Trim()}");
                }

                File.Delete(image);
                File.Delete(_dir.File("out.data"));
            }
        }

        Assert.True(failures.Count == 0, "listed by -o help but refused:\n" + string.Join("\n", failures));
    }

    [Fact]
    public async Task Qcow2_lists_no_aes_encryption_and_refuses_it_with_a_pointer_to_luks()
    {
        string help = (await Imgtool("create", "-f", "qcow2", "-o", "help")).Out;
        Assert.DoesNotContain("encryption=", help, StringComparison.Ordinal);
        Assert.DoesNotContain("aes'", help, StringComparison.Ordinal);
        Assert.Contains("encrypt.format=<str>   - Encrypt the image (allowed values: luks)", help, StringComparison.Ordinal);
        foreach (string options in new[] { "encryption=on", "encrypt.format=aes" })
        {
            RunResult create = await Imgtool("create", "-f", "qcow2", "-o", options, _dir.File("aes.qcow2"), "1M");
            Assert.Equal(1, create.ExitCode);
            Assert.Contains("use encrypt.format=luks", create.Err, StringComparison.Ordinal);
            Assert.False(File.Exists(_dir.File("aes.qcow2")));
        }
    }

    [Fact]
    public async Task A_read_only_format_has_no_options_to_list()
    {
        RunResult help = await Imgtool("create", "-f", "qcow", "-o", "help");
        Assert.Equal(1, help.ExitCode);
        Assert.Equal("imgtool: 'qcow' is a read-only format: imgtool reads it, but cannot create or write it\n", help.Err);
    }

    private static IEnumerable<string> ValuesOf(string format, string name, string kind, Group allowed)
    {
        if (allowed.Success)
        {
            return allowed.Value.Split(", ");
        }

        if (kind == "bool (on/off)")
        {
            return ["on", "off"];
        }

        return Samples.GetValueOrDefault($"{format}:{name}") ?? Samples.GetValueOrDefault($"*:{name}")
            ?? throw new InvalidOperationException($"-o help of {format} lists {name}=<{kind}> and this test has no sample value for it: add one");
    }

    /// <summary>A `-o help` line: "  name=&lt;kind&gt; - description (allowed values: a, b)".</summary>
    [GeneratedRegex(@"^  (?<name>[\w.-]+)=<(?<kind>[^>]+)>\s+- .*?(\(allowed values: (?<allowed>[^)]+)\))?$", RegexOptions.Multiline)]
    private static partial Regex OptionLine();
}
