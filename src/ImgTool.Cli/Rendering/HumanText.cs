using System.Text;
using ImgTool.Block.Info;

namespace ImgTool.Cli.Rendering;

/// <summary>The indented text form of a format-specific block, as qemu-img prints it
/// ("lazy-refcounts" becomes "lazy refcounts"; list items are "[0]:").</summary>
internal static class HumanText
{
    public static void AppendValue(StringBuilder text, InfoValue value, int indent)
    {
        string pad = new(' ', indent);
        switch (value)
        {
            case InfoObject o:
                foreach (var (key, member) in o.Members)
                {
                    AppendMember(text, pad + key.Replace('-', ' '), member, indent);
                }

                break;
            case InfoArray a:
                for (int i = 0; i < a.Items.Count; i++)
                {
                    AppendMember(text, $"{pad}[{i}]", a.Items[i], indent);
                }

                break;
            default:
                text.Append(pad).Append(Scalar(value)).Append('\n');
                break;
        }
    }

    private static void AppendMember(StringBuilder text, string label, InfoValue member, int indent)
    {
        if (member is InfoObject or InfoArray)
        {
            text.Append(label).Append(":\n");
            AppendValue(text, member, indent + 4);
        }
        else
        {
            text.Append(label).Append(": ").Append(Scalar(member)).Append('\n');
        }
    }

    private static string Scalar(InfoValue value) => value switch
    {
        InfoString s => s.Value,
        InfoNumber n => n.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
        InfoBool b => b.Value ? "true" : "false",
        _ => string.Empty,
    };
}
