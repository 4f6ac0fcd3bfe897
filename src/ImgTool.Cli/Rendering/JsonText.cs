using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using ImgTool.Block.Info;

namespace ImgTool.Cli.Rendering;

/// <summary>JSON output written by hand with Utf8JsonWriter (no reflection: AOT-safe), indented by
/// four spaces as qemu-img's is.</summary>
internal static class JsonText
{
    private static readonly JsonWriterOptions Indented = new()
    {
        Indented = true,
        IndentSize = 4,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly JsonWriterOptions Compact = Indented with { Indented = false };

    public static string Build(Action<Utf8JsonWriter> write, bool indented = true)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, indented ? Indented : Compact))
        {
            write(writer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static void WriteValue(Utf8JsonWriter writer, InfoValue value)
    {
        switch (value)
        {
            case InfoString s:
                writer.WriteStringValue(s.Value);
                break;
            case InfoNumber n:
                writer.WriteNumberValue(n.Value);
                break;
            case InfoBool b:
                writer.WriteBooleanValue(b.Value);
                break;
            case InfoArray { Items.Count: 0 } when writer.Options.Indented:
                // qemu-img's pretty printer puts the closing bracket of an empty array on its own line
                // (a disabled bitmap's "flags"); Utf8JsonWriter would write "[]".
                writer.WriteRawValue("[\n" + new string(' ', writer.CurrentDepth * writer.Options.IndentSize) + "]", skipInputValidation: true);
                break;
            case InfoArray a:
                writer.WriteStartArray();
                foreach (InfoValue item in a.Items)
                {
                    WriteValue(writer, item);
                }

                writer.WriteEndArray();
                break;
            case InfoObject o:
                writer.WriteStartObject();
                foreach (var (key, member) in o.Members)
                {
                    writer.WritePropertyName(key);
                    WriteValue(writer, member);
                }

                writer.WriteEndObject();
                break;
        }
    }

    public static void WriteOptionalNumber(this Utf8JsonWriter writer, string name, long? value)
    {
        if (value is { } v)
        {
            writer.WriteNumber(name, v);
        }
    }

    public static void WriteOptionalString(this Utf8JsonWriter writer, string name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }
}
